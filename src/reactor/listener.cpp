#include "multireactor/detail/listener.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>

#include <spdlog/spdlog.h>

namespace mr {
namespace {
int open_spare() {
  return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

// With accept_mode = reuseport every worker accepts on its own Listener. Out of descriptors,
// the one a listener frees from its reserve to shed a connection would otherwise go to another
// worker's accept4 in between, leaving the first with no reserve and its backlog hanging. Taking
// connections one listener at a time keeps each freed descriptor for its owner. This is the
// accept path (a connection's first moment), never the per-message path; with one acceptor the
// lock is never contended.
std::mutex accept_mutex;
}  // namespace

Listener::Listener(int listen_fd) : fd_(listen_fd), spare_fd_(open_spare()) {}

Listener::~Listener() = default;

void Listener::close_listener() {
  fd_.reset();
}

Listener::Outcome Listener::accept(int& fd) {
  std::lock_guard<std::mutex> lock(accept_mutex);
  for (;;) {
    fd = accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (!spare_fd_) spare_fd_.reset(open_spare());  // take the reserve back when we can
      return Outcome::kAccepted;
    }
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return Outcome::kEmpty;
    // The peer gave up before we accepted: nothing to count, try the next one.
    if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
    accept_errors_.add(1);
    if ((err == EMFILE || err == ENFILE) && spare_fd_) {
      spare_fd_.reset();
      int shed = accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (shed >= 0) {
        close(shed);
        connections_rejected_.add(1);
      }
      spare_fd_.reset(open_spare());
      if (shed >= 0) {
        warn("out of file descriptors; shedding new connections", err);
        return Outcome::kShed;
      }
    }
    warn("accept4 failed; not accepting for a moment", err);
    return Outcome::kFailed;
  }
}

void Listener::warn(const char* what, int err) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_warning_ < std::chrono::seconds(1)) return;
  last_warning_ = now;
  spdlog::warn("{} ({}); accept_errors={} connections_rejected={}", what,
               std::generic_category().message(err), accept_errors_.get(),
               connections_rejected_.get());
}

}  // namespace mr
