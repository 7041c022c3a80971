// Serves a tiny protocol on the installed engine and talks to itself: exits 0 when the reply
// comes back right, 1 otherwise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <span>
#include <string>

#include "multireactor/reactor.hpp"

namespace {

// Sends back each byte plus one ('a' -> 'b'): not an echo, so the test sees the protocol ran.
struct PlusOne {
  void on_open(mr::Connection& /*conn*/) {}
  void on_data(mr::Connection& conn, std::span<const char> bytes) {
    std::string out(bytes.begin(), bytes.end());
    for (char& c : out)
      c = static_cast<char>(c + 1);
    conn.send(out);
  }
  void on_drained(mr::Connection& /*conn*/) {}
  void on_close(mr::Connection& /*conn*/, mr::CloseReason /*reason*/) {}
};

}  // namespace

int main() {
  mr::ReactorOptions options;
  options.workers = 1;
  options.max_buffered_bytes = 64 << 20;
  mr::Reactor<PlusOne> reactor(options);
  reactor.start();

  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(reactor.port());
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return 1;
  const std::string sent = "HAL";
  if (write(fd, sent.data(), sent.size()) != static_cast<ssize_t>(sent.size())) return 1;
  std::string got;
  char buffer[16];
  pollfd p{fd, POLLIN, 0};
  while (got.size() < sent.size() && poll(&p, 1, 10000) == 1) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    got.append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  reactor.stop();
  std::printf("sent %s, got %s\n", sent.c_str(), got.c_str());
  return got == "IBM" ? 0 : 1;
}
