// UringRing's table of registered files: an operation on a registered socket reaches it, and a
// removed one closes when its descriptor does (the table holds a reference until then).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "multireactor/detail/uring_ring.hpp"

namespace mr {
namespace {

class UringRingFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!detail::UringRing::probe(true, &why)) GTEST_SKIP() << "no io_uring here: " << why;
    ASSERT_TRUE(ring_.init(detail::UringParams{}, &why)) << why;
    ASSERT_TRUE(ring_.enable(&why)) << why;
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair_), 0);
  }
  void TearDown() override {
    for (int& fd : pair_) {
      if (fd >= 0) close(fd);
    }
  }

  // What a send through the ring answered, after one submit.
  int send_through_ring(const char* bytes, std::size_t n) {
    ring_.prep_send(pair_[0], bytes, n, detail::uring_data(detail::UringOp::kSendPending, 1));
    std::vector<detail::Completion> out;
    if (!ring_.submit_and_wait(1, 0, out) || out.size() != 1) return -1000;
    return out[0].res;
  }

  detail::UringRing ring_;
  int pair_[2] = {-1, -1};
};

TEST_F(UringRingFiles, ASendOnARegisteredSocketReachesThePeer) {
  ring_.add_file(pair_[0]);
  ASSERT_TRUE(ring_.registered(pair_[0])) << "the kernel gave no table of registered files";
  ASSERT_EQ(send_through_ring("hello", 5), 5);
  char got[8] = {};
  ASSERT_EQ(read(pair_[1], got, sizeof got), 5);
  EXPECT_EQ(std::string(got, 5), "hello");
}

TEST_F(UringRingFiles, ARemovedSocketClosesWithItsDescriptor) {
  ring_.add_file(pair_[0]);
  ASSERT_TRUE(ring_.registered(pair_[0]));
  ring_.remove_file(pair_[0]);
  EXPECT_FALSE(ring_.registered(pair_[0]));
  close(pair_[0]);
  pair_[0] = -1;
  // Still in the table, the socket would stay open: the peer would see no end of file.
  pollfd p{pair_[1], POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the peer never saw the socket close";
  char got[1];
  EXPECT_EQ(read(pair_[1], got, 1), 0);
}

TEST_F(UringRingFiles, AnUnregisteredSocketIsNamedByItsDescriptor) {
  EXPECT_FALSE(ring_.registered(pair_[0]));
  ASSERT_EQ(send_through_ring("x", 1), 1);
  char got = 0;
  ASSERT_EQ(read(pair_[1], &got, 1), 1);
  EXPECT_EQ(got, 'x');
}

}  // namespace
}  // namespace mr
