// The admin endpoint on its own event loop, with a scripted source: status codes, /healthz with
// stuck workers, /readyz at shutdown, and clients that are slow, silent or never read.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin/admin_server.hpp"
#include "admin_http.hpp"
#include "multireactor/event_loop.hpp"
#include "test_client.hpp"

namespace mr {
namespace {

using namespace std::chrono_literals;
using test::Deadline;
using test::http_exchange;
using test::http_get;
using test::TestClient;

// Workers are simulated: a ping to a worker that is not stuck is answered at once (on the admin
// loop's thread); a ping to a stuck worker is held until release().
class ScriptedSource final : public AdminSource {
 public:
  explicit ScriptedSource(unsigned workers) : stuck_(workers) {
    for (unsigned i = 0; i < workers; ++i) {
      WorkerStatsSnapshot s;
      s.connections_active = 10 + i;
      s.bytes_received = 1000 * (i + 1);
      stats_.push_back(s);
    }
  }
  unsigned worker_count() const override { return static_cast<unsigned>(stats_.size()); }
  std::vector<WorkerStatsSnapshot> worker_stats() const override {
    std::vector<WorkerStatsSnapshot> stats = stats_;
    for (auto& s : stats)
      s.buffered_bytes = buffered_per_worker_.load();
    return stats;
  }
  std::uint64_t buffer_budget_bytes() const override { return budget_bytes_.load(); }
  AcceptorStatsSnapshot acceptor_stats() const override { return {}; }
  bool shutting_down() const override { return shutting_down_.load(); }
  void post_to_worker(unsigned index, EventLoop::Task task) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++pings_;
    if (stuck_[index]) {
      held_.push_back(std::move(task));
      return;
    }
    task();
  }

  void set_stuck(unsigned index, bool stuck) {
    std::lock_guard<std::mutex> lock(mutex_);
    stuck_[index] = stuck;
  }
  // Runs the held pings (the stuck workers "wake up").
  void release() {
    std::vector<EventLoop::Task> tasks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks.swap(held_);
    }
    for (auto& task : tasks)
      task();
  }
  std::size_t held() {
    std::lock_guard<std::mutex> lock(mutex_);
    return held_.size();
  }

  std::atomic<bool> shutting_down_{false};
  std::atomic<std::uint64_t> budget_bytes_{0};
  std::atomic<std::uint64_t> buffered_per_worker_{0};

 private:
  std::vector<WorkerStatsSnapshot> stats_;
  std::mutex mutex_;
  std::vector<bool> stuck_;
  std::vector<EventLoop::Task> held_;
  std::size_t pings_ = 0;
};

// An AdminServer on 127.0.0.1:0 with its own loop thread; stopped and destroyed in order.
class AdminHarness {
 public:
  explicit AdminHarness(unsigned workers, AdminOptions options = {}) {
    auto source = std::make_unique<ScriptedSource>(workers);
    source_ = source.get();
    admin_ = std::make_unique<AdminServer>(std::move(source), loop_, make_address("127.0.0.1", 0),
                                           options);
    thread_ = std::thread([this] { loop_.run(); });
  }
  ~AdminHarness() {
    loop_.stop();
    thread_.join();
    admin_.reset();
  }
  std::uint16_t port() const { return admin_->port(); }
  EventLoop& loop() { return loop_; }
  ScriptedSource& source() { return *source_; }

 private:
  EventLoop loop_;
  std::unique_ptr<AdminServer> admin_;
  ScriptedSource* source_ = nullptr;
  std::thread thread_;
};

TEST(AdminEndpoint, AnswersEveryEndpointAndRefusesTheRestWithTheRightStatus) {
  AdminHarness admin(2);
  const auto port = admin.port();
  struct Case {
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200},
      {"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 200},
      {"GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n", 200},
      {"GET /stats HTTP/1.1\r\nHost: a\r\n\r\n", 200},
      {"GET /metrics?name[]=x HTTP/1.1\r\nHost: a\r\n\r\n", 200},
      {"GET /metricsx HTTP/1.1\r\nHost: a\r\n\r\n", 404},
      {"GET /nope HTTP/1.0\r\n\r\n", 404},
      {"POST /stats HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 405},
      {"HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 405},
      {"DELETE /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 405},
      {"GARBAGE\r\n\r\n", 400},
      {"GET /stats HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET /" + std::string(3000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nHost: a\r\n" + std::string(9000, 'x'), 431},
  };
  for (const auto& c : cases) {
    const auto response = http_exchange(port, c.request, Deadline(5s));
    EXPECT_EQ(response.status, c.status) << c.request.substr(0, 60) << " " << response.error;
    EXPECT_EQ(test::header_value(response.head, "Connection"), "close");
    EXPECT_EQ(test::header_value(response.head, "Content-Length"),
              std::to_string(response.body.size()));
    if (c.status == 405) {
      EXPECT_EQ(test::header_value(response.head, "Allow"), "GET");
    }
  }
}

TEST(AdminEndpoint, StatsAndMetricsCarryTheSourceNumbersAndTheirContentTypes) {
  AdminHarness admin(2);
  const auto stats = http_get(admin.port(), "/stats", Deadline(5s));
  ASSERT_EQ(stats.status, 200) << stats.error;
  EXPECT_EQ(test::header_value(stats.head, "Content-Type"), "application/json");
  const auto json = nlohmann::json::parse(stats.body);
  EXPECT_EQ(json["workers"][1]["connections_active"], 11);
  EXPECT_EQ(json["total"]["bytes_received"], 3000);
  EXPECT_EQ(json["ready"], true);

  const auto metrics = http_get(admin.port(), "/metrics", Deadline(5s));
  ASSERT_EQ(metrics.status, 200) << metrics.error;
  EXPECT_EQ(test::header_value(metrics.head, "Content-Type"),
            "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics.body.find("multireactor_connections_active{worker=\"1\"} 11\n"),
            std::string::npos);
}

TEST(AdminEndpoint, ReadyzTurns503WhileOutputBuffersHoldThreeQuartersOfTheBudget) {
  AdminHarness admin(2);
  admin.source().budget_bytes_ = 800;
  admin.source().buffered_per_worker_ = 299;  // 598 of 800 in all
  EXPECT_EQ(http_get(admin.port(), "/readyz", Deadline(5s)).status, 200);
  admin.source().buffered_per_worker_ = 300;  // 600 of 800: full pressure
  const auto response = http_get(admin.port(), "/readyz", Deadline(5s));
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body,
            "overloaded: output buffers hold 600 of 800 bytes (max_buffered_bytes)\n");
  const auto stats = nlohmann::json::parse(http_get(admin.port(), "/stats", Deadline(5s)).body);
  EXPECT_EQ(stats["ready"], false);
  EXPECT_EQ(stats["buffer_budget_bytes"], 800);
  EXPECT_EQ(http_get(admin.port(), "/healthz", Deadline(5s)).status, 200)
      << "liveness is not readiness: a busy pod must not be restarted";
  admin.source().buffered_per_worker_ = 0;  // drained
  EXPECT_EQ(http_get(admin.port(), "/readyz", Deadline(5s)).status, 200);
}

TEST(AdminEndpoint, ReadyzTurns503WhenTheServerIsShuttingDown) {
  AdminHarness admin(1);
  EXPECT_EQ(http_get(admin.port(), "/readyz", Deadline(5s)).status, 200);
  admin.source().shutting_down_ = true;
  const auto response = http_get(admin.port(), "/readyz", Deadline(5s));
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, "shutting down\n");
  EXPECT_NE(http_get(admin.port(), "/metrics", Deadline(5s)).body.find("multireactor_ready 0\n"),
            std::string::npos);
}

TEST(AdminEndpoint, HealthzNamesEveryStuckWorkerAndRecoversWhenTheyAnswer) {
  AdminOptions options;
  options.health_timeout = 1s;  // the other workers answer at once; only the stuck ones wait it out
  AdminHarness admin(3, options);
  const auto healthy = http_get(admin.port(), "/healthz", Deadline(5s));
  ASSERT_EQ(healthy.status, 200) << healthy.error;
  EXPECT_EQ(healthy.body, "ok\n");

  admin.source().set_stuck(0, true);
  admin.source().set_stuck(2, true);
  const auto stuck = http_get(admin.port(), "/healthz", Deadline(5s));
  EXPECT_EQ(stuck.status, 503);
  EXPECT_NE(stuck.body.find("worker 0 "), std::string::npos) << stuck.body;
  EXPECT_NE(stuck.body.find("worker 2 "), std::string::npos) << stuck.body;
  EXPECT_EQ(stuck.body.find("worker 1 "), std::string::npos) << stuck.body;

  // Probing again while they are stuck does not pile up pings: one each is still in flight.
  EXPECT_EQ(http_get(admin.port(), "/healthz", Deadline(5s)).status, 503);
  EXPECT_EQ(admin.source().held(), 2u);

  admin.source().set_stuck(0, false);
  admin.source().set_stuck(2, false);
  admin.source().release();
  EXPECT_TRUE(test::wait_until(
      [&] { return http_get(admin.port(), "/healthz", Deadline(5s)).status == 200; },
      Deadline(5s)));
}

TEST(AdminEndpoint, HealthzWaitsForALateAnswerWithinItsBound) {
  AdminOptions options;
  options.health_timeout = 5s;
  AdminHarness admin(1, options);
  admin.source().set_stuck(0, true);
  std::thread late([&] {
    test::wait_until([&] { return admin.source().held() == 1; }, Deadline(5s));
    admin.source().release();
  });
  const auto response = http_get(admin.port(), "/healthz", Deadline(10s));
  late.join();
  EXPECT_EQ(response.status, 200) << response.body;
}

TEST(AdminEndpoint, IncompleteRequestGets408AndASilentClientIsDropped) {
  AdminOptions options;
  options.request_timeout = 300ms;
  AdminHarness admin(1, options);
  const auto partial = http_exchange(admin.port(), "GET /stats HTTP/1.1\r\nHo", Deadline(5s));
  EXPECT_EQ(partial.status, 408) << partial.error;

  TestClient silent = TestClient::connect(admin.port(), Deadline(5s));
  ASSERT_TRUE(silent.valid());
  std::string got;
  EXPECT_TRUE(silent.read_until_eof(got, Deadline(5s)));
  EXPECT_EQ(got, "") << "a client that never sent a byte gets no answer, only a close";
}

TEST(AdminEndpoint, SlowAndSilentClientsDoNotDelayOthers) {
  AdminHarness admin(2);  // default timeouts: the slow clients outlast the checks below
  std::vector<TestClient> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(TestClient::connect(admin.port(), Deadline(5s)));
    ASSERT_TRUE(slow.back().valid());
    if (i % 2 == 0) {
      ASSERT_TRUE(slow.back().send_all("GET /metrics HTTP/1.1\r\nHo", Deadline(5s)));
    }
  }
  for (int i = 0; i < 5; ++i) {
    const auto response = http_get(admin.port(), "/readyz", Deadline(5s));
    EXPECT_EQ(response.status, 200) << response.error;
  }
}

// The admin counters of /stats ("admin": evicted, refused, request timeouts).
nlohmann::json admin_counters(std::uint16_t port) {
  const auto stats = http_get(port, "/stats", Deadline(5s));
  if (stats.status != 200) return {};
  return nlohmann::json::parse(stats.body)["admin"];
}

// Whether the server dropped `client`: EOF or a reset, and never an answer.
bool dropped_without_answer(TestClient& client) {
  std::string got;
  client.read_until_eof(got, Deadline(5s));
  return got.empty() && (client.receive_error().empty() ||
                         client.receive_error().find("reset") != std::string::npos);
}

TEST(AdminEndpoint, WhenEverySlotIsTakenTheOldestUnfinishedRequestMakesRoomForANewClient) {
  AdminOptions options;
  options.max_connections = 3;
  options.request_timeout = 60s;  // only eviction can free a slot here
  AdminHarness admin(1, options);
  std::vector<TestClient> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(TestClient::connect(admin.port(), Deadline(5s)));
    ASSERT_TRUE(held.back().valid());
    // Part of a request: the kernel hands a connection to the server once bytes have come
    // (TCP_DEFER_ACCEPT), so a silent one would reach a slot only a second later.
    ASSERT_TRUE(held.back().send_all(i == 0 ? "G" : "GET /stats HTTP/1.1\r\n", Deadline(5s)));
  }
  // Every slot is taken: the newcomer is answered, the oldest of the held ones gave way.
  const auto probe = http_get(admin.port(), "/healthz", Deadline(5s));
  EXPECT_EQ(probe.status, 200) << probe.error;
  EXPECT_TRUE(dropped_without_answer(held[0]));
  // The two younger ones keep their slots and are served once they finish their requests (the
  // /stats request of the check below takes the slot the probe has left).
  for (std::size_t i = 1; i < held.size(); ++i) {
    ASSERT_TRUE(held[i].send_all("Host: a\r\n\r\n", Deadline(5s)));
    std::string answer;
    EXPECT_TRUE(held[i].read_until_eof(answer, Deadline(5s)));
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer.substr(0, 40);
  }
  held.clear();
  const auto counters = admin_counters(admin.port());
  EXPECT_EQ(counters["connections_evicted"], 1) << counters;
  EXPECT_EQ(counters["connections_refused"], 0) << counters;
}

TEST(AdminEndpoint, AProbeThatSendsItsRequestLateIsNotPushedOutByNewerSilentClients) {
  AdminOptions options;
  options.max_connections = 2;
  options.request_timeout = 60s;
  options.defer_accept = 30s;  // longer than the test: silent clients never reach a slot
  AdminHarness admin(1, options);
  // A probe that connects and is descheduled before it sends, then newer silent clients.
  TestClient probe = TestClient::connect(admin.port(), Deadline(5s));
  ASSERT_TRUE(probe.valid());
  std::vector<TestClient> silent;
  for (int i = 0; i < 2; ++i) {
    silent.push_back(TestClient::connect(admin.port(), Deadline(5s)));
    ASSERT_TRUE(silent.back().valid());
  }
  // Answered after every connection above has been handed to the server, if it was.
  EXPECT_EQ(http_get(admin.port(), "/readyz", Deadline(5s)).status, 200);
  // Held by the kernel until its request came, the probe was never in a slot to lose.
  ASSERT_TRUE(probe.send_all("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", Deadline(5s)));
  std::string answer;
  EXPECT_TRUE(probe.read_until_eof(answer, Deadline(5s))) << probe.receive_error();
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer.substr(0, 40);
}

TEST(AdminEndpoint, AProbeAcceptedWithItsRequestIsReadBeforeTheNextConnectionIsAccepted) {
  AdminOptions options;
  options.max_connections = 1;
  options.request_timeout = 60s;
  AdminHarness admin(1, options);
  // The admin loop is held while a probe and then a slowloris client connect and send, so the
  // server finds both waiting, their bytes already in, and accepts them in one go.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> holding;
  admin.loop().post([&holding, released] {
    holding.set_value();
    released.wait_for(30s);
  });
  holding.get_future().wait();
  TestClient probe = TestClient::connect(admin.port(), Deadline(5s));
  ASSERT_TRUE(probe.valid());
  ASSERT_TRUE(probe.send_all("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", Deadline(5s)));
  TestClient slow = TestClient::connect(admin.port(), Deadline(5s));
  ASSERT_TRUE(slow.valid());
  ASSERT_TRUE(slow.send_all("G", Deadline(5s)));
  release.set_value();
  // The probe was read on accept and is being answered: the slowloris one found no slot to take.
  std::string answer;
  EXPECT_TRUE(probe.read_until_eof(answer, Deadline(5s))) << probe.receive_error();
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer.substr(0, 40);
}

TEST(AdminEndpoint, ClientsLingeringAfterTheirAnswerGiveWayToANewClient) {
  AdminOptions options;
  options.max_connections = 2;
  options.linger = 60s;  // a client that has its answer and never closes keeps lingering
  AdminHarness admin(1, options);
  std::vector<TestClient> lingering;
  for (int i = 0; i < 2; ++i) {
    lingering.push_back(TestClient::connect(admin.port(), Deadline(5s)));
    ASSERT_TRUE(lingering.back().valid());
    ASSERT_TRUE(lingering.back().send_all("GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n", Deadline(5s)));
    std::string answer;
    ASSERT_TRUE(lingering.back().read_until_eof(answer, Deadline(5s)));  // the server's FIN
  }
  const auto probe = http_get(admin.port(), "/healthz", Deadline(5s));
  EXPECT_EQ(probe.status, 200) << probe.error;
}

TEST(AdminEndpoint, ClientsThatDoNotTakeTheirAnswerGiveWayToANewClient) {
  AdminOptions options;
  options.max_connections = 2;
  options.response_timeout = 60s;
  AdminHarness admin(5000, options);  // /metrics of 5000 workers: ~4 MB, more than buffers
  std::vector<TestClient> stalled;
  for (int i = 0; i < 2; ++i) {
    stalled.push_back(TestClient::connect(admin.port(), Deadline(5s)));
    ASSERT_TRUE(stalled.back().valid());
    ASSERT_TRUE(stalled.back().set_receive_buffer(4096));
    ASSERT_TRUE(stalled.back().send_all("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", Deadline(5s)));
  }
  // The start of each answer has come: both are stuck writing the rest. A probe takes the older
  // one's slot (reset: the rest of its answer never comes).
  for (auto& client : stalled) {
    ASSERT_EQ(client.read_exactly(17, Deadline(5s)), "HTTP/1.1 200 OK\r\n");
  }
  const auto probe = http_get(admin.port(), "/readyz", Deadline(5s));
  EXPECT_EQ(probe.status, 200) << probe.error;
  std::string got;
  EXPECT_FALSE(stalled[0].read_until_eof(got, Deadline(10s)));
  EXPECT_NE(stalled[0].receive_error().find("reset"), std::string::npos)
      << stalled[0].receive_error();
}

TEST(AdminEndpoint, TheRequestHeadMustArriveWithinTwoSecondsByDefault) {
  AdminHarness admin(1);  // default options
  const auto partial = http_exchange(admin.port(), "GET /stats HTTP/1.1\r\nHo", Deadline(10s));
  EXPECT_EQ(partial.status, 408) << partial.error;
  EXPECT_EQ(partial.body, "request not complete within 2000 ms\n");
  EXPECT_EQ(admin_counters(admin.port())["request_timeouts"], 1);
}

TEST(AdminEndpoint, AClientThatNeverReadsALargeAnswerIsCutAfterTheResponseTimeout) {
  AdminOptions options;
  options.response_timeout = 300ms;
  AdminHarness admin(5000, options);  // /metrics of 5000 workers: ~4 MB, more than buffers
  TestClient stalled = TestClient::connect(admin.port(), Deadline(5s));
  ASSERT_TRUE(stalled.valid());
  ASSERT_TRUE(stalled.set_receive_buffer(4096));
  ASSERT_TRUE(stalled.send_all("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", Deadline(5s)));

  // Meanwhile the endpoint answers others.
  EXPECT_EQ(http_get(admin.port(), "/readyz", Deadline(5s)).status, 200);

  // Past the timeout the stalled connection is reset: the rest of the answer never comes.
  std::this_thread::sleep_for(600ms);
  std::string got;
  EXPECT_FALSE(stalled.read_until_eof(got, Deadline(10s)));
  EXPECT_NE(stalled.receive_error().find("reset"), std::string::npos) << stalled.receive_error();
  const auto full = http_get(admin.port(), "/metrics", Deadline(10s));
  ASSERT_EQ(full.status, 200);
  EXPECT_LT(got.size(), full.head.size() + 4 + full.body.size());
}

TEST(AdminEndpoint, ABodyOrExtraBytesAfterTheRequestDoNotLoseTheAnswer) {
  AdminHarness admin(1);
  const std::string request =
      "GET /readyz HTTP/1.1\r\nHost: a\r\nContent-Length: 20000\r\n\r\n" + std::string(20000, 'b');
  const auto response = http_exchange(admin.port(), request, Deadline(5s));
  EXPECT_EQ(response.status, 200) << response.error;
  EXPECT_EQ(response.body, "ready\n");
}

}  // namespace
}  // namespace mr
