#include "config/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <functional>
#include <initializer_list>
#include <span>
#include <sstream>
#include <system_error>
#include <type_traits>

#include <fmt/format.h>
#include <boost/program_options.hpp>

#include "config/option_values.hpp"

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif

namespace po = boost::program_options;

namespace mr {
namespace {

using Setter = mr::Setter<ServerConfig>;
using Show = std::function<std::string(const ServerConfig&)>;

struct OptionSpec {
  const char* name;
  const char* help;
  Setter set;
  Show show;                 // the value as text, in the spelling `set` accepts
  std::string default_text;  // show() of a default ServerConfig, for --help
};

// The rules of MR_SERVER_OPTIONS' fourth column: what values an option accepts.
struct Range {  // an integer in [lo, hi]
  std::uint64_t lo;
  std::uint64_t hi;
};
struct ZeroOrRange {  // 0 (a special meaning, e.g. "automatic") or an integer in [lo, hi]
  std::uint64_t lo;
  std::uint64_t hi;
};
struct Flag {};       // true/false, yes/no, on/off, 1/0
struct IpAddress {};  // a numeric IPv4 or IPv6 address
struct Text {};       // anything
struct OneOf {        // one of a few words, kept as text
  std::vector<std::string> choices;
};
template <typename Mode>
struct ModeRule {  // one of a mode's names, stored as the enum
  std::span<const ModeName<Mode>> names;
};

Range range(std::uint64_t lo, std::uint64_t hi) {
  return {lo, hi};
}
ZeroOrRange zero_or_range(std::uint64_t lo, std::uint64_t hi) {
  return {lo, hi};
}
Flag flag() {
  return {};
}
IpAddress ip_address() {
  return {};
}
Text text() {
  return {};
}
OneOf one_of(std::initializer_list<const char*> allowed) {
  return {{allowed.begin(), allowed.end()}};
}
template <typename Mode, std::size_t N>
ModeRule<Mode> mode(const ModeName<Mode> (&names)[N]) {
  return {names};
}

// "one of a|b|c".
template <typename Names, typename NameOf>
std::string one_of_phrase(const Names& names, NameOf name_of) {
  std::string list;
  for (const auto& entry : names) {
    if (!list.empty()) list += '|';
    list += name_of(entry);
  }
  return "one of " + list;
}

template <typename T>
Setter setter(T ServerConfig::*field, Range r) {
  return integer_option(field, r.lo, r.hi);
}

Setter setter(std::uint64_t ServerConfig::*field, ZeroOrRange r) {
  return [field, r](ServerConfig& c, const std::string& v) -> std::string {
    std::uint64_t parsed = 0;
    if (!parse_integer(v, 0, r.hi, parsed).empty() || (parsed != 0 && parsed < r.lo)) {
      return fmt::format("0 or an integer from {} to {}", r.lo, r.hi);
    }
    c.*field = parsed;
    return "";
  };
}

Setter setter(bool ServerConfig::*field, Flag /*rule*/) {
  return bool_option(field);
}

Setter setter(std::string ServerConfig::*field, IpAddress /*rule*/) {
  return [field](ServerConfig& c, const std::string& v) -> std::string {
    unsigned char buf[16];
    if (inet_pton(AF_INET, v.c_str(), buf) != 1 && inet_pton(AF_INET6, v.c_str(), buf) != 1) {
      return "a numeric IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1, ::)";
    }
    c.*field = v;
    return "";
  };
}

Setter setter(std::string ServerConfig::*field, Text /*rule*/) {
  return [field](ServerConfig& c, const std::string& v) -> std::string {
    c.*field = v;
    return "";
  };
}

Setter setter(std::string ServerConfig::*field, OneOf rule) {
  return [field, choices = std::move(rule.choices)](ServerConfig& c,
                                                    const std::string& v) -> std::string {
    if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
      return one_of_phrase(choices, [](const std::string& choice) { return choice; });
    }
    c.*field = v;
    return "";
  };
}

template <typename Mode>
Setter setter(Mode ServerConfig::*field, ModeRule<Mode> rule) {
  return [field, rule](ServerConfig& c, const std::string& v) -> std::string {
    for (const auto& entry : rule.names) {
      if (v == entry.name) {
        c.*field = entry.mode;
        return "";
      }
    }
    return one_of_phrase(rule.names, [](const ModeName<Mode>& entry) { return entry.name; });
  };
}

template <typename Mode, std::size_t N>
std::string_view name_of(Mode mode, const ModeName<Mode> (&names)[N]) {
  for (const auto& entry : names) {
    if (entry.mode == mode) return entry.name;
  }
  return "?";
}

// A field's value as text, in the spelling its setter accepts.
template <typename T>
std::string text_of(const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return value;
  } else if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_enum_v<T>) {
    return std::string(to_string(value));
  } else {
    return std::to_string(value);
  }
}

template <typename T, typename Rule>
OptionSpec make_spec(const char* name, T ServerConfig::*field, Rule rule, const char* help) {
  OptionSpec spec{name, help, setter(field, std::move(rule)),
                  [field](const ServerConfig& c) { return text_of(c.*field); }, ""};
  spec.default_text = spec.show(ServerConfig{});
  return spec;
}

const std::vector<OptionSpec>& option_table() {
#define MR_OPTION_SPEC(type, name, default_value, rule, help) \
  make_spec(#name, &ServerConfig::name, rule, help),
  static const std::vector<OptionSpec> table = {MR_SERVER_OPTIONS(MR_OPTION_SPEC)};
#undef MR_OPTION_SPEC
  return table;
}

const OptionSpec* find_option(const std::string& name) {
  for (const auto& spec : option_table()) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

po::options_description table_description() {
  po::options_description desc("Server options (file key, MR_<NAME> variable, --name flag)");
  for (const auto& spec : option_table()) {
    desc.add_options()(spec.name, po::value<std::string>()->default_value(spec.default_text),
                       spec.help);
  }
  return desc;
}

po::options_description command_description() {
  po::options_description desc("Commands");
  desc.add_options()("help", "print this help and exit")("version", "print the version and exit")(
      "check-config", "validate the configuration, print it, and exit")(
      "health-check",
      "GET /healthz on the admin port of this configuration; exit 0 on 200, else 1")(
      "config", po::value<std::string>(), "read options from this INI-style file");
  return desc;
}

// Options explicitly present in one source, in order, with the source's label.
struct SourceValues {
  std::string label;
  std::vector<std::pair<std::string, std::string>> values;
};

std::string env_name(const std::string& name) {
  std::string upper = "MR_";
  for (char ch : name)
    upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return upper;
}

}  // namespace

const char* version_string() {
  return MR_VERSION;
}

std::string apply_option(ServerConfig& config, const std::string& name, const std::string& value,
                         const std::string& source) {
  const OptionSpec* spec = find_option(name);
  if (spec == nullptr) return fmt::format("config error: unknown key '{}' ({})", name, source);
  std::string allowed = spec->set(config, value);
  if (allowed.empty()) return "";
  return fmt::format("config error: {} = '{}' ({}): expected {}", name, value, source, allowed);
}

std::vector<std::string> option_names() {
  std::vector<std::string> names;
  for (const auto& spec : option_table())
    names.emplace_back(spec.name);
  return names;
}

std::string_view to_string(AcceptMode mode) {
  return name_of(mode, kAcceptModeNames);
}
std::string_view to_string(Dispatch mode) {
  return name_of(mode, kDispatchNames);
}
std::string_view to_string(CpuAffinity mode) {
  return name_of(mode, kCpuAffinityNames);
}
std::string_view to_string(LogFormat mode) {
  return name_of(mode, kLogFormatNames);
}

std::map<std::string, std::string> describe(const ServerConfig& c) {
  std::map<std::string, std::string> values;
  for (const auto& spec : option_table())
    values.emplace(spec.name, spec.show(c));
  return values;
}

std::string help_text() {
  std::ostringstream out;
  out << "echo-server " << MR_VERSION << " - multi-reactor TCP echo server\n\n"
      << "Usage: echo-server [--config FILE] [--name value ...]\n"
      << "Every option can be set in the config file (name = value), as an environment\n"
      << "variable MR_<NAME> (e.g. MR_WORKERS=8) or on the command line (--name value);\n"
      << "later sources win: file < environment < command line.\n\n";
  out << command_description() << "\n" << table_description();
  return out.str();
}

namespace {

// "a directory", "a FIFO", ...: what a path is when it is not a regular file.
std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) {
    return "a directory (a container bind mount of a host file that does not exist creates one)";
  }
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

// The whole text of `path`, which must be a readable regular file. `where` names it in errors.
bool read_regular_file(const std::string& path, const std::string& where, std::string& text,
                       std::string& error) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer. The kind is checked with fstat on
  // the open descriptor, so what is checked is what is read.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int open_errno = errno;
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
      error =
          fmt::format("config error: {} is {}, not a regular file", where, file_kind(st.st_mode));
    } else {
      error = fmt::format("config error: {} cannot be opened: {}", where,
                          std::generic_category().message(open_errno));
    }
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = fmt::format("config error: {} is {}, not a regular file", where, file_kind(st.st_mode));
    close(fd);
    return false;
  }
  text.clear();
  char chunk[4096];
  for (;;) {
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n > 0) {
      text.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      error = fmt::format("config error: {} cannot be read: {}", where,
                          std::generic_category().message(errno));
      close(fd);
      return false;
    }
  }
  close(fd);
  return true;
}

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r") - begin + 1);
}

// boost's parse_config_file keeps the last of two lines for one key without a word, so a
// key given twice is found here, with both line numbers. Lines are read as boost reads them:
// '#' starts a comment anywhere, blank lines are skipped, `[name]` prefixes the keys after it
// with "name.".
std::string find_repeated_key(const std::string& text, const std::string& path) {
  std::map<std::string, int> first_line;
  std::string prefix;
  std::istringstream lines(text);
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    if (line.front() == '[' && line.back() == ']') {
      prefix = line.substr(1, line.size() - 2);
      if (!prefix.empty() && prefix.back() != '.') prefix += '.';
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;  // boost has reported it already
    const std::string key = prefix + trim(line.substr(0, eq));
    const auto [first, inserted] = first_line.emplace(key, number);
    if (!inserted) {
      return fmt::format(
          "config error: key '{}' is set twice in config file {} (lines {} and {}); "
          "keep one",
          key, path, first->second, number);
    }
  }
  return "";
}

bool load_config_file(const std::string& path, const std::string& given_by,
                      std::map<std::string, std::string>& values, std::string& error) {
  const std::string where = given_by.empty()
                                ? fmt::format("config file '{}'", path)
                                : fmt::format("config file '{}' (from {})", path, given_by);
  std::string text;
  if (!read_regular_file(path, where, text, error)) return false;
  try {
    std::istringstream in(text);
    po::options_description desc = table_description();
    po::parsed_options parsed = po::parse_config_file(in, desc, /*allow_unregistered=*/false);
    for (const auto& opt : parsed.options) {
      if (!opt.value.empty()) values[opt.string_key] = opt.value.front();
    }
  } catch (const po::unknown_option& e) {
    error = fmt::format("config error: unknown key '{}' (config file {}); see --help for the keys",
                        e.get_option_name(), path);
    return false;
  } catch (const po::error& e) {
    error = fmt::format("config error: config file {}: {}", path, e.what());
    return false;
  }
  error = find_repeated_key(text, path);
  return error.empty();
}

}  // namespace

bool read_config_file(const std::string& path, std::map<std::string, std::string>& values,
                      std::string& error) {
  return load_config_file(path, "", values, error);
}

ConfigOutcome parse_server_options(int argc, const char* const* argv, const char* const* envp) {
  ConfigOutcome outcome;
  auto fail = [&outcome](std::string message) {
    outcome.action = ConfigOutcome::Action::kExitError;
    outcome.message = std::move(message);
    return outcome;
  };

  po::options_description all;
  all.add(command_description()).add(table_description());

  SourceValues cli{"command line", {}};
  po::variables_map commands;
  try {
    // Flags may be spelled with dashes (--admin-port) as well as with the option's own name.
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg.rfind("--", 0) == 0) {
        const std::size_t end = std::min(arg.find('='), arg.size());
        std::string name = arg.substr(2, end - 2);
        std::replace(name.begin(), name.end(), '-', '_');
        if (find_option(name) != nullptr) arg = fmt::format("--{}{}", name, arg.substr(end));
      }
      args.push_back(std::move(arg));
    }
    po::parsed_options parsed = po::command_line_parser(args).options(all).run();
    po::store(parsed, commands);
    for (const auto& opt : parsed.options) {
      if (opt.unregistered || opt.value.empty() || opt.string_key == "config") continue;
      cli.values.emplace_back(opt.string_key, opt.value.front());
    }
  } catch (const po::unknown_option& e) {
    return fail(fmt::format("config error: unknown option '{}' (command line); see --help",
                            e.get_option_name()));
  } catch (const po::error& e) {
    return fail(fmt::format("config error: {} (command line); see --help", e.what()));
  }

  if (commands.count("help")) {
    outcome.action = ConfigOutcome::Action::kExitSuccess;
    outcome.message = help_text();
    return outcome;
  }
  if (commands.count("version")) {
    outcome.action = ConfigOutcome::Action::kExitSuccess;
    outcome.message = fmt::format("echo-server {}\n", MR_VERSION);
    return outcome;
  }
  outcome.check_only = commands.count("check-config") > 0;
  outcome.health_check = commands.count("health-check") > 0;

  // The environment: MR_<NAME> for every option in the table, and MR_CONFIG. Any other MR_
  // variable is a typo of ours to report, not to ignore.
  SourceValues env{"environment", {}};
  std::string config_path;
  if (commands.count("config")) config_path = commands["config"].as<std::string>();
  std::string env_config_path;
  for (const char* const* entry = envp; entry != nullptr && *entry != nullptr; ++entry) {
    std::string kv = *entry;
    if (kv.rfind("MR_", 0) != 0) continue;
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string key = kv.substr(0, eq);
    std::string value = kv.substr(eq + 1);
    if (key == "MR_CONFIG") {
      env_config_path = value;
      continue;
    }
    bool known = false;
    for (const auto& spec : option_table()) {
      if (env_name(spec.name) == key) {
        env.values.emplace_back(spec.name, value);
        known = true;
        break;
      }
    }
    if (!known) {
      return fail(fmt::format(
          "config error: unknown environment variable {} (options are MR_<NAME>, e.g. MR_WORKERS)",
          key));
    }
  }
  const char* config_given_by = "--config";
  if (config_path.empty()) {
    config_path = env_config_path;
    config_given_by = "MR_CONFIG";
  }

  SourceValues file{"config file " + config_path, {}};
  if (!config_path.empty()) {
    std::map<std::string, std::string> values;
    std::string error;
    if (!load_config_file(config_path, config_given_by, values, error)) return fail(error);
    // Keep the file's own order for error messages: apply in table order.
    for (const auto& spec : option_table()) {
      auto it = values.find(spec.name);
      if (it != values.end()) file.values.emplace_back(it->first, it->second);
    }
    outcome.config.config_file = config_path;
  }

  for (const SourceValues* source : {&file, &env, &cli}) {
    for (const auto& [name, value] : source->values) {
      std::string label = source->label;
      if (source == &env) label = "environment " + env_name(name);
      std::string error = apply_option(outcome.config, name, value, label);
      if (!error.empty()) return fail(error);
    }
  }
  if (outcome.check_only) {
    outcome.action = ConfigOutcome::Action::kExitSuccess;
    std::string text = "config ok\n";
    for (const auto& name : option_names()) {
      text += fmt::format("{} = {}\n", name, describe(outcome.config)[name]);
    }
    outcome.message = text;
  }
  return outcome;
}

}  // namespace mr
