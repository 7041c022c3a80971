// Per-worker counters and their aggregation.
//
// Contract: each WorkerStats has exactly one writer, the worker's loop thread, which bumps the
// counters with relaxed load+store pairs (a plain add on x86: no locked instruction on the data
// path). Any thread may take a snapshot() at any time; a snapshot is a consistent-enough view for
// operators and the benchmark harness (each counter is read atomically, counters are not read as
// one transaction). aggregate() sums snapshots into the totals reported by /stats and the log.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "multireactor/counter.hpp"

namespace mr {

// A plain copy of one worker's counters (or of their sum).
struct WorkerStatsSnapshot {
  std::uint64_t connections_active = 0;
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_closed = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t reads = 0;
  std::uint64_t writes = 0;
  std::uint64_t wakeups = 0;
  std::uint64_t loop_iterations = 0;
  std::uint64_t backpressure_pauses = 0;
  std::uint64_t errors = 0;
  std::uint64_t idle_timeouts = 0;
  std::uint64_t pending_output_bytes = 0;       // gauge: bytes queued, all connections
  std::uint64_t pending_output_peak_bytes = 0;  // largest pending output of any one connection
  std::uint64_t connections_drained = 0;        // closed at shutdown with all output delivered
  std::uint64_t connections_cut = 0;            // closed at shutdown with output still pending
  std::uint64_t buffered_bytes = 0;   // gauge: memory held by output buffers (the budget's unit)
  std::uint64_t overload_pauses = 0;  // reading paused or parked by the process buffer budget

  WorkerStatsSnapshot& operator+=(const WorkerStatsSnapshot& other);
};

// The live counters of one worker. Written only on the owning worker's thread.
class WorkerStats {
 public:
  using Counter = RelaxedCounter;

  Counter connections_active;
  Counter connections_accepted;
  Counter connections_closed;
  Counter bytes_received;
  Counter bytes_sent;
  Counter reads;
  Counter writes;
  Counter wakeups;
  Counter loop_iterations;
  Counter backpressure_pauses;
  Counter errors;
  Counter idle_timeouts;
  Counter pending_output_bytes;
  Counter pending_output_peak_bytes;
  Counter connections_drained;
  Counter connections_cut;
  Counter buffered_bytes;
  Counter overload_pauses;

  // Thread-safe.
  WorkerStatsSnapshot snapshot() const;
};

// Counters of the acceptor thread (single writer: the acceptor loop).
struct AcceptorStatsSnapshot {
  std::uint64_t accept_errors = 0;         // accept4 failures other than EAGAIN
  std::uint64_t connections_rejected = 0;  // accepted and closed at once (limit or no descriptor)
  std::uint64_t accept_batches = 0;        // listen-socket wake-ups that accepted something
  std::uint64_t handoffs = 0;              // descriptors handed to workers
};

// Sums the workers' snapshots.
WorkerStatsSnapshot aggregate(std::span<const WorkerStatsSnapshot> workers);

// max share / min share of `values` (1.0 = perfectly even; infinity if some worker has none).
double imbalance(std::span<const std::uint64_t> values);

// One-line human summary, used by the periodic and final stats log lines.
std::string format_stats_line(const WorkerStatsSnapshot& total,
                              std::span<const WorkerStatsSnapshot> workers);

}  // namespace mr
