// An independent decoder agrees with us: echo-bench's histogram, read by hdr-histogram-js from
// npm, gives the count, p50, p99 and max that echo-bench reported, to the histogram's precision
// (the same bucket; HdrHistogram reports a bucket's highest value, we report its middle).
// Label `npm`: skipped, saying why, only when npm cannot install the package.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "latency_histogram.hpp"
#include "server/server.hpp"

namespace mr::bench {
namespace {

struct Output {
  int status = -1;
  std::string text;
};

Output run(const std::string& command) {
  Output out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    out.text.append(buf, n);
  const int status = pclose(pipe);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// hdr-histogram-js installed once per build directory; "" with the reason in `why` otherwise.
std::string installed_module_dir(std::string& why) {
  const std::string dir = std::string(MR_BUILD_DIR) + "/npm-hdr-histogram-js";
  if (std::filesystem::exists(dir + "/node_modules/hdr-histogram-js/package.json")) return dir;
  if (run("command -v node && command -v npm").status != 0) {
    why = "node or npm is not installed";
    return "";
  }
  const Output install = run(fmt::format(
      "timeout 180 npm install --prefix '{}' --no-audit --no-fund --no-save hdr-histogram-js@3",
      dir));
  if (install.status != 0) {
    why = "npm could not install hdr-histogram-js: " + install.text.substr(0, 400);
    return "";
  }
  return dir;
}

std::size_t bucket(std::uint64_t value) {
  return LatencyHistogram::index_of(value);
}

TEST(HdrHistogramJs, DecodesEchoBenchsHistogramToTheSameCountAndPercentiles) {
  std::string why;
  const std::string modules = installed_module_dir(why);
  if (modules.empty()) GTEST_SKIP() << why;

  ServerConfig config;
  config.bind = "127.0.0.1";
  config.port = 0;
  config.workers = 1;
  Server server(config);
  server.start();
  const std::string json_path =
      fmt::format("{}/echo-bench-hdrjs-{}.json", ::testing::TempDir(), getpid());
  const Output bench = run(fmt::format(
      "{} --port {} --connections 8 --threads 1 --pipeline 4 --duration 0.3 --warmup 0.05 "
      "--progress off --json {}",
      MR_ECHO_BENCH_PATH, server.port(), json_path));
  ASSERT_EQ(bench.status, 0) << bench.text;

  std::ifstream in(json_path);
  std::stringstream text;
  text << in.rdbuf();
  const auto ours = nlohmann::json::parse(text.str()).at("latency_ns");
  const Output decoded = run(fmt::format("node '{}/bench/tests/hdr_decode.js' '{}' '{}'",
                                         MR_SOURCE_DIR, json_path, modules));
  std::remove(json_path.c_str());
  ASSERT_EQ(decoded.status, 0) << decoded.text;
  const auto theirs = nlohmann::json::parse(decoded.text, nullptr, false);
  ASSERT_FALSE(theirs.is_discarded()) << decoded.text;

  ASSERT_GT(ours.at("count").get<std::uint64_t>(), 0U);
  EXPECT_EQ(theirs.at("count").get<std::uint64_t>(), ours.at("count").get<std::uint64_t>());
  for (const char* field : {"p50", "p99", "max"}) {
    EXPECT_EQ(bucket(theirs.at(field).get<std::uint64_t>()),
              bucket(ours.at(field).get<std::uint64_t>()))
        << field << ": hdr-histogram-js " << theirs.at(field) << ", echo-bench " << ours.at(field);
  }
}

}  // namespace
}  // namespace mr::bench
