#include "multireactor/detail/worker_core.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <chrono>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "multireactor/detail/raw_syscall.hpp"
#include "multireactor/socket.hpp"

namespace mr::detail {
namespace {
using std::chrono::milliseconds;
}  // namespace

WorkerCore::WorkerCore(unsigned id, WorkerOptions options)
    : id_(id),
      options_(std::move(options)),
      loop_(options_.max_events),
      registration_(loop_.attach(*this)),
      // Not zero-filled: a page of the read buffer becomes resident only when a read reaches it.
      scratch_(std::make_unique_for_overwrite<char[]>(options_.scratch_bytes)),
      idle_wheel_(options_.idle_timeout_ms),
      own_budget_(std::numeric_limits<std::uint64_t>::max()),
      budget_(options_.budget != nullptr ? *options_.budget : own_budget_,
              options_.budget_chunk_bytes),
      overload_threshold_(std::numeric_limits<std::size_t>::max()),
      read_cap_(options_.scratch_bytes) {
  incoming_.reserve(256);
  adopting_.reserve(256);
  waiting_for_budget_.reserve(256);
  if (options_.backend == IoBackend::kIoUring) uring_ = std::make_unique<UringRing>();
  if (idle_wheel_.enabled()) {
    loop_.run_every(milliseconds(idle_wheel_.tick_ms()), [this] { on_idle_tick(); });
  }
}

WorkerCore::~WorkerCore() {
  stop();
  join();
  // Descriptors handed off after the loop ended are still ours to close.
  for (int fd : incoming_)
    close(fd);
}

void WorkerCore::listen_on(int listen_fd, std::function<std::uint64_t()> open_connections,
                           std::uint64_t max_connections,
                           const AcceptedSocketOptions& accepted_socket) {
  listener_ = std::make_unique<Listener>(listen_fd);
  open_connections_ = std::move(open_connections);
  max_connections_ = max_connections;
  accepted_socket_ = accepted_socket;
  listen_registration_ = loop_.attach(listen_handler_);
  listen_registration_.add(listen_fd, EPOLLIN, 0);
}

AcceptorStatsSnapshot WorkerCore::listener_stats() const {
  AcceptorStatsSnapshot s;
  if (listener_) {
    s.accept_errors = listener_->accept_errors();
    s.connections_rejected = listener_->connections_rejected();
  }
  return s;
}

void WorkerCore::start(int cpu) {
  if (uring_ != nullptr) {
    // Set up here, so the ring's descriptor and memory exist once start() returns.
    std::string why;
    if (!uring_->init(options_.uring, &why)) {
      spdlog::warn("worker {}: io_uring ring not set up ({}); this worker runs on epoll", id_, why);
      uring_.reset();
    }
  }
  thread_ = std::thread([this, cpu] { run_thread(cpu); });
}

void WorkerCore::run_thread(int cpu) {
  const std::string name = fmt::format("worker-{}", id_);
  pthread_setname_np(pthread_self(), name.c_str());
  if (options_.on_thread_start) options_.on_thread_start(name, static_cast<int>(id_));
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
      spdlog::warn("worker {}: cannot pin to CPU {}", id_, cpu);
    }
  }
  if (uring_ != nullptr && start_uring()) {
    run_completions();
    loop_.finish();
  } else {
    uring_.reset();
    loop_.run();
  }
  shutting_down_ = true;
  close_all();
  if (uring_ != nullptr) uring_finish();
}

void WorkerCore::stop() {
  loop_.stop();
}

void WorkerCore::join() {
  if (thread_.joinable()) thread_.join();
}

void WorkerCore::begin_drain(std::uint64_t timeout_ms) {
  loop_.post([this, timeout_ms] { start_drain(timeout_ms); });
}

void WorkerCore::hand_off(std::span<const int> fds) {
  {
    std::lock_guard<std::mutex> lock(incoming_mutex_);
    incoming_.insert(incoming_.end(), fds.begin(), fds.end());
  }
  loop_.wake();
}

WorkerStatsSnapshot WorkerCore::stats() const {
  WorkerStatsSnapshot s = stats_.snapshot();
  s.wakeups = loop_.wakeups().get();
  s.loop_iterations =
      backend() == IoBackend::kIoUring ? uring_iterations_.get() : loop_.iterations().get();
  return s;
}

void WorkerCore::on_wakeup() {
  {
    std::lock_guard<std::mutex> lock(incoming_mutex_);
    adopting_.swap(incoming_);
  }
  for (int fd : adopting_)
    adopt(fd);
  adopting_.clear();
}

void WorkerCore::adopt(int fd) {
  loop_.assert_in_loop_thread();
  ConnectionState* c = connections_.acquire(fd);
  c->interest = kReadable;
  c->last_active_tick = idle_wheel_.now();
  stats_.connections_accepted.add(1);
  stats_.connections_active.add(1);
  if (draining_) {
    // Accepted just before the acceptor stopped: nothing to flush, so it is drained at once.
    close_connection(*c, CloseReason::kShutdown);
    return;
  }
  if (uring_ != nullptr) {
    uring_->add_file(fd);
    uring_arm_receive(*c);
  } else {
    registration_.add(fd, kReadable, c->key());
  }
  if (idle_wheel_.enabled()) idle_wheel_.track(c->key());
  SPDLOG_DEBUG("worker {}: connection fd={} slot={}", id_, fd, c->slot);
  Connection conn = handle(*c);
  deliver_open(conn);
}

std::size_t WorkerCore::read_budget_from_share(ConnectionState& c, std::size_t room) {
  const std::size_t slack = c.pending.growth_slack();
  budget_.reserve(room + slack);  // may fall short: the process budget is nearly spent
  update_pressure();
  const std::uint64_t spare = budget_.spare();
  if (spare > slack) return std::min<std::uint64_t>(room, spare - slack);
  if (room == 0) return 0;
  park_for_budget(c);
  return 0;
}

void WorkerCore::park_for_budget(ConnectionState& c) {
  // Nothing left to read into: park the connection until the budget has room again.
  c.waiting_for_budget = true;
  c.reading_paused = true;
  stats_.overload_pauses.add(1);
  set_interest(c, c.pending.empty() ? 0 : kWritable);
  waiting_for_budget_.push_back(c.key());
  arm_budget_timer();
}

void WorkerCore::arm_budget_timer() {
  if (budget_timer_armed_) return;
  budget_timer_armed_ = true;
  loop_.run_after(milliseconds(kBudgetRetryMs), [this] {
    budget_timer_armed_ = false;
    update_pressure();
    resume_waiting_for_budget();
  });
}

void WorkerCore::update_pressure() {
  const double pressure = budget_.pressure();
  if (pressure < kPressureOnset) {
    overload_threshold_ = std::numeric_limits<std::size_t>::max();
    read_cap_ = options_.scratch_bytes;
    return;
  }
  if (pressure < kPressureFull) {
    // high_water_mark at the onset, falling to 0 at full pressure.
    const double left = (kPressureFull - pressure) / (kPressureFull - kPressureOnset);
    overload_threshold_ =
        static_cast<std::size_t>(static_cast<double>(options_.high_water_mark) * left);
    read_cap_ = options_.scratch_bytes;
    return;
  }
  overload_threshold_ = 0;
  read_cap_ = std::min(options_.scratch_bytes, kPressuredReadBytes);
  arm_budget_timer();  // looks again, so reads grow back once the pressure is gone
}

void WorkerCore::resume_waiting_for_budget() {
  if (waiting_for_budget_.empty() || draining_ || shutting_down_) return;
  if (!budget_.reserve(read_cap_ + OutputBuffer::kMaxGrowthSlackBytes)) {
    arm_budget_timer();
    return;
  }
  // Every parked connection reads again; those the budget cannot cover park again, behind.
  std::vector<std::uint64_t> parked;
  parked.swap(waiting_for_budget_);
  waiting_for_budget_.reserve(parked.capacity());
  for (const std::uint64_t key : parked) {
    ConnectionState* c = connections_.find(key);
    if (c == nullptr || !c->waiting_for_budget) continue;
    c->waiting_for_budget = false;
    c->reading_paused = false;
    set_interest(*c, readable(*c) | (c->pending.empty() ? 0 : kWritable));
  }
}

void WorkerCore::charge_growth(std::size_t capacity_before, const ConnectionState& c) {
  const std::size_t capacity = c.pending.capacity();
  if (capacity == capacity_before) return;
  budget_.charge(capacity - capacity_before);
  stats_.buffered_bytes.set(budget_.used());
}

void WorkerCore::refund_buffer(ConnectionState& c) {
  const std::size_t capacity = c.pending.capacity();
  c.pending.release();  // an idle connection holds no buffer memory
  if (capacity == 0) return;
  budget_.refund(capacity);
  stats_.buffered_bytes.set(budget_.used());
  update_pressure();
  if (!waiting_for_budget_.empty()) resume_waiting_for_budget();
}

void WorkerCore::on_read_end(ConnectionState& c, ssize_t n) {
  if (n == 0) {
    stats_.reads.add(1);
    c.peer_closed_write = true;
    if (output_idle(c)) {
      close_connection(c, c.lingering ? CloseReason::kShutdown : CloseReason::kPeerClosed);
    } else {
      set_interest(c, kWritable);
    }
    return;
  }
  if (errno == EAGAIN || errno == EINTR) return;
  close_connection(c, CloseReason::kError);
}

void WorkerCore::send_now(ConnectionState& c, const char* bytes, std::size_t n) {
  std::size_t sent = 0;
  if (c.pending.empty()) {
    ssize_t w = raw::send(c.fd, bytes, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    stats_.writes.add(1);
    if (w < 0) {
      if (c.lingering) return;  // its FIN is out: what the protocol sends now is dropped (EPIPE)
      if (errno != EAGAIN && errno != EINTR) {
        close_connection(c, CloseReason::kError);
        return;
      }
    } else {
      sent = static_cast<std::size_t>(w);
      stats_.bytes_sent.add(sent);
    }
    if (sent == n) return;
  }
  // The remainder waits for EPOLLOUT, after whatever was already pending.
  queue_output(c, bytes + sent, n - sent);
}

void WorkerCore::queue_output(ConnectionState& c, const char* bytes, std::size_t rest) {
  const std::size_t capacity_before = c.pending.capacity();
  c.pending.append(bytes, rest);
  charge_growth(capacity_before, c);
  update_pressure();
  stats_.pending_output_bytes.add(rest);
  stats_.pending_output_peak_bytes.raise_to(c.pending.size());
  std::uint32_t interest = readable(c) | kWritable;
  if (c.peer_closed_write || c.ending) {
    interest = kWritable;  // no more reading: flush, then close
  } else if (c.pending.size() >= options_.high_water_mark) {
    c.reading_paused = true;
    stats_.backpressure_pauses.add(1);
    interest = kWritable;
  } else if (c.pending.size() >= overload_threshold_) {
    c.reading_paused = true;
    c.overload_paused = true;
    stats_.overload_pauses.add(1);
    interest = kWritable;
  }
  set_interest(c, interest);
}

void WorkerCore::on_writable(ConnectionState& c) {
  if (c.pending.empty()) {
    set_interest(c, c.peer_closed_write || c.waiting_for_budget ? 0 : readable(c));
    return;
  }
  ssize_t w = raw::send(c.fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  stats_.writes.add(1);
  if (w < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    close_connection(c, CloseReason::kError);
    return;
  }
  after_pending_sent(c, static_cast<std::size_t>(w));
}

void WorkerCore::after_pending_sent(ConnectionState& c, std::size_t sent) {
  c.pending.consume(sent);
  c.last_active_tick = idle_wheel_.now();
  stats_.bytes_sent.add(sent);
  stats_.pending_output_bytes.sub(sent);
  if (c.pending.empty()) {
    refund_buffer(c);
    c.reading_paused = c.waiting_for_budget;
    c.overload_paused = false;
    if (c.peer_closed_write || c.ending) {
      after_output_idle(c);
    } else {
      if (c.write_shut) ::shutdown(c.fd, SHUT_WR);
      set_interest(c, c.waiting_for_budget ? 0 : readable(c));
      Connection conn = handle(c);
      deliver_drained(conn);
    }
    return;
  }
  // An overload pause lasts until the queue is empty; a high-water pause until half of it.
  if (c.reading_paused && !c.overload_paused && !c.waiting_for_budget && !c.peer_closed_write &&
      !c.ending && c.pending.size() <= options_.high_water_mark / 2) {
    c.reading_paused = false;
    set_interest(c, readable(c) | kWritable);
  }
}

void WorkerCore::after_output_idle(ConnectionState& c) {
  if (c.write_shut) ::shutdown(c.fd, SHUT_WR);
  if (c.peer_closed_write) {
    close_connection(c, CloseReason::kPeerClosed);
  } else if (c.ending) {
    end_gracefully(c);
  }
}

void WorkerCore::shutdown_write(ConnectionState& c) {
  if (c.write_shut) return;
  c.write_shut = true;
  if (output_idle(c)) ::shutdown(c.fd, SHUT_WR);  // else once the last pending byte is sent
}

void WorkerCore::pause_reading(ConnectionState& c) {
  if (c.protocol_paused) return;
  c.protocol_paused = true;
  if (c.lingering) return;  // its input is dropped unread by the protocol anyway
  set_interest(c, c.interest & ~kReadable);
}

void WorkerCore::resume_reading(ConnectionState& c) {
  if (!c.protocol_paused) return;
  c.protocol_paused = false;
  if (c.reading_paused || c.waiting_for_budget || c.peer_closed_write || c.ending) return;
  set_interest(c, c.interest | kReadable);
}

void WorkerCore::end_gracefully(ConnectionState& c) {
  // close() with input unread, or input that arrives after it, is answered with a reset, and a
  // reset makes the peer's kernel drop what it has not read yet: our echoes. A peer that is
  // still sending always has bytes in flight, so dropping what has arrived and closing is not
  // enough. Instead our FIN goes out after the last byte and the peer's input is read and
  // dropped until its own FIN; a peer that stays quiet for a sweep interval, or keeps sending
  // for kLingerSweeps of them, is closed then, and the drain's deadline closes everything.
  ::shutdown(c.fd, SHUT_WR);
  c.lingering = true;
  c.linger_heard = true;
  c.linger_sweeps = 0;
  linger_read(c);
  if (!c.open()) return;
  set_interest(c, kReadable);
  arm_linger_timer();
}

void WorkerCore::linger_read(ConnectionState& c) {
  for (int i = 0; i < kDiscardReads; ++i) {
    const ssize_t n = raw::read(c.fd, scratch_.get(), options_.scratch_bytes);
    if (n > 0) {
      c.linger_heard = true;
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) close_connection(c, CloseReason::kShutdown);
    return;
  }
}

void WorkerCore::arm_linger_timer() {
  if (linger_timer_armed_) return;
  linger_timer_armed_ = true;
  loop_.run_after(milliseconds(kLingerSweepMs), [this] {
    linger_timer_armed_ = false;
    sweep_lingering();
  });
}

void WorkerCore::sweep_lingering() {
  bool any = false;
  connections_.for_each_open([&](ConnectionState& c) {
    if (!c.lingering) return;
    if (c.linger_heard && c.linger_sweeps < kLingerSweeps) {
      c.linger_heard = false;
      ++c.linger_sweeps;
      any = true;
      return;
    }
    close_connection(c, CloseReason::kShutdown);
  });
  if (any) arm_linger_timer();
}

void WorkerCore::set_interest(ConnectionState& c, std::uint32_t interest) {
  if (c.interest == interest) return;
  c.interest = interest;
  if (uring_ != nullptr) {
    uring_interest(c, interest);
    return;
  }
  registration_.modify(c.fd, interest, c.key());
}

void WorkerCore::close_connection(ConnectionState& c, CloseReason reason) {
  loop_.assert_in_loop_thread();
  if (reason == CloseReason::kError) stats_.errors.add(1);
  if (shutting_down_ || draining_) {
    (c.pending.empty() ? stats_.connections_drained : stats_.connections_cut).add(1);
  }
  SPDLOG_DEBUG("worker {}: close fd={} slot={} pending={} reason={}", id_, c.fd, c.slot,
               c.pending.size(), static_cast<int>(reason));
  stats_.pending_output_bytes.sub(c.pending.size());
  refund_buffer(c);
  if (uring_ != nullptr) {
    uring_release(c);
  } else {
    // close() also removes the descriptor from this loop's epoll set (it is never duplicated).
    close(c.fd);
  }
  // Closed before the protocol hears of it, so the handle's methods do nothing from here on.
  c.fd = -1;
  Connection conn = handle(c);
  deliver_close(conn, reason);
  connections_.release(&c);
  stats_.connections_closed.add(1);
  stats_.connections_active.sub(1);
  if (draining_) finish_drain_if_done();
}

void WorkerCore::close_all() {
  connections_.for_each_open(
      [this](ConnectionState& c) { close_connection(c, CloseReason::kShutdown); });
}

void WorkerCore::on_idle_tick() {
  idle_wheel_.advance(
      [this](std::uint64_t key) -> std::optional<std::uint32_t> {
        const ConnectionState* c = connections_.find(key);
        if (c == nullptr) return std::nullopt;
        return c->last_active_tick;
      },
      [this](std::uint64_t key) {
        ConnectionState* c = connections_.find(key);
        SPDLOG_DEBUG("worker {}: idle timeout fd={}", id_, c->fd);
        stats_.idle_timeouts.add(1);
        close_connection(*c, CloseReason::kIdleTimeout);
      });
}

void WorkerCore::accept_connections() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    int fd = -1;
    const Listener::Outcome outcome = listener_->accept(fd);
    if (outcome == Listener::Outcome::kEmpty) return;
    if (outcome == Listener::Outcome::kShed) continue;
    if (outcome == Listener::Outcome::kFailed) {
      // Not watched for a while: a level-triggered loop would spin on the error.
      listen_registration_.modify(listener_->fd(), 0, 0);
      loop_.run_after(milliseconds(100), [this] {
        if (!draining_) listen_registration_.modify(listener_->fd(), EPOLLIN, 0);
      });
      return;
    }
    if (open_connections_() >= max_connections_) {
      listener_->count_rejected();  // counted first: whoever sees the close sees the count
      close(fd);
      continue;
    }
    apply_accepted_socket_options(fd, accepted_socket_);
    adopt(fd);
  }
}

void WorkerCore::start_drain(std::uint64_t timeout_ms) {
  loop_.assert_in_loop_thread();
  if (draining_) return;
  draining_ = true;
  if (listener_) {
    loop_.remove(listener_->fd());
    listener_->close_listener();  // stop accepting at once
  }
  connections_.for_each_open([this](ConnectionState& c) {
    c.ending = true;
    if (!output_idle(c)) {
      set_interest(c, kWritable);  // stop reading; end once the last pending byte is sent
      return;
    }
    end_gracefully(c);
  });
  // The flush deadline: what is still pending then is cut.
  loop_.run_after(milliseconds(timeout_ms), [this] { close_all(); });
  finish_drain_if_done();  // nothing was pending anywhere
}

void WorkerCore::finish_drain_if_done() {
  if (!draining_ || connections_.active() != 0) return;
  drained_.store(true, std::memory_order_release);
  loop_.stop();
}

}  // namespace mr::detail
