// The bytes a connection still owes its peer.
//
// Contract: empty buffers own no memory; memory is taken only when a write was partial and is
// given back by release() once everything is sent, so an idle connection costs only this
// object (24 bytes). append() keeps byte order; consume() drops bytes from the front. Not
// thread-safe: owned by one connection on one worker.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mr {

class OutputBuffer {
 public:
  OutputBuffer() = default;
  ~OutputBuffer() { release(); }
  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;
  OutputBuffer(OutputBuffer&& other) noexcept;
  OutputBuffer& operator=(OutputBuffer&& other) noexcept;

  const char* data() const { return data_ + begin_; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  std::size_t capacity() const { return capacity_; }

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
  std::uint32_t capacity_ = 0;
};

}  // namespace mr
