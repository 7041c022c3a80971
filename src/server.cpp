#include "multireactor/server.hpp"

#include <unistd.h>

#include "multireactor/socket.hpp"
#include "multireactor/system.hpp"

namespace mr {

Server::Server(ServerConfig config) : config_(std::move(config)) {
  if (config_.workers == 0) config_.workers = usable_cpu_count();
}

Server::~Server() {
  stop();
}

void Server::start() {
  if (running_) return;
  const SocketAddress address = make_address(config_.bind, config_.port);
  int listen_fd = listen_tcp(address, config_.backlog);
  port_ = local_port(listen_fd);

  WorkerOptions worker_options;
  worker_options.high_water_mark = config_.high_water_mark;
  worker_options.idle_timeout_ms = config_.idle_timeout_ms;
  std::vector<Worker*> raw;
  for (unsigned i = 0; i < config_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, worker_options));
    raw.push_back(workers_.back().get());
  }
  AcceptorOptions acceptor_options;
  acceptor_options.max_connections = config_.max_connections;
  acceptor_options.tcp_nodelay = config_.tcp_nodelay;
  acceptor_ = std::make_unique<Acceptor>(listen_fd, std::move(raw), acceptor_options);

  for (auto& w : workers_)
    w->start();
  acceptor_->start();
  running_ = true;
}

void Server::stop_accepting() {
  shutting_down_.store(true, std::memory_order_release);
  acceptor_->stop();
  acceptor_->join();
}

void Server::begin_drain(std::uint64_t timeout_ms) {
  if (!running_ || draining_) return;
  draining_ = true;
  stop_accepting();
  for (auto& w : workers_)
    w->begin_drain(timeout_ms);
}

bool Server::drained() const {
  for (const auto& w : workers_) {
    if (!w->drained()) return false;
  }
  return true;
}

void Server::stop() {
  if (!running_) return;
  running_ = false;
  stop_accepting();
  for (auto& w : workers_)
    w->stop();
  for (auto& w : workers_)
    w->join();
}

std::vector<WorkerStatsSnapshot> Server::worker_stats() const {
  std::vector<WorkerStatsSnapshot> out;
  out.reserve(workers_.size());
  for (const auto& w : workers_)
    out.push_back(w->stats());
  return out;
}

AcceptorStatsSnapshot Server::acceptor_stats() const {
  return acceptor_ ? acceptor_->stats() : AcceptorStatsSnapshot{};
}

}  // namespace mr
