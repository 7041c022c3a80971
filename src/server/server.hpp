// The echo service: the echo reactor plus the admin endpoint, set up from a ServerConfig.
//
// Contract: start() binds the listening socket (throws std::system_error when it cannot),
// starts the reactor (one acceptor thread, `workers` worker threads) and, when admin_port is
// set, the admin endpoint on the acceptor's thread. begin_drain() and stop() are called from one
// control thread. stop() stops accepting first, then stops every worker (each closes its
// connections) and joins all threads; it is idempotent and is called by the destructor. The
// stats accessors may be called from any thread at any time. Readiness (shutting_down) turns
// false from the moment begin_drain() or stop() begins.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "echo/echo_reactor.hpp"
#include "multireactor/stats.hpp"

namespace mr {

class AdminServer;

// The reactor's options for `config` (the keys the engine uses; the rest are the service's).
ReactorOptions reactor_options(const ServerConfig& config);

class Server {
 public:
  explicit Server(ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void start();
  // Graceful: stop accepting at once, then let every worker flush pending output for at most
  // timeout_ms (reading stops) and close. Returns at once; drained() tells when all are done.
  void begin_drain(std::uint64_t timeout_ms) { reactor_.begin_drain(timeout_ms); }
  bool drained() const { return reactor_.drained(); }
  // Stops accepting, closes every connection (pending output is cut) and joins all threads.
  void stop();

  std::uint16_t port() const { return reactor_.port(); }
  // The admin listener's port once started; 0 when it is off (admin_port 0).
  std::uint16_t admin_port() const { return admin_port_; }
  unsigned worker_count() const { return reactor_.worker_count(); }
  const ServerConfig& config() const { return config_; }
  std::uint64_t buffer_budget_bytes() const { return reactor_.buffer_budget_bytes(); }
  const std::string& buffer_budget_source() const { return reactor_.buffer_budget_source(); }

  // Thread-safe.
  std::vector<WorkerStatsSnapshot> worker_stats() const { return reactor_.worker_stats(); }
  AcceptorStatsSnapshot acceptor_stats() const { return reactor_.acceptor_stats(); }
  bool shutting_down() const { return reactor_.shutting_down(); }

  EchoWorker& worker(unsigned index) { return reactor_.worker(index); }

 private:
  ServerConfig config_;
  EchoReactor reactor_;
  std::unique_ptr<AdminServer> admin_;  // on the acceptor's loop: destroyed before the reactor
  std::uint16_t admin_port_ = 0;
};

}  // namespace mr
