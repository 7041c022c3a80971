// The cross-thread paths: EventLoop::post/stop, Worker::hand_off, and the Acceptor's round-robin
// deal of accepted connections to the workers.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "echo/echo_reactor.hpp"
#include "multireactor/event_loop.hpp"
#include "multireactor/socket.hpp"
#include "reactor/acceptor.hpp"
#include "server/server.hpp"
#include "test_client.hpp"
#include "test_server.hpp"

namespace mr {
namespace {

using namespace std::chrono_literals;
using test::Deadline;
using test::TestClient;

TEST(EventLoop, PostedTasksRunOnTheLoopThreadInPostingOrder) {
  EventLoop loop;
  std::thread runner([&] { loop.run(); });

  constexpr int kThreads = 4;
  constexpr int kTasksPerThread = 2000;
  // Written only by tasks, i.e. only on the loop thread (TSan checks that claim).
  std::vector<int> last_seen(kThreads, -1);
  int ran = 0;
  int off_thread = 0;
  int out_of_order = 0;
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kTasksPerThread; ++i) {
        loop.post([&, t, i] {
          if (!loop.in_loop_thread()) ++off_thread;
          if (i != last_seen[t] + 1) ++out_of_order;
          last_seen[t] = i;
          ++ran;
        });
      }
    });
  }
  for (auto& p : posters)
    p.join();
  loop.stop();
  runner.join();
  EXPECT_EQ(ran, kThreads * kTasksPerThread) << "tasks posted before stop() still run";
  EXPECT_EQ(off_thread, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_GE(loop.wakeups().get(), 1u);
}

TEST(EventLoop, StopFromAnotherThreadEndsAnIdleLoop) {
  EventLoop loop;
  std::thread runner([&] { loop.run(); });
  // Once a posted task has run, run() owns the loop on the runner thread and is idle.
  std::atomic<bool> ran{false};
  loop.post([&] { ran.store(true); });
  ASSERT_TRUE(test::wait_until([&] { return ran.load(); }, Deadline(5s)));
  EXPECT_FALSE(loop.in_loop_thread());
  loop.stop();
  runner.join();
  EXPECT_TRUE(loop.stopping());
}

TEST(EventLoop, ATaskCanStopItsOwnLoop) {
  EventLoop loop;
  std::thread runner([&] { loop.run(); });
  bool stopped_from_inside = false;
  loop.post([&] {
    stopped_from_inside = loop.in_loop_thread();
    loop.stop();
  });
  runner.join();
  EXPECT_TRUE(stopped_from_inside);
}

// A connected pair: the worker gets `server_end`, the test talks through `peer`.
struct SocketPair {
  int server_end = -1;
  TestClient peer;
};

SocketPair make_pair() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return {};
  return {fds[0], TestClient::adopt(fds[1])};
}

TEST(WorkerHandOff, EchoesOnDescriptorsHandedFromManyThreads) {
  EchoWorker worker(0, WorkerOptions{});
  worker.start();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<SocketPair> pairs(kThreads * kPerThread);
  for (auto& p : pairs) {
    p = make_pair();
    ASSERT_GE(p.server_end, 0);
  }
  std::vector<std::thread> handers;
  for (int t = 0; t < kThreads; ++t) {
    handers.emplace_back([&, t] {
      // Half one at a time, half as one batch: both shapes of hand_off().
      std::vector<int> batch;
      for (int i = 0; i < kPerThread; ++i) {
        const int fd = pairs[static_cast<std::size_t>(t * kPerThread + i)].server_end;
        if (i % 2 == 0) {
          worker.hand_off(std::span<const int>(&fd, 1));
        } else {
          batch.push_back(fd);
        }
      }
      worker.hand_off(batch);
    });
  }
  for (auto& h : handers)
    h.join();

  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const std::string message = "hand-off " + std::to_string(i);
    Deadline deadline(5s);
    ASSERT_TRUE(pairs[i].peer.send_all(message, deadline)) << pairs[i].peer.send_error();
    EXPECT_EQ(pairs[i].peer.read_exactly(message.size(), deadline), message)
        << pairs[i].peer.receive_error();
  }
  const WorkerStatsSnapshot stats = worker.stats();
  EXPECT_EQ(stats.connections_accepted, pairs.size());
  EXPECT_EQ(stats.connections_active, pairs.size());
  EXPECT_GE(stats.wakeups, 1u);
  EXPECT_LE(stats.wakeups, stats.loop_iterations);

  // Stopping the worker closes every connection it holds: each peer reads EOF.
  worker.stop();
  worker.join();
  for (auto& p : pairs) {
    std::string rest;
    EXPECT_TRUE(p.peer.read_until_eof(rest, Deadline(5s))) << p.peer.receive_error();
    EXPECT_TRUE(rest.empty());
  }
  EXPECT_EQ(worker.stats().connections_active, 0u);
  EXPECT_EQ(worker.stats().connections_closed, pairs.size());
}

TEST(RoundRobin, ServerWithFourWorkersGivesEachOneHundredOfFourHundredConnections) {
  Server server(test::loopback_config(4));
  server.start();
  std::vector<TestClient> clients;
  for (int i = 0; i < 400; ++i) {
    clients.push_back(TestClient::connect(server.port(), Deadline(5s)));
    ASSERT_TRUE(clients.back().valid()) << clients.back().connect_error();
  }
  ASSERT_TRUE(test::wait_for_stats(
      server, [](const auto& total, const auto&) { return total.connections_accepted == 400; },
      Deadline(10s)));
  const auto workers = server.worker_stats();
  ASSERT_EQ(workers.size(), 4u);
  std::vector<std::uint64_t> accepted;
  for (std::size_t w = 0; w < workers.size(); ++w) {
    EXPECT_EQ(workers[w].connections_accepted, 100u) << "worker " << w;
    EXPECT_EQ(workers[w].connections_active, 100u) << "worker " << w;
    accepted.push_back(workers[w].connections_accepted);
  }
  EXPECT_DOUBLE_EQ(imbalance(accepted), 1.0);
  EXPECT_EQ(server.acceptor_stats().handoffs, 400u);
  EXPECT_EQ(server.acceptor_stats().connections_rejected, 0u);

  // Every dealt connection is served.
  for (auto& c : clients) {
    Deadline deadline(5s);
    ASSERT_TRUE(c.send_all("x", deadline));
    ASSERT_EQ(c.read_exactly(1, deadline), "x") << c.receive_error();
  }
}

// An Acceptor with its own workers, outside a Server.
struct AcceptorRig {
  std::vector<std::unique_ptr<EchoWorker>> workers;
  std::unique_ptr<Acceptor> acceptor;
  std::uint16_t port = 0;

  AcceptorRig(unsigned worker_count, AcceptorOptions options) {
    const int listen_fd = listen_tcp(make_address("127.0.0.1", 0), 1024);
    port = local_port(listen_fd);
    std::vector<detail::WorkerCore*> raw;
    for (unsigned i = 0; i < worker_count; ++i) {
      workers.push_back(std::make_unique<EchoWorker>(i, WorkerOptions{}));
      raw.push_back(workers.back().get());
    }
    acceptor = std::make_unique<Acceptor>(listen_fd, raw, options);
    for (auto& w : workers)
      w->start();
    acceptor->start();
  }
  ~AcceptorRig() {
    acceptor.reset();  // stops accepting before the workers go
    workers.clear();
  }
  std::vector<std::uint64_t> accepted() const {
    std::vector<std::uint64_t> out;
    for (const auto& w : workers)
      out.push_back(w->stats().connections_accepted);
    return out;
  }
  std::uint64_t total_accepted() const {
    std::uint64_t sum = 0;
    for (auto n : accepted())
      sum += n;
    return sum;
  }
};

TEST(RoundRobin, TheDealContinuesAcrossAcceptBatches) {
  // One connection per accept batch: if each batch started over at worker 0, worker 0 would get
  // them all.
  AcceptorRig rig(3, AcceptorOptions{});
  std::vector<TestClient> clients;
  for (std::uint64_t i = 1; i <= 30; ++i) {
    clients.push_back(TestClient::connect(rig.port, Deadline(5s)));
    ASSERT_TRUE(clients.back().valid()) << clients.back().connect_error();
    ASSERT_TRUE(test::wait_until([&] { return rig.total_accepted() == i; }, Deadline(5s)));
  }
  EXPECT_EQ(rig.accepted(), (std::vector<std::uint64_t>{10, 10, 10}));
  EXPECT_EQ(rig.acceptor->stats().handoffs, 30u);
  EXPECT_EQ(rig.acceptor->stats().accept_batches, 30u);
}

TEST(AcceptorLimit, ConnectionsBeyondMaxConnectionsAreClosedAtOnce) {
  AcceptorOptions options;
  options.max_connections = 4;
  AcceptorRig rig(2, options);
  std::vector<TestClient> kept;
  for (int i = 0; i < 4; ++i) {
    kept.push_back(TestClient::connect(rig.port, Deadline(5s)));
    ASSERT_TRUE(kept.back().valid()) << kept.back().connect_error();
  }
  ASSERT_TRUE(test::wait_until([&] { return rig.total_accepted() == 4; }, Deadline(5s)));

  for (int i = 0; i < 3; ++i) {
    TestClient extra = TestClient::connect(rig.port, Deadline(5s));
    ASSERT_TRUE(extra.valid()) << extra.connect_error();  // the kernel completes the handshake
    std::string got;
    EXPECT_TRUE(extra.read_until_eof(got, Deadline(5s))) << extra.receive_error();
    EXPECT_TRUE(got.empty());
  }
  EXPECT_EQ(rig.acceptor->stats().connections_rejected, 3u);
  EXPECT_EQ(rig.total_accepted(), 4u);

  // A slot frees up when a held connection closes.
  kept.front().close();
  ASSERT_TRUE(test::wait_until(
      [&] {
        std::uint64_t closed = 0;
        for (const auto& w : rig.workers)
          closed += w->stats().connections_closed;
        return closed == 1;
      },
      Deadline(5s)));
  TestClient again = TestClient::connect(rig.port, Deadline(5s));
  ASSERT_TRUE(again.valid());
  ASSERT_TRUE(test::wait_until([&] { return rig.total_accepted() == 5; }, Deadline(5s)));
  Deadline deadline(5s);
  ASSERT_TRUE(again.send_all("ok", deadline));
  EXPECT_EQ(again.read_exactly(2, deadline), "ok");
  EXPECT_EQ(rig.acceptor->stats().connections_rejected, 3u);
}

}  // namespace
}  // namespace mr
