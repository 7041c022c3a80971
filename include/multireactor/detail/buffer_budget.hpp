// The process-wide budget for memory held in output buffers, and one worker's share of it.
//
// Contract: BufferBudget is shared by every worker and is thread-safe: take() grants at most what
// is left (possibly nothing), give_back() returns a grant. Workers never ask it per message: each
// holds a BudgetShare (loop thread only) that takes from the budget a chunk at a time and returns
// what it holds beyond two chunks, so the shared counter moves once per chunk of buffered data,
// never per echoed message. The sum of all grants never exceeds limit(), and a worker's buffers
// never hold more than its grant, so output buffers over the whole process never exceed limit().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mr {

// How a worker reads at a given pressure (granted / limit). Below half: as configured. From
// half to three quarters: a connection whose queue reaches a threshold falling linearly from
// high_water_mark to 0 stops being read (the largest queues first). From three quarters: every
// connection with a queue stops being read, and reads shrink to kPressuredReadBytes, so the
// connections that still read (those whose echoes the peer takes) need little of what is left.
constexpr double kPressureOnset = 0.5;
constexpr double kPressureFull = 0.75;
constexpr std::size_t kPressuredReadBytes = 4096;

// Readiness turns false once the budget is under full pressure, so a load balancer sends new
// clients to another replica while this one is degraded.
constexpr bool budget_nearly_spent(std::uint64_t buffered_bytes, std::uint64_t limit_bytes) {
  return limit_bytes > 0 &&
         static_cast<double>(buffered_bytes) >= static_cast<double>(limit_bytes) * kPressureFull;
}

class BufferBudget {
 public:
  explicit BufferBudget(std::uint64_t limit_bytes) : limit_(limit_bytes) {}
  BufferBudget(const BufferBudget&) = delete;
  BufferBudget& operator=(const BufferBudget&) = delete;

  std::uint64_t limit() const { return limit_; }
  // Thread-safe: bytes granted to workers now (what their buffers hold plus their spare).
  std::uint64_t granted() const { return granted_.load(std::memory_order_relaxed); }
  // Thread-safe: grants min(want, what is left).
  std::uint64_t take(std::uint64_t want);
  // Thread-safe: grants n even beyond the limit (a protocol that sends more than it read).
  void take_beyond_limit(std::uint64_t n) { granted_.fetch_add(n, std::memory_order_relaxed); }
  // Thread-safe: returns n granted bytes.
  void give_back(std::uint64_t n) { granted_.fetch_sub(n, std::memory_order_relaxed); }

 private:
  const std::uint64_t limit_;
  alignas(64) std::atomic<std::uint64_t> granted_{0};
};

// One worker's part of the budget. Not thread-safe: used on its worker's loop thread only.
class BudgetShare {
 public:
  BudgetShare(BufferBudget& budget, std::uint64_t chunk_bytes)
      : budget_(budget), chunk_bytes_(chunk_bytes) {}
  ~BudgetShare() { budget_.give_back(held_); }
  BudgetShare(const BudgetShare&) = delete;
  BudgetShare& operator=(const BudgetShare&) = delete;

  // Bytes the worker's buffers may still grow by without asking the process budget.
  std::uint64_t spare() const { return held_ - used_; }
  // Bytes the worker's buffers hold.
  std::uint64_t used() const { return used_; }
  // Asks the budget for enough to make spare() >= bytes (a chunk at least); false if the budget
  // could not give that much (spare() then holds all that could be had).
  bool reserve(std::uint64_t bytes);
  // The worker's buffers grew by n bytes. Within spare() for a protocol that sends at most what
  // it read (the reads were sized for that); beyond it the share takes the rest past the limit,
  // so the pressure (and readiness) shows it and every connection's reading pauses.
  void charge(std::uint64_t n) {
    if (n > spare() && !reserve(n)) {
      const std::uint64_t short_by = n - spare();
      budget_.take_beyond_limit(short_by);
      held_ += short_by;
    }
    used_ += n;
  }
  // The worker's buffers shrank by n bytes; spare beyond two chunks goes back to the budget.
  void refund(std::uint64_t n);
  // Budget-wide pressure: granted over limit, 0 (idle) to 1 (every byte granted).
  double pressure() const {
    return static_cast<double>(budget_.granted()) / static_cast<double>(budget_.limit());
  }

 private:
  BufferBudget& budget_;
  const std::uint64_t chunk_bytes_;
  std::uint64_t held_ = 0;
  std::uint64_t used_ = 0;
};

}  // namespace mr
