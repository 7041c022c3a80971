#include "fake_http_server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "multireactor/socket.hpp"

namespace mr::bench::test {

FakeHttpServer::FakeHttpServer(Responder respond)
    : respond_(std::move(respond)),
      listen_fd_(listen_tcp(make_address("127.0.0.1", 0), 16)),
      port_(local_port(listen_fd_)),
      thread_([this] { serve(); }) {}

FakeHttpServer::~FakeHttpServer() {
  stop_.store(true);
  thread_.join();
  close(listen_fd_);
}

std::string FakeHttpServer::ok_json(const std::string& body) {
  return fmt::format(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      body.size(), body);
}

void FakeHttpServer::serve() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos && !stop_.load()) {
      pollfd c{fd, POLLIN, 0};
      if (poll(&c, 1, 50) <= 0) continue;
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      head.append(buf, static_cast<std::size_t>(n));
    }
    const std::string answer = respond_(head);
    std::size_t sent = 0;
    while (sent < answer.size()) {
      const ssize_t n = send(fd, answer.data() + sent, answer.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    close(fd);
    served_.fetch_add(1);
  }
}

}  // namespace mr::bench::test
