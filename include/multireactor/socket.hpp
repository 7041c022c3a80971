// Small socket helpers shared by the server, the admin listener and echo-bench.
//
// Contract: functions that set up sockets throw std::system_error naming the call and address;
// none of them is used on the data path.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace mr {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

// Parses a numeric IPv4/IPv6 address and a port. Throws std::invalid_argument.
SocketAddress make_address(const std::string& host, std::uint16_t port);

// A non-blocking, close-on-exec listening TCP socket with SO_REUSEADDR (and SO_REUSEPORT when
// asked), bound and listening.
int listen_tcp(const SocketAddress& address, int backlog, bool reuse_port = false);

// A non-blocking TCP socket connecting (or connected) to `address`, optionally bound to `source`.
int connect_tcp(const SocketAddress& address, const SocketAddress* source = nullptr);

// The port a socket is bound to.
std::uint16_t local_port(int fd);

// "host:port" of a socket's local or peer address.
std::string describe_address(const SocketAddress& address);

void set_tcp_nodelay(int fd, bool on);

}  // namespace mr
