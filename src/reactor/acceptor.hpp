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
// watched for 100 ms. Other users of the thread (the admin endpoint) attach their own handlers
// to loop(); with no listening socket (listen_fd < 0, accept_mode = reuseport) the thread
// serves only them.
// Thread-safe: start(), stop_listening(), stop(), join(), stats(). Everything else runs on the
// acceptor thread.
#pragma once

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "multireactor/detail/listener.hpp"
#include "multireactor/detail/worker_core.hpp"
#include "multireactor/event_loop.hpp"
#include "multireactor/socket.hpp"
#include "multireactor/stats.hpp"

namespace mr {

struct AcceptorOptions {
  std::uint64_t max_connections = 100000;
  AcceptedSocketOptions accepted_socket;  // set on every connection before it is handed off
  bool least_connections = false;         // false = round-robin
  ThreadStartHook on_thread_start;
};

class Acceptor final : private EventLoop::Handler {
 public:
  static constexpr int kAcceptBatch = 1024;

  // Takes ownership of listen_fd (may be -1). `workers` must outlive the acceptor.
  Acceptor(int listen_fd, std::vector<detail::WorkerCore*> workers, AcceptorOptions options);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  void start();
  // Thread-safe: close the listening socket (the loop keeps serving the attached handler).
  void stop_listening();
  void stop();
  void join();

  // Other users of the acceptor thread attach their own handlers (before start() or on the
  // acceptor thread).
  EventLoop& loop() { return loop_; }

  AcceptorStatsSnapshot stats() const;

 private:
  void on_event(std::uint64_t key, std::uint32_t events) override;

  void accept_batch();
  std::size_t pick_worker();
  void pause_accepting();
  void resume_accepting();
  std::uint64_t connections_open() const;

  Listener listener_;
  const std::vector<detail::WorkerCore*> workers_;
  const AcceptorOptions options_;
  EventLoop loop_;
  EventLoop::Registration registration_;
  std::thread thread_;

  std::size_t next_worker_ = 0;
  std::vector<std::vector<int>> batches_;  // per worker, reused across batches
  std::vector<std::uint64_t> handed_to_;   // per worker, connections handed off so far
  std::uint64_t handed_off_ = 0;
  bool accepting_paused_ = false;

  RelaxedCounter accept_batches_;
  RelaxedCounter handoffs_;
};

}  // namespace mr
