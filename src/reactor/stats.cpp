#include "multireactor/stats.hpp"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

namespace mr {

WorkerStatsSnapshot& WorkerStatsSnapshot::operator+=(const WorkerStatsSnapshot& other) {
  connections_active += other.connections_active;
  connections_accepted += other.connections_accepted;
  connections_closed += other.connections_closed;
  bytes_received += other.bytes_received;
  bytes_sent += other.bytes_sent;
  reads += other.reads;
  writes += other.writes;
  wakeups += other.wakeups;
  loop_iterations += other.loop_iterations;
  backpressure_pauses += other.backpressure_pauses;
  errors += other.errors;
  idle_timeouts += other.idle_timeouts;
  pending_output_bytes += other.pending_output_bytes;
  // A peak is not additive: the total reports the largest of any worker.
  pending_output_peak_bytes = std::max(pending_output_peak_bytes, other.pending_output_peak_bytes);
  connections_drained += other.connections_drained;
  connections_cut += other.connections_cut;
  buffered_bytes += other.buffered_bytes;
  overload_pauses += other.overload_pauses;
  return *this;
}

WorkerStatsSnapshot WorkerStats::snapshot() const {
  WorkerStatsSnapshot s;
  s.connections_active = connections_active.get();
  s.connections_accepted = connections_accepted.get();
  s.connections_closed = connections_closed.get();
  s.bytes_received = bytes_received.get();
  s.bytes_sent = bytes_sent.get();
  s.reads = reads.get();
  s.writes = writes.get();
  s.wakeups = wakeups.get();
  s.loop_iterations = loop_iterations.get();
  s.backpressure_pauses = backpressure_pauses.get();
  s.errors = errors.get();
  s.idle_timeouts = idle_timeouts.get();
  s.pending_output_bytes = pending_output_bytes.get();
  s.pending_output_peak_bytes = pending_output_peak_bytes.get();
  s.connections_drained = connections_drained.get();
  s.connections_cut = connections_cut.get();
  s.buffered_bytes = buffered_bytes.get();
  s.overload_pauses = overload_pauses.get();
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

}  // namespace mr
