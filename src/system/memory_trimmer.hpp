// Gives memory that output buffers freed back to the kernel, at a low rate.
//
// Contract: observe() is called by one thread (the control thread, about once a second) with
// what all output buffers hold now. Once that has fallen by kTrimAfterBytes or more from its
// peak since the last trim, it calls malloc_trim(0), which returns the free pages of every
// malloc arena: the small (< 64 KiB) buffers live there, and glibc keeps freed memory resident
// otherwise. Large buffers are their own mappings and go back when they drain, without this.
#pragma once

#include <cstdint>

namespace mr {

class MemoryTrimmer {
 public:
  static constexpr std::uint64_t kTrimAfterBytes = 8 * 1024 * 1024;

  // Returns true when it trimmed.
  bool observe(std::uint64_t buffered_bytes);
  std::uint64_t trims() const { return trims_; }

 private:
  std::uint64_t peak_bytes_ = 0;
  std::uint64_t trims_ = 0;
};

}  // namespace mr
