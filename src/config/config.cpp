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
#include <sstream>
#include <system_error>

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

struct OptionSpec {
  const char* name;
  const char* default_value;
  const char* help;
  Setter set;
};

Setter one_of(std::string ServerConfig::*field, std::initializer_list<const char*> allowed) {
  std::vector<std::string> choices(allowed.begin(), allowed.end());
  return [field, choices](ServerConfig& c, const std::string& v) -> std::string {
    if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
      std::string list;
      for (const auto& choice : choices)
        list += (list.empty() ? "" : "|") + choice;
      return "one of " + list;
    }
    c.*field = v;
    return "";
  };
}

Setter ip_address(std::string ServerConfig::*field) {
  return [field](ServerConfig& c, const std::string& v) -> std::string {
    unsigned char buf[16];
    if (inet_pton(AF_INET, v.c_str(), buf) != 1 && inet_pton(AF_INET6, v.c_str(), buf) != 1) {
      return "a numeric IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1, ::)";
    }
    c.*field = v;
    return "";
  };
}

// 0 (a special meaning, e.g. "automatic") or an integer in [lo, hi].
Setter zero_or_range(std::uint64_t ServerConfig::*field, std::uint64_t lo, std::uint64_t hi) {
  return [field, lo, hi](ServerConfig& c, const std::string& v) -> std::string {
    std::uint64_t parsed = 0;
    if (!parse_integer(v, 0, hi, parsed).empty() || (parsed != 0 && parsed < lo)) {
      return fmt::format("0 or an integer from {} to {}", lo, hi);
    }
    c.*field = parsed;
    return "";
  };
}

Setter any_text(std::string ServerConfig::*field) {
  return [field](ServerConfig& c, const std::string& v) -> std::string {
    c.*field = v;
    return "";
  };
}

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> table = {
      {"bind", "0.0.0.0", "address the echo listener binds to", ip_address(&ServerConfig::bind)},
      {"port", "9999", "echo port; 0 picks a free port (logged at start)",
       integer_option(&ServerConfig::port, 0, 65535)},
      {"workers", "0", "worker threads; 0 = one per CPU this process may use",
       integer_option(&ServerConfig::workers, 0, 256)},
      {"backlog", "4096", "listen(2) backlog", integer_option(&ServerConfig::backlog, 1, 1 << 20)},
      {"max_connections", "100000",
       "connections held at once; beyond it new ones are accepted and closed",
       integer_option(&ServerConfig::max_connections, 1, 10'000'000)},
      {"high_water_mark", "1048576",
       "bytes of pending output per connection before the server stops reading from it",
       integer_option(&ServerConfig::high_water_mark, 1024, 1ULL << 30)},
      {"max_buffered_bytes", "0",
       "process-wide bound on bytes held for pending output, all connections together; 0 = "
       "automatic: half the tightest of the cgroup memory limit, RLIMIT_DATA/RLIMIT_AS and "
       "physical memory",
       zero_or_range(&ServerConfig::max_buffered_bytes, 65536, 1ULL << 40)},
      {"tcp_nodelay", "true", "set TCP_NODELAY on echo connections",
       bool_option(&ServerConfig::tcp_nodelay)},
      {"socket_send_buffer_bytes", "0",
       "SO_SNDBUF of echo connections; 0 = the kernel's autotuning (a value turns it off; the "
       "kernel doubles it)",
       zero_or_range(&ServerConfig::socket_send_buffer_bytes, 4096, 64ULL << 20)},
      {"socket_receive_buffer_bytes", "0",
       "SO_RCVBUF of echo connections; 0 = the kernel's autotuning (a value turns it off; the "
       "kernel doubles it)",
       zero_or_range(&ServerConfig::socket_receive_buffer_bytes, 4096, 64ULL << 20)},
      {"tcp_keepalive", "true",
       "SO_KEEPALIVE on echo connections, so a vanished peer is found and closed",
       bool_option(&ServerConfig::tcp_keepalive)},
      {"tcp_keepidle_s", "60", "seconds of silence before the first keepalive probe",
       integer_option(&ServerConfig::tcp_keepidle_s, 1, 32767)},
      {"tcp_keepintvl_s", "10", "seconds between keepalive probes",
       integer_option(&ServerConfig::tcp_keepintvl_s, 1, 32767)},
      {"tcp_keepcnt", "6", "unanswered keepalive probes before the connection is dropped",
       integer_option(&ServerConfig::tcp_keepcnt, 1, 127)},
      {"tcp_user_timeout_ms", "0",
       "TCP_USER_TIMEOUT: drop a connection whose sent data stays unacknowledged (or whose peer "
       "keeps its window closed) this long; 0 = the kernel's default (off)",
       integer_option(&ServerConfig::tcp_user_timeout_ms, 0, 86'400'000)},
      {"log_level", "info", "trace|debug|info|warn|error|critical|off",
       one_of(&ServerConfig::log_level,
              {"trace", "debug", "info", "warn", "error", "critical", "off"})},
      {"log_file", "", "also log to this file (empty = stderr only)",
       any_text(&ServerConfig::log_file)},
      {"stats_interval_s", "0", "seconds between aggregated stats log lines; 0 = off",
       integer_option(&ServerConfig::stats_interval_s, 0, 86400)},
      {"log_format", "text", "text|json (json: one object per line)",
       one_of(&ServerConfig::log_format, {"text", "json"})},
      {"log_file_max_bytes", "10485760", "rotate log_file when it reaches this size",
       integer_option(&ServerConfig::log_file_max_bytes, 4096, 1ULL << 40)},
      {"log_file_count", "3", "rotated log files kept besides the current one",
       integer_option(&ServerConfig::log_file_count, 1, 1000)},
      {"admin_bind", "127.0.0.1", "address of the admin HTTP listener (/healthz, /stats, ...)",
       ip_address(&ServerConfig::admin_bind)},
      {"admin_port", "9100", "admin HTTP port; 0 = no admin listener",
       integer_option(&ServerConfig::admin_port, 0, 65535)},
      {"accept_mode", "acceptor",
       "acceptor: one acceptor thread deals connections to the workers; reuseport: each worker "
       "accepts on its own SO_REUSEPORT socket",
       one_of(&ServerConfig::accept_mode, {"acceptor", "reuseport"})},
      {"dispatch", "round_robin", "how the acceptor picks a worker: round_robin|least_connections",
       one_of(&ServerConfig::dispatch, {"round_robin", "least_connections"})},
      {"cpu_affinity", "off",
       "off|auto (auto: pin worker i to the i-th usable CPU, unless there are fewer CPUs than "
       "workers)",
       one_of(&ServerConfig::cpu_affinity, {"off", "auto"})},
      {"idle_timeout_ms", "0", "close a connection idle this long in both directions; 0 = off",
       integer_option(&ServerConfig::idle_timeout_ms, 0, 86'400'000)},
      {"shutdown_timeout_ms", "5000",
       "on SIGTERM, how long workers may flush pending output before closing the rest",
       integer_option(&ServerConfig::shutdown_timeout_ms, 0, 3'600'000)},
      {"epoll_events", "256", "events one epoll_wait call of a worker can return",
       integer_option(&ServerConfig::epoll_events, 1, 65536)},
      {"read_buffer_bytes", "65536",
       "a worker's read buffer (shared by its connections): the most one read takes",
       integer_option(&ServerConfig::read_buffer_bytes, 1024, 64ULL << 20)},
      {"reads_per_event", "4",
       "reads per readable event, continuing only while each read fills the read buffer",
       integer_option(&ServerConfig::reads_per_event, 1, 64)},
  };
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
    desc.add_options()(spec.name, po::value<std::string>()->default_value(spec.default_value),
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

std::map<std::string, std::string> describe(const ServerConfig& c) {
  return {
      {"bind", c.bind},
      {"port", std::to_string(c.port)},
      {"workers", std::to_string(c.workers)},
      {"backlog", std::to_string(c.backlog)},
      {"max_connections", std::to_string(c.max_connections)},
      {"high_water_mark", std::to_string(c.high_water_mark)},
      {"max_buffered_bytes", std::to_string(c.max_buffered_bytes)},
      {"tcp_nodelay", c.tcp_nodelay ? "true" : "false"},
      {"socket_send_buffer_bytes", std::to_string(c.socket_send_buffer_bytes)},
      {"socket_receive_buffer_bytes", std::to_string(c.socket_receive_buffer_bytes)},
      {"tcp_keepalive", c.tcp_keepalive ? "true" : "false"},
      {"tcp_keepidle_s", std::to_string(c.tcp_keepidle_s)},
      {"tcp_keepintvl_s", std::to_string(c.tcp_keepintvl_s)},
      {"tcp_keepcnt", std::to_string(c.tcp_keepcnt)},
      {"tcp_user_timeout_ms", std::to_string(c.tcp_user_timeout_ms)},
      {"log_level", c.log_level},
      {"log_file", c.log_file},
      {"stats_interval_s", std::to_string(c.stats_interval_s)},
      {"log_format", c.log_format},
      {"log_file_max_bytes", std::to_string(c.log_file_max_bytes)},
      {"log_file_count", std::to_string(c.log_file_count)},
      {"admin_bind", c.admin_bind},
      {"admin_port", std::to_string(c.admin_port)},
      {"accept_mode", c.accept_mode},
      {"dispatch", c.dispatch},
      {"cpu_affinity", c.cpu_affinity},
      {"idle_timeout_ms", std::to_string(c.idle_timeout_ms)},
      {"shutdown_timeout_ms", std::to_string(c.shutdown_timeout_ms)},
      {"epoll_events", std::to_string(c.epoll_events)},
      {"read_buffer_bytes", std::to_string(c.read_buffer_bytes)},
      {"reads_per_event", std::to_string(c.reads_per_event)},
  };
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
