#include "log/log_file_sink.hpp"

#include <cstdio>

#include <fmt/format.h>

namespace mr {

RotatingFileSink::RotatingFileSink(std::string path, std::uint64_t max_bytes, unsigned keep_files)
    : path_(std::move(path)), max_bytes_(max_bytes), keep_files_(keep_files) {
  file_.open(path_, /*truncate=*/false);
  size_ = file_.size();
  open_ = true;
}

std::string RotatingFileSink::reopen() {
  std::lock_guard<std::mutex> lock(mutex_);
  file_.close();
  open_ = false;
  try {
    file_.open(path_, /*truncate=*/false);
  } catch (const spdlog::spdlog_ex& e) {
    return e.what();
  }
  size_ = file_.size();
  open_ = true;
  return "";
}

void RotatingFileSink::sink_it_(const spdlog::details::log_msg& msg) {
  if (!open_) return;  // a failed reopen: records go to the other sinks only
  spdlog::memory_buf_t formatted;
  formatter_->format(msg, formatted);
  if (size_ > 0 && size_ + formatted.size() > max_bytes_) {
    rotate();
    if (!open_) return;
  }
  file_.write(formatted);
  size_ += formatted.size();
}

void RotatingFileSink::flush_() {
  if (open_) file_.flush();
}

std::string RotatingFileSink::rotated_name(unsigned index) const {
  return index == 0 ? path_ : fmt::format("{}.{}", path_, index);
}

void RotatingFileSink::rotate() {
  file_.close();
  open_ = false;
  // path.(keep-1) -> path.keep, ..., path -> path.1; rename() replaces the oldest. A missing file
  // (never rotated that far) is not an error.
  for (unsigned i = keep_files_; i > 0; --i) {
    std::rename(rotated_name(i - 1).c_str(), rotated_name(i).c_str());
  }
  file_.open(path_, /*truncate=*/true);  // throws to spdlog's error handler when it fails
  size_ = 0;
  open_ = true;
}

}  // namespace mr
