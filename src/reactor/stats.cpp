#include "multireactor/stats.hpp"

#include <algorithm>
#include <iterator>
#include <limits>

#include <fmt/format.h>

namespace mr {

WorkerStatsSnapshot& WorkerStatsSnapshot::operator+=(const WorkerStatsSnapshot& other) {
  for (const auto& c : kWorkerCounters) {
    std::uint64_t& mine = this->*c.member;
    const std::uint64_t theirs = other.*c.member;
    mine = c.merge == CounterMerge::kMax ? std::max(mine, theirs) : mine + theirs;
  }
  return *this;
}

WorkerStatsSnapshot WorkerStats::snapshot() const {
  WorkerStatsSnapshot s;
#define MR_SNAPSHOT_READ(name, ...) s.name = name.get();
  MR_WORKER_COUNTERS(MR_SNAPSHOT_READ)
#undef MR_SNAPSHOT_READ
  return s;
}

WorkerStatsSnapshot aggregate(std::span<const WorkerStatsSnapshot> workers) {
  WorkerStatsSnapshot total;
  for (const auto& w : workers)
    total += w;
  return total;
}

double imbalance(std::span<const std::uint64_t> values) {
  if (values.empty()) return 1.0;
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  if (*hi == 0) return 1.0;
  if (*lo == 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(*hi) / static_cast<double>(*lo);
}

std::string format_stats_line(const WorkerStatsSnapshot& total,
                              std::span<const WorkerStatsSnapshot> workers) {
  std::string per_worker;
  for (const auto& w : workers) {
    if (!per_worker.empty()) per_worker += ',';
    per_worker += fmt::format("{}", w.connections_active);
  }
  return fmt::format(
      "connections active={} accepted={} closed={} | bytes in={} out={} | reads={} writes={} "
      "wakeups={} loops={} pauses={} errors={} idle_timeouts={} | per-worker active=[{}]",
      total.connections_active, total.connections_accepted, total.connections_closed,
      total.bytes_received, total.bytes_sent, total.reads, total.writes, total.wakeups,
      total.loop_iterations, total.backpressure_pauses, total.errors, total.idle_timeouts,
      per_worker);
}

std::string format_brief_fields(const WorkerStatsSnapshot& stats) {
  std::string out;
  for (const auto& c : kWorkerCounters) {
    if (c.brief.empty()) continue;
    fmt::format_to(std::back_inserter(out), "{}{}={}", out.empty() ? "" : " ", c.brief,
                   stats.*c.member);
  }
  return out;
}

}  // namespace mr
