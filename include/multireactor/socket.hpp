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

// What the server sets on every accepted echo connection, whichever thread accepts it (the
// acceptor, or a worker in accept_mode = reuseport). 0 / false leaves the kernel's default.
struct AcceptedSocketOptions {
  bool tcp_nodelay = true;
  // SO_SNDBUF / SO_RCVBUF in bytes; 0 = the kernel's autotuning. A value turns autotuning off
  // for that direction; the kernel doubles it (bookkeeping) and caps it at wmem_max/rmem_max.
  int send_buffer_bytes = 0;
  int receive_buffer_bytes = 0;
  // SO_KEEPALIVE with TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT: a peer that has vanished is found
  // after keepidle_s + keepintvl_s * keepcnt seconds of silence (60 + 10 * 6 = 2 min).
  bool keepalive = true;
  int keepidle_s = 60;
  int keepintvl_s = 10;
  int keepcnt = 6;
  // TCP_USER_TIMEOUT; 0 = the kernel's default (off). Non-zero also aborts a live peer that
  // keeps its receive window closed (a client that does not read) for this long.
  unsigned user_timeout_ms = 0;
};

// Applies `options` to the connected socket `fd`: one setsockopt per option that is not the
// kernel's default. Returns 0, or the errno of the first setsockopt that failed (the rest are
// still applied). A connection works without any of them, so callers may ignore the result.
int apply_accepted_socket_options(int fd, const AcceptedSocketOptions& options);

}  // namespace mr
