// The echo server: the acceptor, the workers, and their life cycle.
//
// Contract: start() binds the listening socket (throws std::system_error when it cannot) and
// starts one acceptor thread plus `workers` worker threads. begin_drain() and stop() are called
// from one control thread. stop() stops accepting first, then stops every worker (each closes
// its connections) and joins all threads; it is idempotent and is called by the destructor.
// The stats accessors may be called from any thread at any time. The process buffer budget is
// max_buffered_bytes, or with 0 half of tightest_memory_limit(); start() logs it and its source.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "multireactor/acceptor.hpp"
#include "multireactor/buffer_budget.hpp"
#include "multireactor/config.hpp"
#include "multireactor/stats.hpp"
#include "multireactor/worker.hpp"

namespace mr {

class AdminServer;

class Server {
 public:
  explicit Server(ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void start();
  // Graceful: stop accepting at once, then let every worker flush pending output for at most
  // timeout_ms (reading stops) and close. Returns at once; drained() tells when all are done.
  void begin_drain(std::uint64_t timeout_ms);
  bool drained() const;
  // Stops accepting, closes every connection (pending output is cut) and joins all threads.
  void stop();

  std::uint16_t port() const { return port_; }
  // The admin listener's port once started; 0 when it is off (admin_port 0).
  std::uint16_t admin_port() const { return admin_port_; }
  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }
  const ServerConfig& config() const { return config_; }
  // Once started: the budget all output buffers share, and where its size came from.
  std::uint64_t buffer_budget_bytes() const { return budget_ ? budget_->limit() : 0; }
  const std::string& buffer_budget_source() const { return budget_source_; }

  // Thread-safe.
  std::vector<WorkerStatsSnapshot> worker_stats() const;
  AcceptorStatsSnapshot acceptor_stats() const;
  // Thread-safe: true from the moment stop() begins (readiness turns false).
  bool shutting_down() const { return shutting_down_.load(std::memory_order_acquire); }

  Acceptor& acceptor() { return *acceptor_; }
  Worker& worker(unsigned index) { return *workers_[index]; }

 private:
  ServerConfig config_;
  std::unique_ptr<BufferBudget> budget_;  // outlives the workers (declared before them)
  std::string budget_source_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<Acceptor> acceptor_;
  std::unique_ptr<AdminServer> admin_;  // on the acceptor's loop; destroyed before it
  std::uint16_t admin_port_ = 0;
  void stop_accepting();

  std::uint16_t port_ = 0;
  bool running_ = false;
  bool draining_ = false;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace mr
