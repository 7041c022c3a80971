#include "multireactor/acceptor.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <spdlog/spdlog.h>

#include "multireactor/socket.hpp"

namespace mr {
namespace {
constexpr long kBackoffNanoseconds = 100'000'000;  // 100 ms without watching the listen socket
}

Acceptor::Acceptor(int listen_fd, std::vector<Worker*> workers, AcceptorOptions options)
    : listen_fd_(listen_fd),
      spare_fd_(open("/dev/null", O_RDONLY | O_CLOEXEC)),
      backoff_timer_fd_(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)),
      workers_(std::move(workers)),
      options_(options),
      batches_(workers_.size()) {
  if (backoff_timer_fd_ < 0) throw std::system_error(errno, std::generic_category(), "timerfd");
  for (auto& batch : batches_)
    batch.reserve(kAcceptBatch);
  loop_.add(listen_fd_, EPOLLIN, kListenKey);
  loop_.add(backoff_timer_fd_, EPOLLIN, kBackoffTimerKey);
}

Acceptor::~Acceptor() {
  stop();
  join();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (spare_fd_ >= 0) close(spare_fd_);
  close(backoff_timer_fd_);
}

void Acceptor::start() {
  thread_ = std::thread([this] {
    loop_.run(*this);
    // Stop accepting at once: connections still in the backlog are refused by the kernel.
    close(listen_fd_);
    listen_fd_ = -1;
  });
}

void Acceptor::stop() {
  loop_.stop();
}

void Acceptor::join() {
  if (thread_.joinable()) thread_.join();
}

AcceptorStatsSnapshot Acceptor::stats() const {
  AcceptorStatsSnapshot s;
  s.accept_errors = accept_errors_.get();
  s.connections_rejected = connections_rejected_.get();
  s.accept_batches = accept_batches_.get();
  s.handoffs = handoffs_.get();
  return s;
}

void Acceptor::on_event(std::uint64_t key, std::uint32_t events) {
  if (key == kListenKey) {
    accept_batch();
  } else if (key == kBackoffTimerKey) {
    std::uint64_t expirations = 0;
    ssize_t n = read(backoff_timer_fd_, &expirations, sizeof expirations);
    (void)n;
    resume_accepting();
  } else if (attached_ != nullptr) {
    attached_->on_event(key, events);
  }
}

void Acceptor::on_wakeup() {
  if (attached_ != nullptr) attached_->on_wakeup();
}

void Acceptor::on_iteration_end() {
  if (attached_ != nullptr) attached_->on_iteration_end();
}

std::uint64_t Acceptor::connections_open() const {
  // Handed off minus closed by the workers: counts connections still in a hand-off queue too.
  std::uint64_t closed = 0;
  for (const Worker* w : workers_)
    closed += w->connections_closed();
  return handed_off_ - closed;
}

void Acceptor::accept_batch() {
  bool accepted_any = false;
  std::uint64_t open_now = connections_open();
  for (int i = 0; i < kAcceptBatch; ++i) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      accept_errors_.add(1);
      if ((err == EMFILE || err == ENFILE) && shed_one()) {
        warn_rate_limited("out of file descriptors; shedding new connections", err);
        continue;
      }
      warn_rate_limited("accept4 failed; pausing accepts for 100 ms", err);
      pause_accepting();
      break;
    }
    if (open_now >= options_.max_connections) {
      close(fd);
      connections_rejected_.add(1);
      open_now = connections_open();
      continue;
    }
    if (options_.tcp_nodelay) set_tcp_nodelay(fd, true);
    batches_[next_worker_].push_back(fd);
    next_worker_ = (next_worker_ + 1) % workers_.size();
    ++handed_off_;
    ++open_now;
    accepted_any = true;
  }
  if (!accepted_any) return;
  accept_batches_.add(1);
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    auto& batch = batches_[w];
    if (batch.empty()) continue;
    handoffs_.add(batch.size());
    workers_[w]->hand_off(batch);
    batch.clear();
  }
}

bool Acceptor::shed_one() {
  if (spare_fd_ < 0) return false;
  close(spare_fd_);
  spare_fd_ = -1;
  int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    connections_rejected_.add(1);
  }
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd >= 0 && spare_fd_ >= 0;
}

void Acceptor::pause_accepting() {
  if (accepting_paused_) return;
  accepting_paused_ = true;
  loop_.modify(listen_fd_, 0, kListenKey);
  itimerspec spec{};
  spec.it_value.tv_nsec = kBackoffNanoseconds;
  timerfd_settime(backoff_timer_fd_, 0, &spec, nullptr);
}

void Acceptor::resume_accepting() {
  if (!accepting_paused_) return;
  accepting_paused_ = false;
  if (spare_fd_ < 0) spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  loop_.modify(listen_fd_, EPOLLIN, kListenKey);
}

void Acceptor::warn_rate_limited(const char* what, int err) {
  auto now = std::chrono::steady_clock::now();
  if (now - last_warning_ < std::chrono::seconds(1)) return;
  last_warning_ = now;
  spdlog::warn("acceptor: {} ({}); accept_errors={} connections_rejected={}", what,
               std::strerror(err), accept_errors_.get(), connections_rejected_.get());
}

}  // namespace mr
