// log_format = json: one JSON object per line, as log shippers in containers expect.
//
// Contract: every record becomes exactly one line
//   {"time":"2024-05-01T12:00:00.123456Z","level":"info","thread":"worker-1","worker":1,
//    "tid":4242,"logger":"multireactor","message":"..."}
// with the time in UTC (RFC 3339, microseconds), the thread's log name (set_thread_log_name(),
// its kernel thread id when it has none), "worker" only on worker threads, and the message with
// quotes, backslashes and control bytes escaped. Stateless, so clone() is a plain copy.
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/formatter.h>

namespace mr {

class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// Appends `text` to `dest` as the inside of a JSON string (no quotes added).
void append_json_escaped(std::string_view text, spdlog::memory_buf_t& dest);

}  // namespace mr
