// `echo-bench merge` on synthetic runs: sums are sums and percentiles are those of one histogram
// that saw every value, after a round trip through the JSON files.
#include "report_merge.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "report_json.hpp"

namespace mr::bench {
namespace {

BenchReport synthetic_run(unsigned seed, std::uint64_t connections, LatencyHistogram& all) {
  BenchReport r;
  r.options.connections = connections;
  r.options.size = 64;
  r.options.duration_s = 2;
  r.threads = 2;
  r.measured_seconds = 2;
  r.totals.connections_opened = connections;
  r.totals.messages_sent = 1000 * seed + 7;
  r.totals.messages_received = r.totals.messages_sent;
  r.totals.bytes_sent = r.totals.messages_sent * 64;
  r.totals.bytes_received = r.totals.bytes_sent;
  r.totals.window_messages = 900 * seed;
  r.totals.window_bytes = r.totals.window_messages * 64;
  r.totals.io_errors = seed;
  std::mt19937_64 random(seed);
  // Each run has its own latency distribution, so averaging percentiles would be wrong.
  std::lognormal_distribution<double> latency(9.0 + seed, 0.8);
  for (int i = 0; i < 20'000; ++i) {
    const auto v = static_cast<std::uint64_t>(latency(random));
    r.latency.record(v);
    all.record(v);
  }
  r.connect_latency.record(1000 * seed);
  return r;
}

TEST(ReportMerge, MergingThreeRunsSumsCountsAndTakesPercentilesOfAllTheirValues) {
  LatencyHistogram all;
  std::vector<BenchReport> runs;
  for (unsigned seed = 1; seed <= 3; ++seed) {
    // Through the file format, as `echo-bench merge` reads them.
    BenchReport back;
    std::string error;
    ASSERT_TRUE(
        parse_report_json(format_report_json(synthetic_run(seed, 10 * seed, all)), back, error))
        << error;
    runs.push_back(back);
  }
  const BenchReport merged = merge_reports(runs);
  EXPECT_EQ(merged.options.connections, 60U);
  EXPECT_EQ(merged.threads, 6U);
  EXPECT_EQ(merged.totals.connections_opened, 60U);
  EXPECT_EQ(merged.totals.messages_sent, 6000U + 21);
  EXPECT_EQ(merged.totals.bytes_sent, (6000U + 21) * 64);
  EXPECT_EQ(merged.totals.bytes_received, merged.totals.bytes_sent);
  EXPECT_EQ(merged.totals.window_messages, 900U * 6);
  EXPECT_EQ(merged.totals.io_errors, 6U);
  EXPECT_EQ(merged.errors(), 6U);
  EXPECT_DOUBLE_EQ(merged.messages_per_second(), 900.0 * 6 / 2);

  EXPECT_EQ(merged.latency.count(), all.count());
  EXPECT_EQ(merged.latency.counts(), all.counts());
  EXPECT_EQ(merged.latency.min(), all.min());
  EXPECT_EQ(merged.latency.max(), all.max());
  EXPECT_DOUBLE_EQ(merged.latency.mean(), all.mean());
  for (const double p : {50.0, 90.0, 99.0, 99.9})
    EXPECT_EQ(merged.latency.percentile(p), all.percentile(p)) << p;
  EXPECT_EQ(merged.connect_latency.count(), 3U);
  EXPECT_EQ(merged.connect_latency.max(), 3000U);
}

TEST(ReportMerge, TheServerSideComesFromTheRunThatReadItOverTheWidestWindow) {
  LatencyHistogram ignored;
  std::vector<BenchReport> runs{synthetic_run(1, 5, ignored), synthetic_run(2, 5, ignored),
                                synthetic_run(3, 5, ignored)};
  runs[1].server.requested = true;
  runs[1].server.ok = true;
  runs[1].server.bytes_received = 100;
  runs[1].server.workers = {ServerWorkerShare{0, 3, 50, 50, 1, 0},
                            ServerWorkerShare{1, 2, 50, 50, 1, 0}};
  runs[2].server = runs[1].server;
  runs[2].server.bytes_received = 500;
  runs[2].server.workers[0].connections = 8;
  const BenchReport merged = merge_reports(runs);
  ASSERT_TRUE(merged.server.ok);
  EXPECT_EQ(merged.server.bytes_received, 500U);
  ASSERT_EQ(merged.server.workers.size(), 2U);
  EXPECT_EQ(merged.server.workers[0].connections, 8U);
}

TEST(ReportJson, EveryFigureSurvivesTheRoundTrip) {
  LatencyHistogram ignored;
  BenchReport r = synthetic_run(2, 7, ignored);
  r.options.rate = 5000;
  r.latency_uncorrected.record(42);
  r.server.requested = true;
  r.server.ok = true;
  r.server.workers = {ServerWorkerShare{4, 1, 2, 3, 4, 5}};
  r.server.messages_imbalance = std::numeric_limits<double>::infinity();
  r.server.has_cpu = true;
  r.server.cpu_user_s = 1.5;
  BenchReport back;
  std::string error;
  ASSERT_TRUE(parse_report_json(format_report_json(r), back, error)) << error;
  EXPECT_EQ(format_report_json(back), format_report_json(r));
  EXPECT_EQ(back.latency_uncorrected.count(), 1U);
  EXPECT_EQ(back.server.workers[0].bytes_sent, 3U);
  EXPECT_TRUE(std::isinf(back.server.messages_imbalance));
}

TEST(ReportJson, SixtyFourBitCountersReadBackExactly) {
  BenchReport r;
  r.totals.bytes_sent = 18446744073709551615ULL;
  r.totals.messages_sent = 9007199254740993ULL;  // 2^53 + 1: a double would round it
  BenchReport back;
  std::string error;
  ASSERT_TRUE(parse_report_json(format_report_json(r), back, error)) << error;
  EXPECT_EQ(back.totals.bytes_sent, 18446744073709551615ULL);
  EXPECT_EQ(back.totals.messages_sent, 9007199254740993ULL);
}

TEST(ReportJson, WhatIsNotAnEchoBenchReportIsRefusedWithAReason) {
  BenchReport out;
  for (const char* text : {"", "{", "[]", "{\"tool\": \"wrk\"}",
                           R"({"tool": "echo-bench", "latency_ns": {"histogram": "HISTFAAAxx"}})",
                           R"({"tool": "echo-bench", "totals": {"bytes_sent": "many"}})"}) {
    std::string error;
    EXPECT_FALSE(parse_report_json(text, out, error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
}

}  // namespace
}  // namespace mr::bench
