// echo-server as operators run it: promtool on the live /metrics, SIGHUP, SIGUSR1, JSON logs, the
// stats interval line and log rotation.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin_http.hpp"
#include "child_process.hpp"
#include "multireactor/stats_render.hpp"
#include "test_client.hpp"

namespace mr {
namespace {

using namespace std::chrono_literals;
using test::ChildProcess;
using test::Deadline;

struct Running {
  std::unique_ptr<ChildProcess> child;
  std::uint16_t port = 0;
  std::uint16_t admin_port = 0;
};

// Starts echo-server on 127.0.0.1:0 with `args`. With `admin`, on a free admin port: a port
// freed a moment ago can be taken in between, so a start that fails is retried with another one.
Running start_echo_server(std::vector<std::string> args, bool admin) {
  Running running;
  args.insert(args.end(), {"--bind", "127.0.0.1", "--port", "0"});
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::vector<std::string> all = args;
    const std::uint16_t admin_port = admin ? test::free_port() : 0;
    all.insert(all.end(), {"--admin_port", std::to_string(admin_port)});
    auto child = std::make_unique<ChildProcess>();
    if (!child->spawn(MR_ECHO_SERVER_PATH, all)) {
      ADD_FAILURE() << child->error();
      return running;
    }
    const auto port = child->wait_for_stderr_line(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"),
                                                  Deadline(10s));
    if (!port) {
      child->wait(Deadline(2s));
      if (attempt == 2 ||
          child->stderr_text().find("Address already in use") == std::string::npos) {
        ADD_FAILURE() << "echo-server did not start:\n" << child->stderr_text();
        return running;
      }
      continue;
    }
    running.port = static_cast<std::uint16_t>(std::stoi(*port));
    if (admin) {
      const auto bound = child->wait_for_stderr_line(
          std::regex(R"(admin endpoint on 127\.0\.0\.1:(\d+))"), Deadline(10s));
      if (!bound) ADD_FAILURE() << "no admin line:\n" << child->stderr_text();
      if (bound) running.admin_port = static_cast<std::uint16_t>(std::stoi(*bound));
    }
    running.child = std::move(child);
    return running;
  }
  return running;
}

void echo_some(std::uint16_t port, std::size_t bytes) {
  test::TestClient client = test::TestClient::connect(port, Deadline(5s));
  ASSERT_TRUE(client.valid()) << client.connect_error();
  const std::string payload = test::random_bytes(bytes, 7);
  std::string echoed;
  ASSERT_TRUE(client.exchange(payload, echoed, Deadline(10s)));
  EXPECT_EQ(echoed, payload);
}

void stop(Running& running) {
  ASSERT_TRUE(running.child);
  EXPECT_TRUE(running.child->send_signal(SIGTERM));
  const auto exit = running.child->wait(Deadline(15s));
  EXPECT_TRUE(exit.exited) << running.child->stderr_text();
  EXPECT_EQ(exit.code, 0) << running.child->stderr_text();
}

TEST(EchoServerAdmin, MetricsOfTheRunningServerPassPromtool) {
  Running server = start_echo_server({"--workers", "2"}, /*admin=*/true);
  ASSERT_TRUE(server.child);
  ASSERT_NE(server.admin_port, 0);
  echo_some(server.port, 100000);

  EXPECT_EQ(test::http_get(server.admin_port, "/healthz", Deadline(5s)).status, 200);
  const auto stats = test::http_get(server.admin_port, "/stats", Deadline(5s));
  ASSERT_EQ(stats.status, 200) << stats.error;
  EXPECT_EQ(nlohmann::json::parse(stats.body)["total"]["bytes_received"], 100000);

  const auto metrics = test::http_get(server.admin_port, "/metrics", Deadline(5s));
  ASSERT_EQ(metrics.status, 200) << metrics.error;
  const std::string promtool = test::find_program("promtool");
  if (!promtool.empty()) {
    test::TempDir dir;
    ASSERT_TRUE(test::write_file(dir.file("metrics.txt"), metrics.body));
    const auto check = test::run_with_input_file({promtool, "check", "metrics"},
                                                 dir.file("metrics.txt"), Deadline(30s));
    EXPECT_EQ(check.exit_code, 0) << check.output;
  }
  stop(server);
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool not found: install the Debian package 'prometheus' "
                    "(scripts/lib.sh MR_PACKAGES does)";
  }
}

TEST(EchoServerAdmin, SighupReopensTheLogFileAppliesLogLevelAndNamesWhatNeedsARestart) {
  test::TempDir dir;
  const std::string log = dir.file("server.log");
  const std::string conf = dir.file("server.conf");
  auto config_text = [&](const char* level, int workers) {
    return "bind = 127.0.0.1\nport = 0\nadmin_port = 0\nworkers = " + std::to_string(workers) +
           "\nlog_level = " + level + "\nlog_file = " + log + "\n";
  };
  ASSERT_TRUE(test::write_file(conf, config_text("info", 1)));
  auto child = std::make_unique<ChildProcess>();
  ASSERT_TRUE(child->spawn(MR_ECHO_SERVER_PATH, {"--config", conf})) << child->error();
  const auto port =
      child->wait_for_stderr_line(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), Deadline(10s));
  ASSERT_TRUE(port) << child->stderr_text();

  // What logrotate does: move the file away, then SIGHUP.
  ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
  ASSERT_TRUE(test::write_file(conf, config_text("debug", 2)));
  ASSERT_TRUE(child->send_signal(SIGHUP));
  const auto restart =
      child->wait_for_stderr_line(std::regex(R"(SIGHUP: (.*needs a restart))"), Deadline(10s));
  ASSERT_TRUE(restart) << child->stderr_text();
  EXPECT_NE(restart->find("workers: 1 -> 2"), std::string::npos) << *restart;
  ASSERT_TRUE(
      child->wait_for_stderr_line(std::regex(R"(SIGHUP: log_level info -> debug)"), Deadline(10s)))
      << child->stderr_text();

  // The new level is live: a connection's debug line now appears.
  echo_some(static_cast<std::uint16_t>(std::stoi(*port)), 10);
  EXPECT_TRUE(child->wait_for_stderr_line(std::regex(R"( debug \[.+\] worker 0: connection fd=)"),
                                          Deadline(10s)))
      << child->stderr_text();

  Running running;
  running.child = std::move(child);
  stop(running);
  const std::string before = test::read_file(log + ".1");
  const std::string after = test::read_file(log);
  EXPECT_NE(before.find("listening on"), std::string::npos) << before;
  EXPECT_EQ(after.find("listening on"), std::string::npos) << after;
  EXPECT_NE(after.find("log_level info -> debug"), std::string::npos) << after;
  EXPECT_NE(after.find("stopped"), std::string::npos) << after;
}

TEST(EchoServerAdmin, Sigusr1DumpsEveryCounterOfEveryWorker) {
  Running server = start_echo_server({"--workers", "2"}, /*admin=*/false);
  ASSERT_TRUE(server.child);
  echo_some(server.port, 1000);
  ASSERT_TRUE(server.child->send_signal(SIGUSR1));
  const auto dump = server.child->wait_for_stderr_line(
      std::regex(R"(SIGUSR1 stats worker 1: (.*))"), Deadline(10s));
  ASSERT_TRUE(dump) << server.child->stderr_text();
  for (const auto& name : worker_field_names()) {
    EXPECT_NE(dump->find(name + "="), std::string::npos) << name << " missing in: " << *dump;
  }
  const auto total = server.child->wait_for_stderr_line(
      std::regex(R"(SIGUSR1 stats total: .*bytes_received=(\d+))"), Deadline(10s));
  ASSERT_TRUE(total);
  EXPECT_EQ(*total, "1000");
  stop(server);
}

TEST(EchoServerAdmin, JsonLogsAreOneObjectPerLineAndTheIntervalLineHasRates) {
  Running server =
      start_echo_server({"--workers", "2", "--log_format", "json", "--stats_interval_s", "1"},
                        /*admin=*/false);
  ASSERT_TRUE(server.child);
  echo_some(server.port, 50000);
  if (HasFatalFailure()) return;
  const auto stats_line = server.child->wait_for_stderr_line(
      std::regex(R"("message":"(stats: .*opened=1 .*)\"\})"), Deadline(15s));
  ASSERT_TRUE(stats_line) << server.child->stderr_text();
  EXPECT_TRUE(std::regex_match(
      *stats_line, std::regex(R"(stats: \d+\.\d s: connections active=\d+ opened=1 closed=\d+ \| )"
                              R"(\d+\.\d msgs/s \| in \d+\.\d{3} MiB/s out \d+\.\d{3} MiB/s \| )"
                              R"(per-worker active=\[\d+,\d+\])")))
      << *stats_line;
  stop(server);

  bool main_thread_seen = false;
  for (const auto& line : test::lines_of(server.child->stderr_text())) {
    const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(record.is_object()) << "not one JSON object: " << line;
    for (const char* key : {"time", "level", "thread", "tid", "message"}) {
      EXPECT_TRUE(record.contains(key)) << key << " missing in " << line;
    }
    main_thread_seen = main_thread_seen || record["thread"] == "main";
  }
  EXPECT_TRUE(main_thread_seen);
}

TEST(EchoServerAdmin, LogFileRotatesAtLogFileMaxBytesKeepingLogFileCount) {
  test::TempDir dir;
  const std::string log = dir.file("server.log");
  Running server = start_echo_server({"--workers", "2", "--log_file", log, "--log_file_max_bytes",
                                      "4096", "--log_file_count", "2"},
                                     /*admin=*/false);
  ASSERT_TRUE(server.child);
  namespace fs = std::filesystem;
  // Each SIGUSR1 writes about 1.5 KB; signals sent faster than handled merge, so keep going
  // until two rotations happened (waiting on stderr also drains the pipe).
  const Deadline deadline(30s);
  while (!fs::exists(log + ".2") && !deadline.expired()) {
    ASSERT_TRUE(server.child->send_signal(SIGUSR1));
    server.child->wait_for_stderr_line(std::regex("^$never"), Deadline(50ms));
  }
  // One more round so the oldest file would have been pushed to .3 if it were kept.
  for (int i = 0; i < 10; ++i) {
    server.child->send_signal(SIGUSR1);
    server.child->wait_for_stderr_line(std::regex("^$never"), Deadline(50ms));
  }
  stop(server);
  ASSERT_TRUE(fs::exists(log + ".2"));
  EXPECT_TRUE(fs::exists(log + ".1"));
  EXPECT_FALSE(fs::exists(log + ".3"));
  for (const std::string& file : {log, log + ".1", log + ".2"}) {
    EXPECT_LE(fs::file_size(file), 4096u) << file;
  }
}

}  // namespace
}  // namespace mr
