// bench/matrix.py on a one-point grid against our own server: the files a user gets, and the
// echo check every peer in bench/peers/ passes before it is measured (a peer whose runtime is
// not installed is skipped, saying which). No plots (gnuplot is the run-matrix wrapper's to
// install).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs bench/matrix.py on `grid` (a grid file's text) in a fresh folder `dir`; results in
// dir/out, its output in dir/log.txt.
void run_matrix(const std::filesystem::path& dir, const std::string& grid) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "grid.conf") << grid;
  const std::string command = fmt::format(
      "PATH=/usr/bin:/bin:$PATH python3 {}/bench/matrix.py --config {} --out {} --build {} "
      "> {} 2>&1",
      MR_SOURCE_DIR, (dir / "grid.conf").string(), (dir / "out").string(), MR_BUILD_DIR,
      (dir / "log.txt").string());
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(dir / "log.txt");
}

TEST(RunMatrix, ATinyGridWritesRawReportsCsvAndSummary) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / fmt::format("matrix-test-{}", getpid());
  ASSERT_NO_FATAL_FAILURE(
      run_matrix(dir,
                 "workers = 2\nconnections = 4\nsizes = 32\npipelines = 2\n"
                 "duration = 0.3\nwarmup = 0.1\nclient_threads = 1\npeers =\n"));

  const std::string csv = read_text(dir / "out" / "results.csv");
  std::istringstream lines(csv);
  std::string header;
  std::string row;
  std::getline(lines, header);
  std::getline(lines, row);
  EXPECT_EQ(header.rfind("target,variant,workers,connections,size,pipeline,messages_per_s", 0), 0U);
  EXPECT_EQ(row.rfind("multireactor,acceptor,2,4,32,2,", 0), 0U) << csv;
  EXPECT_NE(row.find(",True,0,"), std::string::npos) << "not clean: " << row;
  EXPECT_TRUE(fs::exists(dir / "out" / "raw" / "multireactor-acceptor-w2-c4-s32-p2.json"));
  const std::string summary = read_text(dir / "out" / "summary.md");
  EXPECT_NE(summary.find("## 32-byte messages, pipeline 2"), std::string::npos) << summary;
  EXPECT_NE(summary.find("Runs not clean: 0"), std::string::npos) << summary;
  fs::remove_all(dir);
}

TEST(RunMatrix, RoundsAreTakenInTurnAndTheSummaryComparesVariantsWithTheDefault) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / fmt::format("matrix-rounds-{}", getpid());
  ASSERT_NO_FATAL_FAILURE(run_matrix(
      dir,
      "workers = 1\nconnections = 2\nsizes = 32\npipelines = 1\nrounds = 2\n"
      "variants = acceptor reads1\nduration = 0.2\nwarmup = 0.1\nclient_threads = 1\npeers =\n"));

  // Round 1 of both variants comes before round 2 of either.
  std::istringstream lines(read_text(dir / "out" / "results.csv"));
  std::string line;
  std::getline(lines, line);
  std::vector<std::string> order;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // Python's csv ends rows in CRLF
    const std::string variant = line.substr(0, line.find(',', line.find(',') + 1));
    order.push_back(variant + " r" + line.substr(line.rfind(',') + 1));
  }
  const std::vector<std::string> expected{"multireactor,acceptor r1", "multireactor,reads1 r1",
                                          "multireactor,acceptor r2", "multireactor,reads1 r2"};
  EXPECT_EQ(order, expected);
  for (int round = 1; round <= 2; ++round) {
    EXPECT_TRUE(fs::exists(dir / "out" / "raw" /
                           fmt::format("multireactor-reads1-w1-c2-s32-p1-r{}.json", round)));
  }
  const std::string summary = read_text(dir / "out" / "summary.md");
  EXPECT_NE(summary.find("median of 2 rounds"), std::string::npos) << summary;
  EXPECT_NE(summary.find("## Variants against the default"), std::string::npos) << summary;
  EXPECT_NE(summary.find("| 1 | 2 | 32 | 1 | "), std::string::npos) << summary;
  EXPECT_NE(summary.find("Runs not clean: 0"), std::string::npos) << summary;
  fs::remove_all(dir);
}

TEST(RunMatrix, APeerRunsBesideUsAndTheSummaryGivesItsRatios) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / fmt::format("matrix-peer-{}", getpid());
  ASSERT_NO_FATAL_FAILURE(
      run_matrix(dir,
                 "workers = 1\nconnections = 2\nsizes = 32\npipelines = 1\n"
                 "duration = 0.3\nwarmup = 0.1\nclient_threads = 1\npeers = asio\n"));

  EXPECT_TRUE(fs::exists(dir / "out" / "raw" / "asio-w1-c2-s32-p1.json"));
  const std::string summary = read_text(dir / "out" / "summary.md");
  EXPECT_NE(summary.find("| asio 1w | ok |"), std::string::npos) << summary;
  EXPECT_NE(summary.find("| connections | multireactor 1w | asio 1w |"), std::string::npos)
      << summary;
  EXPECT_NE(summary.find("## Peer / multireactor: messages/s"), std::string::npos) << summary;
  EXPECT_NE(summary.find("## Peer / multireactor: server CPU time per message"), std::string::npos)
      << summary;
  EXPECT_NE(summary.find("| 32 | 1 | 2 | "), std::string::npos) << summary;
  EXPECT_NE(summary.find("Runs not clean: 0"), std::string::npos) << summary;
  fs::remove_all(dir);
}

// `matrix.py --check NAME`: the seed's pattern in parts and a 16 MiB stream, against one server.
void expect_echo_check_passes(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::path(::testing::TempDir()) / fmt::format("matrix-check-{}-{}", name, getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string command = fmt::format(
      "PATH=/usr/bin:/bin:$PATH python3 {}/bench/matrix.py --check {} --out {} --build {} > {} "
      "2>&1",
      MR_SOURCE_DIR, name, (dir / "out").string(), MR_BUILD_DIR, (dir / "log.txt").string());
  const int status = std::system(command.c_str());
  const std::string log = read_text(dir / "log.txt");
  fs::remove_all(dir);
  if (log.find(name + ": unavailable: ") != std::string::npos) GTEST_SKIP() << log;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log;
  EXPECT_EQ(log, name + ": ok\n");
}

TEST(RunMatrix, OurServerPassesTheEchoCheck) {
  expect_echo_check_passes("multireactor");
}
TEST(RunMatrix, AsioPeerPassesTheEchoCheck) {
  expect_echo_check_passes("asio");
}
TEST(RunMatrix, LibuvPeerPassesTheEchoCheck) {
  expect_echo_check_passes("libuv");
}
TEST(RunMatrix, LibeventPeerPassesTheEchoCheck) {
  expect_echo_check_passes("libevent");
}
TEST(RunMatrix, GoPeerPassesTheEchoCheck) {
  expect_echo_check_passes("go");
}
TEST(RunMatrix, UvloopPeerPassesTheEchoCheck) {
  expect_echo_check_passes("uvloop");
}
TEST(RunMatrix, NodePeerPassesTheEchoCheck) {
  expect_echo_check_passes("node");
}
// The seed's selectors server is not here: it is kept as the seed wrote it, one send() per read
// whose unsent rest is lost, so whether it passes depends on the kernel's buffers at the time.
// The matrix checks it like every other server and reports it as broken when it loses bytes.

}  // namespace
