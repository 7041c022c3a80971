#include "system/memory_trimmer.hpp"

#include <malloc.h>

namespace mr {

bool MemoryTrimmer::observe(std::uint64_t buffered_bytes) {
  if (buffered_bytes > peak_bytes_) peak_bytes_ = buffered_bytes;
  if (peak_bytes_ - buffered_bytes < kTrimAfterBytes) return false;
  malloc_trim(0);
  peak_bytes_ = buffered_bytes;
  ++trims_;
  return true;
}

}  // namespace mr
