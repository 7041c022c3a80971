#include "multireactor/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

namespace mr {

SocketAddress make_address(const std::string& host, std::uint16_t port) {
  SocketAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.length = sizeof(sockaddr_in);
    return a;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.length = sizeof(sockaddr_in6);
    return a;
  }
  throw std::invalid_argument("not a numeric IPv4 or IPv6 address: " + host);
}

std::string describe_address(const SocketAddress& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address.storage);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    return fmt::format("{}:{}", text, ntohs(v4->sin_port));
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
  return fmt::format("[{}]:{}", text, ntohs(v6->sin6_port));
}

int listen_tcp(const SocketAddress& address, int backlog, bool reuse_port) {
  int fd = socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, address.get(), address.length) != 0) {
    int err = errno;
    close(fd);
    throw std::system_error(err, std::generic_category(), "bind " + describe_address(address));
  }
  if (listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    throw std::system_error(err, std::generic_category(), "listen " + describe_address(address));
  }
  return fd;
}

int connect_tcp(const SocketAddress& address, const SocketAddress* source) {
  int fd = socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  if (source != nullptr) {
    int one = 1;
    // Lets many connections share a source address: the kernel picks the port at connect().
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, source->get(), source->length) != 0) {
      int err = errno;
      close(fd);
      throw std::system_error(err, std::generic_category(), "bind " + describe_address(*source));
    }
  }
  if (connect(fd, address.get(), address.length) != 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    throw std::system_error(err, std::generic_category(), "connect " + describe_address(address));
  }
  return fd;
}

std::uint16_t local_port(int fd) {
  SocketAddress a;
  a.length = sizeof a.storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.length) != 0) return 0;
  if (a.family() == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&a.storage)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_port);
}

void set_tcp_nodelay(int fd, bool on) {
  int value = on ? 1 : 0;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, sizeof value);
}

int apply_accepted_socket_options(int fd, const AcceptedSocketOptions& options) {
  int first_error = 0;
  auto set = [fd, &first_error](int level, int name, int value) {
    if (setsockopt(fd, level, name, &value, sizeof value) != 0 && first_error == 0) {
      first_error = errno;
    }
  };
  if (options.tcp_nodelay) set(IPPROTO_TCP, TCP_NODELAY, 1);
  if (options.send_buffer_bytes > 0) set(SOL_SOCKET, SO_SNDBUF, options.send_buffer_bytes);
  if (options.receive_buffer_bytes > 0) set(SOL_SOCKET, SO_RCVBUF, options.receive_buffer_bytes);
  if (options.keepalive) {
    set(SOL_SOCKET, SO_KEEPALIVE, 1);
    set(IPPROTO_TCP, TCP_KEEPIDLE, options.keepidle_s);
    set(IPPROTO_TCP, TCP_KEEPINTVL, options.keepintvl_s);
    set(IPPROTO_TCP, TCP_KEEPCNT, options.keepcnt);
  }
  if (options.user_timeout_ms > 0) {
    set(IPPROTO_TCP, TCP_USER_TIMEOUT, static_cast<int>(options.user_timeout_ms));
  }
  return first_error;
}

}  // namespace mr
