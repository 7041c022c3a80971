#include "reactor/acceptor.hpp"

#include <pthread.h>
#include <unistd.h>

#include <chrono>

#include "multireactor/socket.hpp"

namespace mr {
namespace {
constexpr std::chrono::milliseconds kBackoff{100};  // without watching the listen socket
}

Acceptor::Acceptor(int listen_fd, std::vector<detail::WorkerCore*> workers, AcceptorOptions options)
    : listener_(listen_fd),
      workers_(std::move(workers)),
      options_(std::move(options)),
      registration_(loop_.attach(*this)),
      batches_(workers_.size()),
      handed_to_(workers_.size(), 0) {
  for (auto& batch : batches_)
    batch.reserve(kAcceptBatch);
  if (listener_.fd() >= 0) registration_.add(listener_.fd(), EPOLLIN, 0);
}

Acceptor::~Acceptor() {
  stop();
  join();
}

void Acceptor::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "acceptor");
    if (options_.on_thread_start) options_.on_thread_start("acceptor", -1);
    loop_.run();
    // Stop accepting at once: connections still in the backlog are refused by the kernel.
    listener_.close_listener();
  });
}

void Acceptor::stop_listening() {
  loop_.post([this] {
    if (listener_.fd() < 0) return;
    loop_.remove(listener_.fd());
    listener_.close_listener();
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
  s.accept_errors = listener_.accept_errors();
  s.connections_rejected = listener_.connections_rejected();
  s.accept_batches = accept_batches_.get();
  s.handoffs = handoffs_.get();
  return s;
}

void Acceptor::on_event(std::uint64_t /*key*/, std::uint32_t /*events*/) {
  accept_batch();
}

std::uint64_t Acceptor::connections_open() const {
  // Handed off minus closed by the workers: counts connections still in a hand-off queue too.
  std::uint64_t closed = 0;
  for (const detail::WorkerCore* w : workers_)
    closed += w->connections_closed();
  return handed_off_ - closed;
}

std::size_t Acceptor::pick_worker() {
  if (!options_.least_connections) {
    const std::size_t w = next_worker_;
    next_worker_ = (next_worker_ + 1) % workers_.size();
    return w;
  }
  std::size_t best = 0;
  std::uint64_t best_open = ~std::uint64_t{0};
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    // Start the scan after the last pick so ties rotate instead of piling onto worker 0.
    const std::size_t candidate = (next_worker_ + w) % workers_.size();
    const std::uint64_t open = handed_to_[candidate] - workers_[candidate]->connections_closed();
    if (open < best_open) {
      best_open = open;
      best = candidate;
    }
  }
  next_worker_ = (best + 1) % workers_.size();
  return best;
}

void Acceptor::accept_batch() {
  bool accepted_any = false;
  std::uint64_t open_now = connections_open();
  for (int i = 0; i < kAcceptBatch; ++i) {
    int fd = -1;
    const Listener::Outcome outcome = listener_.accept(fd);
    if (outcome == Listener::Outcome::kEmpty) break;
    if (outcome == Listener::Outcome::kShed) continue;
    if (outcome == Listener::Outcome::kFailed) {
      pause_accepting();
      break;
    }
    if (open_now >= options_.max_connections) {
      // Recount once: workers may have closed some since the batch began.
      open_now = connections_open();
      if (open_now >= options_.max_connections) {
        listener_.count_rejected();  // counted first: whoever sees the close sees the count
        close(fd);
        continue;
      }
    }
    apply_accepted_socket_options(fd, options_.accepted_socket);
    const std::size_t w = pick_worker();
    batches_[w].push_back(fd);
    ++handed_to_[w];
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

void Acceptor::pause_accepting() {
  if (accepting_paused_) return;
  accepting_paused_ = true;
  registration_.modify(listener_.fd(), 0, 0);
  loop_.run_after(kBackoff, [this] { resume_accepting(); });
}

void Acceptor::resume_accepting() {
  if (!accepting_paused_) return;
  accepting_paused_ = false;
  if (listener_.fd() < 0) return;  // closed while backing off
  registration_.modify(listener_.fd(), EPOLLIN, 0);
}

}  // namespace mr
