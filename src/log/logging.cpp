#include "log/logging.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <vector>

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "log/json_log_formatter.hpp"
#include "log/log_file_sink.hpp"

namespace mr {
namespace {

constexpr std::size_t kThreadNameBytes = 32;
thread_local char t_name[kThreadNameBytes] = {};
thread_local int t_worker = -1;

std::mutex g_file_sink_mutex;
std::shared_ptr<RotatingFileSink> g_file_sink;  // guarded by g_file_sink_mutex

// %N in the text pattern: the thread's log name, or its kernel thread id.
class ThreadNameFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view name = thread_log_name();
    if (name.empty()) {
      fmt::format_to(std::back_inserter(dest), "{}", msg.thread_id);
    } else {
      dest.append(name.data(), name.data() + name.size());
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ThreadNameFlag>();
  }
};

std::unique_ptr<spdlog::formatter> make_formatter(LogFormat log_format) {
  if (log_format == LogFormat::kJson) return std::make_unique<JsonLogFormatter>();
  auto text = std::make_unique<spdlog::pattern_formatter>();
  text->add_flag<ThreadNameFlag>('N').set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [%N] %v");
  return text;
}

}  // namespace

void set_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

std::string setup_logging(const ServerConfig& config) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  std::shared_ptr<RotatingFileSink> file_sink;
  if (!config.log_file.empty()) {
    try {
      file_sink = std::make_shared<RotatingFileSink>(config.log_file, config.log_file_max_bytes,
                                                     config.log_file_count);
    } catch (const spdlog::spdlog_ex& e) {
      return "config error: log_file = '" + config.log_file + "': cannot be opened (" + e.what() +
             ")";
    }
    sinks.push_back(file_sink);
  }
  auto logger = std::make_shared<spdlog::logger>("multireactor", sinks.begin(), sinks.end());
  logger->set_formatter(make_formatter(config.log_format));
  spdlog::set_default_logger(logger);
  set_log_level(config.log_level);
  spdlog::flush_on(spdlog::level::info);
  std::lock_guard<std::mutex> lock(g_file_sink_mutex);
  g_file_sink = std::move(file_sink);
  return "";
}

std::string reopen_log_file() {
  std::lock_guard<std::mutex> lock(g_file_sink_mutex);
  return g_file_sink ? g_file_sink->reopen() : "";
}

void set_thread_log_name(std::string_view name, int worker) {
  const std::size_t n = std::min(name.size(), kThreadNameBytes - 1);
  std::memcpy(t_name, name.data(), n);
  t_name[n] = '\0';
  t_worker = worker;
  // The main thread's kernel name is the process name (ps, pgrep, pidof): left alone.
  if (gettid() == getpid()) return;
  char kernel_name[16] = {};  // the kernel keeps 15 bytes and a NUL
  std::memcpy(kernel_name, name.data(), std::min(n, sizeof kernel_name - 1));
  pthread_setname_np(pthread_self(), kernel_name);
}

std::string_view thread_log_name() {
  return t_name;
}

int thread_log_worker() {
  return t_worker;
}

}  // namespace mr
