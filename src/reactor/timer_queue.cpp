#include "multireactor/detail/timer_queue.hpp"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <system_error>
#include <utility>

namespace mr::detail {
namespace {
constexpr std::int64_t kNsPerMs = 1'000'000;
constexpr std::int64_t kNsPerS = 1'000'000'000;

// std::*_heap keep the largest first; "later" as the order puts the earliest deadline there.
constexpr auto later = [](const auto& a, const auto& b) { return a.deadline_ns > b.deadline_ns; };
}  // namespace

TimerQueue::TimerQueue() : timer_fd_(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
  if (!timer_fd_) throw std::system_error(errno, std::generic_category(), "timerfd_create");
}

std::int64_t TimerQueue::now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * kNsPerS + ts.tv_nsec;
}

TimerQueue::Id TimerQueue::add(std::uint64_t delay_ms, std::uint64_t interval_ms,
                               Callback callback) {
  std::uint32_t index = 0;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[index];
  slot.callback = std::move(callback);
  slot.interval_ns = static_cast<std::int64_t>(interval_ms) * kNsPerMs;
  slot.active = true;
  const Id id = (std::uint64_t{slot.generation} << 32) | index;
  push(now_ns() + static_cast<std::int64_t>(delay_ms) * kNsPerMs, id);
  arm();
  return id;
}

TimerQueue::Slot* TimerQueue::find(Id id) {
  const auto index = static_cast<std::uint32_t>(id);
  if (index >= slots_.size()) return nullptr;
  Slot& slot = slots_[index];
  return slot.active && slot.generation == static_cast<std::uint32_t>(id >> 32) ? &slot : nullptr;
}

void TimerQueue::cancel(Id id) {
  Slot* slot = find(id);
  if (slot == nullptr) return;
  slot->active = false;
  slot->callback = nullptr;
  slot->generation += 1;  // the heap entry is now stale and is dropped when it comes up
  free_slots_.push_back(static_cast<std::uint32_t>(id));
}

void TimerQueue::push(std::int64_t deadline_ns, Id id) {
  heap_.push_back({deadline_ns, id});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

void TimerQueue::fire() {
  std::uint64_t expirations = 0;
  if (read(timer_fd_.get(), &expirations, sizeof expirations) < 0 && errno != EAGAIN) return;
  armed_for_ns_ = -1;
  const std::int64_t now = now_ns();
  while (!heap_.empty() && heap_.front().deadline_ns <= now) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    const Due due = heap_.back();
    heap_.pop_back();
    Slot* slot = find(due.id);
    if (slot == nullptr) continue;  // cancelled
    // Moved out while it runs: the callback may add timers (and so move slots_).
    Callback callback = std::move(slot->callback);
    const std::int64_t interval = slot->interval_ns;
    if (interval == 0) {
      cancel(due.id);
      callback();
      continue;
    }
    // Once per period passed, so a periodic user can count on one call per period.
    std::int64_t next = due.deadline_ns;
    while (next <= now) {
      next += interval;
      callback();
      if (find(due.id) == nullptr) break;  // it cancelled itself
    }
    Slot* still = find(due.id);
    if (still == nullptr) continue;
    still->callback = std::move(callback);
    push(next, due.id);
  }
  arm();
}

void TimerQueue::arm() {
  // Drop cancelled entries at the top so the timerfd is not armed for a deadline nobody wants.
  while (!heap_.empty() && find(heap_.front().id) == nullptr) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    heap_.pop_back();
  }
  const std::int64_t next = heap_.empty() ? 0 : heap_.front().deadline_ns;
  if (next == armed_for_ns_ || (heap_.empty() && armed_for_ns_ < 0)) return;
  itimerspec spec{};
  if (!heap_.empty()) {
    spec.it_value.tv_sec = static_cast<time_t>(next / kNsPerS);
    spec.it_value.tv_nsec = static_cast<long>(next % kNsPerS);
    if (next <= 0) spec.it_value.tv_nsec = 1;  // zero would disarm it
  }
  timerfd_settime(timer_fd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
  armed_for_ns_ = heap_.empty() ? -1 : next;
}

}  // namespace mr::detail
