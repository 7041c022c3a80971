#include "multireactor/worker.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

namespace mr {
namespace {
constexpr std::uint32_t kReadable = EPOLLIN;
constexpr std::uint32_t kWritable = EPOLLOUT;
}  // namespace

Worker::Worker(unsigned id, WorkerOptions options)
    : id_(id),
      options_(options),
      loop_(options.max_events),
      scratch_(std::make_unique<char[]>(options.scratch_bytes)) {
  incoming_.reserve(256);
  adopting_.reserve(256);
}

Worker::~Worker() {
  stop();
  join();
  // Descriptors handed off after the loop ended are still ours to close.
  for (int fd : incoming_) close(fd);
}

void Worker::start() {
  thread_ = std::thread([this] {
    loop_.run(*this);
    close_all();
  });
}

void Worker::stop() { loop_.stop(); }

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::hand_off(std::span<const int> fds) {
  {
    std::lock_guard<std::mutex> lock(incoming_mutex_);
    incoming_.insert(incoming_.end(), fds.begin(), fds.end());
  }
  loop_.wake();
}

WorkerStatsSnapshot Worker::stats() const {
  WorkerStatsSnapshot s = stats_.snapshot();
  s.wakeups = loop_.wakeups().get();
  s.loop_iterations = loop_.iterations().get();
  return s;
}

void Worker::on_wakeup() {
  {
    std::lock_guard<std::mutex> lock(incoming_mutex_);
    adopting_.swap(incoming_);
  }
  for (int fd : adopting_) adopt(fd);
  adopting_.clear();
}

void Worker::adopt(int fd) {
  loop_.assert_in_loop_thread();
  Connection* c = connections_.acquire(fd);
  c->interest = kReadable;
  loop_.add(fd, kReadable, c->key());
  stats_.connections_accepted.add(1);
  stats_.connections_active.add(1);
  SPDLOG_DEBUG("worker {}: connection fd={} slot={}", id_, fd, c->slot);
}

void Worker::on_event(std::uint64_t key, std::uint32_t events) {
  Connection* c = connections_.find(key);
  if (c == nullptr) return;  // stale: the connection closed earlier in this batch
  if ((events & EPOLLERR) != 0) {
    close_connection(*c, /*error=*/true);
    return;
  }
  if ((events & EPOLLOUT) != 0) {
    on_writable(*c);
    if (!c->open()) return;
  }
  if ((events & EPOLLIN) != 0) {
    on_readable(*c);
  } else if ((events & EPOLLHUP) != 0) {
    // Both directions are gone and nothing is left to read: pending output cannot be delivered.
    close_connection(*c, /*error=*/false);
  }
}

void Worker::on_readable(Connection& c) {
  // One read per event: level-triggered epoll reports the rest next iteration, which bounds what
  // one busy connection takes from the others and never spends a read on EAGAIN.
  const std::size_t room = options_.high_water_mark - c.pending.size();
  const std::size_t budget = room < options_.scratch_bytes ? room : options_.scratch_bytes;
  ssize_t n = read(c.fd, scratch_.get(), budget);
  if (n > 0) {
    stats_.reads.add(1);
    stats_.bytes_received.add(static_cast<std::uint64_t>(n));
    send_or_queue(c, scratch_.get(), static_cast<std::size_t>(n));
    return;
  }
  if (n == 0) {
    stats_.reads.add(1);
    c.peer_closed_write = true;
    if (c.pending.empty()) {
      close_connection(c, /*error=*/false);
    } else {
      set_interest(c, kWritable);
    }
    return;
  }
  if (errno == EAGAIN || errno == EINTR) return;
  close_connection(c, /*error=*/true);
}

void Worker::send_or_queue(Connection& c, const char* bytes, std::size_t n) {
  std::size_t sent = 0;
  if (c.pending.empty()) {
    ssize_t w = send(c.fd, bytes, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    stats_.writes.add(1);
    if (w < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        close_connection(c, /*error=*/true);
        return;
      }
    } else {
      sent = static_cast<std::size_t>(w);
      stats_.bytes_sent.add(sent);
    }
    if (sent == n) return;
  }
  // The remainder waits for EPOLLOUT, after whatever was already pending.
  const std::size_t rest = n - sent;
  c.pending.append(bytes + sent, rest);
  stats_.pending_output_bytes.add(rest);
  stats_.pending_output_peak_bytes.raise_to(c.pending.size());
  std::uint32_t interest = kReadable | kWritable;
  if (c.pending.size() >= options_.high_water_mark) {
    c.reading_paused = true;
    stats_.backpressure_pauses.add(1);
    interest = kWritable;
  }
  set_interest(c, interest);
}

void Worker::on_writable(Connection& c) {
  if (c.pending.empty()) {
    set_interest(c, c.peer_closed_write ? 0 : kReadable);
    return;
  }
  ssize_t w = send(c.fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  stats_.writes.add(1);
  if (w < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    close_connection(c, /*error=*/true);
    return;
  }
  const auto sent = static_cast<std::size_t>(w);
  c.pending.consume(sent);
  stats_.bytes_sent.add(sent);
  stats_.pending_output_bytes.sub(sent);
  if (c.pending.empty()) {
    c.pending.release();  // an idle connection holds no buffer memory
    c.reading_paused = false;
    if (c.peer_closed_write) {
      close_connection(c, /*error=*/false);
      return;
    }
    set_interest(c, kReadable);
    return;
  }
  if (c.reading_paused && !c.peer_closed_write &&
      c.pending.size() <= options_.high_water_mark / 2) {
    c.reading_paused = false;
    set_interest(c, kReadable | kWritable);
  }
}

void Worker::set_interest(Connection& c, std::uint32_t interest) {
  if (c.interest == interest) return;
  c.interest = interest;
  loop_.modify(c.fd, interest, c.key());
}

void Worker::close_connection(Connection& c, bool error) {
  loop_.assert_in_loop_thread();
  if (error) stats_.errors.add(1);
  SPDLOG_DEBUG("worker {}: close fd={} slot={} pending={} error={}", id_, c.fd, c.slot,
               c.pending.size(), error);
  stats_.pending_output_bytes.sub(c.pending.size());
  // close() also removes the descriptor from this loop's epoll set (it is never duplicated).
  close(c.fd);
  connections_.release(&c);
  stats_.connections_closed.add(1);
  stats_.connections_active.sub(1);
}

void Worker::close_all() {
  connections_.for_each_open([this](Connection& c) { close_connection(c, /*error=*/false); });
}

}  // namespace mr
