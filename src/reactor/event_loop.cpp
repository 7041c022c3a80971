#include "multireactor/event_loop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <system_error>

#include "multireactor/detail/raw_syscall.hpp"

namespace mr {
namespace {
[[noreturn]] void die(const char* what) {
  // A loop whose epoll or eventfd fails cannot go on; this is a programming or system error.
  std::perror(what);
  std::abort();
}
}  // namespace

EventLoop::EventLoop(int max_events)
    : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
      events_(static_cast<std::size_t>(max_events > 0 ? max_events : 1)),
      owner_(std::this_thread::get_id()) {
  if (!epoll_fd_) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_fd_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_) throw std::system_error(errno, std::generic_category(), "eventfd");
  ctl(EPOLL_CTL_ADD, wake_fd_.get(), EPOLLIN, kWakeData);
  ctl(EPOLL_CTL_ADD, timers_.fd(), EPOLLIN, kTimerData);
}

EventLoop::~EventLoop() = default;

void EventLoop::assert_in_loop_thread() const {
#ifndef NDEBUG
  if (!in_loop_thread()) {
    std::fputs("multireactor: loop-owned object touched from another thread\n", stderr);
    std::abort();
  }
#endif
}

EventLoop::Registration EventLoop::attach(Handler& handler, bool after_each_iteration) {
  for (std::size_t tag = 1; tag < handlers_.size(); ++tag) {
    if (handlers_[tag] != nullptr) continue;
    handlers_[tag] = &handler;
    attached_.push_back(&handler);
    if (after_each_iteration) after_each_iteration_.push_back(&handler);
    return Registration(this, tag);
  }
  throw std::length_error("EventLoop: too many handlers");
}

void EventLoop::detach(Handler& handler) {
  std::replace(handlers_.begin(), handlers_.end(), &handler, static_cast<Handler*>(nullptr));
  std::erase(attached_, &handler);
  std::erase(after_each_iteration_, &handler);
}

// Inlined into run(): a worker with one message per iteration pays for every instruction here.
inline void EventLoop::poll_once(int timeout_ms) {
  int n = raw::epoll_wait(epoll_fd_.get(), events_.data(), static_cast<int>(events_.size()),
                          timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return;
    die("epoll_wait");
  }
  iterations_.add(1);
  bool woken = false;
  for (int i = 0; i < n; ++i) {
    const epoll_event& ev = events_[static_cast<std::size_t>(i)];
    const std::uint64_t tag = ev.data.u64 & kTagMask;
    if (tag != 0) [[likely]] {
      Handler* handler = handlers_[tag];
      if (handler != nullptr) handler->on_event(ev.data.u64 >> kTagBits, ev.events);
    } else if (ev.data.u64 == kWakeData) {
      woken = true;
    } else {
      timers_.fire();
    }
  }
  if (woken) {
    drain_wake_fd();
    wakeup_handlers();
    run_tasks();
  }
  for (Handler* handler : after_each_iteration_)
    handler->on_iteration_end();
}

void EventLoop::run() {
  take_thread();
  while (!stop_requested_.load(std::memory_order_acquire))
    poll_once(wait_timeout_ms_);
  finish();
}

void EventLoop::run_once(int timeout_ms) {
  poll_once(timeout_ms);
}

void EventLoop::finish() {
  // Tasks posted before stop() still run, so nothing handed to this loop is silently dropped.
  drain_wake_fd();
  wakeup_handlers();
  run_tasks();
}

void EventLoop::wakeup_handlers() {
  for (Handler* handler : attached_)
    handler->on_wakeup();
}

void EventLoop::drain_wake_fd() {
  std::uint64_t count = 0;
  if (read(wake_fd_.get(), &count, sizeof count) == sizeof count) wakeups_.add(1);
  // Cleared after the read and before the queue is swapped: a post() that lands after this
  // point writes the eventfd again, so no task is left waiting for a wake that never comes.
  wake_pending_.store(false, std::memory_order_seq_cst);
}

void EventLoop::run_tasks() {
  {
    std::lock_guard<std::mutex> lock(tasks_mutex_);
    running_tasks_.swap(tasks_);
  }
  for (auto& task : running_tasks_)
    task();
  running_tasks_.clear();
}

void EventLoop::post(Task task) {
  {
    std::lock_guard<std::mutex> lock(tasks_mutex_);
    tasks_.push_back(std::move(task));
  }
  wake();
}

void EventLoop::wake() {
  if (wake_pending_.exchange(true, std::memory_order_seq_cst)) return;
  std::uint64_t one = 1;
  ssize_t written = write(wake_fd_.get(), &one, sizeof one);
  (void)written;  // EAGAIN only if the counter is saturated, which still wakes the loop
}

void EventLoop::stop() {
  stop_requested_.store(true, std::memory_order_release);
  // A direct write: stop must wake the loop even if a wake is already marked pending.
  std::uint64_t one = 1;
  ssize_t written = write(wake_fd_.get(), &one, sizeof one);
  (void)written;
}

EventLoop::TimerId EventLoop::run_after(std::chrono::milliseconds delay, Task task) {
  return timers_.add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, delay.count())), 0,
                     std::move(task));
}

EventLoop::TimerId EventLoop::run_every(std::chrono::milliseconds interval, Task task) {
  const auto ms = static_cast<std::uint64_t>(std::max<std::int64_t>(1, interval.count()));
  return timers_.add(ms, ms, std::move(task));
}

void EventLoop::ctl(int op, int fd, std::uint32_t events, std::uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  if (epoll_ctl(epoll_fd_.get(), op, fd, &ev) == 0) return;
  if (op == EPOLL_CTL_ADD) throw std::system_error(errno, std::generic_category(), "epoll_ctl ADD");
  die("epoll_ctl MOD");
}

void EventLoop::Registration::add(int fd, std::uint32_t events, std::uint64_t key) const {
  loop_->ctl(EPOLL_CTL_ADD, fd, events, encode(key));
}

void EventLoop::Registration::modify(int fd, std::uint32_t events, std::uint64_t key) const {
  loop_->ctl(EPOLL_CTL_MOD, fd, events, encode(key));
}

void EventLoop::remove(int fd) {
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

}  // namespace mr
