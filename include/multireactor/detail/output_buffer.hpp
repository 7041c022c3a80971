// The bytes a connection still owes its peer.
//
// Contract: empty buffers own no memory; memory is taken only when a write was partial and is
// given back by release() once everything is sent, so an idle connection costs only this
// object (24 bytes). append() keeps byte order; consume() drops bytes from the front. Not
// thread-safe: owned by one connection on one worker.
//
// Memory: capacity grows in whole pages by at most a quarter of what is held (never more than
// kMaxGrowthSlackBytes beyond the bytes appended), so the process buffer budget can bound it
// before a read: appending n bytes raises capacity() by at most n + growth_slack(). Buffers of
// kMappedBytes and more are their own anonymous mapping (grown with mremap, no copy), so
// release() returns their pages to the kernel at once instead of leaving them in malloc's arenas,
// which keep freed memory resident (waves of slow readers ratcheted RSS up to 1.3 GiB).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mr {

class OutputBuffer {
 public:
  static constexpr std::size_t kPageBytes = 4096;
  static constexpr std::size_t kMappedBytes = 64 * 1024;
  // The most growth_slack() can be: a quarter of what is held, capped, plus page rounding.
  static constexpr std::size_t kMaxGrowthSlackBytes = 64 * 1024 + kPageBytes;

  OutputBuffer() = default;
  ~OutputBuffer() { release(); }
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;
  OutputBuffer(OutputBuffer&& other) noexcept;
  OutputBuffer& operator=(OutputBuffer&& other) noexcept;

  const char* data() const { return data_ + begin_; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  // Bytes of memory held (0 when empty after release()).
  std::size_t capacity() const { return capacity_; }
  // Beyond the appended bytes themselves, the most capacity() can grow by in one append().
  std::size_t growth_slack() const {
    const std::size_t quarter = size() / 4;
    return (quarter < kMaxGrowthSlackBytes - kPageBytes ? quarter
                                                        : kMaxGrowthSlackBytes - kPageBytes) +
           kPageBytes;
  }

  // Appends n bytes after the ones already held. Aborts if memory cannot be had.
  void append(const char* bytes, std::size_t n);
  // Drops the first n bytes (n <= size()).
  void consume(std::size_t n);
  // Frees the storage; the buffer must be empty or its content is dropped.
  void release();

 private:
  char* data_ = nullptr;
  std::uint32_t begin_ = 0;
  std::uint32_t end_ = 0;
  std::uint32_t capacity_ = 0;  // >= kMappedBytes: data_ is a mapping of its own
};

}  // namespace mr
