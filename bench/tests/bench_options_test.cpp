#include "bench_options.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mr::bench {
namespace {

BenchOptionsOutcome parse(std::vector<std::string> args) {
  args.insert(args.begin(), "echo-bench");
  std::vector<const char*> argv;
  for (const auto& a : args)
    argv.push_back(a.c_str());
  return parse_bench_options(static_cast<int>(argv.size()), argv.data());
}

TEST(BenchOptions, DefaultsArePingPongClosedLoopWithVerification) {
  const auto out = parse({});
  ASSERT_EQ(out.action, BenchOptionsOutcome::Action::kRun) << out.message;
  const BenchOptions& o = out.options;
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 9999);
  EXPECT_EQ(o.pipeline, 1U);
  EXPECT_EQ(o.rate, 0);
  EXPECT_EQ(o.threads, 0U);
  EXPECT_TRUE(o.verify);
  EXPECT_FALSE(o.has_admin);
  EXPECT_TRUE(o.sources.empty());
  EXPECT_EQ(o.mode, BenchMode::kEcho);
}

TEST(BenchOptions, EveryOptionIsRead) {
  const auto out = parse({"--host",
                          "::1",
                          "--port",
                          "7000",
                          "--connections",
                          "10000",
                          "--threads",
                          "3",
                          "--size",
                          "16384",
                          "--pipeline",
                          "16",
                          "--duration",
                          "2.5",
                          "--warmup",
                          "0",
                          "--rate",
                          "50000",
                          "--sources",
                          "127.0.0.2,127.0.0.3",
                          "--connect-rate",
                          "2000",
                          "--admin",
                          "127.0.0.1:9100",
                          "--json",
                          "out.json",
                          "--verify",
                          "off",
                          "--mode",
                          "connect",
                          "--connect-timeout",
                          "3",
                          "--drain-timeout",
                          "4",
                          "--progress",
                          "off"});
  ASSERT_EQ(out.action, BenchOptionsOutcome::Action::kRun) << out.message;
  const BenchOptions& o = out.options;
  EXPECT_EQ(o.host, "::1");
  EXPECT_EQ(o.port, 7000);
  EXPECT_EQ(o.connections, 10000U);
  EXPECT_EQ(o.threads, 3U);
  EXPECT_EQ(o.size, 16384U);
  EXPECT_EQ(o.pipeline, 16U);
  EXPECT_DOUBLE_EQ(o.duration_s, 2.5);
  EXPECT_DOUBLE_EQ(o.warmup_s, 0);
  EXPECT_DOUBLE_EQ(o.rate, 50000);
  EXPECT_EQ(o.sources, (std::vector<std::string>{"127.0.0.2", "127.0.0.3"}));
  EXPECT_DOUBLE_EQ(o.connect_rate, 2000);
  ASSERT_TRUE(o.has_admin);
  EXPECT_EQ(o.admin.host, "127.0.0.1");
  EXPECT_EQ(o.admin.port, 9100);
  EXPECT_EQ(o.json_file, "out.json");
  EXPECT_FALSE(o.verify);
  EXPECT_EQ(o.mode, BenchMode::kConnect);
  EXPECT_DOUBLE_EQ(o.connect_timeout_s, 3);
  EXPECT_DOUBLE_EQ(o.drain_timeout_s, 4);
  EXPECT_EQ(o.progress, 0);
}

TEST(BenchOptions, SourcesMayBeSpaceSeparatedOrRepeated) {
  const auto out = parse({"--sources", "127.0.0.2", "127.0.0.3", "--sources", "localhost"});
  ASSERT_EQ(out.action, BenchOptionsOutcome::Action::kRun) << out.message;
  EXPECT_EQ(out.options.sources, (std::vector<std::string>{"127.0.0.2", "127.0.0.3", "127.0.0.1"}));
}

TEST(BenchOptions, ARepeatedOptionsLastValueWins) {
  const auto out = parse({"--connections", "5", "--connections", "7"});
  ASSERT_EQ(out.action, BenchOptionsOutcome::Action::kRun) << out.message;
  EXPECT_EQ(out.options.connections, 7U);
}

TEST(BenchOptions, ABadValueIsOneLineNamingTheOptionValueAndWhatIsAllowed) {
  struct Case {
    std::vector<std::string> args;
    std::string option;
  };
  const std::vector<Case> cases = {
      {{"--size", "8"}, "--size '8'"},
      {{"--connections", "0"}, "--connections '0'"},
      {{"--pipeline", "many"}, "--pipeline 'many'"},
      {{"--duration", "0"}, "--duration '0'"},
      {{"--duration", "-1"}, "--duration '-1'"},
      {{"--rate", "fast"}, "--rate 'fast'"},
      {{"--host", "example.org"}, "--host 'example.org'"},
      {{"--port", "70000"}, "--port '70000'"},
      {{"--sources", "127.0.0.2,nowhere"}, "--sources '127.0.0.2,nowhere'"},
      {{"--admin", "9100:"}, "--admin '9100:'"},
      {{"--admin", "::1:9100"}, "--admin '::1:9100'"},
      {{"--verify", "maybe"}, "--verify 'maybe'"},
      {{"--mode", "flood"}, "--mode 'flood'"},
  };
  for (const auto& c : cases) {
    const auto out = parse(c.args);
    EXPECT_EQ(out.action, BenchOptionsOutcome::Action::kExitError) << c.option;
    EXPECT_NE(out.message.find(c.option), std::string::npos) << out.message;
    EXPECT_NE(out.message.find("expected"), std::string::npos) << out.message;
    EXPECT_EQ(out.message.find('\n'), std::string::npos) << out.message;
  }
}

TEST(BenchOptions, UnknownOptionsAndMissingValuesAreErrors) {
  EXPECT_EQ(parse({"--conections", "5"}).action, BenchOptionsOutcome::Action::kExitError);
  EXPECT_EQ(parse({"--size"}).action, BenchOptionsOutcome::Action::kExitError);
}

TEST(BenchOptions, HelpAndVersionExitSuccessfully) {
  const auto help = parse({"--help"});
  EXPECT_EQ(help.action, BenchOptionsOutcome::Action::kExitSuccess);
  for (const char* name : {"--connections", "--pipeline", "--rate", "--sources", "--admin",
                           "--json", "--verify", "--connect-rate", "--mode"}) {
    EXPECT_NE(help.message.find(name), std::string::npos) << name;
  }
  const auto version = parse({"--version"});
  EXPECT_EQ(version.action, BenchOptionsOutcome::Action::kExitSuccess);
  EXPECT_EQ(version.message.rfind("echo-bench ", 0), 0U);
}

TEST(BenchOptions, HostPortAcceptsV4V6AndBarePort) {
  HostPort hp;
  ASSERT_TRUE(parse_host_port("127.0.0.1:9100", hp));
  EXPECT_EQ(hp.host, "127.0.0.1");
  EXPECT_EQ(hp.port, 9100);
  ASSERT_TRUE(parse_host_port("[::1]:81", hp));
  EXPECT_EQ(hp.host, "::1");
  EXPECT_EQ(hp.port, 81);
  ASSERT_TRUE(parse_host_port("9200", hp));
  EXPECT_EQ(hp.host, "127.0.0.1");
  EXPECT_EQ(hp.port, 9200);
  ASSERT_TRUE(parse_host_port("localhost:1", hp));
  EXPECT_EQ(hp.host, "127.0.0.1");
  EXPECT_FALSE(parse_host_port("127.0.0.1:0", hp));
  EXPECT_FALSE(parse_host_port("[::1]", hp));
  EXPECT_FALSE(parse_host_port("host.example:80", hp));
  EXPECT_FALSE(parse_host_port("", hp));
}

TEST(BenchOptions, StartAtTakesUnixSecondsRfc3339OrAnOffsetFromNow) {
  double at = 0;
  ASSERT_TRUE(parse_start_at("1767225600", 0, at));
  EXPECT_DOUBLE_EQ(at, 1767225600.0);
  ASSERT_TRUE(parse_start_at("1767225600.25", 0, at));
  EXPECT_DOUBLE_EQ(at, 1767225600.25);
  ASSERT_TRUE(parse_start_at("2026-01-01T00:00:00Z", 0, at));
  EXPECT_DOUBLE_EQ(at, 1767225600.0);
  ASSERT_TRUE(parse_start_at("2026-01-01T01:30:00.5+01:30", 0, at));
  EXPECT_DOUBLE_EQ(at, 1767225600.5);
  ASSERT_TRUE(parse_start_at("2025-12-31T23:00:00-01:00", 0, at));
  EXPECT_DOUBLE_EQ(at, 1767225600.0);
  ASSERT_TRUE(parse_start_at("+2.5", 1000, at));
  EXPECT_DOUBLE_EQ(at, 1002.5);
  for (const char* bad : {"", "soon", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
                          "2026-01-01T00:00:00+1", "-5", "+", "2026-01-01T00:00:00.Z"}) {
    EXPECT_FALSE(parse_start_at(bad, 1000, at)) << bad;
  }
  const auto out = parse({"--start-at", "2026-01-01T00:00:00Z", "--processes", "4"});
  ASSERT_EQ(out.action, BenchOptionsOutcome::Action::kRun) << out.message;
  EXPECT_DOUBLE_EQ(out.options.start_at_unix_s, 1767225600.0);
  EXPECT_EQ(out.options.processes, 4U);
  EXPECT_EQ(parse({"--start-at", "tomorrow"}).action, BenchOptionsOutcome::Action::kExitError);
}

TEST(BenchOptions, RateSweepNeedsItsObjectiveAndThreeIncreasingNumbers) {
  const auto out = parse({"--rate-sweep", "1000:5000:500", "--slo-p99", "2.5"});
  ASSERT_EQ(out.action, BenchOptionsOutcome::Action::kRun) << out.message;
  EXPECT_DOUBLE_EQ(out.options.sweep_from, 1000);
  EXPECT_DOUBLE_EQ(out.options.sweep_to, 5000);
  EXPECT_DOUBLE_EQ(out.options.sweep_step, 500);
  EXPECT_DOUBLE_EQ(out.options.slo_p99_ms, 2.5);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--rate-sweep", "1000:5000:500"},
        {"--slo-p99", "3"},
        {"--rate-sweep", "5000:1000:500", "--slo-p99", "3"},
        {"--rate-sweep", "1000:5000", "--slo-p99", "3"},
        {"--rate-sweep", "1000:5000:0", "--slo-p99", "3"},
        {"--rate-sweep", "1:100000:1", "--slo-p99", "3"},
        {"--rate-sweep", "1000:5000:500", "--slo-p99", "3", "--rate", "10"},
        {"--rate-sweep", "1000:5000:500", "--slo-p99", "3", "--processes", "2"},
        {"--connections", "2", "--processes", "3"}}) {
    const auto result = parse(bad);
    EXPECT_EQ(result.action, BenchOptionsOutcome::Action::kExitError) << bad[0] << " " << bad[1];
    EXPECT_NE(result.message.find("echo-bench:"), std::string::npos) << result.message;
  }
}

}  // namespace
}  // namespace mr::bench
