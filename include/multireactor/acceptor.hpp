// The acceptor: one thread, its own EventLoop, the listening socket, the hand-off to workers.
//
// Contract: the acceptor owns the listening socket (a Listener) and runs on its own thread. On a
// readable listen socket it accepts until EAGAIN (at most kAcceptBatch per event, so the loop's
// other users — the admin listener — are not starved), sets the accepted-socket options
// (nodelay, keepalive, buffer sizes: apply_accepted_socket_options), deals them to the workers
// (round-robin, or to the worker with the fewest open connections), and hands each worker its
// share with one hand_off() call: one eventfd write per worker per batch at most. Beyond
// max_connections a connection is accepted and closed at once. When accept fails for a reason
// other than running out of descriptors (which the Listener sheds), the listen socket is not
// watched for 100 ms. With no listening socket (listen_fd < 0, accept_mode = reuseport) the
// thread serves only the attached handler.
// Thread-safe: start(), stop_listening(), stop(), join(), stats(). Everything else runs on the
// acceptor thread.
#pragma once

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "multireactor/event_loop.hpp"
#include "multireactor/listener.hpp"
#include "multireactor/socket.hpp"
#include "multireactor/stats.hpp"
#include "multireactor/worker.hpp"

namespace mr {

struct AcceptorOptions {
  std::uint64_t max_connections = 100000;
  AcceptedSocketOptions accepted_socket;  // set on every connection before it is handed off
  bool least_connections = false;         // false = round-robin
};

class Acceptor final : private EventLoop::Handler {
 public:
  static constexpr std::uint64_t kListenKey = 1;
  static constexpr std::uint64_t kBackoffTimerKey = 2;
  static constexpr int kAcceptBatch = 1024;

  // Takes ownership of listen_fd (may be -1). `workers` must outlive the acceptor.
  Acceptor(int listen_fd, std::vector<Worker*> workers, AcceptorOptions options);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  void start();
  // Thread-safe: close the listening socket (the loop keeps serving the attached handler).
  void stop_listening();
  void stop();
  void join();

  // Other users of the acceptor thread's loop (the admin listener) register their descriptors
  // on loop() with keys at or above kReservedKeys and receive those events through `handler`.
  static constexpr std::uint64_t kReservedKeys = 16;
  void attach(EventLoop::Handler* handler) { attached_ = handler; }
  EventLoop& loop() { return loop_; }

  AcceptorStatsSnapshot stats() const;

 private:
  void on_event(std::uint64_t key, std::uint32_t events) override;
  void on_wakeup() override;
  void on_iteration_end() override;

  void accept_batch();
  std::size_t pick_worker();
  void pause_accepting();
  void resume_accepting();
  std::uint64_t connections_open() const;

  Listener listener_;
  int backoff_timer_fd_;
  const std::vector<Worker*> workers_;
  const AcceptorOptions options_;
  EventLoop loop_;
  EventLoop::Handler* attached_ = nullptr;
  std::thread thread_;

  std::size_t next_worker_ = 0;
  std::vector<std::vector<int>> batches_;  // per worker, reused across batches
  std::vector<std::uint64_t> handed_to_;   // per worker, connections handed off so far
  std::uint64_t handed_off_ = 0;
  bool accepting_paused_ = false;

  WorkerStats::Counter accept_batches_;
  WorkerStats::Counter handoffs_;
};

}  // namespace mr
