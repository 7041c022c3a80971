// Overload: the process-wide budget for buffered output (`max_buffered_bytes`) and memory given
// back once the pressure passes (issue 11, items 1 and 2), against a real echo-server process.
//
// The slow readers are mr-stress-client processes in flood mode: each connection sends 2 MiB of
// its own stream without reading, until the server stops taking bytes; the test then holds the
// flood, looks at the server (alive? /stats? RSS?), and lets the clients read everything back,
// checked byte for byte against the stream. Well-behaved "bystander" connections ping-pong while
// the flood is held. The /stats fields of the budget (`buffer_budget_bytes`, per worker and in
// `total`: `buffered_bytes`, `overload_pauses`) are read defensively: a missing one is a test
// failure that says so.
//
// Sanitizer builds (MR_SANITIZER_BUILD=1): the data-limit and RSS tests are skipped (ASan and
// TSan reserve terabytes of shadow address space and hold freed memory in a quarantine, so
// neither `prlimit --data` nor VmRSS means anything there); the explicit-budget test runs with
// half the clients.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "admin_http.hpp"
#include "child_process.hpp"
#include "server_process.hpp"
#include "test_client.hpp"

namespace mr::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr std::uint64_t kGiB = 1024 * kMiB;
// What each slow reader sends. 2 MiB (twice the default high_water_mark) as in the issue, where
// 1,500 of them exhaust the kernel's TCP memory (tcp_mem) so that the rest piles up in the
// server. A few hundred connections get 2 MiB each absorbed whole by kernel socket buffers
// (the server's send buffer autotunes up to tcp_wmem's 4 MiB; measured: 200 x 2 MiB left 0
// bytes pending in the server), so the smaller floods send 8 MiB each: measured, 200 x 8 MiB
// leave 1 MiB (the high-water mark) pending on every connection of today's server.
constexpr std::uint64_t kIssueFloodBytes = 2 * kMiB;
constexpr std::uint64_t kBigFloodBytes = 8 * kMiB;

double mib(std::uint64_t bytes) {
  return static_cast<double>(bytes) / static_cast<double>(kMiB);
}

std::string describe(const ChildProcess::Exit& exit) {
  if (exit.exited) return "exited with status " + std::to_string(exit.code);
  if (exit.signaled) {
    return "killed by signal " + std::to_string(exit.signal) + " (" + strsignal(exit.signal) + ")";
  }
  return exit.timed_out ? "still running" : "unknown";
}

// The last `n` lines of `text`.
std::string tail(const std::string& text, std::size_t n) {
  std::size_t at = text.size();
  for (std::size_t lines = 0; at > 0 && lines <= n;) {
    if (text[--at] == '\n') ++lines;
  }
  return text.substr(at);
}

// The budget's view of /stats.
struct BudgetStats {
  bool ok = false;
  std::string error;                          // why not ok: no answer, no JSON, a field missing
  std::uint64_t budget = 0;                   // buffer_budget_bytes
  std::uint64_t buffered = 0;                 // total.buffered_bytes
  std::uint64_t buffered_sum_of_workers = 0;  // workers[*].buffered_bytes
  std::uint64_t overload_pauses = 0;          // total.overload_pauses
  std::uint64_t pending_output = 0;           // total.pending_output_bytes (exists today)
  std::uint64_t rss = 0;                      // rss_bytes
};

BudgetStats read_budget_stats(std::uint16_t admin_port) {
  BudgetStats stats;
  const HttpResponse response = http_get(admin_port, "/stats", Deadline(seconds(10)));
  if (response.status != 200) {
    stats.error = "GET /stats: status " + std::to_string(response.status) + " " + response.error;
    return stats;
  }
  const auto json = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    stats.error = "GET /stats: not a JSON object";
    return stats;
  }
  // Reads json[path...] into `into`; false (and the error set) when absent or not a number.
  const auto field = [&stats](const nlohmann::json& object, const std::string& where,
                              const char* key, std::uint64_t& into) {
    if (!object.is_object() || !object.contains(key) || !object[key].is_number_unsigned()) {
      if (stats.error.empty()) {
        stats.error = "/stats has no numeric \"" + where + key +
                      "\" (the buffer budget of issue 11 is not there)";
      }
      return false;
    }
    into = object[key].get<std::uint64_t>();
    return true;
  };
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json& total = json.contains("total") ? json["total"] : empty;
  bool ok = field(json, "", "rss_bytes", stats.rss);
  ok = field(total, "total.", "pending_output_bytes", stats.pending_output) && ok;
  ok = field(json, "", "buffer_budget_bytes", stats.budget) && ok;
  ok = field(total, "total.", "buffered_bytes", stats.buffered) && ok;
  ok = field(total, "total.", "overload_pauses", stats.overload_pauses) && ok;
  if (!json.contains("workers") || !json["workers"].is_array() || json["workers"].empty()) {
    if (stats.error.empty()) stats.error = "/stats has no \"workers\" array";
    ok = false;
  } else {
    for (const auto& worker : json["workers"]) {
      std::uint64_t buffered = 0;
      ok = field(worker, "workers[].", "buffered_bytes", buffered) && ok;
      stats.buffered_sum_of_workers += buffered;
    }
  }
  stats.ok = ok;
  return stats;
}

// The "total" object of /stats as one line of JSON, for failure messages.
std::string stats_total(std::uint16_t admin_port) {
  const HttpResponse response = http_get(admin_port, "/stats", Deadline(seconds(10)));
  const auto json = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (response.status != 200 || json.is_discarded() || !json.contains("total")) {
    return "(no /stats: status " + std::to_string(response.status) + " " + response.error + ")";
  }
  return json["total"].dump();
}

// Starts the server with its admin endpoint on a free port. Records a failure and returns 0
// when it cannot.
//
// Kernel socket buffers stay small on both ends (64 KiB here, and in the slow readers): with
// autotuning, a few hundred slow readers pin ~2 GiB of kernel memory, the host's whole tcp_mem.
// Under that TCP memory pressure the kernel drops segments and retransmission backoff stalled a
// connection for minutes (TcpExtTCPMemoryPressures and TCPTimeouts rose; the server from before
// the budget stalled the same way). Small kernel buffers put the flood where these tests look:
// in the server's output buffers.
std::uint16_t start_with_admin(ServerProcess& server, std::vector<std::string> args,
                               std::uint64_t data_limit_bytes = 0) {
  args.insert(args.end(),
              {"--admin_port", std::to_string(free_port()), "--socket_send_buffer_bytes", "65536",
               "--socket_receive_buffer_bytes", "65536"});
  if (!server.start(args, 0, data_limit_bytes)) {
    ADD_FAILURE() << server.error();
    return 0;
  }
  static const std::regex admin_line(R"(admin endpoint on 127\.0\.0\.1:(\d+))");
  const auto bound = server.child().wait_for_stderr_line(admin_line, Deadline(seconds(10)));
  if (!bound) {
    ADD_FAILURE() << "no admin endpoint line:\n" << server.log();
    return 0;
  }
  return static_cast<std::uint16_t>(std::stoul(*bound));
}

// Records a failure, with how the server ended and its last log lines, when it is no longer
// running; true while it runs. With `suspect` (its clients just saw their connections fail) it
// gives a dying server up to 10 s to be gone.
bool server_alive(ServerProcess& server, const std::string& when, bool suspect = false) {
  auto exit = server.child().exit_if_ended();
  if (!exit && suspect) {
    const auto waited = server.child().wait(Deadline(seconds(10)));
    if (!waited.timed_out) exit = waited;
  }
  EXPECT_FALSE(exit.has_value()) << "the server is gone " << when << ": "
                                 << (exit ? describe(*exit) : "") << "; its log ends:\n"
                                 << tail(server.log(), 12);
  return !exit.has_value();
}

// The largest VmHWM of a process, sampled every 50 ms on a thread of its own until stopped (it
// survives the process: a server that dies takes its /proc entry with it).
class PeakRssWatch {
 public:
  explicit PeakRssWatch(pid_t pid)
      : thread_([this, pid] {
          while (!stopping_.load()) {
            const std::uint64_t peak = peak_rss_bytes(pid);
            if (peak > peak_.load()) peak_ = peak;
            std::this_thread::sleep_for(milliseconds(50));
          }
        }) {}
  ~PeakRssWatch() {
    stopping_ = true;
    thread_.join();
  }
  PeakRssWatch(const PeakRssWatch&) = delete;
  PeakRssWatch& operator=(const PeakRssWatch&) = delete;
  std::uint64_t peak() const { return peak_.load(); }

 private:
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> peak_{0};
  std::thread thread_;
};

// Slow readers in `processes` mr-stress-client processes, `connections` in all.
class SlowReaders {
 public:
  // Starts them; records a failure and returns false if a process cannot start.
  bool start(std::uint16_t port, std::size_t connections, std::uint64_t bytes_each,
             std::size_t processes, std::size_t first_id = 0) {
    connections_ = connections;
    bytes_each_ = bytes_each;
    for (std::size_t p = 0; p < processes; ++p) {
      const std::size_t share = connections / processes + (p < connections % processes ? 1 : 0);
      clients_.push_back(std::make_unique<ChildProcess>());
      const bool spawned = clients_.back()->spawn(
          MR_STRESS_CLIENT_PATH,
          {"--mode", "flood", "--port", std::to_string(port), "--connections",
           std::to_string(share), "--bytes", std::to_string(bytes_each), "--first-id",
           std::to_string(first_id), "--rcvbuf", "65536", "--sndbuf", "65536", "--stall-ms", "1000",
           "--timeout-s", "120"});
      EXPECT_TRUE(spawned) << clients_.back()->error();
      if (!spawned) return false;
      first_id += share;
    }
    return true;
  }

  // Waits until every process has sent what the server would take; returns the bytes sent, or
  // nothing (with a failure recorded, naming the process and its stderr) when one failed.
  std::optional<std::uint64_t> wait_flooded(const Deadline& deadline) {
    static const std::regex flooded(R"(^flooded (\d+) sent=(\d+) complete=(\d+) )");
    std::uint64_t sent = 0;
    for (std::size_t p = 0; p < clients_.size(); ++p) {
      ChildProcess& c = *clients_[p];
      if (!c.wait_for_stderr_line(flooded, deadline)) {
        const auto exit = c.exit_if_ended();
        ADD_FAILURE() << "slow-reader process " << p << " did not finish its flood ("
                      << (exit ? describe(*exit) : "still running") << "):\n"
                      << c.stderr_text();
        return std::nullopt;
      }
      std::smatch match;
      const std::string& text = c.stderr_text();
      if (std::regex_search(text, match, std::regex(R"(flooded \d+ sent=(\d+) complete=(\d+))"))) {
        sent += std::stoull(match[1].str());
        complete_ += std::stoull(match[2].str());
      }
    }
    return sent;
  }
  // Connections that had sent all their bytes when the flood stalled.
  std::uint64_t complete() const { return complete_; }

  // Lets every process read back and verify; true when every one exits 0 having received all
  // connections x bytes_each (failures recorded otherwise).
  bool release_and_verify(const Deadline& deadline) {
    for (auto& c : clients_)
      c->send_signal(SIGUSR1);
    static const std::regex verified(R"(verified (\d+) bytes=(\d+))");
    std::uint64_t received = 0;
    bool ok = true;
    for (std::size_t p = 0; p < clients_.size(); ++p) {
      ChildProcess& c = *clients_[p];
      const auto exit = c.wait(deadline);
      std::smatch match;
      const std::string& text = c.stderr_text();
      const bool clean = exit.exited && exit.code == 0 && std::regex_search(text, match, verified);
      EXPECT_TRUE(clean) << "slow-reader process " << p << " " << describe(exit) << ":\n" << text;
      if (clean) received += std::stoull(match[2].str());
      ok = ok && clean;
    }
    EXPECT_EQ(received, connections_ * bytes_each_) << "bytes that came back, verified";
    return ok && received == connections_ * bytes_each_;
  }

 private:
  std::size_t connections_ = 0;
  std::uint64_t bytes_each_ = 0;
  std::uint64_t complete_ = 0;
  std::vector<std::unique_ptr<ChildProcess>> clients_;
};

// Well-behaved connections, each ping-ponging a 512-byte message on its own thread (with a pause
// between exchanges, so they do not compete with the flood for the two cores), until stopped.
class Bystanders {
 public:
  Bystanders(std::uint16_t port, std::size_t count) : exchanges_(count) {
    for (std::size_t i = 0; i < count; ++i) {
      clients_.push_back(TestClient::connect(port, Deadline(seconds(10))));
    }
  }
  ~Bystanders() { stop(); }
  Bystanders(const Bystanders&) = delete;
  Bystanders& operator=(const Bystanders&) = delete;

  // One echo on each before the flood; false (failure recorded) when one is not served.
  bool all_served_once() {
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      const EchoOutcome outcome = probe_echo(clients_[i], message(i, 0), Deadline(seconds(30)));
      EXPECT_EQ(outcome, EchoOutcome::kEchoed) << "bystander " << i << " before the flood";
      if (outcome != EchoOutcome::kEchoed) return false;
    }
    return true;
  }

  void run() {
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      threads_.emplace_back([this, i] {
        for (std::size_t n = 1; !stopping_.load(); ++n) {
          // The deadline only ends the test if the server never answers.
          const EchoOutcome outcome = probe_echo(clients_[i], message(i, n), Deadline(seconds(30)));
          if (outcome != EchoOutcome::kEchoed) {
            std::lock_guard<std::mutex> lock(mutex_);
            errors_.push_back("bystander " + std::to_string(i) + " exchange " + std::to_string(n) +
                              ": " + to_string(outcome) + " " + clients_[i].receive_error() +
                              clients_[i].send_error());
            return;
          }
          ++exchanges_[i];
          std::this_thread::sleep_for(milliseconds(20));
        }
      });
    }
  }

  std::vector<std::size_t> exchanges() const {
    std::vector<std::size_t> counts;
    for (const auto& e : exchanges_)
      counts.push_back(e.load());
    return counts;
  }
  std::vector<std::string> errors() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_;
  }
  bool failed() const { return !errors().empty(); }

  void stop() {
    stopping_ = true;
    for (auto& t : threads_)
      t.join();
    threads_.clear();
  }

 private:
  static std::string message(std::size_t i, std::size_t n) {
    std::string text = "bystander " + std::to_string(i) + " exchange " + std::to_string(n) + " ";
    text.resize(512, static_cast<char>('a' + (i + n) % 26));
    return text;
  }

  std::vector<TestClient> clients_;
  std::vector<std::atomic<std::size_t>> exchanges_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> errors_;
};

class Overload : public ::testing::Test {
 protected:
  void SetUp() override { raise_own_file_limit(); }
};

// ---------------------------------------------------------------------------------------------
// Budget, automatic: the Deployment's 1 GiB memory limit, stood in for by RLIMIT_DATA.

TEST_F(Overload, AutomaticBudgetUnderADataLimitKeepsServerUpThroughSlowReadersAndServesOthers) {
  if (sanitizer_build()) {
    GTEST_SKIP() << "ASan/TSan reserve terabytes of shadow address space, which "
                    "prlimit --data=1GiB forbids; the Release run covers this test";
  }
  constexpr std::uint64_t kDataLimit = kGiB;
  constexpr std::size_t kSlowReaders = 1500;
  constexpr std::size_t kProcesses = 3;
  constexpr std::size_t kBystanders = 20;
  ServerProcess server;
  // No max_buffered_bytes: the automatic budget, half the tightest limit (here RLIMIT_DATA).
  const std::uint16_t admin = start_with_admin(server, {"--workers", "2"}, kDataLimit);
  ASSERT_NE(admin, 0);
  ASSERT_EQ(data_hard_limit(server.pid()), static_cast<long long>(kDataLimit))
      << "prlimit --data did not apply to the server";
  const std::uint64_t rss_at_start = rss_bytes(server.pid());
  const BudgetStats at_start = read_budget_stats(admin);
  EXPECT_TRUE(at_start.ok) << at_start.error;
  if (at_start.ok) {
    // Half of the tightest limit; the machine's own limits may be tighter still.
    EXPECT_GT(at_start.budget, 0u);
    EXPECT_LE(at_start.budget, kDataLimit / 2) << "budget above half of RLIMIT_DATA";
  }

  PeakRssWatch peak_rss(server.pid());
  Bystanders bystanders(server.port(), kBystanders);
  ASSERT_TRUE(bystanders.all_served_once());
  bystanders.run();
  SlowReaders flood;
  ASSERT_TRUE(flood.start(server.port(), kSlowReaders, kIssueFloodBytes, kProcesses));
  const auto sent = flood.wait_flooded(Deadline(seconds(150)));
  const bool alive = server_alive(server, "under the flood", /*suspect=*/!sent);
  std::printf(
      "automatic budget: %zu slow readers sent %.1f MiB of %.1f MiB (%llu complete); "
      "server RSS %.1f MiB at start, peak %.1f MiB (VmHWM)\n",
      kSlowReaders, mib(sent.value_or(0)), mib(kSlowReaders * kIssueFloodBytes),
      static_cast<unsigned long long>(flood.complete()), mib(rss_at_start), mib(peak_rss.peak()));
  if (!alive || !sent) {
    bystanders.stop();
    const auto errors = bystanders.errors();
    ADD_FAILURE() << errors.size() << " of " << kBystanders << " bystanders lost"
                  << (errors.empty() ? "" : ", the first: " + errors.front());
    return;
  }

  const BudgetStats held = read_budget_stats(admin);
  EXPECT_TRUE(held.ok) << held.error;
  std::printf(
      "automatic budget: held: budget %.1f MiB, buffered %.1f MiB, pending output "
      "%.1f MiB, overload_pauses %llu\n",
      mib(held.budget), mib(held.buffered), mib(held.pending_output),
      static_cast<unsigned long long>(held.overload_pauses));
  if (held.ok) {
    EXPECT_LE(held.buffered, held.budget);
    EXPECT_GT(held.overload_pauses, 0u) << "1,500 x 2 MiB should have reached the budget";
  }

  // The flood is held (no slow reader reads): every bystander must still get echoes.
  const std::vector<std::size_t> at_hold = bystanders.exchanges();
  constexpr std::size_t kMoreExchanges = 5;
  const bool served = wait_until(
      [&] {
        const auto now = bystanders.exchanges();
        for (std::size_t i = 0; i < now.size(); ++i) {
          if (now[i] < at_hold[i] + kMoreExchanges) return bystanders.failed();
        }
        return true;
      },
      Deadline(seconds(30)));
  bystanders.stop();
  std::string counts;
  const auto after_hold = bystanders.exchanges();
  for (std::size_t i = 0; i < after_hold.size(); ++i) {
    counts += " " + std::to_string(i) + ":" + std::to_string(at_hold[i]) + "->" +
              std::to_string(after_hold[i]);
  }
  EXPECT_TRUE(served && !bystanders.failed())
      << "bystanders not served while the flood was held; exchanges per bystander (at the hold "
         "-> at the end):"
      << counts;
  for (const std::string& error : bystanders.errors())
    ADD_FAILURE() << error;
  ASSERT_TRUE(server_alive(server, "while the flood was held"));

  EXPECT_TRUE(flood.release_and_verify(Deadline(seconds(150))))
      << "server /stats total: " << stats_total(admin);
  ASSERT_TRUE(server_alive(server, "after the slow readers read"));
  std::printf("automatic budget: server peak RSS %.1f MiB (VmHWM) over the whole run\n",
              mib(peak_rss.peak()));
  const FinalStats stats = stop_cleanly(server, Deadline(seconds(120)));
  EXPECT_EQ(stats["bytes_in"], stats["bytes_out"]) << stats.describe();
  EXPECT_EQ(stats["errors"], 0u) << stats.describe();
}

// ---------------------------------------------------------------------------------------------
// Budget, explicit: a small one, watched from /stats the whole time.

TEST_F(Overload, ExplicitBudgetIsNeverExceededAndEveryByteComesBack) {
  constexpr std::uint64_t kBudget = 64 * kMiB;
  // Either count is well above budget / high_water_mark (64 connections).
  const std::size_t slow_readers = scaled(200, 100);
  ServerProcess server;
  const std::uint16_t admin =
      start_with_admin(server, {"--workers", "2", "--max_buffered_bytes", std::to_string(kBudget)});
  ASSERT_NE(admin, 0);
  const std::uint64_t rss_at_start = rss_bytes(server.pid());
  const BudgetStats at_start = read_budget_stats(admin);
  ASSERT_TRUE(at_start.ok) << at_start.error;
  EXPECT_EQ(at_start.budget, kBudget);

  // /stats sampled all through the flood, the hold and the read-back.
  std::atomic<bool> sampling{true};
  std::atomic<std::size_t> samples{0};
  std::mutex mutex;
  std::string first_problem;
  std::uint64_t max_buffered = 0;
  std::uint64_t max_pending = 0;
  std::thread sampler([&] {
    while (sampling.load()) {
      const BudgetStats s = read_budget_stats(admin);
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (!s.ok && first_problem.empty()) first_problem = s.error;
        if (s.ok && (s.buffered > s.budget || s.buffered_sum_of_workers > s.budget) &&
            first_problem.empty()) {
          first_problem = "buffered_bytes " + std::to_string(s.buffered) + " (workers' sum " +
                          std::to_string(s.buffered_sum_of_workers) + ") over the budget " +
                          std::to_string(s.budget);
        }
        max_buffered = std::max(max_buffered, s.buffered);
        max_pending = std::max(max_pending, s.pending_output);
      }
      ++samples;
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  struct JoinAtEnd {
    std::atomic<bool>& flag;
    std::thread& thread;
    ~JoinAtEnd() {
      flag = false;
      if (thread.joinable()) thread.join();
    }
  } join_sampler{sampling, sampler};

  SlowReaders flood;
  ASSERT_TRUE(flood.start(server.port(), slow_readers, kBigFloodBytes, 1));
  const auto sent = flood.wait_flooded(Deadline(seconds(150)));
  ASSERT_TRUE(server_alive(server, "under the flood"));
  ASSERT_TRUE(sent.has_value());
  // A few more samples while nobody reads.
  const std::size_t at_hold = samples.load();
  wait_until([&] { return samples.load() >= at_hold + 10; }, Deadline(seconds(30)));
  const BudgetStats held = read_budget_stats(admin);
  const std::uint64_t peak_rss_held = peak_rss_bytes(server.pid());
  EXPECT_TRUE(flood.release_and_verify(Deadline(seconds(150))))
      << "server /stats total: " << stats_total(admin);
  sampling = false;
  sampler.join();

  const BudgetStats after = read_budget_stats(admin);
  const std::uint64_t peak_rss = peak_rss_bytes(server.pid());
  std::printf(
      "explicit budget %.0f MiB: %zu slow readers sent %.1f of %.1f MiB before the hold; "
      "%zu /stats samples, largest buffered %.1f MiB, largest pending output %.1f MiB; "
      "held: buffered %.1f MiB, overload_pauses %llu; server RSS %.1f MiB at start, "
      "peak %.1f MiB while held, %.1f MiB overall\n",
      mib(kBudget), slow_readers, mib(sent.value_or(0)), mib(slow_readers * kBigFloodBytes),
      samples.load(), mib(max_buffered), mib(max_pending), mib(held.buffered),
      static_cast<unsigned long long>(held.overload_pauses), mib(rss_at_start), mib(peak_rss_held),
      mib(peak_rss));
  EXPECT_TRUE(first_problem.empty()) << first_problem;
  EXPECT_TRUE(held.ok) << held.error;
  EXPECT_GT(max_buffered, 0u) << "buffered_bytes never moved";
  EXPECT_TRUE(after.ok) << after.error;
  EXPECT_GT(after.overload_pauses, 0u) << "the budget was never reached";
  if (!sanitizer_build()) {
    // The buffers' memory is bounded by the budget; the rest of the process (read buffers,
    // stacks, allocator slack) stays within 64 MiB of its start.
    EXPECT_LT(peak_rss, rss_at_start + kBudget + 64 * kMiB)
        << "server peak RSS " << peak_rss << " with a budget of " << kBudget;
  }
  ASSERT_TRUE(server_alive(server, "after the slow readers read"));
  const FinalStats stats = stop_cleanly(server, Deadline(seconds(120)));
  EXPECT_EQ(stats["bytes_in"], slow_readers * kBigFloodBytes) << stats.describe();
  EXPECT_EQ(stats["bytes_out"], slow_readers * kBigFloodBytes) << stats.describe();
  EXPECT_EQ(stats["errors"], 0u) << stats.describe();
}

// ---------------------------------------------------------------------------------------------
// Memory goes back: waves of slow readers, each read back and closed.

TEST_F(Overload, IdleMemoryReturnsNearItsStartAfterEachOfThreeWavesOfSlowReaders) {
  if (sanitizer_build()) {
    GTEST_SKIP() << "sanitizer allocators keep freed memory in a quarantine and add shadow "
                    "memory: RSS says nothing there; the Release run covers this test";
  }
  constexpr std::size_t kWaves = 3;
  constexpr std::size_t kSlowReaders = 300;
  constexpr std::uint64_t kSlack = 64 * kMiB;
  ServerProcess server;
  // The admin endpoint only says, when a wave fails, where its bytes are.
  const std::uint16_t admin = start_with_admin(server, {"--workers", "2"});
  ASSERT_NE(admin, 0);
  const std::size_t baseline_fds = open_fds(server.pid());
  const std::uint64_t rss_before = rss_bytes(server.pid());
  std::string figures = "RSS before the first wave " + std::to_string(rss_before / kMiB) + " MiB";
  for (std::size_t wave = 1; wave <= kWaves; ++wave) {
    SlowReaders flood;
    ASSERT_TRUE(flood.start(server.port(), kSlowReaders, kBigFloodBytes, 1, wave * kSlowReaders));
    ASSERT_TRUE(flood.wait_flooded(Deadline(seconds(150))).has_value());
    ASSERT_TRUE(server_alive(server, "under wave " + std::to_string(wave)));
    const std::uint64_t rss_flood = rss_bytes(server.pid());
    // Otherwise the kernel's socket buffers took the whole flood and this wave shows nothing.
    EXPECT_GT(rss_flood, rss_before + kSlack)
        << "wave " << wave << " did not load the server's memory";
    ASSERT_TRUE(flood.release_and_verify(Deadline(seconds(150))))
        << "wave " << wave << ": server /stats total: " << stats_total(admin);
    ASSERT_TRUE(
        wait_until([&] { return open_fds(server.pid()) == baseline_fds; }, Deadline(seconds(60))))
        << "wave " << wave << ": the server holds " << open_fds(server.pid()) << " descriptors, "
        << baseline_fds << " at the start";
    // Memory may be given back at a low rate: wait a bounded while for it.
    wait_until([&] { return rss_bytes(server.pid()) <= rss_before + kSlack; },
               Deadline(seconds(20)));
    const std::uint64_t rss_idle = rss_bytes(server.pid());
    figures += "; wave " + std::to_string(wave) + ": " + std::to_string(rss_flood / kMiB) +
               " MiB under the flood, " + std::to_string(rss_idle / kMiB) + " MiB idle after";
    EXPECT_LE(rss_idle, rss_before + kSlack)
        << "wave " << wave << ": idle RSS " << rss_idle / kMiB << " MiB, " << rss_before / kMiB
        << " MiB before the first wave";
  }
  std::printf("memory back: %s; peak %llu MiB\n", figures.c_str(),
              static_cast<unsigned long long>(peak_rss_bytes(server.pid()) / kMiB));
  const FinalStats stats = stop_cleanly(server, Deadline(seconds(120)));
  EXPECT_EQ(stats["bytes_in"], kWaves * kSlowReaders * kBigFloodBytes) << stats.describe();
  EXPECT_EQ(stats["errors"], 0u) << stats.describe();
}

}  // namespace
}  // namespace mr::test
