// A real Prometheus server (Debian package `prometheus`) scrapes the admin endpoint and answers a
// query through its HTTP API. The test starts Prometheus itself on loopback, with a temporary data
// directory and a 1 s scrape interval, and stops it by PID.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin_http.hpp"
#include "child_process.hpp"
#include "server/server.hpp"
#include "test_client.hpp"
#include "test_server.hpp"

namespace mr {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::Deadline;

// Asks Prometheus' query API; returns the parsed answer, or null while it cannot answer.
json query(std::uint16_t prometheus_port, const std::string& promql) {
  // HTTP/1.0: Prometheus answers with a plain body and closes, no chunked encoding to undo.
  const std::string request = "GET /api/v1/query?query=" + test::url_encode(promql) +
                              " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  const auto response = test::http_exchange(prometheus_port, request, Deadline(5s));
  if (response.status != 200) return nullptr;
  return json::parse(response.body, nullptr, /*allow_exceptions=*/false);
}

// The single value of an instant-vector answer, or -1 when there is none (yet).
double single_value(const json& answer) {
  if (!answer.is_object() || answer.value("status", "") != "success") return -1;
  const json& result = answer["data"]["result"];
  if (!result.is_array() || result.size() != 1) return -1;
  return std::stod(result[0]["value"][1].get<std::string>());
}

TEST(Prometheus, ScrapesTheAdminEndpointAndAnswersAQueryForConnectionsActive) {
  const std::string prometheus = test::find_program("prometheus");
  if (prometheus.empty()) {
    GTEST_SKIP() << "the prometheus binary is not installed: the Debian package 'prometheus' "
                    "could not be installed (scripts/lib.sh installs it with MR_PACKAGES)";
  }
  ServerConfig config = test::loopback_config(2);
  config.admin_ephemeral_port = true;
  Server server(config);
  server.start();

  constexpr std::size_t kClients = 3;
  std::vector<test::TestClient> clients;
  for (std::size_t i = 0; i < kClients; ++i) {
    clients.push_back(test::TestClient::connect(server.port(), Deadline(5s)));
    std::string echoed;
    ASSERT_TRUE(clients.back().exchange("ping", echoed, Deadline(5s)));
  }

  test::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ASSERT_TRUE(test::write_file(dir.file("prometheus.yml"),
                               "global:\n"
                               "  scrape_interval: 1s\n"
                               "  scrape_timeout: 1s\n"
                               "  evaluation_interval: 1s\n"
                               "scrape_configs:\n"
                               "  - job_name: multireactor\n"
                               "    static_configs:\n"
                               "      - targets: ['127.0.0.1:" +
                                   std::to_string(server.admin_port()) + "']\n"));

  // Prometheus needs its web port up front; a port freed a moment ago can be taken in between,
  // so a start that fails is retried with another one.
  std::unique_ptr<test::ChildProcess> child;
  std::uint16_t web_port = 0;
  std::string failed_output;
  for (int attempt = 0; attempt < 3 && !child; ++attempt) {
    const std::uint16_t candidate = test::free_port();
    ASSERT_NE(candidate, 0);
    auto started = std::make_unique<test::ChildProcess>();
    ASSERT_TRUE(started->spawn(
        prometheus,
        {"--config.file=" + dir.file("prometheus.yml"), "--storage.tsdb.path=" + dir.file("data"),
         "--web.listen-address=127.0.0.1:" + std::to_string(candidate), "--log.level=warn"}))
        << started->error();
    const bool ready = test::wait_until(
        [&] { return test::http_get(candidate, "/-/ready", Deadline(2s)).status == 200; },
        Deadline(30s));
    if (ready) {
      child = std::move(started);
      web_port = candidate;
    } else {
      started->wait(Deadline(1s));  // collects its output; the destructor kills it by PID
      failed_output = started->stderr_text();
    }
  }
  ASSERT_TRUE(child) << "Prometheus did not become ready:\n" << failed_output;

  // Every worker's series arrives, and the sum is the clients connected.
  double active = -1;
  const bool answered = test::wait_until(
      [&] {
        active = single_value(query(web_port, "sum(multireactor_connections_active)"));
        return active == static_cast<double>(kClients);
      },
      Deadline(60s));
  EXPECT_TRUE(answered) << "last answer: " << active << "\n" << child->stderr_text();
  const json per_worker = query(web_port, "multireactor_connections_active");
  ASSERT_TRUE(per_worker.is_object());
  EXPECT_EQ(per_worker["data"]["result"].size(), 2u) << per_worker.dump();
  EXPECT_EQ(single_value(query(web_port, "up{job=\"multireactor\"}")), 1);
  EXPECT_EQ(single_value(query(web_port, "count(multireactor_build_info)")), 1);

  // The scrape itself raised no error (a malformed exposition shows up here).
  const auto targets = test::http_exchange(
      web_port, "GET /api/v1/targets HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", Deadline(5s));
  const json target_list = json::parse(targets.body, nullptr, false);
  ASSERT_TRUE(target_list.is_object()) << targets.body;
  for (const json& target : target_list["data"]["activeTargets"]) {
    EXPECT_EQ(target["health"], "up") << target.dump();
    EXPECT_EQ(target["lastError"], "") << target.dump();
  }

  EXPECT_TRUE(child->send_signal(SIGTERM));
  const auto exit = child->wait(Deadline(30s));
  EXPECT_FALSE(exit.timed_out) << "Prometheus did not stop on SIGTERM";
}

}  // namespace
}  // namespace mr
