#include "multireactor/event_loop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <system_error>

#include "raw_syscall.hpp"

namespace mr {
namespace {

[[noreturn]] void die(const char* what) {
  // A loop whose epoll or eventfd fails cannot go on; this is a programming or system error.
  std::perror(what);
  std::abort();
}

}  // namespace

EventLoop::EventLoop(int max_events)
    : events_(static_cast<std::size_t>(max_events > 0 ? max_events : 1)),
      owner_(std::this_thread::get_id()) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    int err = errno;
    close(epoll_fd_);
    throw std::system_error(err, std::generic_category(), "eventfd");
  }
  add(wake_fd_, EPOLLIN, kWakeKey);
}

EventLoop::~EventLoop() {
  close(wake_fd_);
  close(epoll_fd_);
}

void EventLoop::assert_in_loop_thread() const {
#ifndef NDEBUG
  if (!in_loop_thread()) {
    std::fputs("multireactor: loop-owned object touched from another thread\n", stderr);
    std::abort();
  }
#endif
}

void EventLoop::run(Handler& handler) {
  owner_.store(std::this_thread::get_id());
  while (!stop_requested_.load(std::memory_order_acquire)) {
    int n = raw::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()),
                            wait_timeout_ms_);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    iterations_.add(1);
    bool woken = false;
    for (int i = 0; i < n; ++i) {
      const epoll_event& ev = events_[static_cast<std::size_t>(i)];
      if (ev.data.u64 == kWakeKey) {
        woken = true;
        continue;
      }
      handler.on_event(ev.data.u64, ev.events);
    }
    if (woken) {
      drain_wake_fd();
      handler.on_wakeup();
      run_tasks();
    }
    handler.on_iteration_end();
  }
  // Tasks posted before stop() still run, so nothing handed to this loop is silently dropped.
  drain_wake_fd();
  handler.on_wakeup();
  run_tasks();
}

void EventLoop::drain_wake_fd() {
  std::uint64_t count = 0;
  if (read(wake_fd_, &count, sizeof count) == sizeof count) wakeups_.add(1);
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
  ssize_t written = write(wake_fd_, &one, sizeof one);
  (void)written;  // EAGAIN only if the counter is saturated, which still wakes the loop
}

void EventLoop::stop() {
  stop_requested_.store(true, std::memory_order_release);
  // A direct write: stop must wake the loop even if a wake is already marked pending.
  std::uint64_t one = 1;
  ssize_t written = write(wake_fd_, &one, sizeof one);
  (void)written;
}

void EventLoop::add(int fd, std::uint32_t events, std::uint64_t key) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = key;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl ADD");
  }
}

void EventLoop::modify(int fd, std::uint32_t events, std::uint64_t key) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = key;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) die("epoll_ctl MOD");
}

void EventLoop::remove(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

}  // namespace mr
