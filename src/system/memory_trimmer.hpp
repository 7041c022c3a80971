// Gives memory that output buffers freed back to the kernel, at a low rate.
//
// Contract: observe() is called by one thread (the control thread, about once a second) with
// what all output buffers hold now. Once that has fallen by kTrimAfterBytes or more from its
// peak since the last trim, it calls malloc_trim(0), which returns the free pages of every
// malloc arena: the small (< 64 KiB) buffers live there, and glibc keeps freed memory resident
// otherwise. Large buffers are their own mappings and go back when they drain, without this.
//
// keep_freed_memory_for_reuse(), called once before the workers start, leaves this trimmer the
// only one: glibc's own trim on free() (above 128 KiB free at the top of an arena) returned the
// pages of a queue that drained, and the next queue faulted in and zeroed them again, on io_uring
// once per 16 KiB message (its queue holds the three ring buffers its first send did not cover):
// page faults and their bookkeeping were about 15% of that server's CPU, and at 100 connections
// x 16 KiB ping-pong it cost 1.56x epoll's CPU per message; with the threshold at
// kTrimAfterBytes 0.96x (bench/run-matrix, both backends in one run).
#pragma once

#include <cstdint>

namespace mr {

class MemoryTrimmer {
 public:
  static constexpr std::uint64_t kTrimAfterBytes = 8 * 1024 * 1024;

  // Raises glibc's trim threshold (M_TRIM_THRESHOLD) to kTrimAfterBytes. Process-wide.
  static void keep_freed_memory_for_reuse();

  // Returns true when it trimmed.
  bool observe(std::uint64_t buffered_bytes);
  std::uint64_t trims() const { return trims_; }

 private:
  std::uint64_t peak_bytes_ = 0;
  std::uint64_t trims_ = 0;
};

}  // namespace mr
