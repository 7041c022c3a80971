#include "log/json_log_formatter.hpp"

#include <ctime>
#include <iterator>

#include <fmt/format.h>

#include "log/logging.hpp"

namespace mr {

void append_json_escaped(std::string_view text, spdlog::memory_buf_t& dest) {
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        dest.append(std::string_view("\\\""));
        break;
      case '\\':
        dest.append(std::string_view("\\\\"));
        break;
      case '\n':
        dest.append(std::string_view("\\n"));
        break;
      case '\r':
        dest.append(std::string_view("\\r"));
        break;
      case '\t':
        dest.append(std::string_view("\\t"));
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          fmt::format_to(std::back_inserter(dest), "\\u{:04x}", c);
        } else {
          dest.push_back(ch);
        }
    }
  }
}

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  const auto since_epoch = msg.time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - seconds).count();
  const std::time_t t = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  gmtime_r(&t, &utc);
  auto out = std::back_inserter(dest);
  fmt::format_to(out, "{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\",\"level\":\"",
                 utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                 utc.tm_sec, micros);
  const auto level = spdlog::level::to_string_view(msg.level);
  dest.append(level.data(), level.data() + level.size());
  dest.append(std::string_view("\",\"thread\":\""));
  const std::string_view name = thread_log_name();
  if (name.empty()) {
    fmt::format_to(out, "{}", msg.thread_id);
  } else {
    append_json_escaped(name, dest);
  }
  dest.push_back('"');
  if (const int worker = thread_log_worker(); worker >= 0) {
    fmt::format_to(out, ",\"worker\":{}", worker);
  }
  fmt::format_to(out, ",\"tid\":{},\"logger\":\"", msg.thread_id);
  append_json_escaped(std::string_view(msg.logger_name.data(), msg.logger_name.size()), dest);
  dest.append(std::string_view("\",\"message\":\""));
  append_json_escaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  dest.append(std::string_view("\"}\n"));
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

}  // namespace mr
