#include "throttled_server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "multireactor/socket.hpp"

namespace mr::bench::test {

ThrottledEchoServer::ThrottledEchoServer(std::size_t message_size, unsigned period_us)
    : message_size_(message_size),
      period_us_(period_us),
      listen_fd_(listen_tcp(make_address("127.0.0.1", 0), 64)),
      port_(local_port(listen_fd_)),
      thread_([this] { serve(); }) {}

ThrottledEchoServer::~ThrottledEchoServer() {
  stop_.store(true);
  thread_.join();
  for (const auto& [fd, bytes] : pending_)
    close(fd);
  close(listen_fd_);
}

void ThrottledEchoServer::serve() {
  using Clock = std::chrono::steady_clock;
  const auto period = std::chrono::microseconds(period_us_);
  Clock::time_point next_slot = Clock::now();
  char buf[65536];
  while (!stop_.load()) {
    std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
    for (const auto& [fd, bytes] : pending_)
      fds.push_back({fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), 20) <= 0) continue;
    if ((fds[0].revents & POLLIN) != 0) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) pending_[fd];
    }
    for (std::size_t i = 1; i < fds.size() && !stop_.load(); ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(fd);
        pending_.erase(fd);
        continue;
      }
      if (n < 0) continue;
      std::string& bytes = pending_[fd];
      bytes.append(buf, static_cast<std::size_t>(n));
      while (bytes.size() >= message_size_ && !stop_.load()) {
        // One message per slot: sleep to the slot, echo, book the next one.
        next_slot = std::max(next_slot, Clock::now());
        std::this_thread::sleep_until(next_slot);
        next_slot += period;
        std::size_t sent = 0;
        while (sent < message_size_) {
          const ssize_t m = send(fd, bytes.data() + sent, message_size_ - sent, MSG_NOSIGNAL);
          if (m <= 0) break;
          sent += static_cast<std::size_t>(m);
        }
        bytes.erase(0, message_size_);
      }
    }
  }
}

}  // namespace mr::bench::test
