// One epoll loop, run by one thread, woken from other threads through an eventfd.
//
// Contract: run() is called once, on the thread that will own the loop; from then on add(),
// modify(), remove() and everything the Handler does happen on that thread only (asserted in
// debug builds). Exactly three methods are thread-safe: post(), wake() and stop(). The eventfd is
// written only on the idle->pending edge (at most once per batch of posts), and each wake-up
// drains the whole task queue, which is swapped out under the lock and run without it.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "multireactor/stats.hpp"

namespace mr {

class EventLoop {
 public:
  using Task = std::function<void()>;

  // The key the loop reserves for its own eventfd; owners use any other 64-bit key.
  static constexpr std::uint64_t kWakeKey = ~std::uint64_t{0};

  // What the loop calls back, all on the loop thread.
  class Handler {
   public:
    virtual void on_event(std::uint64_t key, std::uint32_t events) = 0;
    // After the eventfd fired and before queued tasks run (e.g. to take handed-off descriptors).
    virtual void on_wakeup() {}
    // Once per iteration after every event of the batch was handled.
    virtual void on_iteration_end() {}

   protected:
    ~Handler() = default;
  };

  // max_events: size of the epoll_wait event array.
  explicit EventLoop(int max_events = 256);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until stop(); returns on the loop thread.
  void run(Handler& handler);

  // Thread-safe: queue `task` to run on the loop thread and wake it.
  void post(Task task);
  // Thread-safe: make the loop's epoll_wait return (once per batch, see the contract).
  void wake();
  // Thread-safe: ask run() to return after the current iteration.
  void stop();

  void add(int fd, std::uint32_t events, std::uint64_t key);
  void modify(int fd, std::uint32_t events, std::uint64_t key);
  void remove(int fd);

  bool in_loop_thread() const { return std::this_thread::get_id() == owner_.load(); }
  void assert_in_loop_thread() const;
  bool stopping() const { return stop_requested_.load(std::memory_order_acquire); }

  // Counters kept by the loop, for its owner's stats (single writer: the loop thread).
  const WorkerStats::Counter& wakeups() const { return wakeups_; }
  const WorkerStats::Counter& iterations() const { return iterations_; }
  // Milliseconds epoll_wait may block; -1 = until an event. Loop thread only.
  void set_wait_timeout_ms(int timeout_ms) { wait_timeout_ms_ = timeout_ms; }

 private:
  void drain_wake_fd();
  void run_tasks();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int wait_timeout_ms_ = -1;
  std::vector<epoll_event> events_;
  std::atomic<std::thread::id> owner_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> wake_pending_{false};

  std::mutex tasks_mutex_;
  std::vector<Task> tasks_;          // guarded by tasks_mutex_
  std::vector<Task> running_tasks_;  // loop thread only

  WorkerStats::Counter wakeups_;
  WorkerStats::Counter iterations_;
};

}  // namespace mr
