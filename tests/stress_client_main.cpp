// mr-stress-client: holds many echo connections at once for the scale tests.
//
//   mr-stress-client --port P --connections N [--bytes B] [--timeout-s S]
//
// Opens N connections to 127.0.0.1:P (at most kConnectsInFlight handshakes at a time), sends B
// bytes on each (a pattern unique to the connection and the round) and checks that exactly those
// bytes come back. Then it writes "held N" on stderr and waits: SIGUSR1 runs a second round on
// every connection (so all N are proved alive while all N are open at once), closes them and
// exits 0 after "verified N"; SIGTERM closes them and exits 3. Any connection that fails, any
// wrong byte, or the deadline ends the process with a message and exit 1 (4 for the deadline).
// Spreading connections over several of these processes keeps each under its descriptor limit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::size_t kConnectsInFlight = 512;

using Clock = std::chrono::steady_clock;

struct Options {
  std::uint16_t port = 0;
  std::size_t connections = 0;
  std::size_t bytes = 32;
  long timeout_s = 300;
};

struct Conn {
  int fd = -1;
  bool connected = false;
  std::size_t received = 0;
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
  // True when the connection completed at once.
  bool start_connect(std::size_t i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(1, "socket #" + std::to_string(i) + ": " + std::strerror(errno));
    conns_[i].fd = fd;
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

  std::vector<epoll_event> wait() {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) fail(4, "deadline passed");
      int n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()),
                         static_cast<int>(left.count()));
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
  const Clock::time_point deadline_;
  int epoll_fd_;
  std::vector<Conn> conns_;
  std::vector<epoll_event> events_;
};

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const long value = std::strtol(argv[i + 1], nullptr, 10);
    if (name == "--port") {
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
  if (options.port == 0 || options.connections == 0 || options.bytes == 0 || argc % 2 == 0) {
    fail(2, "usage: mr-stress-client --port P --connections N [--bytes B] [--timeout-s S]");
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
