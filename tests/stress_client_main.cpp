// mr-stress-client: holds many echo connections at once for the scale and overload tests.
//
//   mr-stress-client --port P --connections N [--bytes B] [--timeout-s S]
//   mr-stress-client --mode flood --port P --connections N --bytes B [--first-id K]
//                    [--rcvbuf R] [--sndbuf W] [--stall-ms S] [--timeout-s S]
//
// Opens N connections to 127.0.0.1:P (at most kConnectsInFlight handshakes at a time), sends B
// bytes on each (a pattern unique to the connection and the round) and checks that exactly those
// bytes come back. Then it writes "held N" on stderr and waits: SIGUSR1 runs a second round on
// every connection (so all N are proved alive while all N are open at once), closes them and
// exits 0 after "verified N"; SIGTERM closes them and exits 3. Any connection that fails, any
// wrong byte, or the deadline ends the process with a message and exit 1 (4 for the deadline).
// Spreading connections over several of these processes keeps each under its descriptor limit.
//
// --mode flood: a slow reader. Opens N connections (receive buffer R bytes, set before connect,
// when R > 0) and sends B bytes on each — connection K+i's own stream, cut from a pseudo-random
// 1 MiB block at an offset of its id — without reading anything, until every byte is sent or no
// connection took a byte for S ms (the server stopped reading). Then it writes
// "flooded N sent=BYTES complete=C after_ms=T" on stderr (C connections sent all B; T since the
// start) and waits: SIGUSR1 reads everything back while sending the rest, checks every byte
// against the stream, closes and exits 0 after "verified N bytes=TOTAL after_ms=T"; SIGTERM closes
// and exits 3. A connection closed or reset by the server, a wrong, missing or extra byte, or the
// deadline fail as above.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t kConnectsInFlight = 512;

using Clock = std::chrono::steady_clock;

enum class Mode { kEcho, kFlood };

struct Options {
  Mode mode = Mode::kEcho;
  std::uint16_t port = 0;
  std::size_t connections = 0;
  std::size_t bytes = 32;
  long timeout_s = 300;
  std::size_t first_id = 0;  // flood: connection i's stream is that of id first_id + i
  int rcvbuf = 0;            // flood: SO_RCVBUF before connect; 0 = the kernel's default
  int sndbuf = 0;            // flood: SO_SNDBUF before connect; 0 = the kernel's default
  long stall_ms = 1000;      // flood: no byte taken for this long ends the flood
};

struct Conn {
  int fd = -1;
  bool connected = false;
  std::size_t received = 0;
  std::size_t sent = 0;
};

// The flood streams: connection id g's byte at `offset` is block[(offset + g * 4099) % kBlock]
// of one pseudo-random block (splitmix64), cheap to send and to check in long runs.
class FloodStream {
 public:
  static constexpr std::size_t kBlock = std::size_t{1} << 20;
  FloodStream() : block_(kBlock) {
    std::uint64_t state = 0x6d72666c6f6f64ULL;  // "mrflood"
    for (std::size_t i = 0; i < kBlock; i += 8) {
      state += 0x9e3779b97f4a7c15ULL;
      std::uint64_t z = state;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      std::memcpy(&block_[i], &z, 8);
    }
  }
  // The longest contiguous run of stream `id` from `offset`, at most `max` bytes.
  std::pair<const char*, std::size_t> at(std::size_t id, std::size_t offset,
                                         std::size_t max) const {
    const std::size_t start = (offset + id * 4099) % kBlock;
    return {block_.data() + start, std::min(max, kBlock - start)};
  }
  // The first offset in [offset, offset + n) where `bytes` differ from stream `id`, or n + offset
  // when they all match.
  std::size_t first_mismatch(std::size_t id, std::size_t offset, const char* bytes,
                             std::size_t n) const {
    const std::size_t end = offset + n;
    while (offset < end) {
      const auto [expected, run] = at(id, offset, end - offset);
      if (std::memcmp(expected, bytes, run) != 0) {
        for (std::size_t k = 0; k < run; ++k) {
          if (expected[k] != bytes[k]) return offset + k;
        }
      }
      offset += run;
      bytes += run;
    }
    return end;
  }

 private:
  std::vector<char> block_;
};

[[noreturn]] void fail(int code, const std::string& what) {
  std::fprintf(stderr, "mr-stress-client: %s\n", what.c_str());
  std::exit(code);
}

char pattern_byte(std::size_t conn, std::size_t offset, int round) {
  return static_cast<char>((conn * 131 + offset * 7 + static_cast<std::size_t>(round) * 29) & 0xff);
}

class Client {
 public:
  explicit Client(const Options& options)
      : options_(options),
        deadline_(Clock::now() + std::chrono::seconds(options.timeout_s)),
        epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
        conns_(options.connections),
        events_(1024) {
    if (epoll_fd_ < 0) fail(1, std::string("epoll_create1: ") + std::strerror(errno));
  }

  // Opens every connection, keeping at most kConnectsInFlight handshakes pending.
  void connect_all() {
    std::size_t next = 0;
    std::size_t in_flight = 0;
    std::size_t done = 0;
    while (done < conns_.size()) {
      while (next < conns_.size() && in_flight < kConnectsInFlight) {
        if (start_connect(next)) {
          ++done;
        } else {
          ++in_flight;
        }
        ++next;
      }
      for (const epoll_event& ev : wait()) {
        Conn& c = conns_[ev.data.u64];
        if (c.connected) continue;
        int err = 0;
        socklen_t length = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &length);
        if (err != 0)
          fail(1, "connect #" + std::to_string(ev.data.u64) + ": " + std::strerror(err));
        if ((ev.events & EPOLLOUT) == 0) continue;
        c.connected = true;
        watch(ev.data.u64, EPOLLIN, EPOLL_CTL_MOD);
        --in_flight;
        ++done;
      }
    }
  }

  // Sends this round's bytes on every connection and checks every byte that comes back.
  void echo_round(int round) {
    std::string message(options_.bytes, '\0');
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      for (std::size_t k = 0; k < message.size(); ++k)
        message[k] = pattern_byte(i, k, round);
      // A fresh or drained socket has far more send room than one small message.
      ssize_t n = send(conns_[i].fd, message.data(), message.size(), MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(message.size())) {
        fail(1, "send #" + std::to_string(i) + ": " + (n < 0 ? std::strerror(errno) : "short"));
      }
      conns_[i].received = 0;
    }
    std::size_t done = 0;
    std::vector<char> buffer(options_.bytes + 1);
    while (done < conns_.size()) {
      for (const epoll_event& ev : wait()) {
        const std::size_t i = ev.data.u64;
        Conn& c = conns_[i];
        ssize_t n = recv(c.fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n == 0) fail(1, "connection #" + std::to_string(i) + " closed by the server");
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) continue;
          fail(1, "recv #" + std::to_string(i) + ": " + std::strerror(errno));
        }
        for (ssize_t k = 0; k < n; ++k) {
          if (c.received + static_cast<std::size_t>(k) >= options_.bytes ||
              buffer[static_cast<std::size_t>(k)] != pattern_byte(i, c.received + k, round)) {
            fail(1, "connection #" + std::to_string(i) + ": wrong byte at offset " +
                        std::to_string(c.received + k));
          }
        }
        c.received += static_cast<std::size_t>(n);
        if (c.received == options_.bytes) ++done;
      }
    }
  }

  // Flood: sends every connection's stream without reading until all of it is sent or nothing
  // moved for stall_ms. Returns the bytes sent; `complete` counts the connections that sent all.
  std::size_t flood(std::size_t& complete) {
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      watch(i, EPOLLOUT, EPOLL_CTL_MOD);
    }
    complete = 0;
    std::size_t total = 0;
    auto last_progress = Clock::now();
    const auto stall = std::chrono::milliseconds(options_.stall_ms);
    while (complete < conns_.size() && Clock::now() - last_progress < stall) {
      for (const epoll_event& ev : wait(static_cast<int>(options_.stall_ms))) {
        const std::size_t i = ev.data.u64;
        Conn& c = conns_[i];
        if ((ev.events & (EPOLLERR | EPOLLHUP)) != 0 && c.sent == options_.bytes) {
          fail(1, "connection #" + id(i) + " failed during the flood after sending all " +
                      std::to_string(c.sent) + " bytes");
        }
        if (c.sent == options_.bytes) continue;
        const auto [bytes, run] =
            stream_.at(options_.first_id + i, c.sent, options_.bytes - c.sent);
        const ssize_t n = send(c.fd, bytes, run, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) continue;
          fail(1, "send #" + id(i) + " during the flood after " + std::to_string(c.sent) +
                      " bytes: " + std::strerror(errno));
        }
        c.sent += static_cast<std::size_t>(n);
        total += static_cast<std::size_t>(n);
        last_progress = Clock::now();
        if (c.sent == options_.bytes) {
          ++complete;
          watch(i, 0, EPOLL_CTL_MOD);
        }
      }
    }
    return total;
  }

  // After the flood: reads every connection's echo while sending what the flood left, checks
  // every byte, and returns the bytes received.
  std::size_t drain() {
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      conns_[i].received = 0;
      watch(i, EPOLLIN | (conns_[i].sent < options_.bytes ? EPOLLOUT : 0u), EPOLL_CTL_MOD);
    }
    std::vector<char> buffer(256 * 1024);
    std::size_t done = 0;
    std::size_t total = 0;
    while (done < conns_.size()) {
      for (const epoll_event& ev : wait()) {
        const std::size_t i = ev.data.u64;
        Conn& c = conns_[i];
        const std::size_t stream_id = options_.first_id + i;
        if ((ev.events & EPOLLOUT) != 0 && c.sent < options_.bytes) {
          const auto [bytes, run] = stream_.at(stream_id, c.sent, options_.bytes - c.sent);
          const ssize_t n = send(c.fd, bytes, run, MSG_NOSIGNAL | MSG_DONTWAIT);
          if (n < 0 && errno != EAGAIN && errno != EINTR) {
            fail(1, "send #" + id(i) + " after " + std::to_string(c.sent) +
                        " bytes: " + std::strerror(errno));
          }
          if (n > 0) c.sent += static_cast<std::size_t>(n);
          if (c.sent == options_.bytes) watch(i, EPOLLIN, EPOLL_CTL_MOD);
        }
        if ((ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) == 0 || c.received == options_.bytes) {
          continue;
        }
        const ssize_t n = recv(c.fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n == 0) {
          fail(1, "connection #" + id(i) + " closed by the server after " +
                      std::to_string(c.received) + " of " + std::to_string(options_.bytes) +
                      " bytes came back");
        }
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) continue;
          fail(1, "recv #" + id(i) + " after " + std::to_string(c.received) +
                      " bytes: " + std::strerror(errno));
        }
        const auto got = static_cast<std::size_t>(n);
        if (c.received + got > c.sent) {
          fail(1, "connection #" + id(i) + ": " + std::to_string(c.received + got) +
                      " bytes came back, only " + std::to_string(c.sent) + " were sent");
        }
        const std::size_t bad = stream_.first_mismatch(stream_id, c.received, buffer.data(), got);
        if (bad != c.received + got) {
          fail(1, "connection #" + id(i) + ": wrong byte at offset " + std::to_string(bad));
        }
        c.received += got;
        total += got;
        if (c.received == options_.bytes) {
          ++done;
          watch(i, 0, EPOLL_CTL_MOD);
        }
      }
    }
    return total;
  }

  // Milliseconds since the process started (for the report lines).
  long long elapsed_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count();
  }

  void close_all() {
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
      c.fd = -1;
    }
  }

  // Waits for SIGUSR1 (true) or SIGTERM (false) until the deadline.
  bool wait_for_go(const sigset_t& signals) {
    for (;;) {
      timespec left = time_left();
      int sig = sigtimedwait(&signals, nullptr, &left);
      if (sig == SIGUSR1) return true;
      if (sig == SIGTERM) return false;
      if (sig < 0 && errno == EAGAIN) fail(4, "deadline passed waiting for a signal");
    }
  }

 private:
  // The connection's id in messages: its stream id in flood mode.
  std::string id(std::size_t i) const { return std::to_string(options_.first_id + i); }

  // True when the connection completed at once.
  bool start_connect(std::size_t i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(1, "socket #" + std::to_string(i) + ": " + std::strerror(errno));
    conns_[i].fd = fd;
    // Before connect, so the window the client offers stays small from the handshake on: the
    // echo then piles up in the server, not in this process's kernel buffers.
    if (options_.rcvbuf > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options_.rcvbuf, sizeof options_.rcvbuf) != 0) {
      fail(1, std::string("SO_RCVBUF: ") + std::strerror(errno));
    }
    if (options_.sndbuf > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &options_.sndbuf, sizeof options_.sndbuf) != 0) {
      fail(1, std::string("SO_SNDBUF: ") + std::strerror(errno));
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(options_.port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
      conns_[i].connected = true;
      watch(i, EPOLLIN, EPOLL_CTL_ADD);
      return true;
    }
    if (errno != EINPROGRESS)
      fail(1, "connect #" + std::to_string(i) + ": " + std::strerror(errno));
    watch(i, EPOLLOUT, EPOLL_CTL_ADD);
    return false;
  }

  void watch(std::size_t i, std::uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = i;
    if (epoll_ctl(epoll_fd_, op, conns_[i].fd, &ev) != 0) {
      fail(1, std::string("epoll_ctl: ") + std::strerror(errno));
    }
  }

  // Ready events, waiting at most `max_ms` (-1: until the deadline).
  std::vector<epoll_event> wait(int max_ms = -1) {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) fail(4, "deadline passed");
      int timeout = static_cast<int>(left.count());
      if (max_ms >= 0) timeout = std::min(timeout, max_ms);
      int n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), timeout);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(1, std::string("epoll_wait: ") + std::strerror(errno));
      return {events_.begin(), events_.begin() + n};
    }
  }

  timespec time_left() const {
    const auto left =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline_ - Clock::now());
    if (left.count() <= 0) return {0, 0};
    return {static_cast<time_t>(left.count() / 1'000'000'000),
            static_cast<long>(left.count() % 1'000'000'000)};
  }

  const Options options_;
  const Clock::time_point started_ = Clock::now();
  const FloodStream stream_;
  const Clock::time_point deadline_;
  int epoll_fd_;
  std::vector<Conn> conns_;
  std::vector<epoll_event> events_;
};

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const std::string text = argv[i + 1];
    const long value = std::strtol(argv[i + 1], nullptr, 10);
    if (name == "--mode") {
      if (text != "echo" && text != "flood") fail(2, "unknown mode " + text);
      options.mode = text == "flood" ? Mode::kFlood : Mode::kEcho;
    } else if (name == "--first-id") {
      options.first_id = static_cast<std::size_t>(value);
    } else if (name == "--rcvbuf") {
      options.rcvbuf = static_cast<int>(value);
    } else if (name == "--sndbuf") {
      options.sndbuf = static_cast<int>(value);
    } else if (name == "--stall-ms") {
      options.stall_ms = value;
    } else if (name == "--port") {
      options.port = static_cast<std::uint16_t>(value);
    } else if (name == "--connections") {
      options.connections = static_cast<std::size_t>(value);
    } else if (name == "--bytes") {
      options.bytes = static_cast<std::size_t>(value);
    } else if (name == "--timeout-s") {
      options.timeout_s = value;
    } else {
      fail(2, "unknown option " + name);
    }
  }
  if (options.port == 0 || options.connections == 0 || options.bytes == 0 ||
      options.stall_ms <= 0 || argc % 2 == 0) {
    fail(2,
         "usage: mr-stress-client [--mode echo|flood] --port P --connections N [--bytes B] "
         "[--first-id K] [--rcvbuf R] [--sndbuf W] [--stall-ms S] [--timeout-s S]");
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &signals, nullptr);
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);

  Client client(options);
  client.connect_all();
  if (options.mode == Mode::kFlood) {
    std::size_t complete = 0;
    const std::size_t sent = client.flood(complete);
    std::fprintf(stderr, "flooded %zu sent=%zu complete=%zu after_ms=%lld\n", options.connections,
                 sent, complete, client.elapsed_ms());
    if (!client.wait_for_go(signals)) {
      client.close_all();
      return 3;
    }
    const std::size_t received = client.drain();
    client.close_all();
    std::fprintf(stderr, "verified %zu bytes=%zu after_ms=%lld\n", options.connections, received,
                 client.elapsed_ms());
    return 0;
  }
  client.echo_round(1);
  std::fprintf(stderr, "held %zu\n", options.connections);
  if (!client.wait_for_go(signals)) {
    client.close_all();
    return 3;
  }
  client.echo_round(2);
  client.close_all();
  std::fprintf(stderr, "verified %zu\n", options.connections);
  return 0;
}
