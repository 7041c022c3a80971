// bench/matrix.py on a one-point grid against our own server: the files a user gets. No peers
// and no plots (gnuplot is the run-matrix wrapper's to install), so only python3 is needed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(RunMatrix, ATinyGridWritesRawReportsCsvAndSummary) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / fmt::format("matrix-test-{}", getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream conf(dir / "tiny.conf");
    conf << "workers = 2\nconnections = 4\nsizes = 32\npipelines = 2\n"
         << "duration = 0.3\nwarmup = 0.1\nclient_threads = 1\npeers =\n";
  }
  const std::string command = fmt::format(
      "PATH=/usr/bin:/bin:$PATH python3 {}/bench/matrix.py --config {} --out {} --build {} "
      "> {} 2>&1",
      MR_SOURCE_DIR, (dir / "tiny.conf").string(), (dir / "out").string(), MR_BUILD_DIR,
      (dir / "log.txt").string());
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_text(dir / "log.txt");

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

}  // namespace
