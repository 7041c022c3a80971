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
#include <string_view>
#include <vector>

#include "multireactor/counter.hpp"

namespace mr {

// Every worker counter, defined once: the snapshot field, the live counter, aggregation, the
// /stats key, the Prometheus family and the log lines are all generated from this list, so a
// counter cannot be missing from one of them. Columns:
//   name   the field, the /stats key and the SIGUSR1 key;
//   kind   kCounter (only grows) or kGauge (goes up and down): the Prometheus TYPE;
//   merge  how aggregate() combines workers: kSum, or kMax for a peak (not additive);
//   metric the Prometheus name after `multireactor_`;
//   brief  its key in the final per-worker stats log line ("" = not in that line);
//   help   the Prometheus HELP text.
// clang-format off
#define MR_WORKER_COUNTERS(X)                                                                  \
  X(connections_active, kGauge, kSum, "connections_active", "",                                \
    "Echo connections open on the worker.")                                                   \
  X(connections_accepted, kCounter, kSum, "connections_accepted_total", "accepted",            \
    "Echo connections the worker took over from the acceptor.")                               \
  X(connections_closed, kCounter, kSum, "connections_closed_total", "closed",                  \
    "Echo connections the worker closed, for any reason.")                                    \
  X(bytes_received, kCounter, kSum, "received_bytes_total", "bytes_in",                        \
    "Bytes read from echo connections.")                                                      \
  X(bytes_sent, kCounter, kSum, "sent_bytes_total", "bytes_out",                               \
    "Bytes written to echo connections.")                                                     \
  X(reads, kCounter, kSum, "reads_total", "reads",                                             \
    "read calls on echo connections that returned data or end of stream.")                    \
  X(writes, kCounter, kSum, "writes_total", "writes",                                          \
    "send calls on echo connections.")                                                        \
  X(wakeups, kCounter, kSum, "wakeups_total", "wakeups",                                       \
    "Times the worker's eventfd woke its loop (hand-offs and posted tasks).")                 \
  X(loop_iterations, kCounter, kSum, "loop_iterations_total", "loops",                         \
    "Returns from epoll_wait in the worker's loop.")                                          \
  X(backpressure_pauses, kCounter, kSum, "backpressure_pauses_total", "pauses",                \
    "Times a connection's pending output reached high_water_mark and reading from it stopped.") \
  X(errors, kCounter, kSum, "errors_total", "errors",                                          \
    "Echo connections closed because of a socket error.")                                     \
  X(idle_timeouts, kCounter, kSum, "idle_timeouts_total", "idle_timeouts",                     \
    "Echo connections closed after idle_timeout_ms without traffic.")                         \
  X(pending_output_bytes, kGauge, kSum, "pending_output_bytes", "",                            \
    "Bytes queued for slow readers, summed over the worker's connections.")                   \
  X(pending_output_peak_bytes, kGauge, kMax, "pending_output_peak_bytes", "",                  \
    "Largest pending output one connection of the worker has held.")                          \
  X(connections_drained, kCounter, kSum, "connections_drained_total", "drained",               \
    "Connections closed at shutdown after all their output was delivered.")                   \
  X(connections_cut, kCounter, kSum, "connections_cut_total", "cut",                           \
    "Connections closed at shutdown with output still pending.")                              \
  X(buffered_bytes, kGauge, kSum, "buffered_bytes", "",                                        \
    "Memory held by the worker's output buffers: what counts against max_buffered_bytes.")    \
  X(overload_pauses, kCounter, kSum, "overload_pauses_total", "",                              \
    "Times the process buffer budget paused reading from a connection (its queue was among "  \
    "the largest past half the budget, or nothing was left to read into).")
// clang-format on

// A plain copy of one worker's counters (or of their sum).
struct WorkerStatsSnapshot {
#define MR_SNAPSHOT_FIELD(name, ...) std::uint64_t name = 0;
  MR_WORKER_COUNTERS(MR_SNAPSHOT_FIELD)
#undef MR_SNAPSHOT_FIELD

  WorkerStatsSnapshot& operator+=(const WorkerStatsSnapshot& other);
};

// The live counters of one worker, one named member per counter of the list, so the data path
// stays a plain relaxed add (`stats.reads.add(1)`). Written only on the owning worker's thread.
class WorkerStats {
 public:
  using Counter = RelaxedCounter;

#define MR_LIVE_COUNTER(name, ...) Counter name;
  MR_WORKER_COUNTERS(MR_LIVE_COUNTER)
#undef MR_LIVE_COUNTER

  // Thread-safe.
  WorkerStatsSnapshot snapshot() const;
};

// What the list says about one counter, for the code that renders or reads them all.
enum class CounterKind : std::uint8_t { kCounter, kGauge };
enum class CounterMerge : std::uint8_t { kSum, kMax };

struct WorkerCounterInfo {
  std::string_view name;
  std::uint64_t WorkerStatsSnapshot::*member;
  CounterKind kind;
  CounterMerge merge;
  std::string_view metric;
  std::string_view brief;
  std::string_view help;
};

#define MR_COUNTER_INFO(name, kind, merge, metric, brief, help)                                 \
  WorkerCounterInfo{                                                                            \
      #name, &WorkerStatsSnapshot::name, CounterKind::kind, CounterMerge::merge, metric, brief, \
      help},
inline constexpr WorkerCounterInfo kWorkerCounters[] = {MR_WORKER_COUNTERS(MR_COUNTER_INFO)};
#undef MR_COUNTER_INFO

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

// "accepted=7 closed=4 bytes_in=..." — the counters with a `brief` key in the list, for the final
// per-worker stats log line.
std::string format_brief_fields(const WorkerStatsSnapshot& stats);

}  // namespace mr
