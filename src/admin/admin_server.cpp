#include "admin/admin_server.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "admin/stats_render.hpp"
#include "multireactor/detail/buffer_budget.hpp"
#include "system/system.hpp"

namespace mr {
namespace {

// Also bounds the connections the kernel holds back for TCP_DEFER_ACCEPT (its SYN queue): beyond
// it, SYN cookies let a connection through without its data.
constexpr int kListenBacklog = 1024;
constexpr int kAcceptPerEvent = 16;
constexpr std::size_t kLingerDiscardLimit = 64 * 1024;
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kJson = "application/json";

// Process start as Unix time: boot time (/proc/stat btime) plus the start tick of this process
// (/proc/self/stat field 22), as the Prometheus client libraries compute it. 0 when unreadable.
double read_process_start_time_s() {
  std::ifstream self_stat("/proc/self/stat");
  std::string line;
  if (!std::getline(self_stat, line)) return 0;
  const std::size_t paren = line.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(line.substr(paren + 1));
  std::string field;
  // After the command come fields 3 (state) .. 22 (starttime).
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> field)) return 0;
  }
  const double start_ticks = std::strtod(field.c_str(), nullptr);
  std::ifstream proc_stat("/proc/stat");
  std::string key;
  double boot_time = 0;
  while (proc_stat >> key) {
    if (key == "btime") {
      proc_stat >> boot_time;
      break;
    }
  }
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (boot_time <= 0 || ticks_per_second <= 0) return 0;
  return boot_time + start_ticks / static_cast<double>(ticks_per_second);
}

std::uint64_t file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return limit.rlim_cur;
}

long long to_ms(std::chrono::milliseconds d) {
  return static_cast<long long>(d.count());
}

}  // namespace

AdminServer::AdminServer(std::unique_ptr<AdminSource> source, EventLoop& loop,
                         const SocketAddress& address, AdminOptions options)
    : source_(std::move(source)),
      loop_(loop),
      options_(options),
      listener_(listen_tcp(address, kListenBacklog)),
      registration_(loop.attach(*this, /*after_each_iteration=*/true)),
      listen_registration_(loop.attach(listen_handler_)),
      connections_(std::max<std::size_t>(1, options.max_connections)),
      ping_in_flight_(source_->worker_count(), false),
      started_(Clock::now()),
      process_start_time_s_(read_process_start_time_s()),
      rss_at_start_bytes_(process_usage().rss_bytes) {
  port_ = local_port(listener_.fd());
  // A probe is then accepted with its request already in the socket and answered at once (read
  // on accept), so no rate of reconnecting silent or slow clients can evict it before it is read;
  // silent clients wait in the kernel instead of in a slot. Best effort: without it, eviction
  // still frees slots.
  const int defer_s = static_cast<int>(options_.defer_accept.count());
  if (defer_s > 0) {
    setsockopt(listener_.fd(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof defer_s);
  }
  listen_registration_.add(listener_.fd(), EPOLLIN, 0);
  // A walk only where the kernel does not count for us, and only here, with few descriptors open.
  if (kernel_open_fds() == 0) fds_at_start_ = walk_open_fds();
}

AdminServer::~AdminServer() {
  // The loop has stopped for good: closing also drops the descriptors from its epoll set.
  if (timer_armed_) loop_.cancel(timer_);
  loop_.detach(listen_handler_);
  loop_.detach(*this);
  for (auto& c : connections_) {
    if (c.fd >= 0) close(c.fd);
  }
}

std::uint64_t AdminServer::key_of(std::size_t slot) const {
  return (std::uint64_t{connections_[slot].generation} << 32) | slot;
}

AdminServer::Connection* AdminServer::find(std::uint64_t key) {
  const std::uint64_t slot = key & 0xFFFF'FFFFu;
  if (slot >= connections_.size()) return nullptr;
  Connection& c = connections_[slot];
  if (c.fd < 0 || c.generation != static_cast<std::uint32_t>(key >> 32)) return nullptr;
  return &c;
}

void AdminServer::on_event(std::uint64_t key, std::uint32_t events) {
  loop_.assert_in_loop_thread();
  Connection* c = find(key);
  if (c == nullptr) return;  // stale: closed earlier in this batch
  if ((events & EPOLLERR) != 0) {
    close_connection(*c);
    return;
  }
  switch (c->state) {
    case State::kReading:
      on_readable(*c);
      break;
    case State::kWriting:
      if ((events & EPOLLOUT) != 0) {
        on_writable(*c);
      } else if ((events & EPOLLHUP) != 0) {
        close_connection(*c);
      }
      break;
    case State::kLingering:
      linger_read(*c);
      break;
    case State::kAwaitingHealth:
      // Interest is empty while the workers are asked; only a hang-up is reported.
      if ((events & EPOLLHUP) != 0) close_connection(*c);
      break;
  }
}

void AdminServer::on_iteration_end() {
  if (timer_dirty_) rearm_timer();
}

AdminServer::Connection* AdminServer::slot_for_new_connection() {
  // Which busy connection gives way, best first; kAwaitingHealth never does (it is a probe being
  // answered, for at most health_timeout).
  auto rank = [](State state) {
    switch (state) {
      case State::kLingering:
        return 0;  // has its whole answer; only leftovers are being read
      case State::kReading:
        return 1;  // has not sent a complete request: silent, slowloris, or just connected
      case State::kWriting:
        return 2;  // has not taken its answer
      case State::kAwaitingHealth:
        break;
    }
    return 3;
  };
  Connection* victim = nullptr;
  for (auto& c : connections_) {
    if (c.fd < 0) return &c;
    if (rank(c.state) == 3) continue;
    if (victim == nullptr || rank(c.state) < rank(victim->state) ||
        (rank(c.state) == rank(victim->state) && c.accepted < victim->accepted)) {
      victim = &c;
    }
  }
  if (victim == nullptr) return nullptr;
  // A lingering one has been served: closing it early loses nothing, so it is not counted.
  if (victim->state != State::kLingering) ++stats_.connections_evicted;
  // One that has not taken its answer is reset, as at its response timeout.
  close_connection(*victim, /*abort=*/victim->state == State::kWriting);
  return victim;
}

void AdminServer::accept_all() {
  for (int i = 0; i < kAcceptPerEvent; ++i) {
    int fd = -1;
    // The engine's accept path: out of descriptors, the Listener sheds the waiting connection.
    const Listener::Outcome outcome = listener_.accept(fd);
    if (outcome == Listener::Outcome::kEmpty) return;
    if (outcome == Listener::Outcome::kShed) continue;
    if (outcome == Listener::Outcome::kFailed) {
      pause_accepting();
      return;
    }
    Connection* slot = slot_for_new_connection();
    if (slot == nullptr) {
      close(fd);  // every slot is answering /healthz: this client is turned away
      ++stats_.connections_refused;
      continue;
    }
    Connection& c = *slot;
    c.fd = fd;
    c.accepted = ++accepted_;
    c.state = State::kReading;
    if (!c.in) c.in = std::make_unique<char[]>(options_.limits.max_head_bytes);
    c.in_size = 0;
    c.out.clear();
    c.out_sent = 0;
    c.deadline = Clock::now() + options_.request_timeout;
    c.interest = EPOLLIN;
    const auto index = static_cast<std::size_t>(&c - connections_.data());
    registration_.add(fd, EPOLLIN, key_of(index));
    timer_dirty_ = true;
    // A probe's request usually came with its connection: read it now, before newer connections
    // can push this one out.
    on_readable(c);
  }
}

void AdminServer::pause_accepting() {
  // The Listener has warned (rate-limited); a level-triggered loop would spin on the error.
  accept_paused_ = true;
  accept_resume_at_ = Clock::now() + kAcceptRetryDelay;
  listen_registration_.modify(listener_.fd(), 0, 0);
  timer_dirty_ = true;
}

void AdminServer::on_readable(Connection& c) {
  const std::size_t room = options_.limits.max_head_bytes - c.in_size;
  const ssize_t n = read(c.fd, c.in.get() + c.in_size, room);
  if (n == 0) {
    close_connection(c);  // the client gave up before finishing its request
    return;
  }
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) close_connection(c);
    return;
  }
  c.in_size += static_cast<std::size_t>(n);
  HttpRequest request;
  const HttpParseResult parsed =
      parse_http_request(std::string_view(c.in.get(), c.in_size), request, options_.limits);
  if (parsed.status == HttpParseStatus::kIncomplete) return;
  if (parsed.status == HttpParseStatus::kComplete) {
    route(c, request);
    return;
  }
  respond(c, http_status_code(parsed.status), kTextPlain, fmt::format("{}\n", parsed.error));
}

void AdminServer::route(Connection& c, const HttpRequest& request) {
  enum class Endpoint { kIndex, kHealthz, kReadyz, kStats, kMetrics };
  Endpoint endpoint;
  const std::string_view path = request.path;
  if (path == "/") {
    endpoint = Endpoint::kIndex;
  } else if (path == "/healthz") {
    endpoint = Endpoint::kHealthz;
  } else if (path == "/readyz") {
    endpoint = Endpoint::kReadyz;
  } else if (path == "/stats") {
    endpoint = Endpoint::kStats;
  } else if (path == "/metrics") {
    endpoint = Endpoint::kMetrics;
  } else {
    respond(c, 404, kTextPlain, "not found; endpoints: /healthz /readyz /stats /metrics\n");
    return;
  }
  if (request.method != "GET") {
    respond(c, 405, kTextPlain, "only GET is allowed\n", "Allow: GET\r\n");
    return;
  }

  auto report = [this] {
    StatsReport r;
    r.uptime_s = std::chrono::duration<double>(Clock::now() - started_).count();
    r.process_start_time_s = process_start_time_s_;
    r.process = process_usage();
    r.rss_at_start_bytes = rss_at_start_bytes_;
    r.max_fds = file_limit();
    r.workers = source_->worker_stats();
    if (r.process.open_fds == 0) {
      // A kernel before 6.2 does not count them: what was open at start plus the connections.
      r.process.open_fds = fds_at_start_;
      for (const auto& w : r.workers)
        r.process.open_fds += w.connections_active;
      for (const auto& admin_connection : connections_)
        r.process.open_fds += admin_connection.fd >= 0 ? 1 : 0;
    }
    r.buffer_budget_bytes = source_->buffer_budget_bytes();
    r.ready = !source_->shutting_down() &&
              !budget_nearly_spent(aggregate(r.workers).buffered_bytes, r.buffer_budget_bytes);
    r.acceptor = source_->acceptor_stats();
    r.admin = stats_;
    return r;
  };
  switch (endpoint) {
    case Endpoint::kIndex:
      respond(c, 200, kTextPlain,
              "multireactor admin: /healthz /readyz /stats /metrics (see README.md)\n");
      break;
    case Endpoint::kHealthz:
      start_health_check(c);
      break;
    case Endpoint::kReadyz:
      if (source_->shutting_down()) {
        respond(c, 503, kTextPlain, "shutting down\n");
      } else if (const std::uint64_t buffered = aggregate(source_->worker_stats()).buffered_bytes;
                 budget_nearly_spent(buffered, source_->buffer_budget_bytes())) {
        respond(c, 503, kTextPlain,
                fmt::format("overloaded: output buffers hold {} of {} bytes (max_buffered_bytes)\n",
                            buffered, source_->buffer_budget_bytes()));
      } else {
        respond(c, 200, kTextPlain, "ready\n");
      }
      break;
    case Endpoint::kStats:
      respond(c, 200, kJson, render_stats_json(report()));
      break;
    case Endpoint::kMetrics:
      respond(c, 200, kPrometheusText, render_prometheus(report()));
      break;
  }
}

void AdminServer::start_health_check(Connection& c) {
  const unsigned workers = source_->worker_count();
  if (workers == 0) {
    respond(c, 200, kTextPlain, "ok\n");
    return;
  }
  if (ping_in_flight_.size() != workers) ping_in_flight_.resize(workers, false);
  c.worker_answered.assign(workers, false);
  c.workers_missing = workers;
  c.state = State::kAwaitingHealth;
  c.deadline = Clock::now() + options_.health_timeout;
  set_interest(c, 0);
  timer_dirty_ = true;
  for (unsigned i = 0; i < workers; ++i) {
    // A worker that has not answered the last ping yet is not asked again: a stuck worker
    // collects one ping, not one per probe.
    if (ping_in_flight_[i]) continue;
    ping_in_flight_[i] = true;
    source_->post_to_worker(i, [admin_loop = &loop_, self = this, i] {
      admin_loop->post([self, i] { self->on_pong(i); });
    });
  }
}

void AdminServer::on_pong(unsigned worker) {
  loop_.assert_in_loop_thread();
  if (worker < ping_in_flight_.size()) ping_in_flight_[worker] = false;
  for (auto& c : connections_) {
    if (c.fd < 0 || c.state != State::kAwaitingHealth) continue;
    if (worker >= c.worker_answered.size() || c.worker_answered[worker]) continue;
    c.worker_answered[worker] = true;
    if (--c.workers_missing == 0) respond(c, 200, kTextPlain, "ok\n");
  }
}

void AdminServer::respond(Connection& c, int status, std::string_view content_type,
                          std::string_view body, std::string_view extra_headers) {
  c.out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n"
      "Connection: close\r\n{}\r\n",
      status, http_reason_phrase(status), content_type, body.size(), extra_headers);
  c.out.append(body);
  c.out_sent = 0;
  c.state = State::kWriting;
  c.deadline = Clock::now() + options_.response_timeout;
  timer_dirty_ = true;
  on_writable(c);
}

void AdminServer::on_writable(Connection& c) {
  while (c.out_sent < c.out.size()) {
    const ssize_t n =
        send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_interest(c, EPOLLOUT);
      } else {
        close_connection(c);
      }
      return;
    }
    c.out_sent += static_cast<std::size_t>(n);
  }
  // All sent. Half-close and read what the client may still send until it closes too: closing
  // with unread input would reset the connection and could destroy the answer in flight.
  std::string().swap(c.out);
  shutdown(c.fd, SHUT_WR);
  c.state = State::kLingering;
  c.in_size = 0;
  c.deadline = Clock::now() + options_.linger;
  timer_dirty_ = true;
  set_interest(c, EPOLLIN);
}

void AdminServer::linger_read(Connection& c) {
  char discard[4096];
  const ssize_t n = read(c.fd, discard, sizeof discard);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n > 0) {
    c.in_size += static_cast<std::size_t>(n);  // counts discarded bytes now
    if (c.in_size <= kLingerDiscardLimit) return;
  }
  close_connection(c);
}

void AdminServer::set_interest(Connection& c, std::uint32_t interest) {
  if (c.interest == interest) return;
  c.interest = interest;
  registration_.modify(c.fd, interest, key_of(static_cast<std::size_t>(&c - connections_.data())));
}

void AdminServer::close_connection(Connection& c, bool abort) {
  if (abort) {
    // An answer the client did not take in time: reset, so the kernel drops what it still
    // buffers instead of trickling it out to a client that does not read.
    linger reset{};
    reset.l_onoff = 1;
    reset.l_linger = 0;
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  }
  close(c.fd);
  c.fd = -1;
  // Events still queued for the old descriptor are recognised as stale (28 bits: the key space).
  c.generation = (c.generation + 1) & 0x0FFF'FFFFu;
  std::string().swap(c.out);
  c.worker_answered.clear();
  c.workers_missing = 0;
  timer_dirty_ = true;
}

void AdminServer::on_timer() {
  timer_armed_ = false;
  const auto now = Clock::now();
  if (accept_paused_ && now >= accept_resume_at_) {
    accept_paused_ = false;
    listen_registration_.modify(listener_.fd(), EPOLLIN, 0);
  }
  for (auto& c : connections_) {
    if (c.fd < 0 || c.deadline > now) continue;
    switch (c.state) {
      case State::kReading:
        ++stats_.request_timeouts;
        if (c.in_size == 0) {
          close_connection(c);  // connected and never said anything
        } else {
          respond(
              c, 408, kTextPlain,
              fmt::format("request not complete within {} ms\n", to_ms(options_.request_timeout)));
        }
        break;
      case State::kAwaitingHealth: {
        std::string body;
        for (std::size_t i = 0; i < c.worker_answered.size(); ++i) {
          if (c.worker_answered[i]) continue;
          fmt::format_to(std::back_inserter(body),
                         "unhealthy: worker {} did not answer a ping within {} ms\n", i,
                         to_ms(options_.health_timeout));
        }
        respond(c, 503, kTextPlain, body);
        break;
      }
      case State::kWriting:
        close_connection(c, /*abort=*/true);
        break;
      case State::kLingering:
        close_connection(c);
        break;
    }
  }
  timer_dirty_ = true;
}

void AdminServer::rearm_timer() {
  timer_dirty_ = false;
  bool armed = false;
  Clock::time_point next{};
  auto consider = [&](Clock::time_point t) {
    if (!armed || t < next) next = t;
    armed = true;
  };
  if (accept_paused_) consider(accept_resume_at_);
  for (const auto& c : connections_) {
    if (c.fd >= 0) consider(c.deadline);
  }
  if (timer_armed_) loop_.cancel(timer_);
  timer_armed_ = armed;
  if (!armed) return;
  // Rounded up: a timer that fired early would find nothing due and only arm again.
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now());
  timer_ = loop_.run_after(std::max(wait, std::chrono::milliseconds(0)), [this] { on_timer(); });
}

}  // namespace mr
