// echo-server as a child process: start-up line, signals, exit codes and configuration errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "test_client.hpp"

namespace mr {
namespace {

using namespace std::chrono_literals;
using test::ChildProcess;
using test::Deadline;
using test::TestClient;

// The number that follows `key` in `line` ("" if none): "...listening on 127.0.0.1:PORT workers=N".
std::string number_after(const std::string& line, const std::string& key) {
  const auto at = line.find(key);
  if (at == std::string::npos) return "";
  const auto begin = at + key.size();
  const auto end = line.find_first_not_of("0123456789", begin);
  return line.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

// Starts echo-server on 127.0.0.1 with a kernel-chosen port and returns that port as logged in
// the start-up line (0 if the line never came).
std::uint16_t start_echo_server(ChildProcess& child, std::vector<std::string> extra_args = {}) {
  std::vector<std::string> args{"--bind",       "127.0.0.1", "--port",    "0",
                                "--admin_port", "0",         "--workers", "2"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  if (!child.spawn(MR_ECHO_SERVER_PATH, args)) {
    ADD_FAILURE() << child.error();
    return 0;
  }
  const auto line = child.wait_for_stderr_line(" listening on ", Deadline(10s));
  const std::string port = line ? number_after(*line, "listening on 127.0.0.1:") : "";
  if (port.empty() || line->find(" workers=") == std::string::npos) {
    ADD_FAILURE() << "no start-up line with the port; stderr so far:\n" << child.stderr_text();
    return 0;
  }
  return static_cast<std::uint16_t>(std::stoul(port));
}

bool echoes(std::uint16_t port, const std::string& message) {
  TestClient client = TestClient::connect(port, Deadline(5s));
  std::string echo;
  return client.valid() && client.exchange(message, echo, Deadline(5s)) && echo == message;
}

int count_lines(const std::string& text) {
  int lines = 0;
  for (char ch : text)
    lines += ch == '\n';
  return lines;
}

class StopSignal : public ::testing::TestWithParam<int> {};

TEST_P(StopSignal, ExitsZeroAfterLoggingFinalStats) {
  ChildProcess server;
  const std::uint16_t port = start_echo_server(server);
  ASSERT_NE(port, 0);
  // The start-up line reports the real port, not the 0 that was asked for.
  EXPECT_TRUE(echoes(port, "before the signal"));
  TestClient held = TestClient::connect(port, Deadline(5s));
  ASSERT_TRUE(held.valid()) << held.connect_error();
  std::string echo;
  ASSERT_TRUE(held.exchange("held open", echo, Deadline(5s)));

  ASSERT_TRUE(server.send_signal(GetParam()));
  const ChildProcess::Exit exit = server.wait(Deadline(15s));
  ASSERT_FALSE(exit.timed_out) << "still running; stderr:\n" << server.stderr_text();
  EXPECT_TRUE(exit.exited) << "killed by signal " << exit.signal;
  EXPECT_EQ(exit.code, 0) << server.stderr_text();
  EXPECT_NE(server.stderr_text().find("final stats"), std::string::npos) << server.stderr_text();
  // The connection held open at shutdown was closed, not abandoned.
  std::string rest;
  EXPECT_TRUE(held.read_until_eof(rest, Deadline(5s))) << held.receive_error();
}

INSTANTIATE_TEST_SUITE_P(Process, StopSignal, ::testing::Values(SIGTERM, SIGINT),
                         [](const auto& param_info) {
                           return std::string(param_info.param == SIGTERM ? "SIGTERM" : "SIGINT");
                         });

TEST(ProcessSignals, SigpipeNeverKillsTheServer) {
  ChildProcess server;
  const std::uint16_t port = start_echo_server(server);
  ASSERT_NE(port, 0);

  // A SIGPIPE sent straight to the process...
  ASSERT_TRUE(server.send_signal(SIGPIPE));
  // ...and peers that vanish while the server is writing to them (its sends then fail with
  // EPIPE or ECONNRESET).
  for (int i = 0; i < 5; ++i) {
    TestClient vanishing = TestClient::connect(port, Deadline(5s));
    ASSERT_TRUE(vanishing.valid()) << vanishing.connect_error();
    ASSERT_TRUE(vanishing.set_receive_buffer(4096));
    const std::string flood = test::random_bytes(1024 * 1024, static_cast<std::uint64_t>(i));
    std::size_t sent = 0;
    test::wait_until(
        [&] {
          const auto n = vanishing.send_now(std::string_view(flood).substr(sent));
          if (n > 0) sent += static_cast<std::size_t>(n);
          return sent == flood.size() || n <= 0;
        },
        Deadline(5s));
    if (i % 2 == 0) {
      vanishing.reset();
    } else {
      vanishing.close();
    }
  }
  EXPECT_TRUE(echoes(port, "still here"));

  ASSERT_TRUE(server.send_signal(SIGTERM));
  const ChildProcess::Exit exit = server.wait(Deadline(15s));
  ASSERT_FALSE(exit.timed_out);
  EXPECT_FALSE(exit.signaled) << "killed by signal " << exit.signal;
  EXPECT_TRUE(exit.exited);
  EXPECT_EQ(exit.code, 0) << server.stderr_text();
}

// A config file in the test's temporary directory, removed at the end of the test.
class TempFile {
 public:
  // The PID in the name keeps concurrent runs (from other build folders) apart.
  TempFile(const std::string& name, const std::string& text)
      : path_(::testing::TempDir() + std::to_string(getpid()) + "-" + name) {
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A directory or a FIFO where a config file should be, removed at the end of the test.
class TempNode {
 public:
  TempNode(const std::string& name, bool directory)
      : path_(::testing::TempDir() + std::to_string(getpid()) + "-" + name) {
    std::remove(path_.c_str());
    if ((directory ? mkdir(path_.c_str(), 0755) : mkfifo(path_.c_str(), 0644)) != 0) {
      ADD_FAILURE() << "cannot create " << path_;
    }
  }
  ~TempNode() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct BadConfig {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<std::string> message_parts;  // the key and what is allowed
};

TEST(ProcessConfig, EachKindOfBadConfigExitsTwoWithOneLineNamingTheKey) {
  TempFile unknown_key("mr-process-unknown-key.conf", "workers = 2\nwrokers = 3\n");
  TempFile out_of_range("mr-process-range.conf", "high_water_mark = 10\n");
  TempFile bad_bool("mr-process-bool.conf", "tcp_nodelay = maybe\n");
  const std::string missing = ::testing::TempDir() + "mr-process-missing.conf";
  // What `docker run -v missing.conf:/etc/multireactor/server.conf` mounts.
  TempNode directory("mr-process-dir.conf", /*directory=*/true);
  TempNode fifo("mr-process-fifo.conf", /*directory=*/false);
  TempFile repeated("mr-process-repeated.conf", "workers = 2\nport = 0\nworkers = 3\n");
  const std::vector<BadConfig> cases{
      {"unknown key in file", {"--config", unknown_key.path()}, {}, {"wrokers", "--help"}},
      {"unknown MR_ variable", {}, {"MR_WROKERS=3"}, {"MR_WROKERS", "MR_<NAME>"}},
      {"unknown flag", {"--wrokers", "3"}, {}, {"wrokers", "--help"}},
      {"bad type", {"--workers", "many"}, {}, {"workers", "many", "integer from 0 to 256"}},
      {"bad type in env", {}, {"MR_PORT=http"}, {"port", "http", "MR_PORT", "0 to 65535"}},
      {"out of range", {"--port", "70000"}, {}, {"port", "70000", "0 to 65535"}},
      {"out of range in file",
       {"--config", out_of_range.path()},
       {},
       {"high_water_mark", "1024 to 1073741824"}},
      {"bad boolean in file",
       {"--config", bad_bool.path()},
       {},
       {"tcp_nodelay", "maybe", "true or false"}},
      {"bad choice", {"--log_level", "loud"}, {}, {"log_level", "loud", "trace|debug|info"}},
      {"bad address", {"--bind", "localhost"}, {}, {"bind", "localhost", "numeric IPv4 or IPv6"}},
      {"missing config file", {"--config", missing}, {}, {missing}},
      {"missing config file from env", {}, {"MR_CONFIG=" + missing}, {missing}},
      {"missing value", {"--workers"}, {}, {"workers"}},
      {"directory as config file",
       {"--config", directory.path()},
       {},
       {directory.path(), "--config", "is a directory"}},
      {"directory as config file from env",
       {},
       {"MR_CONFIG=" + directory.path()},
       {directory.path(), "MR_CONFIG", "is a directory"}},
      {"directory as config file with --check-config",
       {"--check-config", "--config", directory.path()},
       {},
       {directory.path(), "is a directory"}},
      {"FIFO as config file", {"--config", fifo.path()}, {}, {fifo.path(), "is a FIFO"}},
      {"key set twice in the file",
       {"--check-config", "--config", repeated.path()},
       {},
       {"'workers'", "twice", repeated.path(), "lines 1 and 3"}},
      // Under a file, not a directory: spdlog would create a missing directory (we run as root).
      {"log file that cannot be opened",
       {"--log_file", "/dev/null/mr.log", "--port", "0", "--admin_port", "0"},
       {},
       {"log_file", "/dev/null/mr.log"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ChildProcess child;
    const ChildProcess::Exit exit =
        test::run_to_exit(child, MR_ECHO_SERVER_PATH, c.args, c.env, Deadline(10s));
    ASSERT_FALSE(exit.timed_out) << child.error();
    EXPECT_TRUE(exit.exited) << child.error() << " signal " << exit.signal;
    EXPECT_EQ(exit.code, 2) << child.stderr_text();
    EXPECT_EQ(count_lines(child.stderr_text()), 1) << child.stderr_text();
    for (const auto& part : c.message_parts) {
      EXPECT_NE(child.stderr_text().find(part), std::string::npos)
          << "'" << part << "' missing in: " << child.stderr_text();
    }
    EXPECT_EQ(child.stdout_text(), "");
  }
}

TEST(ProcessConfig, CheckConfigValidatesAndExitsZero) {
  ChildProcess child;
  const auto exit =
      test::run_to_exit(child, MR_ECHO_SERVER_PATH, {"--check-config", "--workers", "3"},
                        {"MR_PORT=4444"}, Deadline(10s));
  ASSERT_FALSE(exit.timed_out);
  EXPECT_TRUE(exit.exited);
  EXPECT_EQ(exit.code, 0) << child.stderr_text();
  EXPECT_NE(child.stdout_text().find("config ok"), std::string::npos) << child.stdout_text();
  EXPECT_NE(child.stdout_text().find("workers = 3"), std::string::npos) << child.stdout_text();
  EXPECT_NE(child.stdout_text().find("port = 4444"), std::string::npos) << child.stdout_text();
}

TEST(ProcessConfig, VersionExitsZero) {
  ChildProcess child;
  const auto exit = test::run_to_exit(child, MR_ECHO_SERVER_PATH, {"--version"}, {}, Deadline(10s));
  ASSERT_FALSE(exit.timed_out);
  EXPECT_EQ(exit.code, 0);
  EXPECT_NE(child.stdout_text().find("echo-server "), std::string::npos) << child.stdout_text();
}

TEST(ProcessStartup, ConfigFromEnvironmentIsUsed) {
  // MR_WORKERS reaches the server: the start-up line reports it.
  ChildProcess server;
  ASSERT_TRUE(server.spawn(MR_ECHO_SERVER_PATH,
                           {"--bind", "127.0.0.1", "--port", "0", "--admin_port", "0"},
                           {"MR_WORKERS=3"}));
  const auto line = server.wait_for_stderr_line(" listening on ", Deadline(10s));
  ASSERT_TRUE(line.has_value()) << server.stderr_text();
  EXPECT_EQ(number_after(*line, " workers="), "3") << *line;
  ASSERT_TRUE(server.send_signal(SIGTERM));
  EXPECT_EQ(server.wait(Deadline(15s)).code, 0);
}

}  // namespace
}  // namespace mr
