#include "multireactor/server.hpp"

#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "multireactor/admin_server.hpp"
#include "multireactor/logging.hpp"
#include "multireactor/memory_limit.hpp"
#include "multireactor/socket.hpp"
#include "multireactor/system.hpp"

namespace mr {
namespace {

// The most a worker holds of the budget without using it is two chunks; a chunk covers at least
// one full read, so the shared counter is not touched per message.
std::uint64_t budget_chunk_bytes(std::uint64_t budget, std::uint64_t read_bytes, unsigned workers) {
  const std::uint64_t one_read = read_bytes + OutputBuffer::kMaxGrowthSlackBytes;
  std::uint64_t chunk = std::max<std::uint64_t>(256 * 1024, one_read);
  const std::uint64_t fair = budget / (2 * std::max(1U, workers));
  return std::max<std::uint64_t>(OutputBuffer::kPageBytes, std::min(chunk, fair));
}

}  // namespace

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

  if (config_.max_buffered_bytes != 0) {
    budget_ = std::make_unique<BufferBudget>(config_.max_buffered_bytes);
    budget_source_ = "max_buffered_bytes";
  } else {
    const MemoryLimit memory = tightest_memory_limit();
    budget_ = std::make_unique<BufferBudget>(std::max<std::uint64_t>(memory.bytes / 2, 1 << 20));
    budget_source_ =
        fmt::format("automatic: half of {}, {} MiB", memory.source, memory.bytes / (1024 * 1024));
  }
  spdlog::info("buffer budget {} MiB for all output buffers ({})", budget_->limit() / (1024 * 1024),
               budget_source_);

  WorkerOptions worker_options;
  worker_options.budget = budget_.get();
  worker_options.budget_chunk_bytes =
      budget_chunk_bytes(budget_->limit(), config_.read_buffer_bytes, config_.workers);
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
  AcceptedSocketOptions accepted_socket;
  accepted_socket.tcp_nodelay = config_.tcp_nodelay;
  accepted_socket.send_buffer_bytes = static_cast<int>(config_.socket_send_buffer_bytes);
  accepted_socket.receive_buffer_bytes = static_cast<int>(config_.socket_receive_buffer_bytes);
  accepted_socket.keepalive = config_.tcp_keepalive;
  accepted_socket.keepidle_s = static_cast<int>(config_.tcp_keepidle_s);
  accepted_socket.keepintvl_s = static_cast<int>(config_.tcp_keepintvl_s);
  accepted_socket.keepcnt = static_cast<int>(config_.tcp_keepcnt);
  accepted_socket.user_timeout_ms = config_.tcp_user_timeout_ms;
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
      workers_[i]->listen_on(fd, open_connections, config_.max_connections, accepted_socket);
    }
    listen_fd = -1;  // the acceptor thread then serves only the admin endpoint
  }
  AcceptorOptions acceptor_options;
  acceptor_options.max_connections = config_.max_connections;
  acceptor_options.accepted_socket = accepted_socket;
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
