// A loop's timers: one timerfd armed to the earliest deadline, over a heap of deadlines.
//
// Contract: owned by an EventLoop and used on its thread only. add() returns an id that cancel()
// takes (a stale or unknown id is ignored). Callbacks run from fire(), which the loop calls when
// the timerfd is readable; a callback may add and cancel timers, itself included. A periodic
// timer runs once for every period that has passed (an idle wheel tick is never skipped).
// Storage is reused: re-arming a timer after the first few allocates nothing. The clock is read
// only when a timer is added or fires, never per event.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "multireactor/fd.hpp"

namespace mr::detail {

class TimerQueue {
 public:
  using Callback = std::function<void()>;
  using Id = std::uint64_t;

  TimerQueue();  // throws std::system_error when timerfd_create fails
  int fd() const { return timer_fd_.get(); }

  // Runs `callback` after delay_ms, then every interval_ms when that is not 0.
  Id add(std::uint64_t delay_ms, std::uint64_t interval_ms, Callback callback);
  void cancel(Id id);
  // The timerfd fired: runs every callback that is due, then re-arms for the next deadline.
  void fire();

 private:
  struct Slot {
    Callback callback;
    std::int64_t interval_ns = 0;
    std::uint32_t generation = 0;
    bool active = false;
  };
  struct Due {
    std::int64_t deadline_ns;
    Id id;
  };

  static std::int64_t now_ns();
  Slot* find(Id id);
  void push(std::int64_t deadline_ns, Id id);
  void arm();

  Fd timer_fd_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<Due> heap_;  // min-heap on deadline_ns; cancelled entries are skipped when popped
  std::int64_t armed_for_ns_ = -1;
};

}  // namespace mr::detail
