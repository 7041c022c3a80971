// A server built on the engine: one acceptor thread, N workers, one protocol.
//
// Contract: start() binds the listening socket (throws std::system_error when it cannot), then
// starts `workers` worker threads and the acceptor thread; the acceptor accepts and hands each
// new connection to a worker (round-robin, or to the one with the fewest open connections), and
// the connection lives on that worker for life. With AcceptMode::kReuseport each worker accepts
// on its own SO_REUSEPORT socket instead and the acceptor thread serves only the handlers
// attached to its loop. begin_drain() and stop() are called from one control thread: stop()
// stops accepting first, then stops every worker (each closes its connections) and joins all
// threads; it is idempotent and the destructor calls it. The stats accessors may be called from
// any thread at any time. All output buffers share one budget, max_buffered_bytes, or with 0
// half of the tightest memory limit of the process (cgroup, rlimits, physical memory).
//
//   mr::ReactorOptions options;
//   options.port = 9000;
//   mr::Reactor<MyProtocol> reactor(options);   // one MyProtocol per worker
//   reactor.start();
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "multireactor/modes.hpp"
#include "multireactor/socket.hpp"
#include "multireactor/stats.hpp"
#include "multireactor/worker.hpp"

namespace mr {

class Acceptor;
class BufferBudget;

struct ReactorOptions {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = any free port (port() tells which)
  int backlog = 1024;
  unsigned workers = 0;  // 0 = one per usable CPU
  AcceptMode accept_mode = AcceptMode::kAcceptor;
  // kAuto picks io_uring when choose_io_backend() finds it usable; kIoUring when it is not makes
  // start() throw. The io_uring tuning is worker.uring.
  IoBackend io_backend = IoBackend::kAuto;
  Dispatch dispatch = Dispatch::kRoundRobin;
  bool pin_workers = false;  // one CPU each, when the process may use enough of them
  std::uint64_t max_connections = 100000;
  std::uint64_t max_buffered_bytes = 0;  // 0 = automatic (see the contract)
  WorkerOptions worker;                  // its budget fields are set by the reactor
  AcceptedSocketOptions accepted_socket;
  ThreadStartHook on_thread_start;
};

// What `requested` gives on this machine: the backend (kEpoll or kIoUring) and why, e.g. what
// io_uring lacks here ("io_uring_setup: Function not implemented" under a container runtime's
// default seccomp profile). as_requested is false only when kIoUring was asked for and cannot run.
struct IoBackendChoice {
  IoBackend backend = IoBackend::kEpoll;
  bool as_requested = true;
  std::string reason;
};
IoBackendChoice choose_io_backend(IoBackend requested, bool defer_taskrun = true);
const char* io_backend_name(IoBackend backend);

// The protocol-independent part of Reactor<P>.
class ReactorCore {
 public:
  ReactorCore(const ReactorCore&) = delete;
  ReactorCore& operator=(const ReactorCore&) = delete;
  virtual ~ReactorCore();

  // `before_threads` runs once the acceptor exists and before any thread starts: the place to
  // attach other handlers (an admin endpoint) to the acceptor thread's loop.
  void start(const std::function<void(EventLoop& acceptor_loop)>& before_threads = {});
  // Graceful: stop accepting at once, then let every worker flush pending output for at most
  // timeout_ms (reading stops) and close. Returns at once; drained() tells when all are done.
  void begin_drain(std::uint64_t timeout_ms);
  bool drained() const;
  // Stops accepting, closes every connection (pending output is cut) and joins all threads.
  void stop();

  std::uint16_t port() const { return port_; }
  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }
  const ReactorOptions& options() const { return options_; }
  // Once started: the budget all output buffers share, and where its size came from.
  std::uint64_t buffer_budget_bytes() const;
  const std::string& buffer_budget_source() const { return budget_source_; }
  // Once started: the backend the workers run on and why it was chosen.
  IoBackend io_backend() const { return io_backend_.backend; }
  const std::string& io_backend_reason() const { return io_backend_.reason; }

  // Thread-safe.
  std::vector<WorkerStatsSnapshot> worker_stats() const;
  AcceptorStatsSnapshot acceptor_stats() const;
  // Thread-safe: true from the moment begin_drain() or stop() begins.
  bool shutting_down() const { return shutting_down_.load(std::memory_order_acquire); }

  detail::WorkerCore& worker(unsigned index) { return *workers_[index]; }

 protected:
  using WorkerFactory =
      std::function<std::unique_ptr<detail::WorkerCore>(unsigned id, WorkerOptions options)>;
  ReactorCore(ReactorOptions options, WorkerFactory make_worker);

 private:
  ReactorOptions options_;
  WorkerFactory make_worker_;
  std::unique_ptr<BufferBudget> budget_;  // outlives the workers (declared before them)
  std::string budget_source_;
  IoBackendChoice io_backend_;
  std::vector<std::unique_ptr<detail::WorkerCore>> workers_;
  std::unique_ptr<Acceptor> acceptor_;
  std::uint16_t port_ = 0;
  bool running_ = false;
  bool draining_ = false;
  std::atomic<bool> shutting_down_{false};
};

template <Protocol P>
class Reactor final : public ReactorCore {
 public:
  // Each worker's protocol is constructed from `protocol_args` (copied for every worker).
  template <class... Args>
  explicit Reactor(ReactorOptions options, Args... protocol_args)
      : ReactorCore(std::move(options), [protocol_args...](unsigned id, WorkerOptions o) {
          return std::make_unique<Worker<P>>(id, std::move(o), protocol_args...);
        }) {}
  ~Reactor() override { stop(); }

  Worker<P>& worker(unsigned index) { return static_cast<Worker<P>&>(ReactorCore::worker(index)); }
};

}  // namespace mr
