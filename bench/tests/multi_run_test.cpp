// Load from several generators: --processes against the in-process server, and --rate-sweep
// against a server of known capacity. Bounded runs; assertions are on counts and on the knee's
// step, not on speed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "multireactor/server.hpp"
#include "rate_sweep.hpp"
#include "report_json.hpp"
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

}  // namespace
}  // namespace mr::bench
