// Load from several generators: --processes against the in-process server, and --rate-sweep
// against a server of known capacity. Bounded runs; assertions are on counts and on the knee's
// step, not on speed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "rate_sweep.hpp"
#include "report_json.hpp"
#include "server/server.hpp"
#include "throttled_server.hpp"

namespace mr::bench {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(EchoBenchProcesses, ThreeProcessesMergeToExactlyWhatTheServerCounted) {
  ServerConfig config;
  config.bind = "127.0.0.1";
  config.port = 0;
  config.workers = 2;
  Server server(config);
  server.start();
  const std::string json_path =
      fmt::format("{}/echo-bench-processes-{}.json", ::testing::TempDir(), getpid());
  const std::string command = fmt::format(
      "{} --port {} --connections 31 --threads 3 --size 100 --pipeline 2 --duration 0.3 "
      "--warmup 0.1 --processes 3 --progress off --json {} >/dev/null",
      MR_ECHO_BENCH_PATH, server.port(), json_path);
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  BenchReport merged;
  std::string error;
  ASSERT_TRUE(parse_report_json(slurp(json_path), merged, error)) << error;
  std::remove(json_path.c_str());
  EXPECT_EQ(merged.processes, 3U);
  EXPECT_EQ(merged.threads, 3U);
  EXPECT_EQ(merged.options.connections, 31U);
  EXPECT_EQ(merged.totals.connections_opened, 31U);
  EXPECT_EQ(merged.errors(), 0U);
  EXPECT_GT(merged.totals.messages_sent, 0U);
  EXPECT_EQ(merged.totals.messages_received, merged.totals.messages_sent);
  EXPECT_GT(merged.latency.count(), 0U);

  const WorkerStatsSnapshot total = aggregate(server.worker_stats());
  EXPECT_EQ(total.connections_accepted, 31U);
  EXPECT_EQ(total.bytes_received, merged.totals.bytes_sent);
  EXPECT_EQ(total.bytes_sent, merged.totals.bytes_received);
  EXPECT_EQ(total.bytes_received, merged.totals.messages_sent * 100);
}

TEST(EchoBenchRateSweep, FindsTheKneeOfAServerWithAKnownCapacityWithinOneStep) {
  // 2 ms per message: 500 messages/s at most, whatever the machine.
  test::ThrottledEchoServer server(64, 2000);
  BenchOptions o;
  o.port = server.port();
  o.connections = 4;
  o.threads = 1;
  o.size = 64;
  o.pipeline = 256;  // the connections never hold the load back: the server's queue does
  o.warmup_s = 0.3;
  o.duration_s = 1.0;
  o.drain_timeout_s = 20;
  o.progress = 0;
  o.sweep_from = 200;
  o.sweep_to = 800;
  o.sweep_step = 200;
  // Below capacity the p99 is a few slots; above it the queue grows by (rate - 500) messages a
  // second, 2 ms each: at 600/s over 1.3 s it reaches 260 ms. 100 ms sits far from both.
  o.slo_p99_ms = 100;
  const BenchReport report = run_rate_sweep(o, nullptr, nullptr);
  std::string curve;
  for (const RateStep& s : report.sweep.steps)
    curve += fmt::format("{}/s p99 {} ns {}; ", s.rate, s.p99_ns, s.meets_slo);
  ASSERT_TRUE(report.sweep.found) << curve;
  EXPECT_LE(report.sweep.knee_rate, server.capacity_per_s()) << curve;
  EXPECT_GT(report.sweep.knee_rate, server.capacity_per_s() - o.sweep_step) << curve;
  // The sweep stopped at the first miss, the step after the knee.
  ASSERT_GE(report.sweep.steps.size(), 2U);
  EXPECT_FALSE(report.sweep.steps.back().meets_slo) << curve;
  EXPECT_DOUBLE_EQ(report.sweep.steps.back().rate, report.sweep.knee_rate + o.sweep_step);
  EXPECT_DOUBLE_EQ(report.options.rate, report.sweep.knee_rate);

  BenchReport back;
  std::string error;
  ASSERT_TRUE(parse_report_json(format_report_json(report), back, error)) << error;
}

TEST(EchoBenchMerge, TheCommandSumsTheFilesAndWritesTheMergedReport) {
  const std::string dir = ::testing::TempDir();
  const std::string stem = fmt::format("{}/echo-bench-merge-{}", dir, getpid());
  std::vector<BenchReport> runs(2);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    BenchReport& r = runs[i];
    r.options.connections = 3;
    r.totals.connections_opened = 3;
    r.totals.messages_sent = r.totals.messages_received = 100 * (i + 1);
    r.totals.bytes_sent = r.totals.bytes_received = 6400 * (i + 1);
    r.measured_seconds = 1;
    for (std::uint64_t v = 1; v <= 100 * (i + 1); ++v)
      r.latency.record(v * 1000 * (i + 1));
    std::ofstream(fmt::format("{}-{}.json", stem, i)) << format_report_json(r);
  }
  const std::string out = stem + "-merged.json";
  const std::string command = fmt::format("{} merge {}-0.json {}-1.json --json {} >{}.txt",
                                          MR_ECHO_BENCH_PATH, stem, stem, out, stem);
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  BenchReport merged;
  std::string error;
  ASSERT_TRUE(parse_report_json(slurp(out), merged, error)) << error;
  EXPECT_EQ(merged.totals.messages_sent, 300U);
  EXPECT_EQ(merged.totals.bytes_received, 19200U);
  EXPECT_EQ(merged.options.connections, 6U);
  LatencyHistogram all = runs[0].latency;
  all.add(runs[1].latency);
  EXPECT_EQ(merged.latency.percentile(99), all.percentile(99));
  EXPECT_NE(slurp(stem + ".txt").find("2 runs merged"), std::string::npos) << slurp(stem + ".txt");

  const std::string missing =
      fmt::format("{} merge {}-none.json 2>/dev/null >/dev/null", MR_ECHO_BENCH_PATH, stem);
  const int status = std::system(missing.c_str());
  EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1);
  for (const char* suffix : {"-0.json", "-1.json", "-merged.json", ".txt"})
    std::remove((stem + suffix).c_str());
}

}  // namespace
}  // namespace mr::bench
