#include "admin/health_check.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <system_error>

#include <fmt/format.h>

#include "multireactor/fd.hpp"
#include "multireactor/socket.hpp"

namespace mr {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on `fd` until `deadline`. Returns "" when ready, else why not.
std::string wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return "timed out";
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return "";
    if (n < 0 && errno != EINTR)
      return fmt::format("poll: {}", std::generic_category().message(errno));
  }
}

// "HTTP/1.1 200 OK" -> 200; 0 when the line is not an HTTP/1.x status line.
int parse_status_line(const std::string& line) {
  if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || line[8] != ' ') return 0;
  int code = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return 0;
    code = code * 10 + (line[i] - '0');
  }
  if (line.size() > 12 && line[12] != ' ') return 0;
  return code;
}

}  // namespace

std::string probe_address(const std::string& bind) {
  if (bind == "0.0.0.0") return "127.0.0.1";
  if (bind == "::" || bind == "::0") return "::1";
  return bind;
}

HealthCheckResult probe_http(const std::string& host, std::uint16_t port, const std::string& path,
                             std::chrono::milliseconds timeout) {
  HealthCheckResult result;
  const auto deadline = Clock::now() + timeout;
  SocketAddress address;
  int raw_fd = -1;
  try {
    address = make_address(host, port);
    raw_fd = connect_tcp(address);
  } catch (const std::exception& e) {
    result.detail = e.what();
    return result;
  }
  const Fd fd(raw_fd);

  if (std::string why = wait_for(fd.get(), POLLOUT, deadline); !why.empty()) {
    result.detail = "connect: " + why;
    return result;
  }
  int error = 0;
  socklen_t length = sizeof error;
  if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) {
    result.detail = fmt::format("connect {}: {}", describe_address(address),
                                std::generic_category().message(error));
    return result;
  }

  const std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: echo-server-health-check\r\n"
      "Connection: close\r\n\r\n",
      path, describe_address(address));
  std::size_t sent = 0;
  while (sent < request.size()) {
    if (std::string why = wait_for(fd.get(), POLLOUT, deadline); !why.empty()) {
      result.detail = "send: " + why;
      return result;
    }
    ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) {
      result.detail = fmt::format("send: {}", std::generic_category().message(errno));
      return result;
    }
    sent += static_cast<std::size_t>(n);
  }

  // Only the status line matters; a server that never finishes it is unhealthy too.
  std::string received;
  constexpr std::size_t kMaxStatusLine = 1024;
  while (received.find("\r\n") == std::string::npos && received.size() < kMaxStatusLine) {
    if (std::string why = wait_for(fd.get(), POLLIN, deadline); !why.empty()) {
      result.detail = "no status line: " + why;
      return result;
    }
    char buf[512];
    ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) {
      result.detail = fmt::format("recv: {}", std::generic_category().message(errno));
      return result;
    }
    if (n == 0) break;
    received.append(buf, static_cast<std::size_t>(n));
  }
  const std::string line = received.substr(0, received.find("\r\n"));
  result.status_code = parse_status_line(line);
  if (result.status_code == 0) {
    result.detail = line.empty() ? "connection closed without a response"
                                 : "not an HTTP status line: " + line.substr(0, 80);
    return result;
  }
  result.detail = line;
  result.healthy = result.status_code == 200;
  return result;
}

int run_health_check(const ServerConfig& config, std::chrono::milliseconds timeout) {
  if (config.admin_port == 0) {
    std::fprintf(stderr, "unhealthy: the admin listener is off (admin_port = 0)\n");
    return 1;
  }
  const std::string host = probe_address(config.admin_bind);
  const HealthCheckResult r = probe_http(host, config.admin_port, "/healthz", timeout);
  const std::string url = host.find(':') == std::string::npos
                              ? fmt::format("http://{}:{}/healthz", host, config.admin_port)
                              : fmt::format("http://[{}]:{}/healthz", host, config.admin_port);
  std::FILE* out = r.healthy ? stdout : stderr;
  std::fprintf(out, "%s: GET %s: %s\n", r.healthy ? "healthy" : "unhealthy", url.c_str(),
               r.detail.c_str());
  return r.healthy ? 0 : 1;
}

}  // namespace mr
