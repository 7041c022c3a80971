// Log records for containers: the JSON shape, the rotating file, reopening after logrotate, and
// what SIGHUP may change.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "admin_http.hpp"
#include "log/json_log_formatter.hpp"
#include "log/log_file_sink.hpp"
#include "log/logging.hpp"
#include "server/config_reload.hpp"

namespace mr {
namespace {

using nlohmann::json;

std::string format_json(const std::string& message, spdlog::level::level_enum level) {
  JsonLogFormatter formatter;
  spdlog::details::log_msg msg("multireactor", level, message);
  spdlog::memory_buf_t out;
  formatter.format(msg, out);
  return std::string(out.data(), out.size());
}

TEST(JsonLog, OneObjectPerLineWithTimeLevelThreadAndTheMessageEscaped) {
  const std::string message = "quote \" backslash \\ newline \n tab \t bell \x07 end";
  const std::string text = format_json(message, spdlog::level::warn);
  ASSERT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "exactly one line";
  const json record = json::parse(text);
  EXPECT_EQ(record["message"], message);
  EXPECT_EQ(record["level"], "warning");
  EXPECT_EQ(record["logger"], "multireactor");
  EXPECT_TRUE(record["tid"].is_number_unsigned());
  EXPECT_TRUE(record["thread"].is_string());
  EXPECT_FALSE(record.contains("worker"));
  // RFC 3339 in UTC with microseconds: 2024-05-01T12:00:00.123456Z
  const std::string time = record["time"];
  ASSERT_EQ(time.size(), 27u) << time;
  EXPECT_EQ(time[10], 'T');
  EXPECT_EQ(time[19], '.');
  EXPECT_EQ(time.back(), 'Z');
}

TEST(JsonLog, WorkerThreadsCarryTheirNameAndIndex) {
  std::string text;
  std::thread worker([&] {
    set_thread_log_name("worker-7", 7);
    text = format_json("hello", spdlog::level::info);
  });
  worker.join();
  const json record = json::parse(text);
  EXPECT_EQ(record["thread"], "worker-7");
  EXPECT_EQ(record["worker"], 7);
  EXPECT_EQ(record["level"], "info");
}

// A logger writing only to `sink`, with a plain "%v" pattern so sizes are predictable.
std::shared_ptr<spdlog::logger> logger_for(std::shared_ptr<RotatingFileSink> sink) {
  auto logger = std::make_shared<spdlog::logger>("rotation-test", std::move(sink));
  logger->set_pattern("%v");
  logger->flush_on(spdlog::level::info);
  return logger;
}

TEST(LogFile, RotatesBySizeAndKeepsLogFileCountOlderFiles) {
  test::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.file("server.log");
  auto sink = std::make_shared<RotatingFileSink>(path, 1000, 2);
  auto logger = logger_for(sink);
  for (int i = 0; i < 100; ++i)
    logger->info("line {:04} {}", i, std::string(40, 'x'));  // 51 B
  logger->flush();

  namespace fs = std::filesystem;
  ASSERT_TRUE(fs::exists(path));
  ASSERT_TRUE(fs::exists(path + ".1"));
  ASSERT_TRUE(fs::exists(path + ".2"));
  EXPECT_FALSE(fs::exists(path + ".3")) << "log_file_count = 2 keeps two older files";
  for (const std::string& file : {path, path + ".1", path + ".2"}) {
    EXPECT_LE(fs::file_size(file), 1000u) << file;
  }
  // Oldest to newest: .2, .1, current; the newest line is last in the current file.
  std::vector<std::string> all;
  for (const std::string& file : {path + ".2", path + ".1", path}) {
    for (auto& line : test::lines_of(test::read_file(file)))
      all.push_back(line);
  }
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back().substr(0, 9), "line 0099");
  for (std::size_t i = 1; i < all.size(); ++i)
    EXPECT_LT(all[i - 1], all[i]) << "order";
}

TEST(LogFile, ReopenAfterTheFileWasMovedContinuesInANewFile) {
  test::TempDir dir;
  const std::string path = dir.file("server.log");
  auto sink = std::make_shared<RotatingFileSink>(path, 1 << 20, 3);
  auto logger = logger_for(sink);
  logger->info("before rotation");
  ASSERT_EQ(std::rename(path.c_str(), (path + ".moved").c_str()), 0);
  logger->info("still the old file until reopened");
  EXPECT_EQ(sink->reopen(), "");
  logger->info("after reopen");
  logger->flush();
  EXPECT_EQ(test::read_file(path + ".moved"),
            "before rotation\nstill the old file until reopened\n");
  EXPECT_EQ(test::read_file(path), "after reopen\n");
}

TEST(LogFile, ReopenReportsAFileThatCannotBeOpened) {
  test::TempDir dir;
  const std::string sub = dir.file("gone");
  std::filesystem::create_directory(sub);
  auto sink = std::make_shared<RotatingFileSink>(sub + "/server.log", 1 << 20, 1);
  std::filesystem::remove_all(sub);
  // A regular file where the directory was: the log file can be neither opened nor created.
  ASSERT_TRUE(test::write_file(sub, "not a directory"));
  EXPECT_NE(sink->reopen(), "");
}

TEST(LoggingSetup, UnopenableLogFileIsAConfigError) {
  ServerConfig config;
  config.log_file = "/proc/no/such/dir/server.log";
  const std::string error = setup_logging(config);
  EXPECT_NE(error.find("log_file"), std::string::npos) << error;
  setup_logging(ServerConfig{});  // leave the default logger usable for the tests after this one
}

TEST(ConfigReload, AppliesLogLevelAndReportsEveryOtherChangeAsNeedingARestart) {
  ServerConfig running;
  running.workers = 2;
  ServerConfig fresh = running;
  fresh.log_level = "debug";
  fresh.workers = 4;
  fresh.admin_port = 9200;
  const ConfigReload plan = plan_config_reload(running, fresh);
  EXPECT_TRUE(plan.log_level_changed);
  EXPECT_EQ(plan.log_level, "debug");
  ASSERT_EQ(plan.needs_restart.size(), 2u);
  EXPECT_EQ(plan.needs_restart[0], "workers: 2 -> 4");
  EXPECT_EQ(plan.needs_restart[1], "admin_port: 9100 -> 9200");
}

TEST(ConfigReload, NothingChangedMeansNothingToDo) {
  const ServerConfig running;
  const ConfigReload plan = plan_config_reload(running, running);
  EXPECT_FALSE(plan.log_level_changed);
  EXPECT_TRUE(plan.needs_restart.empty());
}

}  // namespace
}  // namespace mr
