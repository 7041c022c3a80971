#include "bench_client.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "client_thread.hpp"
#include "system/system.hpp"

namespace mr::bench {
namespace {

constexpr std::int64_t kProgressNs = 1'000'000'000;
constexpr auto kPoll = std::chrono::milliseconds(20);

struct LiveTotals {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t open = 0;
  std::uint64_t opened = 0;
  std::uint64_t errors = 0;
};

LiveTotals live(const std::vector<std::unique_ptr<ClientThread>>& threads) {
  LiveTotals t;
  for (const auto& c : threads) {
    t.messages += c->live_messages_received();
    t.bytes += c->live_bytes_received();
    t.open += c->live_open_connections();
    t.opened += c->live_connections_opened();
    t.errors += c->live_errors();
  }
  return t;
}

}  // namespace

std::string format_progress(const Progress& p) {
  // No p99 before the measured window has samples.
  const std::string p99 =
      p.p99_ns == 0 ? "-" : fmt::format("{:.3f}", static_cast<double>(p.p99_ns) / 1e6);
  return fmt::format(
      "[{:6.1f}s] {:<7} {:>12.0f} msg/s {:>9.2f} MiB/s  p99 {:>8} ms  open {:>6}  errors {}",
      p.elapsed_s, p.phase, p.messages_per_s, p.mib_per_s, p99, p.open_connections, p.errors);
}

BenchClient::BenchClient(BenchOptions options) : options_(std::move(options)) {}

BenchReport BenchClient::run() {
  RunPlan plan;
  plan.options = options_;
  plan.server = make_address(options_.host, options_.port);
  for (const auto& s : options_.sources)
    plan.sources.push_back(make_address(s, 0));
  plan.pattern = std::make_unique<MessagePattern>(options_.size);
  unsigned threads = options_.threads != 0 ? options_.threads : usable_cpu_count();
  threads = static_cast<unsigned>(std::min<std::uint64_t>(threads, options_.connections));
  plan.threads = std::max(1U, threads);

  BenchReport report;
  report.options = options_;
  report.threads = plan.threads;

  ServerStats before;
  if (options_.has_admin) {
    report.server.requested = true;
    report.server.ok = fetch_server_stats(options_.admin, before, report.server.error);
  }

  // Connection i runs on thread i % threads, so every thread gets an even share.
  std::vector<std::unique_ptr<ClientThread>> clients;
  for (unsigned t = 0; t < plan.threads; ++t) {
    std::vector<std::uint32_t> ids;
    for (std::uint64_t i = t; i < options_.connections; i += plan.threads) {
      ids.push_back(static_cast<std::uint32_t>(i));
    }
    clients.push_back(std::make_unique<ClientThread>(plan, std::move(ids)));
  }
  for (auto& c : clients)
    c->start();

  const std::int64_t begin_ns = monotonic_ns();
  std::int64_t next_progress_ns = begin_ns + kProgressNs;
  LiveTotals last = live(clients);
  std::int64_t last_ns = begin_ns;
  LoadSchedule schedule;
  auto report_progress = [&](const char* phase) {
    const std::int64_t now = monotonic_ns();
    if (!on_progress || now < next_progress_ns) return;
    next_progress_ns += kProgressNs;
    const LiveTotals current = live(clients);
    const double dt = static_cast<double>(now - last_ns) / 1e9;
    Progress p;
    p.elapsed_s = static_cast<double>(now - begin_ns) / 1e9;
    p.phase = phase;
    p.messages_per_s = static_cast<double>(current.messages - last.messages) / dt;
    p.mib_per_s = static_cast<double>(current.bytes - last.bytes) / dt / 1048576.0;
    p.open_connections = current.open;
    p.errors = current.errors;
    if (std::string(phase) == "measure" || std::string(phase) == "drain") {
      LatencyHistogram merged;
      for (auto& c : clients)
        merged.add(c->snapshot_latency().get());
      p.p99_ns = merged.percentile(99);
    }
    last = current;
    last_ns = now;
    on_progress(p);
  };

  for (auto& c : clients)
    c->begin_connecting(begin_ns);
  for (;;) {
    bool all = true;
    for (auto& c : clients)
      all = all && c->connected();
    if (all) break;
    std::this_thread::sleep_for(kPoll);
    report_progress("connect");
  }
  report.connect_seconds = static_cast<double>(monotonic_ns() - begin_ns) / 1e9;

  const std::uint64_t opened = live(clients).opened;
  const bool storm = options_.mode == BenchMode::kConnect;
  if (storm || opened > 0) {
    schedule.start_ns = monotonic_ns() + 2'000'000;
    if (options_.start_at_unix_s > 0) {
      // --start-at: the wall-clock instant mapped onto this host's monotonic clock once.
      const double wait_s = options_.start_at_unix_s - wall_clock_s();
      const std::int64_t at = monotonic_ns() + static_cast<std::int64_t>(wait_s * 1e9);
      if (at > schedule.start_ns) {
        schedule.start_ns = at;
      } else {
        report.started_late_s = -wait_s;
      }
    }
    schedule.measure_ns = schedule.start_ns + static_cast<std::int64_t>(options_.warmup_s * 1e9);
    schedule.end_ns = schedule.measure_ns + static_cast<std::int64_t>(options_.duration_s * 1e9);
    schedule.drain_deadline_ns =
        schedule.end_ns + static_cast<std::int64_t>(options_.drain_timeout_s * 1e9);
    for (auto& c : clients) {
      LoadSchedule mine = schedule;
      if (options_.rate > 0 && !storm) {
        // The total rate is shared in proportion to the connections each thread holds open.
        mine.thread_rate = options_.rate * static_cast<double>(c->live_connections_opened()) /
                           static_cast<double>(opened);
      }
      c->begin_load(mine);
    }
    for (;;) {
      bool all = true;
      for (auto& c : clients)
        all = all && c->drained();
      if (all) break;
      std::this_thread::sleep_for(kPoll);
      const std::int64_t now = monotonic_ns();
      report_progress(now < schedule.measure_ns ? "warmup"
                      : now < schedule.end_ns   ? "measure"
                                                : "drain");
    }
    report.measured_seconds = options_.duration_s;
  }

  // The server is read while the connections are still open, so it reports them per worker.
  if (report.server.requested && report.server.ok) {
    ServerStats after;
    std::string error;
    if (fetch_server_stats(options_.admin, after, error)) {
      report.server = summarize_server(before, after, options_.size);
    } else {
      report.server.ok = false;
      report.server.error = error;
    }
  }

  for (auto& c : clients) {
    ThreadResult r = c->collect().get();
    report.totals += r.totals;
    report.latency.add(r.latency);
    report.latency_uncorrected.add(r.latency_uncorrected);
    report.connect_latency.add(r.connect_latency);
  }
  for (auto& c : clients)
    c->close_all_and_stop();
  for (auto& c : clients)
    c->join();
  return report;
}

}  // namespace mr::bench
