// The log file: a spdlog sink that rotates by size and can be reopened (SIGHUP, for logrotate).
//
// Contract: RotatingFileSink appends to `path` (created, with its directory, when missing). When
// a record would take the file past max_bytes, the file is renamed `path.1` (older ones shift to
// `path.2` ... `path.<keep_files>`; the oldest is dropped) and a new `path` is started; a single
// record larger than max_bytes still goes whole into a fresh file. reopen() closes and reopens
// `path` by name, so after an external tool moved the file, logging continues in a new one.
// Thread-safe (spdlog's base_sink mutex); the constructor throws spdlog::spdlog_ex when the file
// cannot be opened, reopen() returns the error text instead ("" on success); until a later reopen
// succeeds, records are dropped by this sink (the other sinks still get them).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>

namespace mr {

class RotatingFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  RotatingFileSink(std::string path, std::uint64_t max_bytes, unsigned keep_files);

  std::string reopen();
  const std::string& path() const { return path_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override;

 private:
  void rotate();
  std::string rotated_name(unsigned index) const;

  const std::string path_;
  const std::uint64_t max_bytes_;
  const unsigned keep_files_;
  spdlog::details::file_helper file_;
  std::uint64_t size_ = 0;
  bool open_ = false;  // false after a failed reopen or rotation: records are dropped here
};

}  // namespace mr
