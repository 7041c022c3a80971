#include "multireactor/output_buffer.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

namespace mr {
namespace {
constexpr std::size_t kMinCapacity = 4096;
}

OutputBuffer::OutputBuffer(OutputBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      begin_(std::exchange(other.begin_, 0)),
      end_(std::exchange(other.end_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

OutputBuffer& OutputBuffer::operator=(OutputBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    begin_ = std::exchange(other.begin_, 0);
    end_ = std::exchange(other.end_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

void OutputBuffer::append(const char* bytes, std::size_t n) {
  if (n == 0) return;
  const std::size_t held = size();
  if (capacity_ - end_ < n) {
    if (capacity_ - held >= n && begin_ > 0) {
      // Enough room once the sent prefix is dropped: slide instead of growing.
      std::memmove(data_, data_ + begin_, held);
    } else {
      std::size_t wanted = std::max({kMinCapacity, std::size_t{capacity_} * 2, held + n});
      if (wanted > std::numeric_limits<std::uint32_t>::max()) {
        std::fputs("multireactor: output buffer over 4 GiB\n", stderr);
        std::abort();
      }
      char* grown = static_cast<char*>(std::malloc(wanted));
      if (grown == nullptr) {
        std::fputs("multireactor: out of memory for an output buffer\n", stderr);
        std::abort();
      }
      if (held > 0) std::memcpy(grown, data_ + begin_, held);
      std::free(data_);
      data_ = grown;
      capacity_ = static_cast<std::uint32_t>(wanted);
    }
    begin_ = 0;
    end_ = static_cast<std::uint32_t>(held);
  }
  std::memcpy(data_ + end_, bytes, n);
  end_ += static_cast<std::uint32_t>(n);
}

void OutputBuffer::consume(std::size_t n) {
  begin_ += static_cast<std::uint32_t>(std::min(n, size()));
  if (begin_ == end_) begin_ = end_ = 0;
}

void OutputBuffer::release() {
  std::free(data_);
  data_ = nullptr;
  begin_ = end_ = capacity_ = 0;
}

}  // namespace mr
