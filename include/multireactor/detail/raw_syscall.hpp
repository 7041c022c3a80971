// Data-path system calls without glibc's cancellation-point bookkeeping.
//
// read(), send() and epoll_wait() are pthread cancellation points: glibc wraps each call in
// __pthread_enable_asynccancel / __pthread_disable_asynccancel, about 30 instructions a call,
// three calls per echoed message. Our loop threads are never cancelled (they stop through
// EventLoop::stop()), so the data path calls the kernel directly. Same return and errno
// conventions as the libc functions. Private to src/.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>

namespace mr::raw {

inline ssize_t read(int fd, void* buffer, std::size_t n) {
  return ::syscall(SYS_read, fd, buffer, n);
}

inline ssize_t send(int fd, const void* bytes, std::size_t n, int flags) {
  return ::syscall(SYS_sendto, fd, bytes, n, flags, nullptr, 0);
}

inline int epoll_wait(int epoll_fd, epoll_event* events, int max_events, int timeout_ms) {
#ifdef SYS_epoll_wait
  return static_cast<int>(::syscall(SYS_epoll_wait, epoll_fd, events, max_events, timeout_ms));
#else
  // arm64 and riscv64 kernels have only epoll_pwait; with no signal mask it is epoll_wait.
  constexpr long kSigsetBytes = 8;  // the kernel's sigset_t (_NSIG / 8), ignored without a mask
  return static_cast<int>(
      ::syscall(SYS_epoll_pwait, epoll_fd, events, max_events, timeout_ms, nullptr, kSigsetBytes));
#endif
}

}  // namespace mr::raw
