#include "system/memory_trimmer.hpp"

#include <malloc.h>

namespace mr {

void MemoryTrimmer::keep_freed_memory_for_reuse() {
  // Called once, before the server's threads start (clang-tidy flags mallopt as not thread-safe).
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(kTrimAfterBytes));  // NOLINT(concurrency-mt-unsafe)
}

bool MemoryTrimmer::observe(std::uint64_t buffered_bytes) {
  if (buffered_bytes > peak_bytes_) peak_bytes_ = buffered_bytes;
  if (peak_bytes_ - buffered_bytes < kTrimAfterBytes) return false;
  malloc_trim(0);
  peak_bytes_ = buffered_bytes;
  ++trims_;
  return true;
}

}  // namespace mr
