// Renders the server's numbers for operators and the benchmark harness: the /stats JSON, the
// /metrics Prometheus text (exposition format 0.0.4), and the stats log lines.
//
// Contract: pure functions of values taken once, so one answer agrees with itself — the `total`
// of /stats is aggregate() of the very `workers` it lists. The names are a contract documented in
// README.md ("Admin endpoint"); every worker counter comes from the one list in
// multireactor/stats.hpp (MR_WORKER_COUNTERS) for JSON, Prometheus and the log alike, so they
// cannot drift apart. Not for the data path.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "multireactor/stats.hpp"
#include "system/system.hpp"

namespace mr {

// The admin endpoint's own defences (admin_server.hpp), counted on its loop's thread.
struct AdminStats {
  std::uint64_t connections_evicted = 0;  // dropped unanswered to make room for a new one
  std::uint64_t connections_refused = 0;  // closed at once: no slot could be freed
  std::uint64_t request_timeouts = 0;     // request head not complete within request_timeout
};

struct StatsReport {
  double uptime_s = 0;
  double process_start_time_s = 0;  // Unix time
  ProcessUsage process;
  std::uint64_t rss_at_start_bytes = 0;  // RSS when the server began listening
  std::uint64_t max_fds = 0;             // RLIMIT_NOFILE soft limit
  bool ready = false;
  std::uint64_t buffer_budget_bytes = 0;  // max_buffered_bytes in force (0 = not reported)
  std::vector<WorkerStatsSnapshot> workers;
  AcceptorStatsSnapshot acceptor;
  AdminStats admin;
};

// GET /stats: one JSON object, newline-terminated.
std::string render_stats_json(const StatsReport& report);

// GET /metrics: Prometheus text exposition format 0.0.4, `multireactor_` prefix, one sample per
// worker (label worker="N") for every worker counter, plus acceptor, process and build metrics.
std::string render_prometheus(const StatsReport& report);

// "connections_active=3 connections_accepted=7 ..." — every field of one snapshot with its /stats
// name, for the SIGUSR1 dump.
std::string format_worker_fields(const WorkerStatsSnapshot& stats);
std::string format_acceptor_fields(const AcceptorStatsSnapshot& stats);

// The stats_interval_s log line: connections now and opened/closed since `before`, msgs/s (reads
// that returned data, per second), MiB/s in and out, and the per-worker connection counts.
// `before` and `after` are the per-worker snapshots `seconds` apart.
// With a budget, it also shows the memory held by output buffers against it and the overload
// pauses of the interval.
std::string format_interval_line(std::span<const WorkerStatsSnapshot> before,
                                 std::span<const WorkerStatsSnapshot> after, double seconds,
                                 std::uint64_t buffer_budget_bytes = 0);

// The names every worker counter has in /stats, in order (for tests and documentation checks).
std::vector<std::string> worker_field_names();

// The snapshot field behind a /stats worker counter name, for readers of /stats (echo-bench);
// nullptr for a name that is not one.
std::uint64_t WorkerStatsSnapshot::*worker_field(std::string_view name);

}  // namespace mr
