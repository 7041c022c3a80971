// bench/matrix.py on a one-point grid against our own server: the files a user gets. No peers
// and no plots (gnuplot is the run-matrix wrapper's to install), so only python3 is needed.
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

}  // namespace
