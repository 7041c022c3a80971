#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "server/config_reload.hpp"
#include "server/server.hpp"

namespace mr {
namespace {

using Action = ConfigOutcome::Action;

// Runs the parser on `args` (argv[1..]) and `env` (NAME=value entries) only — never on this
// process's real environment.
ConfigOutcome parse(const std::vector<std::string>& args,
                    const std::vector<std::string>& env = {}) {
  std::vector<const char*> argv{"echo-server"};
  for (const auto& a : args)
    argv.push_back(a.c_str());
  argv.push_back(nullptr);
  std::vector<const char*> envp;
  for (const auto& e : env)
    envp.push_back(e.c_str());
  envp.push_back(nullptr);
  return parse_server_options(static_cast<int>(argv.size() - 1), argv.data(), envp.data());
}

// A config file in the test's temporary directory, removed at the end of the test.
class TempConfigFile {
 public:
  explicit TempConfigFile(const std::string& text) {
    std::string pattern = ::testing::TempDir() + "mr-config-XXXXXX";
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    int fd = mkstemp(name.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    path_ = name.data();
    std::ofstream(path_) << text;
  }
  ~TempConfigFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A directory or a FIFO in the test's temporary directory, removed at the end of the test.
class TempNode {
 public:
  enum class Kind { kDirectory, kFifo };
  // The PID in the name keeps concurrent runs (from other build folders) apart.
  TempNode(const std::string& name, Kind kind)
      : path_(::testing::TempDir() + std::to_string(getpid()) + "-" + name) {
    std::remove(path_.c_str());
    const int made =
        kind == Kind::kDirectory ? mkdir(path_.c_str(), 0755) : mkfifo(path_.c_str(), 0644);
    if (made != 0) throw std::runtime_error("cannot create " + path_);
  }
  ~TempNode() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// An error outcome with one line that names every one of `parts`.
::testing::AssertionResult IsErrorNaming(const ConfigOutcome& outcome,
                                         const std::vector<std::string>& parts) {
  if (outcome.action != Action::kExitError) {
    return ::testing::AssertionFailure() << "not an error; message: " << outcome.message;
  }
  if (contains(outcome.message, "\n")) {
    return ::testing::AssertionFailure() << "more than one line: " << outcome.message;
  }
  for (const auto& part : parts) {
    if (!contains(outcome.message, part)) {
      return ::testing::AssertionFailure() << "'" << part << "' missing in: " << outcome.message;
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(Config, NoSourcesGiveTheDocumentedDefaults) {
  const ConfigOutcome outcome = parse({});
  ASSERT_EQ(outcome.action, Action::kRun) << outcome.message;
  EXPECT_FALSE(outcome.check_only);
  EXPECT_EQ(describe(outcome.config), describe(ServerConfig{}));
  EXPECT_EQ(outcome.config.port, 9999);
  EXPECT_EQ(outcome.config.bind, "0.0.0.0");
  EXPECT_EQ(outcome.config.high_water_mark, 1024u * 1024u);
  EXPECT_TRUE(outcome.config.config_file.empty());
}

TEST(Config, EveryOptionIsSettableFromTheCommandLine) {
  ServerConfig want;
  want.bind = "127.0.0.1";
  want.port = 7000;
  want.workers = 3;
  want.backlog = 128;
  want.max_connections = 5000;
  want.high_water_mark = 65536;
  want.tcp_nodelay = false;
  want.log_level = "warn";
  want.log_file = "/tmp/x.log";
  want.stats_interval_s = 10;
  want.log_format = LogFormat::kJson;
  want.log_file_max_bytes = 8192;
  want.log_file_count = 5;
  want.admin_bind = "::1";
  want.admin_port = 9200;
  want.idle_timeout_ms = 30000;
  want.shutdown_timeout_ms = 100;
  const auto values = describe(want);
  ASSERT_EQ(values.size(), option_names().size());
  // Options added after this test was written take part with their default value.
  std::vector<std::string> args;
  for (const auto& name : option_names()) {
    ASSERT_TRUE(values.count(name)) << name << " is missing from describe()";
    args.push_back("--" + name);
    args.push_back(values.at(name));
  }
  const ConfigOutcome outcome = parse(args);
  ASSERT_EQ(outcome.action, Action::kRun) << outcome.message;
  EXPECT_EQ(describe(outcome.config), values);
  // These differ from their defaults, so an option that is parsed but not stored shows.
  const auto defaults = describe(ServerConfig{});
  for (const char* name :
       {"bind", "port", "workers", "backlog", "max_connections", "high_water_mark", "tcp_nodelay",
        "log_level", "log_file", "stats_interval_s", "log_format", "log_file_max_bytes",
        "log_file_count", "admin_bind", "admin_port", "idle_timeout_ms", "shutdown_timeout_ms"}) {
    EXPECT_NE(values.at(name), defaults.at(name)) << name;
  }
}

// The engine's option structs carry library defaults for embedders; the server takes every engine
// option from the config table, so the table's defaults (not the library's) are what runs.
TEST(Config, TheServerTakesEveryEngineOptionFromTheConfigTable) {
  const auto check = [](const ServerConfig& c) {
    const ReactorOptions o = reactor_options(c);
    EXPECT_EQ(o.bind, c.bind);
    EXPECT_EQ(o.port, c.port);
    EXPECT_EQ(o.backlog, c.backlog);
    EXPECT_EQ(o.workers, c.workers);
    EXPECT_EQ(o.accept_mode, c.accept_mode);
    EXPECT_EQ(o.dispatch, c.dispatch);
    EXPECT_EQ(o.pin_workers, c.cpu_affinity == CpuAffinity::kAuto);
    EXPECT_EQ(o.max_connections, c.max_connections);
    EXPECT_EQ(o.max_buffered_bytes, c.max_buffered_bytes);
    EXPECT_EQ(o.worker.high_water_mark, c.high_water_mark);
    EXPECT_EQ(o.worker.idle_timeout_ms, c.idle_timeout_ms);
    EXPECT_EQ(o.worker.max_events, static_cast<int>(c.epoll_events));
    EXPECT_EQ(o.worker.scratch_bytes, c.read_buffer_bytes);
    EXPECT_EQ(o.worker.reads_per_event, c.reads_per_event);
    EXPECT_EQ(o.accepted_socket.tcp_nodelay, c.tcp_nodelay);
    EXPECT_EQ(o.accepted_socket.send_buffer_bytes, static_cast<int>(c.socket_send_buffer_bytes));
    EXPECT_EQ(o.accepted_socket.receive_buffer_bytes,
              static_cast<int>(c.socket_receive_buffer_bytes));
    EXPECT_EQ(o.accepted_socket.keepalive, c.tcp_keepalive);
    EXPECT_EQ(o.accepted_socket.keepidle_s, static_cast<int>(c.tcp_keepidle_s));
    EXPECT_EQ(o.accepted_socket.keepintvl_s, static_cast<int>(c.tcp_keepintvl_s));
    EXPECT_EQ(o.accepted_socket.keepcnt, static_cast<int>(c.tcp_keepcnt));
    EXPECT_EQ(o.accepted_socket.user_timeout_ms, c.tcp_user_timeout_ms);
  };
  check(ServerConfig{});
  const ConfigOutcome changed = parse({"--bind",
                                       "127.0.0.2",
                                       "--port",
                                       "7001",
                                       "--backlog",
                                       "77",
                                       "--workers",
                                       "3",
                                       "--accept_mode",
                                       "reuseport",
                                       "--dispatch",
                                       "least_connections",
                                       "--cpu_affinity",
                                       "auto",
                                       "--max_connections",
                                       "55",
                                       "--max_buffered_bytes",
                                       "1048576",
                                       "--high_water_mark",
                                       "4096",
                                       "--idle_timeout_ms",
                                       "9",
                                       "--epoll_events",
                                       "17",
                                       "--read_buffer_bytes",
                                       "2048",
                                       "--reads_per_event",
                                       "2",
                                       "--tcp_nodelay",
                                       "false",
                                       "--socket_send_buffer_bytes",
                                       "8192",
                                       "--socket_receive_buffer_bytes",
                                       "16384",
                                       "--tcp_keepalive",
                                       "off",
                                       "--tcp_keepidle_s",
                                       "5",
                                       "--tcp_keepintvl_s",
                                       "6",
                                       "--tcp_keepcnt",
                                       "7",
                                       "--tcp_user_timeout_ms",
                                       "8"});
  ASSERT_EQ(changed.action, Action::kRun) << changed.message;
  EXPECT_EQ(changed.config.accept_mode, AcceptMode::kReuseport);
  EXPECT_EQ(changed.config.dispatch, Dispatch::kLeastConnections);
  EXPECT_EQ(changed.config.cpu_affinity, CpuAffinity::kAuto);
  check(changed.config);
}

TEST(Config, EveryOptionIsSettableFromTheEnvironmentAndAFile) {
  const ConfigOutcome from_env = parse(
      {}, {"MR_WORKERS=5", "MR_HIGH_WATER_MARK=4096", "MR_TCP_NODELAY=off", "MR_LOG_FORMAT=json"});
  ASSERT_EQ(from_env.action, Action::kRun) << from_env.message;
  EXPECT_EQ(from_env.config.workers, 5u);
  EXPECT_EQ(from_env.config.high_water_mark, 4096u);
  EXPECT_FALSE(from_env.config.tcp_nodelay);
  EXPECT_EQ(from_env.config.log_format, LogFormat::kJson);

  std::string text = "# every option, at a non-default value\n\n";
  ServerConfig want;
  want.port = 1234;
  want.workers = 2;
  want.log_level = "debug";
  want.admin_port = 0;
  want.idle_timeout_ms = 1500;
  for (const auto& [name, value] : describe(want))
    text += name + " = " + value + "\n";
  TempConfigFile file(text);
  const ConfigOutcome from_file = parse({"--config", file.path()});
  ASSERT_EQ(from_file.action, Action::kRun) << from_file.message;
  EXPECT_EQ(describe(from_file.config), describe(want));
  EXPECT_EQ(from_file.config.config_file, file.path());
}

TEST(Config, CommandLineBeatsEnvironmentBeatsFile) {
  TempConfigFile file("workers = 2\nport = 1111\nbacklog = 11\nlog_level = debug\n");
  const std::vector<std::string> env{"MR_WORKERS=3", "MR_PORT=2222", "MR_CONFIG=" + file.path()};

  const ConfigOutcome only_file = parse({"--config", file.path()});
  ASSERT_EQ(only_file.action, Action::kRun) << only_file.message;
  EXPECT_EQ(only_file.config.workers, 2u);
  EXPECT_EQ(only_file.config.port, 1111);

  const ConfigOutcome file_and_env = parse({}, env);
  ASSERT_EQ(file_and_env.action, Action::kRun) << file_and_env.message;
  EXPECT_EQ(file_and_env.config.workers, 3u);
  EXPECT_EQ(file_and_env.config.port, 2222);
  EXPECT_EQ(file_and_env.config.backlog, 11) << "the file still supplies what env does not";

  const ConfigOutcome all = parse({"--workers", "4", "--log_level", "error"}, env);
  ASSERT_EQ(all.action, Action::kRun) << all.message;
  EXPECT_EQ(all.config.workers, 4u);
  EXPECT_EQ(all.config.port, 2222);
  EXPECT_EQ(all.config.backlog, 11);
  EXPECT_EQ(all.config.log_level, "error");
}

TEST(Config, ConfigFlagBeatsConfigVariable) {
  TempConfigFile from_flag("workers = 6\n");
  TempConfigFile from_env("workers = 7\n");
  const ConfigOutcome outcome =
      parse({"--config", from_flag.path()}, {"MR_CONFIG=" + from_env.path()});
  ASSERT_EQ(outcome.action, Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.workers, 6u);
  EXPECT_EQ(outcome.config.config_file, from_flag.path());
}

TEST(Config, FileAllowsCommentsBlankLinesAndSpaces) {
  TempConfigFile file("# comment\n\n   workers   =   9   \n  # indented comment\nlog_file =\n");
  const ConfigOutcome outcome = parse({"--config", file.path()});
  ASSERT_EQ(outcome.action, Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.workers, 9u);
  EXPECT_EQ(outcome.config.log_file, "");
}

TEST(Config, CommandLineFlagsMaySpellUnderscoresAsDashes) {
  const ConfigOutcome outcome = parse({"--admin-port", "9200", "--max-connections=7"});
  ASSERT_EQ(outcome.action, Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.admin_port, 9200);
  EXPECT_EQ(outcome.config.max_connections, 7u);
  EXPECT_EQ(parse({"--no-such-option", "1"}).action, Action::kExitError);
}

TEST(Config, OtherEnvironmentVariablesAreIgnored) {
  const ConfigOutcome outcome = parse({}, {"PATH=/usr/bin", "HOME=/root", "WORKERS=9", "MRX=1"});
  ASSERT_EQ(outcome.action, Action::kRun) << outcome.message;
  EXPECT_EQ(outcome.config.workers, 0u);
}

TEST(ConfigErrors, UnknownKeyInFileNamesTheKeyAndTheFile) {
  TempConfigFile file("workers = 2\nwrokers = 3\n");
  const ConfigOutcome outcome = parse({"--config", file.path()});
  EXPECT_TRUE(IsErrorNaming(outcome, {"wrokers", file.path(), "--help"}));
}

TEST(ConfigErrors, UnknownMrEnvironmentVariableIsAnError) {
  const ConfigOutcome outcome = parse({}, {"MR_WROKERS=3"});
  EXPECT_TRUE(IsErrorNaming(outcome, {"MR_WROKERS", "MR_<NAME>"}));
}

TEST(ConfigErrors, UnknownCommandLineOptionIsAnError) {
  EXPECT_TRUE(IsErrorNaming(parse({"--wrokers", "3"}), {"wrokers", "--help"}));
}

TEST(ConfigErrors, OptionWithoutAValueIsAnError) {
  EXPECT_TRUE(IsErrorNaming(parse({"--workers"}), {"workers"}));
}

TEST(ConfigErrors, BadTypeNamesKeyValueSourceAndWhatIsAllowed) {
  EXPECT_TRUE(IsErrorNaming(parse({"--workers", "many"}),
                            {"workers", "'many'", "command line", "an integer from 0 to 256"}));
  EXPECT_TRUE(IsErrorNaming(parse({}, {"MR_PORT=80x"}),
                            {"port", "'80x'", "MR_PORT", "an integer from 0 to 65535"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--port", "-1"}), {"port", "'-1'", "0 to 65535"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--tcp_nodelay", "maybe"}),
                            {"tcp_nodelay", "'maybe'", "true or false"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--log_level", "loud"}),
                            {"log_level", "'loud'", "trace|debug|info|warn|error|critical|off"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--log_format", "xml"}), {"log_format", "'xml'", "text|json"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--bind", "localhost"}),
                            {"bind", "'localhost'", "numeric IPv4 or IPv6 address"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--admin_bind", "1.2.3"}), {"admin_bind", "'1.2.3'"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--workers", ""}), {"workers", "an integer"}));
}

TEST(ConfigErrors, OutOfRangeNamesTheRange) {
  EXPECT_TRUE(IsErrorNaming(parse({"--workers", "257"}), {"workers", "'257'", "0 to 256"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--port", "65536"}), {"port", "'65536'", "0 to 65535"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--backlog", "0"}), {"backlog", "'0'", "1 to"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--max_connections", "0"}), {"max_connections", "1 to"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--log_file_count", "0"}), {"log_file_count", "1 to 1000"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--port", "99999999999999999999999"}), {"port", "0 to 65535"}));
  TempConfigFile file("high_water_mark = 10\n");
  EXPECT_TRUE(IsErrorNaming(parse({"--config", file.path()}),
                            {"high_water_mark", "'10'", file.path(), "1024 to 1073741824"}));
}

TEST(ConfigErrors, MaxBufferedBytesIsZeroOrARange) {
  EXPECT_EQ(parse({}).config.max_buffered_bytes, 0u) << "automatic by default";
  const ConfigOutcome zero = parse({"--max_buffered_bytes", "0"});
  ASSERT_EQ(zero.action, Action::kRun) << zero.message;
  EXPECT_EQ(zero.config.max_buffered_bytes, 0u);
  for (const char* ok : {"65536", "1099511627776"}) {
    const ConfigOutcome outcome = parse({"--max_buffered_bytes", ok});
    ASSERT_EQ(outcome.action, Action::kRun) << outcome.message;
    EXPECT_EQ(describe(outcome.config).at("max_buffered_bytes"), ok);
  }
  for (const char* bad : {"1", "65535", "1099511627777", "-1", "lots", ""}) {
    EXPECT_TRUE(IsErrorNaming(parse({}, {std::string("MR_MAX_BUFFERED_BYTES=") + bad}),
                              {"max_buffered_bytes", "MR_MAX_BUFFERED_BYTES",
                               "0 or an integer from 65536 to 1099511627776"}))
        << bad;
  }
}

TEST(ConfigErrors, MissingConfigFileNamesThePath) {
  const std::string path = ::testing::TempDir() + "mr-no-such-config.conf";
  EXPECT_TRUE(IsErrorNaming(parse({"--config", path}), {path, "cannot be opened"}));
  EXPECT_TRUE(IsErrorNaming(parse({}, {"MR_CONFIG=" + path}), {path}));
}

TEST(ConfigErrors, ADirectoryAsConfigFileIsAnErrorForFlagVariableAndCheckConfig) {
  // What `docker run -v missing.conf:/etc/multireactor/server.conf` mounts.
  TempNode directory("mr-config-dir.conf", TempNode::Kind::kDirectory);
  EXPECT_TRUE(
      IsErrorNaming(parse({"--config", directory.path()}),
                    {directory.path(), "--config", "is a directory", "not a regular file"}));
  EXPECT_TRUE(IsErrorNaming(parse({}, {"MR_CONFIG=" + directory.path()}),
                            {directory.path(), "MR_CONFIG", "is a directory"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--check-config", "--config", directory.path()}),
                            {directory.path(), "is a directory"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--check-config"}, {"MR_CONFIG=" + directory.path()}),
                            {directory.path(), "is a directory"}));
}

TEST(ConfigErrors, AFifoOrADeviceAsConfigFileIsAnErrorAndNeverBlocks) {
  // Opening a FIFO for reading waits for a writer: the check must come first.
  TempNode fifo("mr-config-fifo.conf", TempNode::Kind::kFifo);
  EXPECT_TRUE(IsErrorNaming(parse({"--config", fifo.path()}), {fifo.path(), "is a FIFO"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--config", "/dev/null"}),
                            {"/dev/null", "is a character device", "not a regular file"}));
}

TEST(ConfigErrors, AnUnreadableConfigFileNamesThePathAndTheReason) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads a mode-000 file anyway";
  TempConfigFile file("workers = 2\n");
  ASSERT_EQ(chmod(file.path().c_str(), 0), 0);
  EXPECT_TRUE(IsErrorNaming(parse({"--config", file.path()}),
                            {file.path(), "cannot be opened", "Permission denied"}));
}

TEST(ConfigErrors, AKeySetTwiceInTheFileNamesBothLines) {
  TempConfigFile file(
      "# workers = 1 in a comment does not count\nworkers = 2\nport = 80\n\n"
      "  workers=3  # the second one\n");
  EXPECT_TRUE(IsErrorNaming(parse({"--config", file.path()}),
                            {"'workers'", "twice", file.path(), "lines 2 and 5"}));
  EXPECT_TRUE(IsErrorNaming(parse({"--check-config"}, {"MR_CONFIG=" + file.path()}),
                            {"'workers'", "lines 2 and 5"}));
  // Keys that only look alike, and a value given again in another source, are fine.
  TempConfigFile distinct("log_file = \nlog_file_count = 2\nlog_file_max_bytes = 8192\n");
  const ConfigOutcome ok = parse({"--config", distinct.path(), "--log_file_count", "4"});
  ASSERT_EQ(ok.action, Action::kRun) << ok.message;
  EXPECT_EQ(ok.config.log_file_count, 4u);
}

TEST(ConfigReloadErrors, SighupRefusesAConfigPathThatBecameADirectoryOrRepeatsAKey) {
  const std::string path = ::testing::TempDir() + std::to_string(getpid()) + "-mr-reload.conf";
  std::ofstream(path) << "workers = 2\nlog_level = info\n";
  const std::string config_arg = "--config=" + path;
  const char* argv[] = {"echo-server", config_arg.c_str(), nullptr};
  const char* envp[] = {nullptr};
  ConfigOutcome first = parse_server_options(2, argv, envp);
  ASSERT_EQ(first.action, Action::kRun) << first.message;

  std::ofstream(path) << "log_level = debug\nworkers = 2\nlog_level = warn\n";
  ConfigReload repeated = reload_config(2, argv, envp, first.config);
  EXPECT_TRUE(contains(repeated.error, "'log_level'")) << repeated.error;
  EXPECT_TRUE(contains(repeated.error, "lines 1 and 3")) << repeated.error;
  EXPECT_EQ(first.config.log_level, "info") << "a refused reload changes nothing";

  std::remove(path.c_str());
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0);
  ConfigReload directory = reload_config(2, argv, envp, first.config);
  EXPECT_TRUE(contains(directory.error, path)) << directory.error;
  EXPECT_TRUE(contains(directory.error, "is a directory")) << directory.error;
  EXPECT_EQ(first.config.log_level, "info");
  rmdir(path.c_str());
}

TEST(ConfigErrors, MalformedFileLineIsAnError) {
  TempConfigFile file("workers\n");
  EXPECT_TRUE(IsErrorNaming(parse({"--config", file.path()}), {file.path(), "workers"}));
}

TEST(ConfigErrors, LaterSourceDoesNotHideAnEarlierBadValue) {
  // A bad value is reported even when a later source would override it: typos never pass.
  TempConfigFile file("workers = lots\n");
  const ConfigOutcome outcome = parse({"--config", file.path(), "--workers", "2"});
  EXPECT_TRUE(IsErrorNaming(outcome, {"workers", "'lots'", file.path()}));
}

TEST(ConfigCommands, HelpListsEveryOptionWithItsDefault) {
  const ConfigOutcome outcome = parse({"--help"});
  ASSERT_EQ(outcome.action, Action::kExitSuccess);
  const auto defaults = describe(ServerConfig{});
  std::istringstream lines(outcome.message);
  std::map<std::string, std::string> option_lines;
  for (std::string line; std::getline(lines, line);) {
    const auto dashes = line.find("--");
    if (dashes == std::string::npos || line.find_first_not_of(' ') != dashes) continue;
    const auto end = line.find(' ', dashes);
    option_lines[line.substr(dashes + 2, end - dashes - 2)] = line;
  }
  for (const auto& name : option_names()) {
    ASSERT_TRUE(option_lines.count(name)) << "--" << name << " missing from --help";
    const std::string& default_value = defaults.at(name);
    if (!default_value.empty()) {
      EXPECT_TRUE(contains(option_lines[name], "(=" + default_value + ")"))
          << "--help shows a default for " << name << " other than ServerConfig's " << default_value
          << ": " << option_lines[name];
    }
  }
  EXPECT_TRUE(contains(outcome.message, "--config"));
  EXPECT_TRUE(contains(outcome.message, "--check-config"));
  EXPECT_TRUE(contains(outcome.message, "--version"));
}

TEST(ConfigCommands, VersionPrintsTheVersion) {
  const ConfigOutcome outcome = parse({"--version"});
  ASSERT_EQ(outcome.action, Action::kExitSuccess);
  EXPECT_TRUE(contains(outcome.message, version_string())) << outcome.message;
  EXPECT_FALSE(std::string(version_string()).empty());
}

TEST(ConfigCommands, CheckConfigPrintsEveryEffectiveValue) {
  const ConfigOutcome outcome = parse({"--check-config", "--workers", "7"}, {"MR_PORT=4321"});
  ASSERT_EQ(outcome.action, Action::kExitSuccess) << outcome.message;
  EXPECT_TRUE(outcome.check_only);
  EXPECT_TRUE(contains(outcome.message, "config ok")) << outcome.message;
  EXPECT_TRUE(contains(outcome.message, "workers = 7\n")) << outcome.message;
  EXPECT_TRUE(contains(outcome.message, "port = 4321\n")) << outcome.message;
  for (const auto& name : option_names()) {
    EXPECT_TRUE(contains(outcome.message, "\n" + name + " = ")) << name << " not printed";
  }
}

TEST(ConfigCommands, CheckConfigStillRejectsBadValues) {
  EXPECT_TRUE(IsErrorNaming(parse({"--check-config", "--workers", "x"}), {"workers", "'x'"}));
}

TEST(ConfigApi, DescribeAndApplyRoundTripEveryOption) {
  ServerConfig source;
  source.bind = "::";
  source.port = 1;
  source.workers = 256;
  source.tcp_nodelay = false;
  source.log_file = "/var/log/x";
  source.admin_port = 65535;
  ServerConfig copy;
  for (const auto& [name, value] : describe(source)) {
    EXPECT_EQ(apply_option(copy, name, value, "test"), "") << name;
  }
  EXPECT_EQ(describe(copy), describe(source));
}

TEST(ConfigApi, OptionNamesMatchDescribeAndAreUnique) {
  const auto names = option_names();
  const std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), names.size());
  std::set<std::string> described;
  for (const auto& [name, value] : describe(ServerConfig{}))
    described.insert(name);
  EXPECT_EQ(unique, described);
}

TEST(ConfigApi, ApplyOptionRejectsUnknownNamesAndBadValues) {
  ServerConfig config;
  EXPECT_TRUE(contains(apply_option(config, "nope", "1", "test source"), "nope"));
  const std::string error = apply_option(config, "workers", "x", "test source");
  EXPECT_TRUE(contains(error, "workers")) << error;
  EXPECT_TRUE(contains(error, "test source")) << error;
  EXPECT_EQ(config.workers, 0u) << "a rejected value leaves the config alone";
}

// deploy/kubernetes/configmap.yaml's `server.conf: |` block, unindented.
std::string configmap_server_conf() {
  std::ifstream in(std::string(MR_SOURCE_DIR) + "/deploy/kubernetes/configmap.yaml");
  std::string text;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (inside && line.rfind("    ", 0) != 0 && !line.empty()) break;
    if (inside) text += (line.empty() ? line : line.substr(4)) + "\n";
    if (line.find("server.conf: |") != std::string::npos) inside = true;
  }
  return text;
}

TEST(ShippedConfig, DeploymentsCloseSilentClientsAndProbeForVanishedPeers) {
  const std::string configmap = configmap_server_conf();
  ASSERT_NE(configmap, "") << "no server.conf block in deploy/kubernetes/configmap.yaml";
  TempConfigFile from_configmap(configmap);
  const std::string compose = std::string(MR_SOURCE_DIR) + "/deploy/server.conf";
  for (const std::string& path : {from_configmap.path(), compose}) {
    SCOPED_TRACE(path);
    const ConfigOutcome outcome = parse({"--config", path});
    ASSERT_EQ(outcome.action, Action::kRun) << outcome.message;
    EXPECT_GT(outcome.config.idle_timeout_ms, 0u);
    EXPECT_TRUE(outcome.config.tcp_keepalive);
    EXPECT_LE(
        outcome.config.tcp_keepidle_s + outcome.config.tcp_keepintvl_s * outcome.config.tcp_keepcnt,
        600u)
        << "a vanished peer is found within minutes";
  }
}

TEST(ConfigApi, ReadConfigFileReturnsItsValuesOrAnError) {
  TempConfigFile good("workers = 3\nport = 80\n");
  std::map<std::string, std::string> values;
  std::string error;
  ASSERT_TRUE(read_config_file(good.path(), values, error)) << error;
  EXPECT_EQ(values, (std::map<std::string, std::string>{{"workers", "3"}, {"port", "80"}}));

  TempConfigFile bad("bogus = 1\n");
  values.clear();
  EXPECT_FALSE(read_config_file(bad.path(), values, error));
  EXPECT_TRUE(contains(error, "bogus")) << error;

  error.clear();
  EXPECT_FALSE(read_config_file(::testing::TempDir() + "mr-missing.conf", values, error));
  EXPECT_TRUE(contains(error, "mr-missing.conf")) << error;

  error.clear();
  EXPECT_FALSE(read_config_file(::testing::TempDir(), values, error)) << "a directory";
  EXPECT_TRUE(contains(error, "is a directory")) << error;
}

}  // namespace
}  // namespace mr
