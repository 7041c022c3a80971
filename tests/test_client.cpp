#include "test_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <utility>

namespace mr::test {
namespace {

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

// poll() on one descriptor, retried on EINTR; returns revents, 0 on deadline, -1 on error.
int poll_one(int fd, short events, const Deadline& deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, deadline.poll_timeout_ms());
    if (n > 0) return p.revents;
    if (n == 0) return 0;
    if (errno != EINTR) return -1;
  }
}

}  // namespace

int Deadline::poll_timeout_ms() const {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(at_ - Clock::now()).count();
  if (left <= 0) return 0;
  return left > INT_MAX ? INT_MAX : static_cast<int>(left);
}

bool sanitizer_build() {
  const char* value = std::getenv("MR_SANITIZER_BUILD");
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}

std::size_t scaled(std::size_t full, std::size_t reduced) {
  return sanitizer_build() ? reduced : full;
}

std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::string out(n, '\0');
  std::size_t i = 0;
  while (i < n) {
    std::uint64_t word = engine();
    for (int b = 0; b < 8 && i < n; ++b, ++i) {
      out[i] = static_cast<char>(word & 0xff);
      word >>= 8;
    }
  }
  return out;
}

bool wait_until(const std::function<bool()>& condition, const Deadline& deadline) {
  for (;;) {
    if (condition()) return true;
    if (deadline.expired()) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

TestClient::TestClient(TestClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      connect_error_(std::move(other.connect_error_)),
      send_error_(std::move(other.send_error_)),
      receive_error_(std::move(other.receive_error_)) {}

TestClient& TestClient::operator=(TestClient&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    connect_error_ = std::move(other.connect_error_);
    send_error_ = std::move(other.send_error_);
    receive_error_ = std::move(other.receive_error_);
  }
  return *this;
}

TestClient TestClient::connect(std::uint16_t port, const Deadline& deadline,
                               const std::string& host) {
  TestClient failed;
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    length = sizeof(sockaddr_in6);
  } else {
    failed.connect_error_ = "not a numeric address: " + host;
    return failed;
  }

  int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    failed.connect_error_ = errno_text("socket", errno);
    return failed;
  }
  TestClient client(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&storage), length) == 0) return client;
  if (errno != EINPROGRESS) {
    failed.connect_error_ = errno_text("connect", errno);
    return failed;  // `client` closes fd
  }
  const int revents = poll_one(fd, POLLOUT, deadline);
  if (revents <= 0) {
    failed.connect_error_ = revents == 0 ? "connect: deadline passed" : errno_text("poll", errno);
    return failed;
  }
  int err = 0;
  socklen_t err_length = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_length) != 0 || err != 0) {
    failed.connect_error_ = errno_text("connect", err != 0 ? err : errno);
    return failed;
  }
  return client;
}

TestClient TestClient::adopt(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  return TestClient(fd);
}

std::ptrdiff_t TestClient::send_now(std::string_view bytes) {
  for (;;) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    send_error_ = errno_text("send", errno);
    return -1;
  }
}

bool TestClient::send_all(std::string_view bytes, const Deadline& deadline) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    std::ptrdiff_t n = send_now(bytes.substr(done));
    if (n < 0) return false;
    done += static_cast<std::size_t>(n);
    if (done == bytes.size()) break;
    const int revents = poll_one(fd_, POLLOUT, deadline);
    if (revents == 0) {
      send_error_ = "send: deadline passed after " + std::to_string(done) + " bytes";
      return false;
    }
    if (revents < 0) {
      send_error_ = errno_text("poll", errno);
      return false;
    }
  }
  return true;
}

std::ptrdiff_t TestClient::read_some(std::size_t max, std::string& out, const Deadline& deadline) {
  char buffer[64 * 1024];
  const std::size_t want = std::min(max, sizeof buffer);
  for (;;) {
    ssize_t n = ::recv(fd_, buffer, want, MSG_DONTWAIT);
    if (n > 0) {
      out.append(buffer, static_cast<std::size_t>(n));
      return n;
    }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      receive_error_ = errno_text("recv", errno);
      return -1;
    }
    const int revents = poll_one(fd_, POLLIN, deadline);
    if (revents == 0) {
      receive_error_ = "recv: deadline passed";
      return -1;
    }
    if (revents < 0) {
      receive_error_ = errno_text("poll", errno);
      return -1;
    }
  }
}

bool TestClient::read_exactly(std::size_t n, std::string& out, const Deadline& deadline) {
  std::size_t got = 0;
  while (got < n) {
    std::ptrdiff_t r = read_some(n - got, out, deadline);
    if (r == 0) {
      receive_error_ = "EOF after " + std::to_string(got) + " of " + std::to_string(n) + " bytes";
      return false;
    }
    if (r < 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

std::string TestClient::read_exactly(std::size_t n, const Deadline& deadline) {
  std::string out;
  read_exactly(n, out, deadline);
  return out;
}

bool TestClient::read_until_eof(std::string& out, const Deadline& deadline, std::size_t limit) {
  std::size_t got = 0;
  for (;;) {
    std::ptrdiff_t r = read_some(64 * 1024, out, deadline);
    if (r == 0) return true;
    if (r < 0) return false;
    got += static_cast<std::size_t>(r);
    if (got > limit) {
      receive_error_ = "more than " + std::to_string(limit) + " bytes before EOF";
      return false;
    }
  }
}

bool TestClient::exchange(std::string_view bytes, std::string& echoed, const Deadline& deadline,
                          bool half_close) {
  std::size_t sent = 0;
  std::size_t received = 0;
  bool write_shut = false;
  char buffer[64 * 1024];
  for (;;) {
    if (sent == bytes.size() && half_close && !write_shut) {
      if (!shutdown_write()) return false;
      write_shut = true;
    }
    const bool want_write = sent < bytes.size();
    // With half_close, keep reading after the echo until EOF (or an unexpected extra byte).
    const bool want_read = received < bytes.size() || half_close;
    if (!want_write && !want_read) return true;

    pollfd p{fd_, static_cast<short>((want_write ? POLLOUT : 0) | POLLIN), 0};
    int n = ::poll(&p, 1, deadline.poll_timeout_ms());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      receive_error_ = errno_text("poll", errno);
      return false;
    }
    if (n == 0) {
      receive_error_ = "exchange: deadline passed with " + std::to_string(sent) + " sent, " +
                       std::to_string(received) + " of " + std::to_string(bytes.size()) + " echoed";
      return false;
    }
    if (want_write && (p.revents & (POLLOUT | POLLERR)) != 0) {
      std::ptrdiff_t w = send_now(bytes.substr(sent));
      if (w < 0) return false;
      sent += static_cast<std::size_t>(w);
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t r = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (r > 0) {
        echoed.append(buffer, static_cast<std::size_t>(r));
        received += static_cast<std::size_t>(r);
        if (received > bytes.size()) {
          receive_error_ = "exchange: " + std::to_string(received) + " bytes came back for " +
                           std::to_string(bytes.size()) + " sent";
          return false;
        }
      } else if (r == 0) {
        if (received < bytes.size()) {
          receive_error_ = "exchange: EOF after " + std::to_string(received) + " of " +
                           std::to_string(bytes.size()) + " bytes";
          return false;
        }
        return true;  // EOF after the whole echo (the half-close case)
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        receive_error_ = errno_text("recv", errno);
        return false;
      }
    }
  }
}

bool TestClient::shutdown_write() {
  if (::shutdown(fd_, SHUT_WR) == 0) return true;
  send_error_ = errno_text("shutdown", errno);
  return false;
}

bool TestClient::set_receive_buffer(int bytes) {
  return setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) == 0;
}

void TestClient::reset() {
  if (fd_ < 0) return;
  linger abort_on_close{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
  close();
}

void TestClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace mr::test
