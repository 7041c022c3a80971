// Test helpers: deadlines, reproducible payloads, and a poll-based loopback TCP client.
//
// Contract: nothing here can block past the Deadline it is given — every wait is a poll() with
// the time left, and a call that runs out of time returns false (or a short result) instead of
// hanging. The client's socket is non-blocking and close-on-exec. A TestClient may be used from
// two threads at once only as one sending thread plus one receiving thread (each side keeps its
// own error text); everything else is single-threaded.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace mr::test {

using Clock = std::chrono::steady_clock;

class Deadline {
 public:
  explicit Deadline(std::chrono::milliseconds budget) : at_(Clock::now() + budget) {}
  bool expired() const { return Clock::now() >= at_; }
  // Milliseconds left, rounded up, for poll(); 0 once expired.
  int poll_timeout_ms() const;

 private:
  Clock::time_point at_;
};

// True when the suite runs in a sanitizer build (.ci/run sets MR_SANITIZER_BUILD=1).
bool sanitizer_build();
// `full` normally, `reduced` under sanitizers, for counts that would make a test slow there.
std::size_t scaled(std::size_t full, std::size_t reduced);

// `n` pseudo-random bytes, the same for the same seed.
std::string random_bytes(std::size_t n, std::uint64_t seed);

// Evaluates `condition` every few milliseconds until it holds or the deadline passes; returns
// its last value.
bool wait_until(const std::function<bool()>& condition, const Deadline& deadline);

class TestClient {
 public:
  TestClient() = default;
  ~TestClient() { close(); }
  TestClient(TestClient&& other) noexcept;
  TestClient& operator=(TestClient&& other) noexcept;
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  // Connects to a numeric IPv4/IPv6 `host` and `port`. On failure the client is not valid() and
  // connect_error() says why.
  static TestClient connect(std::uint16_t port, const Deadline& deadline,
                            const std::string& host = "127.0.0.1");

  // Takes ownership of a connected socket (e.g. one end of a socketpair); makes it non-blocking.
  static TestClient adopt(int fd);

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  const std::string& connect_error() const { return connect_error_; }
  const std::string& send_error() const { return send_error_; }
  const std::string& receive_error() const { return receive_error_; }

  // Sends every byte, waiting for room as needed.
  bool send_all(std::string_view bytes, const Deadline& deadline);
  // Sends what the socket takes right now; returns the count, or -1 on an error other than
  // EAGAIN.
  std::ptrdiff_t send_now(std::string_view bytes);

  // Reads exactly `n` bytes, appended to `out`. False on EOF, error or deadline (what arrived
  // is still appended).
  bool read_exactly(std::size_t n, std::string& out, const Deadline& deadline);
  // Convenience: the bytes read (shorter than `n` if the read failed).
  std::string read_exactly(std::size_t n, const Deadline& deadline);
  // Waits for data and reads at most `max` bytes into `out` (appended). Returns the count, 0 at
  // EOF, -1 on error or deadline.
  std::ptrdiff_t read_some(std::size_t max, std::string& out, const Deadline& deadline);
  // Reads (appending to `out`) until EOF; true if EOF came before the deadline, an error, or
  // more than `limit` bytes.
  bool read_until_eof(std::string& out, const Deadline& deadline,
                      std::size_t limit = std::size_t{1} << 30);

  // Sends `bytes` while reading what comes back, interleaved through one poll() loop so full
  // socket buffers in both directions cannot deadlock; appends the echo to `echoed` and returns
  // true once bytes.size() bytes came back. With `half_close`, shuts down the write side after
  // the last byte and also requires EOF after the echo.
  bool exchange(std::string_view bytes, std::string& echoed, const Deadline& deadline,
                bool half_close = false);

  bool shutdown_write();
  // SO_RCVBUF, set before much data flows, bounds how much the kernel buffers for a slow reader.
  bool set_receive_buffer(int bytes);
  // SO_LINGER {on, 0} and close: the peer gets a RST instead of a FIN.
  void reset();
  void close();

 private:
  explicit TestClient(int fd) : fd_(fd) {}

  int fd_ = -1;
  std::string connect_error_;
  std::string send_error_;
  std::string receive_error_;
};

}  // namespace mr::test
