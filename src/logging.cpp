#include "multireactor/logging.hpp"

#include <memory>
#include <vector>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace mr {

void set_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

std::string setup_logging(const ServerConfig& config) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (!config.log_file.empty()) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.log_file));
    } catch (const spdlog::spdlog_ex& e) {
      return "config error: log_file = '" + config.log_file + "': cannot be opened (" + e.what() +
             ")";
    }
  }
  auto logger = std::make_shared<spdlog::logger>("multireactor", sinks.begin(), sinks.end());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");
  spdlog::set_default_logger(logger);
  set_log_level(config.log_level);
  spdlog::flush_on(spdlog::level::info);
  return "";
}

}  // namespace mr
