#include "multireactor/detail/output_buffer.hpp"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

// ThreadSanitizer does not model mremap: pages a mapping moves to keep the access history of
// whatever was mapped there before (another worker's buffer), which it reports as a race. Under
// TSan a large buffer grows by a new mapping and a copy instead.
#if defined(__SANITIZE_THREAD__)
#define MR_GROW_BY_MREMAP 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MR_GROW_BY_MREMAP 0
#endif
#endif
#ifndef MR_GROW_BY_MREMAP
#define MR_GROW_BY_MREMAP 1
#endif

namespace mr {
namespace {

[[noreturn]] void out_of_memory(const char* what) {
  std::fprintf(stderr, "multireactor: %s\n", what);
  std::abort();
}

std::size_t round_up_to_page(std::size_t n) {
  return (n + OutputBuffer::kPageBytes - 1) / OutputBuffer::kPageBytes * OutputBuffer::kPageBytes;
}

char* map_bytes(std::size_t n) {
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
}

void free_storage(char* data, std::size_t capacity) {
  if (data == nullptr) return;
  if (capacity >= OutputBuffer::kMappedBytes) {
    munmap(data, capacity);
  } else {
    std::free(data);
  }
}

}  // namespace

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
    if (capacity_ - held >= n) {
      // Enough room once the sent prefix is dropped: slide instead of growing.
      std::memmove(data_, data_ + begin_, held);
    } else {
      // growth_slack() promises: wanted - (held + n) <= growth_slack().
      const std::size_t wanted = round_up_to_page(held + n + (growth_slack() - kPageBytes));
      if (wanted > std::numeric_limits<std::uint32_t>::max()) {
        out_of_memory("output buffer over 4 GiB");
      }
      char* grown = nullptr;
      if (wanted < kMappedBytes) {
        grown = static_cast<char*>(std::malloc(wanted));
        if (grown == nullptr) out_of_memory("out of memory for an output buffer");
        if (held > 0) std::memcpy(grown, data_ + begin_, held);
        free_storage(data_, capacity_);
      } else if (MR_GROW_BY_MREMAP && capacity_ >= kMappedBytes) {
        // The kernel moves the pages (no copy); the held bytes keep their offset.
        void* moved = mremap(data_, capacity_, wanted, MREMAP_MAYMOVE);
        if (moved == MAP_FAILED) out_of_memory("out of memory for an output buffer (mremap)");
        grown = static_cast<char*>(moved);
        if (begin_ > 0) std::memmove(grown, grown + begin_, held);
      } else {
        grown = map_bytes(wanted);
        if (grown == nullptr) out_of_memory("out of memory for an output buffer (mmap)");
        if (held > 0) std::memcpy(grown, data_ + begin_, held);
        free_storage(data_, capacity_);
      }
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
  begin_ += static_cast<std::uint32_t>(n < size() ? n : size());
  if (begin_ == end_) begin_ = end_ = 0;
}

void OutputBuffer::release() {
  free_storage(data_, capacity_);
  data_ = nullptr;
  begin_ = end_ = capacity_ = 0;
}

}  // namespace mr
