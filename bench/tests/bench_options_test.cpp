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

}  // namespace
}  // namespace mr::bench
