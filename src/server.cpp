#include "multireactor/server.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "multireactor/admin_server.hpp"
#include "multireactor/logging.hpp"
#include "multireactor/socket.hpp"
#include "multireactor/system.hpp"

namespace mr {

Server::Server(ServerConfig config) : config_(std::move(config)) {
  if (config_.workers == 0) config_.workers = usable_cpu_count();
  // spdlog creates its default logger lazily; doing it here, before any loop thread exists,
  // keeps the first log calls of two workers from racing on that set-up.
  spdlog::default_logger_raw();
}

Server::~Server() {
  stop();
}

void Server::start() {
  if (running_) return;
  const SocketAddress address = make_address(config_.bind, config_.port);
  const bool reuseport = config_.accept_mode == "reuseport";
  int listen_fd = listen_tcp(address, config_.backlog, reuseport);
  port_ = local_port(listen_fd);

  WorkerOptions worker_options;
  worker_options.high_water_mark = config_.high_water_mark;
  worker_options.idle_timeout_ms = config_.idle_timeout_ms;
  worker_options.max_events = static_cast<int>(config_.epoll_events);
  worker_options.scratch_bytes = config_.read_buffer_bytes;
  worker_options.reads_per_event = config_.reads_per_event;
  std::vector<Worker*> raw;
  for (unsigned i = 0; i < config_.workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, worker_options));
    raw.push_back(workers_.back().get());
  }
  if (reuseport) {
    // Every worker gets its own socket on the same port; the kernel hashes connections to them.
    const SocketAddress bound = make_address(config_.bind, port_);
    auto open_connections = [this] {
      std::uint64_t open = 0;
      for (const auto& w : workers_)
        open += w->connections_active();
      return open;
    };
    for (unsigned i = 0; i < config_.workers; ++i) {
      int fd = i == 0 ? listen_fd : listen_tcp(bound, config_.backlog, true);
      workers_[i]->listen_on(fd, open_connections, config_.max_connections, config_.tcp_nodelay);
    }
    listen_fd = -1;  // the acceptor thread then serves only the admin endpoint
  }
  AcceptorOptions acceptor_options;
  acceptor_options.max_connections = config_.max_connections;
  acceptor_options.tcp_nodelay = config_.tcp_nodelay;
  acceptor_options.least_connections = config_.dispatch == "least_connections";
  acceptor_ = std::make_unique<Acceptor>(listen_fd, std::move(raw), acceptor_options);
  if (config_.admin_port != 0 || config_.admin_ephemeral_port) {
    const std::uint16_t admin_port = config_.admin_ephemeral_port ? 0 : config_.admin_port;
    admin_ = std::make_unique<AdminServer>(make_admin_source(*this), acceptor_->loop(),
                                           make_address(config_.admin_bind, admin_port));
    acceptor_->attach(admin_.get());
    admin_port_ = admin_->port();
  }

  const std::vector<int> cpus =
      config_.cpu_affinity == "auto" ? pinning_cpus(config_.workers) : std::vector<int>{};
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->start(cpus.empty() ? -1 : cpus[i]);
  }
  acceptor_->start();
  running_ = true;
}

void Server::stop_accepting() {
  shutting_down_.store(true, std::memory_order_release);
  acceptor_->stop();
  acceptor_->join();
  // The admin endpoint lived on the acceptor's loop, which has now stopped for good.
  acceptor_->attach(nullptr);
  admin_.reset();
}

void Server::begin_drain(std::uint64_t timeout_ms) {
  if (!running_ || draining_) return;
  draining_ = true;
  // Readiness turns false and the listening socket closes at once; the acceptor's loop keeps
  // running so the admin endpoint can still say so (/readyz 503) until stop().
  shutting_down_.store(true, std::memory_order_release);
  acceptor_->stop_listening();
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
  AcceptorStatsSnapshot s = acceptor_ ? acceptor_->stats() : AcceptorStatsSnapshot{};
  for (const auto& w : workers_) {
    const AcceptorStatsSnapshot own = w->listener_stats();  // reuseport mode
    s.accept_errors += own.accept_errors;
    s.connections_rejected += own.connections_rejected;
  }
  return s;
}

}  // namespace mr
