#include "server/server.hpp"

#include <algorithm>

#include "admin/admin_server.hpp"
#include "log/logging.hpp"
#include "multireactor/socket.hpp"
#include "server/admin_source.hpp"

namespace mr {

ReactorOptions reactor_options(const ServerConfig& config) {
  ReactorOptions o;
  o.bind = config.bind;
  o.port = config.port;
  o.backlog = config.backlog;
  o.workers = config.workers;
  o.accept_mode = config.accept_mode;
  o.dispatch = config.dispatch;
  o.pin_workers = config.cpu_affinity == CpuAffinity::kAuto;
  o.max_connections = config.max_connections;
  o.max_buffered_bytes = config.max_buffered_bytes;
  o.worker.high_water_mark = config.high_water_mark;
  o.worker.idle_timeout_ms = config.idle_timeout_ms;
  o.worker.max_events = static_cast<int>(config.epoll_events);
  o.worker.scratch_bytes = config.read_buffer_bytes;
  o.worker.reads_per_event = config.reads_per_event;
  o.io_backend = config.io_backend;
  o.worker.uring.buffers = config.io_uring_buffers;
  o.worker.uring.buffer_bytes =
      static_cast<unsigned>(std::min<std::uint64_t>(config.read_buffer_bytes, 4096));
  o.worker.uring.large_buffer_bytes =
      static_cast<unsigned>(std::min<std::uint64_t>(config.read_buffer_bytes, 16384));
  o.worker.uring.batch = config.io_uring_batch;
  o.worker.uring.batch_timeout_us = config.io_uring_batch_timeout_us;
  o.worker.uring.defer_taskrun = config.io_uring_defer_taskrun;
  AcceptedSocketOptions& s = o.accepted_socket;
  s.tcp_nodelay = config.tcp_nodelay;
  s.send_buffer_bytes = static_cast<int>(config.socket_send_buffer_bytes);
  s.receive_buffer_bytes = static_cast<int>(config.socket_receive_buffer_bytes);
  s.keepalive = config.tcp_keepalive;
  s.keepidle_s = static_cast<int>(config.tcp_keepidle_s);
  s.keepintvl_s = static_cast<int>(config.tcp_keepintvl_s);
  s.keepcnt = static_cast<int>(config.tcp_keepcnt);
  s.user_timeout_ms = config.tcp_user_timeout_ms;
  o.on_thread_start = [](std::string_view name, int worker) { set_thread_log_name(name, worker); };
  return o;
}

Server::Server(ServerConfig config)
    : config_(std::move(config)), reactor_(reactor_options(config_)) {
  config_.workers = reactor_.options().workers;  // 0 became the usable CPU count
}

Server::~Server() {
  stop();
}

void Server::start() {
  reactor_.start([this](EventLoop& acceptor_loop) {
    if (config_.admin_port == 0 && !config_.admin_ephemeral_port) return;
    const std::uint16_t admin_port = config_.admin_ephemeral_port ? 0 : config_.admin_port;
    admin_ = std::make_unique<AdminServer>(make_admin_source(*this), acceptor_loop,
                                           make_address(config_.admin_bind, admin_port));
    admin_port_ = admin_->port();
  });
}

void Server::stop() {
  reactor_.stop();
  // The admin endpoint lived on the acceptor's loop, which has now stopped for good.
  admin_.reset();
}

}  // namespace mr
