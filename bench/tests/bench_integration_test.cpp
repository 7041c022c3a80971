// echo-bench against real servers in this process: the in-process echo server, and two that
// misbehave on purpose. Short bounded runs; assertions are on counts, never on speed.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "admin/stats_render.hpp"
#include "bench_client.hpp"
#include "fake_http_server.hpp"
#include "multireactor/socket.hpp"
#include "server/server.hpp"
#include "system/system.hpp"

namespace mr::bench {
namespace {

ServerConfig loopback_server(unsigned workers) {
  ServerConfig config;
  config.bind = "127.0.0.1";
  config.port = 0;
  config.workers = workers;
  config.admin_port = 0;
  return config;
}

BenchOptions short_run(std::uint16_t port) {
  BenchOptions o;
  o.port = port;
  o.connections = 40;
  o.threads = 2;
  o.size = 100;
  o.pipeline = 4;
  o.duration_s = 0.3;
  o.warmup_s = 0.1;
  o.drain_timeout_s = 20;
  o.progress = 0;
  return o;
}

WorkerStatsSnapshot server_total(const Server& server) {
  const auto workers = server.worker_stats();
  return aggregate(workers);
}

// A server that misbehaves: kCorrupt echoes with one byte changed, kClose hangs up at once.
class BadServer {
 public:
  enum class Kind { kCorrupt, kClose };
  explicit BadServer(Kind kind)
      : kind_(kind),
        listen_fd_(listen_tcp(make_address("127.0.0.1", 0), 64)),
        port_(local_port(listen_fd_)),
        thread_([this] { serve(); }) {}
  ~BadServer() {
    stop_.store(true);
    thread_.join();
    for (int fd : clients_)
      close(fd);
    close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }

 private:
  void serve() {
    std::uint64_t echoed = 0;
    while (!stop_.load()) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (int fd : clients_)
        fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0 && kind_ == Kind::kClose) close(fd);
        if (fd >= 0 && kind_ == Kind::kCorrupt) clients_.push_back(fd);
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
        char buf[4096];
        const ssize_t n = recv(fds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) continue;
        // Byte 1000 of everything echoed is changed: past the first few messages.
        if (echoed <= 1000 && echoed + static_cast<std::uint64_t>(n) > 1000) {
          buf[1000 - echoed] ^= 0x20;
        }
        echoed += static_cast<std::uint64_t>(n);
        send(fds[i].fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
      }
    }
  }

  const Kind kind_;
  const int listen_fd_;
  const std::uint16_t port_;
  std::vector<int> clients_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(EchoBench, CountsMatchTheServersOwnCounters) {
  Server server(loopback_server(2));
  server.start();
  const BenchOptions options = short_run(server.port());
  const BenchReport report = BenchClient(options).run();

  EXPECT_TRUE(report.clean()) << format_report_text(report);
  EXPECT_EQ(report.totals.connections_opened, options.connections);
  EXPECT_GT(report.totals.messages_sent, 0U);
  EXPECT_EQ(report.totals.messages_sent, report.totals.messages_received);
  EXPECT_EQ(report.totals.bytes_sent, report.totals.messages_sent * options.size);
  EXPECT_EQ(report.totals.bytes_received, report.totals.bytes_sent);
  EXPECT_GT(report.latency.count(), 0U);
  EXPECT_LE(report.latency.count(), report.totals.messages_received);

  const WorkerStatsSnapshot total = server_total(server);
  EXPECT_EQ(total.bytes_received, report.totals.bytes_sent);
  EXPECT_EQ(total.bytes_sent, report.totals.bytes_received);
  EXPECT_EQ(total.bytes_received / options.size, report.totals.messages_received);
  EXPECT_EQ(total.connections_accepted, options.connections);
  EXPECT_EQ(total.errors, 0U);
}

TEST(EchoBench, WithAdminTheReportCarriesTheServerSidePerWorker) {
  Server server(loopback_server(2));
  server.start();
  // /stats as the server renders it, for the in-process server's live counters.
  test::FakeHttpServer admin([&server](const std::string&) {
    StatsReport stats;
    stats.workers = server.worker_stats();
    stats.process = process_usage();
    return test::FakeHttpServer::ok_json(render_stats_json(stats));
  });
  BenchOptions options = short_run(server.port());
  options.has_admin = true;
  options.admin = HostPort{"127.0.0.1", admin.port()};
  const BenchReport report = BenchClient(options).run();

  ASSERT_TRUE(report.server.ok) << report.server.error;
  EXPECT_TRUE(report.clean()) << format_report_text(report);
  EXPECT_EQ(admin.requests_served(), 2);
  ASSERT_EQ(report.server.workers.size(), 2U);
  EXPECT_EQ(report.server.bytes_received, report.totals.bytes_sent);
  std::uint64_t messages = 0;
  std::uint64_t connections = 0;
  for (const auto& w : report.server.workers) {
    messages += w.messages;
    connections += w.connections;
  }
  EXPECT_EQ(messages, report.totals.messages_sent);
  // The connections were still open when the server was read; round-robin splits them evenly.
  EXPECT_EQ(connections, options.connections);
  EXPECT_DOUBLE_EQ(report.server.connections_imbalance, 1.0);
  EXPECT_TRUE(report.server.has_cpu);
  EXPECT_TRUE(report.server.has_rss);
}

TEST(EchoBench, ReadsTheRealServersAdminEndpoint) {
  ServerConfig config = loopback_server(2);
  config.admin_ephemeral_port = true;
  Server server(config);
  server.start();
  ASSERT_NE(server.admin_port(), 0);
  BenchOptions options = short_run(server.port());
  options.has_admin = true;
  options.admin = HostPort{"127.0.0.1", server.admin_port()};
  const BenchReport report = BenchClient(options).run();

  ASSERT_TRUE(report.server.ok) << report.server.error;
  EXPECT_TRUE(report.clean()) << format_report_text(report);
  ASSERT_EQ(report.server.workers.size(), 2U);
  EXPECT_EQ(report.server.bytes_received, report.totals.bytes_sent);
  EXPECT_EQ(report.server.bytes_sent, report.totals.bytes_received);
  std::uint64_t connections = 0;
  for (const auto& w : report.server.workers)
    connections += w.connections;
  EXPECT_EQ(connections, options.connections);
  EXPECT_TRUE(report.server.has_cpu);
  EXPECT_TRUE(report.server.has_rss);
  EXPECT_GT(report.server.rss_after_bytes, 0U);
}

TEST(EchoBench, OpenLoopSendsExactlyTheScheduledMessages) {
  Server server(loopback_server(2));
  server.start();
  BenchOptions options = short_run(server.port());
  options.rate = 2000;  // 0.3 s measured + 0.1 s warm-up: 800 messages
  options.pipeline = 1;
  const BenchReport report = BenchClient(options).run();

  EXPECT_TRUE(report.clean()) << format_report_text(report);
  EXPECT_GE(report.totals.messages_sent, 799U);
  EXPECT_LE(report.totals.messages_sent, 802U);  // each thread's schedule rounds up
  EXPECT_EQ(report.totals.messages_received, report.totals.messages_sent);
  EXPECT_EQ(report.latency_uncorrected.count(), report.latency.count());
  EXPECT_EQ(server_total(server).bytes_received, report.totals.bytes_sent);
}

TEST(EchoBench, ConnectionStormCountsCompleteCycles) {
  Server server(loopback_server(2));
  server.start();
  BenchOptions options = short_run(server.port());
  options.mode = BenchMode::kConnect;
  options.connections = 4;
  const BenchReport report = BenchClient(options).run();

  EXPECT_TRUE(report.clean()) << format_report_text(report);
  EXPECT_GT(report.totals.storm_cycles, 0U);
  EXPECT_EQ(report.totals.messages_received, report.totals.storm_cycles);
  EXPECT_EQ(report.totals.connections_opened, report.totals.storm_cycles);
  const WorkerStatsSnapshot total = server_total(server);
  EXPECT_EQ(total.connections_accepted, report.totals.connections_opened);
  EXPECT_EQ(total.bytes_received, report.totals.storm_cycles * options.size);
}

TEST(EchoBench, AChangedByteIsCaughtAndTheRunIsNotClean) {
  BadServer bad(BadServer::Kind::kCorrupt);
  BenchOptions options = short_run(bad.port());
  options.connections = 2;
  options.drain_timeout_s = 1;
  const BenchReport report = BenchClient(options).run();
  EXPECT_EQ(report.totals.mismatches, 1U) << format_report_text(report);
  EXPECT_FALSE(report.clean());
}

TEST(EchoBench, TheSameRunWithoutVerificationDoesNotLook) {
  BadServer bad(BadServer::Kind::kCorrupt);
  BenchOptions options = short_run(bad.port());
  options.connections = 2;
  options.verify = false;
  const BenchReport report = BenchClient(options).run();
  EXPECT_EQ(report.totals.mismatches, 0U) << format_report_text(report);
  EXPECT_EQ(report.totals.messages_sent, report.totals.messages_received);
}

TEST(EchoBench, AServerThatHangsUpIsCountedAsErrors) {
  BadServer bad(BadServer::Kind::kClose);
  BenchOptions options = short_run(bad.port());
  options.connections = 6;
  options.drain_timeout_s = 1;
  const BenchReport report = BenchClient(options).run();
  EXPECT_GT(report.totals.closed_by_server + report.totals.io_errors, 0U)
      << format_report_text(report);
  EXPECT_FALSE(report.clean());
}

TEST(EchoBench, NothingListeningMeansEveryConnectionFailed) {
  const int fd = listen_tcp(make_address("127.0.0.1", 0), 1);
  const std::uint16_t port = local_port(fd);
  close(fd);
  BenchOptions options = short_run(port);
  options.connections = 5;
  const BenchReport report = BenchClient(options).run();
  EXPECT_EQ(report.totals.connect_failures, 5U);
  EXPECT_EQ(report.totals.connections_opened, 0U);
  EXPECT_FALSE(report.clean());
}

int run_echo_bench(const std::string& args) {
  const int status = std::system((std::string(MR_ECHO_BENCH_PATH) + " " + args).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(EchoBenchBinary, ExitStatusIsZeroOnlyForACleanRunAndTwoForBadOptions) {
  EXPECT_EQ(run_echo_bench("--size 8 2>/dev/null"), 2);
  EXPECT_EQ(run_echo_bench("--no-such-option 1 2>/dev/null"), 2);

  const int fd = listen_tcp(make_address("127.0.0.1", 0), 1);
  const std::uint16_t closed_port = local_port(fd);
  close(fd);
  EXPECT_EQ(run_echo_bench(
                fmt::format("--port {} --connections 3 --duration 0.1 >/dev/null", closed_port)),
            1);

  Server server(loopback_server(2));
  server.start();
  const std::string json_path =
      fmt::format("{}/echo-bench-{}.json", ::testing::TempDir(), getpid());
  EXPECT_EQ(run_echo_bench(fmt::format("--port {} --connections 10 --duration 0.2 --warmup 0.05 "
                                       "--json {} >/dev/null",
                                       server.port(), json_path)),
            0);
  std::ifstream in(json_path);
  std::stringstream text;
  text << in.rdbuf();
  const auto doc = nlohmann::json::parse(text.str(), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << text.str();
  EXPECT_TRUE(doc.at("clean").get<bool>());
  EXPECT_EQ(doc.at("parameters").at("connections").get<std::uint64_t>(), 10U);
  const auto sent = doc.at("totals").at("messages_sent").get<std::uint64_t>();
  EXPECT_EQ(doc.at("totals").at("messages_received").get<std::uint64_t>(), sent);
  EXPECT_EQ(server_total(server).bytes_received, sent * 64);
  std::remove(json_path.c_str());
}

}  // namespace
}  // namespace mr::bench
