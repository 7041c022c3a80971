// The acceptor: one thread, its own EventLoop, the listening socket, round-robin hand-off.
//
// Contract: the acceptor owns the listening descriptor and runs on its own thread. On a readable
// listen socket it accepts with accept4(SOCK_NONBLOCK|SOCK_CLOEXEC) until EAGAIN (at most
// kAcceptBatch per event, so the loop's other users are not starved), deals the connections
// round-robin to the workers, and hands each worker its share with one hand_off() call — one
// eventfd write per worker per batch. Beyond max_connections a connection is accepted and closed
// at once. When descriptors run out (EMFILE/ENFILE) the reserved descriptor is given up to accept
// and shed the waiting connection, so the listen socket never spins; warnings are rate-limited.
// Thread-safe: start(), stop(), join(), stats(). Everything else runs on the acceptor thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "multireactor/event_loop.hpp"
#include "multireactor/stats.hpp"
#include "multireactor/worker.hpp"

namespace mr {

struct AcceptorOptions {
  std::uint64_t max_connections = 100000;
  bool tcp_nodelay = true;
};

class Acceptor final : private EventLoop::Handler {
 public:
  static constexpr std::uint64_t kListenKey = 1;
  static constexpr std::uint64_t kBackoffTimerKey = 2;
  static constexpr int kAcceptBatch = 1024;

  // Takes ownership of listen_fd. `workers` must outlive the acceptor.
  Acceptor(int listen_fd, std::vector<Worker*> workers, AcceptorOptions options);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  void start();
  void stop();
  void join();

  // Other users of the acceptor thread's loop (the admin listener) register their descriptors
  // on loop() with keys above kReservedKeys and receive those events through `handler`.
  static constexpr std::uint64_t kReservedKeys = 16;
  void attach(EventLoop::Handler* handler) { attached_ = handler; }
  EventLoop& loop() { return loop_; }

  AcceptorStatsSnapshot stats() const;

 private:
  void on_event(std::uint64_t key, std::uint32_t events) override;
  void on_wakeup() override;
  void on_iteration_end() override;

  void accept_batch();
  bool shed_one();  // EMFILE/ENFILE: accept and drop one connection with the spare descriptor
  void pause_accepting();
  void resume_accepting();
  std::uint64_t connections_open() const;
  void warn_rate_limited(const char* what, int err);

  int listen_fd_;
  int spare_fd_;
  int backoff_timer_fd_;
  const std::vector<Worker*> workers_;
  const AcceptorOptions options_;
  EventLoop loop_;
  EventLoop::Handler* attached_ = nullptr;
  std::thread thread_;

  std::size_t next_worker_ = 0;
  std::vector<std::vector<int>> batches_;  // per worker, reused across batches
  std::uint64_t handed_off_ = 0;
  bool accepting_paused_ = false;
  std::chrono::steady_clock::time_point last_warning_{};

  WorkerStats::Counter accept_errors_;
  WorkerStats::Counter connections_rejected_;
  WorkerStats::Counter accept_batches_;
  WorkerStats::Counter handoffs_;
};

}  // namespace mr
