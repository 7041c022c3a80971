// An echo server with a known capacity for the knee finder's test: one thread serves every
// connection and echoes each whole message only at its time slot, one slot per `period_us`, so it
// echoes at most 1e6 / period_us messages a second however fast the machine is.
//
// Contract: listens on 127.0.0.1:0; the slots are fixed on the clock (the next one is a period
// after the last one used, or now when idle), so a late wake-up does not lower the capacity. The
// destructor stops the thread (it polls with a short timeout) and closes everything.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <thread>

namespace mr::bench::test {

class ThrottledEchoServer {
 public:
  ThrottledEchoServer(std::size_t message_size, unsigned period_us);
  ~ThrottledEchoServer();
  ThrottledEchoServer(const ThrottledEchoServer&) = delete;
  ThrottledEchoServer& operator=(const ThrottledEchoServer&) = delete;

  std::uint16_t port() const { return port_; }
  double capacity_per_s() const { return 1e6 / period_us_; }

 private:
  void serve();
  const std::size_t message_size_;
  const unsigned period_us_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::map<int, std::string> pending_;  // bytes received and not yet echoed, per connection
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace mr::bench::test
