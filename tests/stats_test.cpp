#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "multireactor/stats.hpp"

namespace mr {
namespace {

WorkerStatsSnapshot numbered(std::uint64_t base) {
  // Every field gets a distinct value, so a field left out of a sum shows.
  WorkerStatsSnapshot s;
  s.connections_active = base + 1;
  s.connections_accepted = base + 2;
  s.connections_closed = base + 3;
  s.bytes_received = base + 4;
  s.bytes_sent = base + 5;
  s.reads = base + 6;
  s.writes = base + 7;
  s.wakeups = base + 8;
  s.loop_iterations = base + 9;
  s.backpressure_pauses = base + 10;
  s.errors = base + 11;
  s.idle_timeouts = base + 12;
  s.pending_output_bytes = base + 13;
  s.pending_output_peak_bytes = base + 14;
  s.connections_drained = base + 15;
  s.connections_cut = base + 16;
  s.buffered_bytes = base + 17;
  s.overload_pauses = base + 18;
  return s;
}

TEST(StatsAggregate, OfNoWorkersIsAllZero) {
  const WorkerStatsSnapshot total = aggregate({});
  EXPECT_EQ(total.connections_accepted, 0u);
  EXPECT_EQ(total.bytes_sent, 0u);
  EXPECT_EQ(total.pending_output_peak_bytes, 0u);
}

TEST(StatsAggregate, SumsEveryCounterAcrossWorkers) {
  const std::vector<WorkerStatsSnapshot> workers{numbered(100), numbered(2000), numbered(30000)};
  const WorkerStatsSnapshot total = aggregate(workers);
  const std::uint64_t bases = 100 + 2000 + 30000;
  EXPECT_EQ(total.connections_active, bases + 3 * 1);
  EXPECT_EQ(total.connections_accepted, bases + 3 * 2);
  EXPECT_EQ(total.connections_closed, bases + 3 * 3);
  EXPECT_EQ(total.bytes_received, bases + 3 * 4);
  EXPECT_EQ(total.bytes_sent, bases + 3 * 5);
  EXPECT_EQ(total.reads, bases + 3 * 6);
  EXPECT_EQ(total.writes, bases + 3 * 7);
  EXPECT_EQ(total.wakeups, bases + 3 * 8);
  EXPECT_EQ(total.loop_iterations, bases + 3 * 9);
  EXPECT_EQ(total.backpressure_pauses, bases + 3 * 10);
  EXPECT_EQ(total.errors, bases + 3 * 11);
  EXPECT_EQ(total.idle_timeouts, bases + 3 * 12);
  EXPECT_EQ(total.pending_output_bytes, bases + 3 * 13);
  EXPECT_EQ(total.connections_drained, bases + 3 * 15);
  EXPECT_EQ(total.connections_cut, bases + 3 * 16);
  EXPECT_EQ(total.buffered_bytes, bases + 3 * 17);
  EXPECT_EQ(total.overload_pauses, bases + 3 * 18);
}

TEST(StatsAggregate, PeakIsTheLargestOfAnyWorkerNotTheSum) {
  std::vector<WorkerStatsSnapshot> workers(3);
  workers[0].pending_output_peak_bytes = 4096;
  workers[1].pending_output_peak_bytes = 65536;
  workers[2].pending_output_peak_bytes = 1000;
  EXPECT_EQ(aggregate(workers).pending_output_peak_bytes, 65536u);
}

TEST(StatsAggregate, PlusEqualsMatchesAggregate) {
  WorkerStatsSnapshot sum = numbered(5);
  sum += numbered(70);
  const std::vector<WorkerStatsSnapshot> both{numbered(5), numbered(70)};
  const WorkerStatsSnapshot total = aggregate(both);
  EXPECT_EQ(sum.bytes_received, total.bytes_received);
  EXPECT_EQ(sum.connections_cut, total.connections_cut);
  EXPECT_EQ(sum.pending_output_peak_bytes, total.pending_output_peak_bytes);
}

TEST(StatsImbalance, EvenSharesAreOne) {
  const std::vector<std::uint64_t> even{250, 250, 250, 250};
  EXPECT_DOUBLE_EQ(imbalance(even), 1.0);
}

TEST(StatsImbalance, IsMaxShareOverMinShare) {
  const std::vector<std::uint64_t> values{100, 300, 200};
  EXPECT_DOUBLE_EQ(imbalance(values), 3.0);
  const std::vector<std::uint64_t> pair{2, 3};
  EXPECT_DOUBLE_EQ(imbalance(pair), 1.5);
}

TEST(StatsImbalance, AWorkerWithNothingIsInfinitelyImbalanced) {
  const std::vector<std::uint64_t> values{10, 0, 10};
  EXPECT_TRUE(std::isinf(imbalance(values)));
  EXPECT_GT(imbalance(values), 0.0);
}

TEST(StatsImbalance, NoWorkOrNoWorkersIsBalanced) {
  EXPECT_DOUBLE_EQ(imbalance({}), 1.0);
  const std::vector<std::uint64_t> zeros{0, 0, 0};
  EXPECT_DOUBLE_EQ(imbalance(zeros), 1.0);
  const std::vector<std::uint64_t> one{42};
  EXPECT_DOUBLE_EQ(imbalance(one), 1.0);
}

TEST(WorkerStatsCounter, AddSubSetAndRaiseTo) {
  WorkerStats::Counter c;
  EXPECT_EQ(c.get(), 0u);
  c.add(10);
  c.add(5);
  EXPECT_EQ(c.get(), 15u);
  c.sub(4);
  EXPECT_EQ(c.get(), 11u);
  c.raise_to(7);
  EXPECT_EQ(c.get(), 11u) << "raise_to never lowers";
  c.raise_to(30);
  EXPECT_EQ(c.get(), 30u);
  c.set(3);
  EXPECT_EQ(c.get(), 3u);
}

TEST(WorkerStats, SnapshotCopiesEveryCounter) {
  WorkerStats stats;
  const WorkerStatsSnapshot want = numbered(1000);
  stats.connections_active.set(want.connections_active);
  stats.connections_accepted.set(want.connections_accepted);
  stats.connections_closed.set(want.connections_closed);
  stats.bytes_received.set(want.bytes_received);
  stats.bytes_sent.set(want.bytes_sent);
  stats.reads.set(want.reads);
  stats.writes.set(want.writes);
  stats.wakeups.set(want.wakeups);
  stats.loop_iterations.set(want.loop_iterations);
  stats.backpressure_pauses.set(want.backpressure_pauses);
  stats.errors.set(want.errors);
  stats.idle_timeouts.set(want.idle_timeouts);
  stats.pending_output_bytes.set(want.pending_output_bytes);
  stats.pending_output_peak_bytes.set(want.pending_output_peak_bytes);
  stats.connections_drained.set(want.connections_drained);
  stats.connections_cut.set(want.connections_cut);
  stats.buffered_bytes.set(want.buffered_bytes);
  stats.overload_pauses.set(want.overload_pauses);
  const WorkerStatsSnapshot got = stats.snapshot();
  EXPECT_EQ(got.connections_active, want.connections_active);
  EXPECT_EQ(got.connections_accepted, want.connections_accepted);
  EXPECT_EQ(got.connections_closed, want.connections_closed);
  EXPECT_EQ(got.bytes_received, want.bytes_received);
  EXPECT_EQ(got.bytes_sent, want.bytes_sent);
  EXPECT_EQ(got.reads, want.reads);
  EXPECT_EQ(got.writes, want.writes);
  EXPECT_EQ(got.wakeups, want.wakeups);
  EXPECT_EQ(got.loop_iterations, want.loop_iterations);
  EXPECT_EQ(got.backpressure_pauses, want.backpressure_pauses);
  EXPECT_EQ(got.errors, want.errors);
  EXPECT_EQ(got.idle_timeouts, want.idle_timeouts);
  EXPECT_EQ(got.pending_output_bytes, want.pending_output_bytes);
  EXPECT_EQ(got.pending_output_peak_bytes, want.pending_output_peak_bytes);
  EXPECT_EQ(got.connections_drained, want.connections_drained);
  EXPECT_EQ(got.buffered_bytes, want.buffered_bytes);
  EXPECT_EQ(got.overload_pauses, want.overload_pauses);
  EXPECT_EQ(got.connections_cut, want.connections_cut);
}

TEST(WorkerStats, ReadersOnOtherThreadsSeeOnlyWholeGrowingValues) {
  // One writer (as a worker thread), one reader taking snapshots meanwhile: every value read is
  // one the writer stored (never torn, never going backwards), and the last one is exact.
  WorkerStats stats;
  constexpr std::uint64_t kSteps = 200000;
  constexpr std::uint64_t kStep = 0x100000001ULL;  // touches both 32-bit halves
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < kSteps; ++i)
      stats.bytes_received.add(kStep);
    done.store(true, std::memory_order_release);
  });
  std::uint64_t last = 0;
  bool monotonic = true;
  bool whole = true;
  while (!done.load(std::memory_order_acquire)) {
    const std::uint64_t now = stats.snapshot().bytes_received;
    monotonic = monotonic && now >= last;
    whole = whole && now % kStep == 0;
    last = now;
  }
  writer.join();
  EXPECT_TRUE(monotonic);
  EXPECT_TRUE(whole);
  EXPECT_EQ(stats.snapshot().bytes_received, kSteps * kStep);
}

TEST(StatsLine, ReportsTotalsAndPerWorkerActiveConnections) {
  std::vector<WorkerStatsSnapshot> workers(3);
  workers[0].connections_active = 11;
  workers[1].connections_active = 22;
  workers[2].connections_active = 33;
  workers[0].bytes_received = 1234;
  workers[2].bytes_sent = 5678;
  workers[1].backpressure_pauses = 9;
  const WorkerStatsSnapshot total = aggregate(workers);
  const std::string line = format_stats_line(total, workers);
  EXPECT_NE(line.find("active=66"), std::string::npos) << line;
  EXPECT_NE(line.find("in=1234"), std::string::npos) << line;
  EXPECT_NE(line.find("out=5678"), std::string::npos) << line;
  EXPECT_NE(line.find("pauses=9"), std::string::npos) << line;
  EXPECT_NE(line.find("[11,22,33]"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one line";
}

}  // namespace
}  // namespace mr
