// apply_accepted_socket_options on a real connected loopback pair: what getsockopt then reads on
// the accepted end.
#include <gtest/gtest.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "multireactor/socket.hpp"

namespace mr {
namespace {

int get_int(int fd, int level, int name) {
  int value = -1;
  socklen_t length = sizeof value;
  if (getsockopt(fd, level, name, &value, &length) != 0) return -errno;
  return value;
}

// A listener on 127.0.0.1:0, a client connected to it, and the accepted (server) end.
class AcceptedSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    listen_fd_ = listen_tcp(make_address("127.0.0.1", 0), 16);
    client_fd_ = connect_tcp(make_address("127.0.0.1", local_port(listen_fd_)));
    pollfd ready{listen_fd_, POLLIN, 0};
    ASSERT_EQ(poll(&ready, 1, 10'000), 1) << "the connection never reached the listener";
    accepted_fd_ = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ASSERT_GE(accepted_fd_, 0) << errno;
  }
  void TearDown() override {
    for (int fd : {accepted_fd_, client_fd_, listen_fd_})
      if (fd >= 0) close(fd);
  }
  int accepted() const { return accepted_fd_; }

 private:
  int listen_fd_ = -1;
  int client_fd_ = -1;
  int accepted_fd_ = -1;
};

TEST(AcceptedSocketOptionsDefaults, KeepaliveReclaimsAVanishedPeerWithinMinutes) {
  const AcceptedSocketOptions defaults;
  EXPECT_TRUE(defaults.tcp_nodelay);
  EXPECT_TRUE(defaults.keepalive);
  const int reclaim_s = defaults.keepidle_s + defaults.keepintvl_s * defaults.keepcnt;
  EXPECT_EQ(reclaim_s, 120);
  EXPECT_EQ(defaults.send_buffer_bytes, 0) << "autotuning unless asked";
  EXPECT_EQ(defaults.receive_buffer_bytes, 0) << "autotuning unless asked";
  EXPECT_EQ(defaults.user_timeout_ms, 0u);
}

TEST_F(AcceptedSocket, SocketOptionsAreAllAppliedToTheAcceptedSocket) {
  AcceptedSocketOptions options;
  options.tcp_nodelay = true;
  options.send_buffer_bytes = 40960;
  options.receive_buffer_bytes = 24576;
  options.keepalive = true;
  options.keepidle_s = 61;
  options.keepintvl_s = 11;
  options.keepcnt = 7;
  options.user_timeout_ms = 1500;
  ASSERT_EQ(apply_accepted_socket_options(accepted(), options), 0);
  EXPECT_EQ(get_int(accepted(), IPPROTO_TCP, TCP_NODELAY), 1);
  // The kernel doubles the value for its bookkeeping overhead (socket(7)).
  EXPECT_EQ(get_int(accepted(), SOL_SOCKET, SO_SNDBUF), 2 * 40960);
  EXPECT_EQ(get_int(accepted(), SOL_SOCKET, SO_RCVBUF), 2 * 24576);
  EXPECT_EQ(get_int(accepted(), SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(get_int(accepted(), IPPROTO_TCP, TCP_KEEPIDLE), 61);
  EXPECT_EQ(get_int(accepted(), IPPROTO_TCP, TCP_KEEPINTVL), 11);
  EXPECT_EQ(get_int(accepted(), IPPROTO_TCP, TCP_KEEPCNT), 7);
  EXPECT_EQ(get_int(accepted(), IPPROTO_TCP, TCP_USER_TIMEOUT), 1500);
}

TEST_F(AcceptedSocket, DefaultOptionsTurnOnKeepaliveAndLeaveBufferAutotuningAlone) {
  const int send_before = get_int(accepted(), SOL_SOCKET, SO_SNDBUF);
  const int receive_before = get_int(accepted(), SOL_SOCKET, SO_RCVBUF);
  ASSERT_EQ(get_int(accepted(), SOL_SOCKET, SO_KEEPALIVE), 0) << "the kernel's default is off";
  ASSERT_EQ(apply_accepted_socket_options(accepted(), AcceptedSocketOptions{}), 0);
  EXPECT_EQ(get_int(accepted(), SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(get_int(accepted(), IPPROTO_TCP, TCP_KEEPIDLE), 60);
  EXPECT_EQ(get_int(accepted(), IPPROTO_TCP, TCP_KEEPINTVL), 10);
  EXPECT_EQ(get_int(accepted(), IPPROTO_TCP, TCP_KEEPCNT), 6);
  EXPECT_EQ(get_int(accepted(), IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
  EXPECT_EQ(get_int(accepted(), SOL_SOCKET, SO_SNDBUF), send_before);
  EXPECT_EQ(get_int(accepted(), SOL_SOCKET, SO_RCVBUF), receive_before);
}

TEST_F(AcceptedSocket, OffMeansTheKernelDefaults) {
  AcceptedSocketOptions off;
  off.tcp_nodelay = false;
  off.keepalive = false;
  ASSERT_EQ(apply_accepted_socket_options(accepted(), off), 0);
  EXPECT_EQ(get_int(accepted(), IPPROTO_TCP, TCP_NODELAY), 0);
  EXPECT_EQ(get_int(accepted(), SOL_SOCKET, SO_KEEPALIVE), 0);
}

TEST(AcceptedSocketOptionsErrors, ANonSocketReportsTheErrno) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  EXPECT_EQ(apply_accepted_socket_options(pipe_fds[0], AcceptedSocketOptions{}), ENOTSOCK);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

}  // namespace
}  // namespace mr
