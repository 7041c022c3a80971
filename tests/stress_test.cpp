// Load on a real echo-server process: clients that never read, connection churn with resets
// and other broken clients, and many thousands of concurrent connections. The server's memory
// and descriptors are read from /proc. Sanitizer builds (MR_SANITIZER_BUILD=1) send a quarter of
// the bytes in the memory test; every other count stays the same there.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "child_process.hpp"
#include "server_process.hpp"
#include "test_client.hpp"

namespace mr::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::size_t kMiB = 1024 * 1024;

class Stress : public ::testing::Test {
 protected:
  void SetUp() override { raise_own_file_limit(); }

  [[nodiscard]] bool start(ServerProcess& server, const std::vector<std::string>& args) {
    return start_or_fail(server, args);
  }
  FinalStats stop(ServerProcess& server) { return stop_cleanly(server, Deadline(seconds(120))); }
};

// ---------------------------------------------------------------------------------------------
// Memory bound: clients that send and never read.

// Client i's stream is a 1 MiB random block read from offset i * 4099, wrapping around: cheap to
// produce and to check, different for every client.
class PatternStream {
 public:
  static constexpr std::size_t kBlock = kMiB;
  explicit PatternStream(const std::string& block) : block_(block) {}
  // The longest run of the stream starting at `offset` of client `i`, at most `max` bytes.
  std::string_view at(std::size_t i, std::size_t offset, std::size_t max) const {
    const std::size_t start = (offset + i * 4099) % kBlock;
    return std::string_view(block_).substr(start, std::min(max, kBlock - start));
  }
  bool matches(std::size_t i, std::size_t offset, const char* bytes, std::size_t n) const {
    while (n > 0) {
      const std::string_view expected = at(i, offset, n);
      if (std::memcmp(expected.data(), bytes, expected.size()) != 0) return false;
      offset += expected.size();
      bytes += expected.size();
      n -= expected.size();
    }
    return true;
  }

 private:
  const std::string& block_;
};

TEST_F(Stress, FiftyClientsThatSendWithoutReadingKeepServerMemoryBoundedAndGetEveryByteBack) {
  constexpr std::size_t kClients = 50;
  constexpr std::size_t kHighWaterMark = kMiB;
  // 64 MiB per client normally (3.2 GiB through the server); 16 MiB (1/4) under sanitizers.
  const std::size_t per_client = scaled(64 * kMiB, 16 * kMiB);
  ServerProcess server;
  ASSERT_TRUE(
      start(server, {"--workers", "2", "--high_water_mark", std::to_string(kHighWaterMark)}));
  const std::uint64_t baseline_rss = rss_bytes(server.pid());
  // Each connection may hold up to the high-water mark of pending output, in a buffer that
  // grows by doubling (so up to twice that much allocated). Sanitizer runtimes add shadow
  // memory and an allocator quarantine on top.
  const std::uint64_t bound =
      baseline_rss + kClients * 2 * kHighWaterMark + (sanitizer_build() ? 512 * kMiB : 64 * kMiB);

  const std::string block = random_bytes(PatternStream::kBlock, 11);
  const PatternStream stream(block);
  std::vector<TestClient> clients;
  for (std::size_t i = 0; i < kClients; ++i) {
    clients.push_back(TestClient::connect(server.port(), Deadline(seconds(10))));
    ASSERT_TRUE(clients.back().valid()) << clients.back().connect_error();
    // A small receive window: the echo piles up in the server, not in this client's kernel.
    clients.back().set_receive_buffer(64 * 1024);
  }
  std::vector<std::size_t> sent(kClients, 0);
  std::vector<std::size_t> received(kClients, 0);
  std::vector<pollfd> fds(kClients);

  // Phase 1: send, never read, until nobody can send more for a while (the server stopped
  // reading them) or everything is sent.
  const Deadline phase1(seconds(300));
  auto last_progress = Clock::now();
  while (Clock::now() - last_progress < milliseconds(500) && !phase1.expired()) {
    for (std::size_t i = 0; i < kClients; ++i) {
      fds[i] = {clients[i].fd(), static_cast<short>(sent[i] < per_client ? POLLOUT : 0), 0};
    }
    if (poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (std::size_t i = 0; i < kClients; ++i) {
      if ((fds[i].revents & POLLOUT) == 0) continue;
      const std::ptrdiff_t n = clients[i].send_now(stream.at(i, sent[i], per_client - sent[i]));
      ASSERT_GE(n, 0) << "client " << i << ": " << clients[i].send_error();
      if (n > 0) last_progress = Clock::now();
      sent[i] += static_cast<std::size_t>(n);
    }
  }
  std::size_t sent_in_phase1 = 0;
  for (std::size_t s : sent)
    sent_in_phase1 += s;
  const std::uint64_t peak_while_stalled = peak_rss_bytes(server.pid());
  std::printf(
      "memory bound: %zu of %zu bytes sent before stalling; server RSS baseline %llu "
      "peak %llu bound %llu\n",
      sent_in_phase1, kClients * per_client, static_cast<unsigned long long>(baseline_rss),
      static_cast<unsigned long long>(peak_while_stalled), static_cast<unsigned long long>(bound));
  EXPECT_LT(peak_while_stalled, bound) << "server RSS grew past the high-water-mark bound";

  // Phase 2: every client reads while sending the rest; every byte must come back in order.
  std::vector<char> buffer(256 * 1024);
  std::size_t done = 0;
  const Deadline phase2(seconds(480));
  while (done < kClients && !phase2.expired()) {
    for (std::size_t i = 0; i < kClients; ++i) {
      short events = received[i] < per_client ? POLLIN : 0;
      if (sent[i] < per_client) events |= POLLOUT;
      fds[i] = {clients[i].fd(), events, 0};
    }
    if (poll(fds.data(), fds.size(), 100) <= 0) continue;
    for (std::size_t i = 0; i < kClients; ++i) {
      if ((fds[i].revents & POLLOUT) != 0) {
        const std::ptrdiff_t n = clients[i].send_now(stream.at(i, sent[i], per_client - sent[i]));
        ASSERT_GE(n, 0) << "client " << i << ": " << clients[i].send_error();
        sent[i] += static_cast<std::size_t>(n);
      }
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t n = recv(clients[i].fd(), buffer.data(), buffer.size(), MSG_DONTWAIT);
        ASSERT_NE(n, 0) << "client " << i << ": EOF after " << received[i] << " bytes";
        if (n < 0) {
          ASSERT_TRUE(errno == EAGAIN || errno == EINTR) << std::strerror(errno);
          continue;
        }
        ASSERT_LE(received[i] + static_cast<std::size_t>(n), per_client) << "client " << i;
        ASSERT_TRUE(stream.matches(i, received[i], buffer.data(), static_cast<std::size_t>(n)))
            << "client " << i << ": wrong bytes at offset " << received[i];
        received[i] += static_cast<std::size_t>(n);
        if (received[i] == per_client) ++done;
      }
    }
  }
  EXPECT_EQ(done, kClients) << "not every client got its whole echo back in time";
  const std::uint64_t peak = peak_rss_bytes(server.pid());
  EXPECT_LT(peak, bound) << "server RSS peak " << peak;
  clients.clear();

  const FinalStats stats = stop(server);
  EXPECT_EQ(stats["bytes_in"], kClients * per_client) << stats.describe();
  EXPECT_EQ(stats["bytes_out"], kClients * per_client) << stats.describe();
  EXPECT_GE(stats["pauses"], kClients)
      << "every client should have been paused at least once; " << stats.describe();
  EXPECT_EQ(stats["errors"], 0u) << stats.describe();
}

// ---------------------------------------------------------------------------------------------
// Churn and broken clients.

// Sends `big` over and over without reading until the connection stops taking bytes for a while:
// the server has then stopped reading it, with its echo pending at the high-water mark.
void send_until_stalled(TestClient& c, const std::string& big) {
  for (int rounds = 0; rounds < 64; ++rounds) {
    std::size_t sent = 0;
    while (sent < big.size()) {
      const std::ptrdiff_t n = c.send_now(std::string_view(big).substr(sent));
      if (n < 0) return;
      sent += static_cast<std::size_t>(n);
      if (n > 0) continue;
      pollfd p{c.fd(), POLLOUT, 0};
      if (poll(&p, 1, 100) == 0) return;
    }
  }
}

// One connect ... close cycle of the kind picked by `n`; false (with `why`) if a well-behaved
// kind did not get its echo.
bool churn_cycle(std::uint16_t port, std::size_t n, const std::string& big, std::string& why) {
  TestClient c = TestClient::connect(port, Deadline(seconds(10)));
  if (!c.valid()) {
    why = c.connect_error();
    return false;
  }
  const std::string message = "cycle " + std::to_string(n);
  std::string echoed;
  if (n % 100 == 99) {  // never reads: the server pauses it, then it resets
    c.set_receive_buffer(16 * 1024);
    send_until_stalled(c, big);
    c.reset();
    return true;
  }
  switch (n % 7) {
    case 0:  // plain echo, orderly close
    case 1:
      if (probe_echo(c, message, Deadline(seconds(10))) != EchoOutcome::kEchoed) {
        why = "echo failed: " + c.receive_error() + c.send_error();
        return false;
      }
      c.close();
      return true;
    case 2:  // a big message; reset as soon as its echo starts coming back
      c.set_receive_buffer(16 * 1024);
      c.send_all(big, Deadline(seconds(10)));
      c.read_exactly(4096, Deadline(seconds(10)));
      c.reset();
      return true;
    case 3:  // half-close: the echo must still arrive, then EOF
      if (!c.exchange(message, echoed, Deadline(seconds(10)), /*half_close=*/true)) {
        why = "half-close echo failed: " + c.receive_error() + c.send_error();
        return false;
      }
      return echoed == message;
    case 4:  // a 0-length write, then a message, then a reset without reading the echo
      if (::send(c.fd(), "", 0, MSG_NOSIGNAL) != 0) {
        why = "0-length send failed";
        return false;
      }
      c.send_all(message, Deadline(seconds(10)));
      c.reset();
      return true;
    case 5:  // connect and go away without a word
      c.close();
      return true;
    default:  // connect and reset at once
      c.reset();
      return true;
  }
}

TEST_F(Stress, ThousandsOfChurningAndBrokenClientsLeaveNoDescriptorOrMemoryBehind) {
  constexpr std::size_t kThreads = 4;
  const std::size_t cycles = 8000;  // the same in sanitizer builds (a few seconds there)
  const std::size_t warm_up = 600;
  ServerProcess server;
  ASSERT_TRUE(start(server, {"--workers", "2"}));
  const std::size_t baseline_fds = open_fds(server.pid());
  const std::string big = random_bytes(kMiB, 5);
  std::atomic<std::size_t> failures{0};
  std::string first_failure;
  std::mutex failure_mutex;

  auto run_cycles = [&](std::size_t count) {
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (std::size_t n; (n = next++) < count;) {
          std::string why;
          if (!churn_cycle(server.port(), n, big, why)) {
            if (failures++ == 0) {
              std::lock_guard<std::mutex> lock(failure_mutex);
              first_failure = "cycle " + std::to_string(n) + ": " + why;
            }
          }
        }
      });
    }
    for (auto& t : threads)
      t.join();
  };
  auto fds_back_to_baseline = [&] {
    return wait_until([&] { return open_fds(server.pid()) == baseline_fds; },
                      Deadline(seconds(30)));
  };

  // Warm-up: the server's tables and allocator arenas reach their working size.
  run_cycles(warm_up);
  ASSERT_TRUE(fds_back_to_baseline()) << open_fds(server.pid()) << " vs " << baseline_fds;
  const std::uint64_t rss_after_warm_up = rss_bytes(server.pid());

  // A well-behaved client keeps talking through the churn; its every echo must arrive.
  std::atomic<bool> churning{true};
  std::atomic<std::size_t> bystander_exchanges{0};
  std::string bystander_error;
  std::thread bystander([&] {
    TestClient c = TestClient::connect(server.port(), Deadline(seconds(10)));
    while (churning.load()) {
      if (probe_echo(c, "bystander", Deadline(seconds(30))) != EchoOutcome::kEchoed) {
        bystander_error = c.receive_error() + c.send_error();
        return;
      }
      ++bystander_exchanges;
      std::this_thread::sleep_for(milliseconds(2));
    }
  });
  const auto started = Clock::now();
  run_cycles(cycles);
  const double seconds_taken = std::chrono::duration<double>(Clock::now() - started).count();
  churning = false;
  bystander.join();
  std::printf("churn: %zu cycles in %.1f s (%.0f/s); bystander made %zu exchanges\n", cycles,
              seconds_taken, static_cast<double>(cycles) / seconds_taken,
              bystander_exchanges.load());

  EXPECT_EQ(failures.load(), 0u) << first_failure;
  EXPECT_TRUE(bystander_error.empty()) << bystander_error;
  EXPECT_GT(bystander_exchanges.load(), 0u);
  EXPECT_TRUE(fds_back_to_baseline())
      << "server holds " << open_fds(server.pid()) << " descriptors, baseline " << baseline_fds;
  const std::uint64_t rss_after = rss_bytes(server.pid());
  std::printf("churn: server RSS %llu after warm-up, %llu after churn\n",
              static_cast<unsigned long long>(rss_after_warm_up),
              static_cast<unsigned long long>(rss_after));
  // Slack for allocator noise; sanitizer quarantines hold freed memory for a while.
  const std::uint64_t slack = sanitizer_build() ? 384 * kMiB : 16 * kMiB;
  EXPECT_LT(rss_after, rss_after_warm_up + slack)
      << "RSS after warm-up " << rss_after_warm_up << ", after churn " << rss_after;

  const FinalStats stats = stop(server);
  std::printf("churn: server final stats %s\n", stats.describe().c_str());
}

// ---------------------------------------------------------------------------------------------
// Scale: many concurrent connections, held by several client processes.

struct ScaleResult {
  bool ok = false;
  std::size_t peak_server_fds = 0;
  std::uint64_t rss_before = 0;
  std::uint64_t rss_at_peak = 0;
};

// Opens `total` connections through `processes` mr-stress-client processes, proves every one
// echoes while all are open at once, then closes them.
ScaleResult hold_and_verify(ServerProcess& server, std::size_t total, std::size_t processes) {
  ScaleResult result;
  const std::size_t baseline_fds = open_fds(server.pid());
  result.rss_before = rss_bytes(server.pid());
  std::vector<std::unique_ptr<ChildProcess>> clients;
  for (std::size_t p = 0; p < processes; ++p) {
    const std::size_t share = total / processes + (p < total % processes ? 1 : 0);
    clients.push_back(std::make_unique<ChildProcess>());
    const bool spawned = clients.back()->spawn(
        MR_STRESS_CLIENT_PATH, {"--port", std::to_string(server.port()), "--connections",
                                std::to_string(share), "--timeout-s", "400"});
    EXPECT_TRUE(spawned) << clients.back()->error();
    if (!spawned) return result;
  }
  static const std::regex held(R"(^held (\d+)$)");
  for (auto& c : clients) {
    auto line = c->wait_for_stderr_line(held, Deadline(seconds(300)));
    EXPECT_TRUE(line.has_value()) << "client process did not hold its connections:\n"
                                  << c->stderr_text();
    if (!line) return result;
  }
  // Every connection is open at once, at the server too.
  result.peak_server_fds = open_fds(server.pid());
  result.rss_at_peak = rss_bytes(server.pid());
  EXPECT_GE(result.peak_server_fds, baseline_fds + total);
  for (auto& c : clients)
    c->send_signal(SIGUSR1);
  bool all_verified = true;
  for (auto& c : clients) {
    const auto exit = c->wait(Deadline(seconds(300)));
    EXPECT_TRUE(exit.exited && exit.code == 0) << c->stderr_text();
    all_verified = all_verified && exit.exited && exit.code == 0;
  }
  EXPECT_TRUE(
      wait_until([&] { return open_fds(server.pid()) == baseline_fds; }, Deadline(seconds(60))))
      << "server holds " << open_fds(server.pid()) << " descriptors, baseline " << baseline_fds;
  result.ok = all_verified;
  return result;
}

TEST_F(Stress, TenThousandConcurrentConnectionsAllEchoVerified) {
  // The full 10,000 in sanitizer builds too (a few seconds there).
  const std::size_t total = 10000;
  ServerProcess server;
  ASSERT_TRUE(start(server, {"--workers", "2"}));
  const ScaleResult result = hold_and_verify(server, total, 2);
  EXPECT_TRUE(result.ok);
  const FinalStats stats = stop(server);
  EXPECT_EQ(stats["accepted"], total) << stats.describe();
  EXPECT_EQ(stats["errors"], 0u) << stats.describe();
  EXPECT_EQ(stats["rejected"], 0u) << stats.describe();
}

TEST_F(Stress, OneServerHoldsConnectionsUpToItsDescriptorLimit) {
  ServerProcess server;
  ASSERT_TRUE(start(server, {"--workers", "2"}));
  const long limit = nofile_hard_limit(server.pid());
  ASSERT_GT(limit, 0);
  // Everything the descriptor limit leaves after the server's own descriptors (and a few spare
  // for the accept path); the same in sanitizer builds.
  const std::size_t own = open_fds(server.pid());
  const std::size_t total = static_cast<std::size_t>(limit) - own - 4;
  // At most 5,000 per client process: each stays far below its own descriptor limit.
  const std::size_t processes = (total + 4999) / 5000;
  const ScaleResult result = hold_and_verify(server, total, processes);
  EXPECT_TRUE(result.ok);
  std::printf(
      "largest count: %zu concurrent connections held and verified by one server "
      "(nofile limit %ld, %zu descriptors at the peak, %zu client processes); server RSS %llu "
      "before, %llu with all open\n",
      total, limit, result.peak_server_fds, processes,
      static_cast<unsigned long long>(result.rss_before),
      static_cast<unsigned long long>(result.rss_at_peak));
  RecordProperty("connections_held", static_cast<int>(total));
  const FinalStats stats = stop(server);
  EXPECT_EQ(stats["accepted"], total) << stats.describe();
  EXPECT_EQ(stats["rejected"], 0u) << stats.describe();
}

}  // namespace
}  // namespace mr::test
