// A counter with a single writer thread that any thread may read.
//
// Contract: add/sub/set/raise_to are called by one thread only (the owning loop's); they are a
// relaxed load and store, no locked instruction, so bumping one on the data path costs a plain
// add. get() is safe from any thread and sees whole values.
#pragma once

#include <atomic>
#include <cstdint>

namespace mr {

class RelaxedCounter {
 public:
  void add(std::uint64_t n) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::uint64_t n) {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(std::uint64_t n) { value_.store(n, std::memory_order_relaxed); }
  void raise_to(std::uint64_t n) {
    if (n > value_.load(std::memory_order_relaxed)) value_.store(n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

}  // namespace mr
