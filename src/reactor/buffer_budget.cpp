#include "multireactor/detail/buffer_budget.hpp"

#include <algorithm>

namespace mr {

std::uint64_t BufferBudget::take(std::uint64_t want) {
  std::uint64_t granted = granted_.load(std::memory_order_relaxed);
  for (;;) {
    const std::uint64_t left = granted < limit_ ? limit_ - granted : 0;
    const std::uint64_t grant = std::min(want, left);
    if (grant == 0) return 0;
    if (granted_.compare_exchange_weak(granted, granted + grant, std::memory_order_relaxed)) {
      return grant;
    }
  }
}

bool BudgetShare::reserve(std::uint64_t bytes) {
  if (spare() >= bytes) return true;
  const std::uint64_t missing = bytes - spare();
  // Whole chunks, so the shared counter moves rarely.
  const std::uint64_t want = (missing + chunk_bytes_ - 1) / chunk_bytes_ * chunk_bytes_;
  // take() grants what is left of a nearly spent budget, so a share may end up below `bytes`.
  held_ += budget_.take(want);
  return spare() >= bytes;
}

void BudgetShare::refund(std::uint64_t n) {
  used_ -= n;
  if (spare() > 2 * chunk_bytes_) {
    const std::uint64_t excess = spare() - chunk_bytes_;
    held_ -= excess;
    budget_.give_back(excess);
  }
}

}  // namespace mr
