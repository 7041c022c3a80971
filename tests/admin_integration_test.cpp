// The admin endpoint of a real mr::Server in this process: its numbers against what clients did,
// promtool on its /metrics, a stuck worker loop, and admin clients that stall.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin/stats_render.hpp"
#include "admin_http.hpp"
#include "multireactor/socket.hpp"
#include "server/server.hpp"
#include "test_client.hpp"
#include "test_server.hpp"

namespace mr {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::Deadline;
using test::http_get;
using test::TestClient;

ServerConfig admin_config(unsigned workers) {
  ServerConfig config = test::loopback_config(workers);
  config.admin_ephemeral_port = true;
  return config;
}

// Connects `count` clients and has each echo a payload of its own size; returns the bytes sent.
std::uint64_t echo_traffic(const Server& server, std::vector<TestClient>& clients,
                           std::size_t count) {
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < count; ++i) {
    clients.push_back(TestClient::connect(server.port(), Deadline(5s)));
    TestClient& c = clients.back();
    if (!c.valid()) {
      ADD_FAILURE() << c.connect_error();
      return bytes;
    }
    const std::string payload = test::random_bytes(1000 * (i + 1) + i, i);
    std::string echoed;
    if (!c.exchange(payload, echoed, Deadline(10s)) || echoed != payload) {
      ADD_FAILURE() << "client " << i << " did not get its echo";
      return bytes;
    }
    bytes += payload.size();
  }
  return bytes;
}

// Sample name with labels -> value, for the lines of an exposition.
std::map<std::string, double> samples_of(const std::string& exposition) {
  std::map<std::string, double> samples;
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

TEST(AdminIntegration, AdminPortZeroMeansNoAdminListener) {
  Server server(test::loopback_config(1));
  server.start();
  EXPECT_EQ(server.admin_port(), 0);
}

TEST(AdminIntegration, StatsPerWorkerNumbersAddUpToTotalAndMatchWhatClientsDid) {
  Server server(admin_config(2));
  server.start();
  ASSERT_NE(server.admin_port(), 0);
  std::vector<TestClient> clients;
  const std::uint64_t bytes = echo_traffic(server, clients, 6);
  clients[0].close();
  clients[1].close();
  ASSERT_TRUE(test::wait_for_stats(
      server,
      [&](const WorkerStatsSnapshot& total, const auto&) {
        return total.connections_closed == 2 && total.bytes_sent == bytes;
      },
      Deadline(10s)));

  const auto response = http_get(server.admin_port(), "/stats", Deadline(5s));
  ASSERT_EQ(response.status, 200) << response.error;
  const json stats = json::parse(response.body);
  const json& total = stats["total"];
  EXPECT_EQ(stats["workers_count"], 2);
  EXPECT_EQ(total["connections_accepted"], 6);
  EXPECT_EQ(total["connections_closed"], 2);
  EXPECT_EQ(total["connections_active"], 4);
  EXPECT_EQ(total["bytes_received"], bytes);
  EXPECT_EQ(total["bytes_sent"], bytes);
  EXPECT_EQ(total["errors"], 0);
  EXPECT_EQ(total["pending_output_bytes"], 0);
  EXPECT_GE(total["reads"].get<std::uint64_t>(), 8u) << "a read per payload and per close";
  EXPECT_GE(total["writes"].get<std::uint64_t>(), 6u);
  EXPECT_EQ(stats["acceptor"]["handoffs"], 6);
  EXPECT_EQ(stats["acceptor"]["connections_rejected"], 0);
  EXPECT_GT(stats["rss_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_GE(stats["open_fds"].get<std::uint64_t>(), 8u) << "4 client and 4 server sockets";

  ASSERT_EQ(stats["workers"].size(), 2u);
  for (const auto& name : worker_field_names()) {
    std::uint64_t sum = 0;
    std::uint64_t max = 0;
    for (std::size_t i = 0; i < 2; ++i) {
      const json& w = stats["workers"][i];
      EXPECT_EQ(w["id"], i);
      sum += w[name].get<std::uint64_t>();
      max = std::max(max, w[name].get<std::uint64_t>());
    }
    EXPECT_EQ(total[name].get<std::uint64_t>(), name == "pending_output_peak_bytes" ? max : sum)
        << name;
  }
  // Both workers served connections (the acceptor deals them round-robin).
  for (const json& w : stats["workers"])
    EXPECT_GT(w["connections_accepted"], 0);
}

TEST(AdminIntegration, MetricsAgreeWithTheTrafficAndPassPromtool) {
  Server server(admin_config(2));
  server.start();
  std::vector<TestClient> clients;
  const std::uint64_t bytes = echo_traffic(server, clients, 3);
  ASSERT_TRUE(test::wait_for_stats(
      server, [&](const auto& total, const auto&) { return total.bytes_sent == bytes; },
      Deadline(10s)));

  const auto response = http_get(server.admin_port(), "/metrics", Deadline(5s));
  ASSERT_EQ(response.status, 200) << response.error;
  const auto samples = samples_of(response.body);
  EXPECT_EQ(samples.at("multireactor_connections_active{worker=\"0\"}") +
                samples.at("multireactor_connections_active{worker=\"1\"}"),
            3);
  EXPECT_EQ(samples.at("multireactor_received_bytes_total{worker=\"0\"}") +
                samples.at("multireactor_received_bytes_total{worker=\"1\"}"),
            static_cast<double>(bytes));
  EXPECT_EQ(samples.at("multireactor_workers"), 2);
  EXPECT_EQ(samples.at("multireactor_ready"), 1);
  EXPECT_GT(samples.at("process_open_fds"), 0);
  EXPECT_GT(samples.at("process_resident_memory_bytes"), 0);
  EXPECT_GT(samples.at("process_start_time_seconds"), 1e9);

  const std::string promtool = test::find_program("promtool");
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool not found: install the Debian package 'prometheus' "
                    "(scripts/lib.sh MR_PACKAGES does)";
  }
  test::TempDir dir;
  ASSERT_TRUE(test::write_file(dir.file("metrics.txt"), response.body));
  const auto check = test::run_with_input_file({promtool, "check", "metrics"},
                                               dir.file("metrics.txt"), Deadline(30s));
  EXPECT_TRUE(check.finished);
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST(AdminIntegration, HealthzIs503NamingAWorkerWhoseLoopIsStuck) {
  Server server(admin_config(2));
  server.start();
  const auto port = server.admin_port();
  ASSERT_EQ(http_get(port, "/healthz", Deadline(5s)).status, 200);

  std::promise<void> unblock;
  std::shared_future<void> unblocked = unblock.get_future().share();
  // Worker 1's loop runs this task and cannot serve anything else until it returns (bounded, and
  // a destroyed promise ends the wait too, so a failing test cannot hang the worker).
  server.worker(1).loop().post([unblocked] { unblocked.wait_for(30s); });
  const auto stuck = http_get(port, "/healthz", Deadline(10s));
  EXPECT_EQ(stuck.status, 503);
  EXPECT_NE(stuck.body.find("worker 1 "), std::string::npos) << stuck.body;
  EXPECT_EQ(stuck.body.find("worker 0 "), std::string::npos) << stuck.body;
  EXPECT_EQ(http_get(port, "/readyz", Deadline(5s)).status, 200) << "liveness is not readiness";

  unblock.set_value();
  EXPECT_TRUE(test::wait_until(
      [&] { return http_get(port, "/healthz", Deadline(5s)).status == 200; }, Deadline(10s)));
}

TEST(AdminIntegration, EchoConnectionsAreAcceptedWhileAdminClientsStall) {
  Server server(admin_config(2));
  server.start();
  std::vector<TestClient> stalled;
  for (int i = 0; i < 16; ++i) {
    stalled.push_back(TestClient::connect(server.admin_port(), Deadline(5s)));
    ASSERT_TRUE(stalled.back().valid());
    ASSERT_TRUE(stalled.back().send_all("GET /stats HTTP/1.1\r\nHost: a", Deadline(5s)));
  }
  std::vector<TestClient> clients;
  echo_traffic(server, clients, 10);
  EXPECT_EQ(clients.size(), 10u);
  EXPECT_EQ(http_get(server.admin_port(), "/readyz", Deadline(5s)).status, 200);
}

TEST(AdminIntegration, AnAdminPortInUseMakesStartFail) {
  const int taken = listen_tcp(make_address("127.0.0.1", 0), 16);
  ServerConfig config = test::loopback_config(1);
  config.admin_port = local_port(taken);
  Server server(config);
  EXPECT_THROW(server.start(), std::system_error);
  close(taken);
}

TEST(AdminIntegration, StopClosesTheAdminListener) {
  Server server(admin_config(1));
  server.start();
  const auto port = server.admin_port();
  ASSERT_EQ(http_get(port, "/readyz", Deadline(5s)).status, 200);
  server.stop();
  const TestClient refused = TestClient::connect(port, Deadline(5s));
  EXPECT_FALSE(refused.valid());
}

}  // namespace
}  // namespace mr

namespace mr {
namespace {

TEST(AdminIntegration, ReadyzTurns503WhileDrainingAndTheAdminListenerStaysUp) {
  ServerConfig config = admin_config(1);
  config.high_water_mark = 64 * 1024;
  Server server(config);
  server.start();
  EXPECT_EQ(http_get(server.admin_port(), "/readyz", Deadline(5s)).status, 200);

  // A client that sends without reading leaves output pending, so the drain cannot end at once.
  TestClient slow = TestClient::connect(server.port(), Deadline(5s));
  ASSERT_TRUE(slow.valid()) << slow.connect_error();
  // Enough to fill both kernels' socket buffers and then the server's 64 KiB high-water mark.
  const std::string payload = test::random_bytes(48 * 1024 * 1024, 7);
  std::size_t sent = 0;
  const Deadline filling(20s);
  while (test::total_stats(server).backpressure_pauses == 0 && sent < payload.size() &&
         !filling.expired()) {
    const std::ptrdiff_t n = slow.send_now(std::string_view(payload).substr(sent, 65536));
    ASSERT_GE(n, 0) << slow.send_error();
    sent += static_cast<std::size_t>(n);
  }
  ASSERT_GT(test::total_stats(server).backpressure_pauses, 0U);

  server.begin_drain(20000);
  const test::HttpResponse readyz = http_get(server.admin_port(), "/readyz", Deadline(5s));
  EXPECT_EQ(readyz.status, 503) << readyz.error;
  EXPECT_FALSE(server.drained());

  // Reading what is pending lets the drain finish: every byte the server read comes back, then
  // EOF (not a reset, though the server never read all we sent).
  std::string echoed;
  EXPECT_TRUE(slow.read_until_eof(echoed, Deadline(20s))) << slow.receive_error();
  EXPECT_TRUE(test::wait_until([&] { return server.drained(); }, Deadline(10s)));
  const WorkerStatsSnapshot total = test::total_stats(server);
  EXPECT_EQ(echoed.size(), total.bytes_received);
  EXPECT_EQ(payload.compare(0, echoed.size(), echoed), 0);
  EXPECT_EQ(total.connections_drained, 1U);
  EXPECT_EQ(total.connections_cut, 0U);
  server.stop();
}

}  // namespace
}  // namespace mr
