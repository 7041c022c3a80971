// One epoll loop, run by one thread, woken from other threads through an eventfd.
//
// Contract: run() is called once, on the thread that will own the loop; from then on every
// method except post(), wake() and stop() is called on that thread only (asserted in debug
// builds); before run() the constructing thread may set the loop up. The eventfd is written only
// on the idle->pending edge (at most once per batch of posts), and each wake-up drains the whole
// task queue, which is swapped out under the lock and run without it.
//
// Registration is keyed by handler: attach() gives each Handler its own key space (keys below
// 2^kKeyBits), and the loop routes an event to the handler that registered the descriptor, so
// users of one loop (the acceptor and the admin endpoint, say) never share or carve up keys.
// Timers (run_after, run_every) share one timerfd per loop.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "multireactor/counter.hpp"
#include "multireactor/detail/timer_queue.hpp"
#include "multireactor/fd.hpp"

namespace mr {

class EventLoop {
 public:
  using Task = std::function<void()>;
  using TimerId = detail::TimerQueue::Id;

  // Bits of key a handler may use (the rest of epoll's 64 bits name the handler).
  static constexpr unsigned kKeyBits = 60;
  static constexpr std::size_t kMaxHandlers = 15;

  // What the loop calls back, all on the loop thread.
  class Handler {
   public:
    virtual void on_event(std::uint64_t key, std::uint32_t events) = 0;
    // After the eventfd fired and before queued tasks run (e.g. to take handed-off descriptors).
    virtual void on_wakeup() {}
    // Once per iteration after every event of the batch was handled, for handlers attached
    // with after_each_iteration (a worker is not: one message per iteration must not pay for it).
    virtual void on_iteration_end() {}

   protected:
    ~Handler() = default;
  };

  // A handler for one descriptor that needs no key (a listening socket): calls `on_ready`.
  class FdHandler final : public Handler {
   public:
    explicit FdHandler(std::function<void(std::uint32_t events)> on_ready)
        : on_ready_(std::move(on_ready)) {}
    void on_event(std::uint64_t /*key*/, std::uint32_t events) override { on_ready_(events); }

   private:
    std::function<void(std::uint32_t)> on_ready_;
  };

  // One handler's key space on this loop; a cheap value to keep beside the handler.
  class Registration {
   public:
    Registration() = default;
    void add(int fd, std::uint32_t events, std::uint64_t key) const;
    void modify(int fd, std::uint32_t events, std::uint64_t key) const;
    void remove(int fd) const { loop_->remove(fd); }
    EventLoop& loop() const { return *loop_; }

   private:
    friend class EventLoop;
    Registration(EventLoop* loop, std::uint64_t tag) : loop_(loop), tag_(tag) {}
    std::uint64_t encode(std::uint64_t key) const { return (key << kTagBits) | tag_; }
    EventLoop* loop_ = nullptr;
    std::uint64_t tag_ = 0;
  };

  // max_events: size of the epoll_wait event array.
  explicit EventLoop(int max_events = 256);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until stop(); returns on the loop thread.
  void run();
  // For a loop driven from outside (a worker whose io_uring ring waits on fd()): take_thread()
  // once on the owning thread, then run_once() whenever fd() is readable (timeout 0: never
  // blocks), and finish() after stop(), which runs what was posted before it.
  int fd() const { return epoll_fd_.get(); }
  void take_thread() { owner_.store(std::this_thread::get_id()); }
  void run_once(int timeout_ms);
  void finish();

  // Loop thread (or before run()). A handler must be detached before it is destroyed;
  // on_wakeup goes to every attached handler, on_iteration_end to those attached with
  // after_each_iteration, in the order attached.
  Registration attach(Handler& handler, bool after_each_iteration = false);
  void detach(Handler& handler);

  // Thread-safe: queue `task` to run on the loop thread and wake it.
  void post(Task task);
  // Thread-safe: make the loop's epoll_wait return (once per batch, see the contract).
  void wake();
  // Thread-safe: ask run() to return after the current iteration.
  void stop();

  // Loop thread: `task` runs once after `delay`, or every `interval`; cancel() with the id
  // (ignored when the timer already ran or was cancelled).
  TimerId run_after(std::chrono::milliseconds delay, Task task);
  TimerId run_every(std::chrono::milliseconds interval, Task task);
  void cancel(TimerId id) { timers_.cancel(id); }

  void remove(int fd);

  bool in_loop_thread() const { return std::this_thread::get_id() == owner_.load(); }
  void assert_in_loop_thread() const;
  bool stopping() const { return stop_requested_.load(std::memory_order_acquire); }

  // Counters kept by the loop, for its owner's stats (single writer: the loop thread).
  const RelaxedCounter& wakeups() const { return wakeups_; }
  const RelaxedCounter& iterations() const { return iterations_; }
  // Milliseconds epoll_wait may block; -1 = until an event. Loop thread only.
  void set_wait_timeout_ms(int timeout_ms) { wait_timeout_ms_ = timeout_ms; }

 private:
  static constexpr unsigned kTagBits = 64 - kKeyBits;
  static constexpr std::uint64_t kTagMask = (std::uint64_t{1} << kTagBits) - 1;
  // Tag 0 is the loop's own: key 0 its eventfd, key 1 its timerfd.
  static constexpr std::uint64_t kWakeData = 0;
  static constexpr std::uint64_t kTimerData = std::uint64_t{1} << kTagBits;

  void poll_once(int timeout_ms);
  void ctl(int op, int fd, std::uint32_t events, std::uint64_t data);
  void drain_wake_fd();
  void run_tasks();
  void wakeup_handlers();

  Fd epoll_fd_;
  Fd wake_fd_;
  int wait_timeout_ms_ = -1;
  std::vector<epoll_event> events_;
  std::array<Handler*, kMaxHandlers + 1> handlers_{};  // by tag; [0] unused (the loop's own)
  std::vector<Handler*> attached_;                     // in attach order
  std::vector<Handler*> after_each_iteration_;
  detail::TimerQueue timers_;
  std::atomic<std::thread::id> owner_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> wake_pending_{false};

  std::mutex tasks_mutex_;
  std::vector<Task> tasks_;          // guarded by tasks_mutex_
  std::vector<Task> running_tasks_;  // loop thread only

  RelaxedCounter wakeups_;
  RelaxedCounter iterations_;
};

}  // namespace mr
