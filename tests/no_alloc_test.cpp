// Steady-state echo allocates nothing: this binary replaces the global allocation functions
// (operator new via malloc, and malloc/calloc/realloc themselves) with counting versions, runs a
// real server in-process, and counts every allocation any thread makes while 10,000 messages
// are echoed after warm-up. The client side uses fixed buffers and raw syscalls so that it does
// not allocate either.
#include <dlfcn.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include <gtest/gtest.h>

#include "multireactor/socket.hpp"
#include "server/server.hpp"

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);
extern "C" void __libc_free(void*);

namespace {
std::atomic<bool> counting{false};
std::atomic<std::uint64_t> allocations{0};

void note_allocation() {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) {
  note_allocation();
  return __libc_malloc(n);
}
void* calloc(std::size_t count, std::size_t n) {
  note_allocation();
  return __libc_calloc(count, n);
}
void* realloc(void* p, std::size_t n) {
  note_allocation();
  return __libc_realloc(p, n);
}
void free(void* p) {
  __libc_free(p);
}
}

void* operator new(std::size_t n) {
  void* p = malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void operator delete(void* p) noexcept {
  free(p);
}
void operator delete[](void* p) noexcept {
  free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  free(p);
}

namespace {

constexpr int kClients = 10;
constexpr int kWarmupRounds = 100;
constexpr int kMeasuredRounds = 1000;  // x kClients = 10,000 echoed messages
constexpr std::size_t kMessageBytes = 64;

// Sends `n` bytes and reads them back on a blocking-by-poll socket; false on any failure.
bool echo_once(int fd, const char* message, char* reply, std::size_t n) {
  std::size_t sent = 0;
  while (sent < n) {
    ssize_t w = send(fd, message + sent, n - sent, MSG_NOSIGNAL);
    if (w > 0) {
      sent += static_cast<std::size_t>(w);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    if (w < 0 && errno != EAGAIN) return false;
    if (poll(&p, 1, 5000) <= 0) return false;
  }
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, reply + got, n - got, 0);
    if (r > 0) {
      got += static_cast<std::size_t>(r);
      continue;
    }
    if (r == 0 || errno != EAGAIN) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return false;
  }
  return std::memcmp(message, reply, n) == 0;
}

TEST(NoAllocation, CountingHookSeesAllocations) {
  // The control: if this fails the hook is not installed and the zero below would mean nothing.
  counting = true;
  const std::uint64_t before = allocations.load();
  auto* p = new int(7);
  void* q = std::malloc(32);
  counting = false;
  std::free(q);
  delete p;
  EXPECT_GE(allocations.load() - before, 2U);
}

TEST(NoAllocation, SteadyStateEchoAllocatesNothing) {
  mr::ServerConfig config;
  config.bind = "127.0.0.1";
  config.port = 0;
  config.workers = 2;
  config.admin_port = 0;
  mr::Server server(config);
  server.start();

  std::array<int, kClients> fds{};
  const mr::SocketAddress address = mr::make_address("127.0.0.1", server.port());
  for (int& fd : fds) {
    fd = mr::connect_tcp(address);
    pollfd p{fd, POLLOUT, 0};
    ASSERT_EQ(poll(&p, 1, 5000), 1);
  }
  std::array<char, kMessageBytes> message{};
  std::array<char, kMessageBytes> reply{};
  for (std::size_t i = 0; i < message.size(); ++i)
    message[i] = static_cast<char>('a' + i % 26);

  for (int round = 0; round < kWarmupRounds; ++round) {
    for (int fd : fds)
      ASSERT_TRUE(echo_once(fd, message.data(), reply.data(), kMessageBytes));
  }

  allocations = 0;
  counting = true;
  bool all_ok = true;
  for (int round = 0; round < kMeasuredRounds && all_ok; ++round) {
    for (int fd : fds)
      all_ok = all_ok && echo_once(fd, message.data(), reply.data(), kMessageBytes);
  }
  counting = false;
  const std::uint64_t counted = allocations.load();

  ASSERT_TRUE(all_ok);
  EXPECT_EQ(counted, 0U) << "heap allocations during 10,000 steady-state echoes";
  for (int fd : fds)
    close(fd);
  // A worker counts bytes after send() returns, which may be after the client already has them:
  // read the counters once the workers have stopped.
  server.stop();
  std::uint64_t bytes = 0;
  for (const auto& w : server.worker_stats())
    bytes += w.bytes_sent;
  EXPECT_EQ(bytes, std::uint64_t{kClients} * (kWarmupRounds + kMeasuredRounds) * kMessageBytes);
}

}  // namespace
