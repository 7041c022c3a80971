#include "multireactor/worker.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <limits>
#include <system_error>

#include <spdlog/spdlog.h>

#include "multireactor/logging.hpp"
#include "multireactor/socket.hpp"
#include "raw_syscall.hpp"

namespace mr {
namespace {
constexpr std::uint32_t kReadable = EPOLLIN;
constexpr std::uint32_t kWritable = EPOLLOUT;

int make_timer_fd() {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "timerfd_create");
  return fd;
}

void arm_timer(int fd, std::uint64_t first_ms, std::uint64_t interval_ms) {
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(first_ms / 1000);
  spec.it_value.tv_nsec = static_cast<long>((first_ms % 1000) * 1'000'000);
  if (first_ms == 0) spec.it_value.tv_nsec = 1;  // zero would disarm it
  spec.it_interval.tv_sec = static_cast<time_t>(interval_ms / 1000);
  spec.it_interval.tv_nsec = static_cast<long>((interval_ms % 1000) * 1'000'000);
  timerfd_settime(fd, 0, &spec, nullptr);
}

std::uint64_t read_timer(int fd) {
  std::uint64_t expirations = 0;
  if (read(fd, &expirations, sizeof expirations) != sizeof expirations) return 0;
  return expirations;
}
}  // namespace

Worker::Worker(unsigned id, WorkerOptions options)
    : id_(id),
      options_(options),
      loop_(options.max_events),
      // Not zero-filled: a page of the read buffer becomes resident only when a read reaches it.
      scratch_(std::make_unique_for_overwrite<char[]>(options.scratch_bytes)),
      own_budget_(std::numeric_limits<std::uint64_t>::max()),
      budget_(options.budget != nullptr ? *options.budget : own_budget_,
              options.budget_chunk_bytes),
      budget_timer_fd_(make_timer_fd()),
      overload_threshold_(std::numeric_limits<std::size_t>::max()),
      read_cap_(options.scratch_bytes),
      idle_wheel_(options.idle_timeout_ms),
      drain_timer_fd_(make_timer_fd()) {
  incoming_.reserve(256);
  adopting_.reserve(256);
  waiting_for_budget_.reserve(256);
  loop_.add(drain_timer_fd_, EPOLLIN, kDrainTimerKey);
  loop_.add(budget_timer_fd_, EPOLLIN, kBudgetTimerKey);
  if (idle_wheel_.enabled()) {
    idle_timer_fd_ = make_timer_fd();
    loop_.add(idle_timer_fd_, EPOLLIN, kIdleTimerKey);
    arm_timer(idle_timer_fd_, idle_wheel_.tick_ms(), idle_wheel_.tick_ms());
  }
}

Worker::~Worker() {
  stop();
  join();
  // Descriptors handed off after the loop ended are still ours to close.
  for (int fd : incoming_)
    close(fd);
  if (idle_timer_fd_ >= 0) close(idle_timer_fd_);
  if (backoff_timer_fd_ >= 0) close(backoff_timer_fd_);
  close(budget_timer_fd_);
  close(drain_timer_fd_);
}

void Worker::listen_on(int listen_fd, std::function<std::uint64_t()> open_connections,
                       std::uint64_t max_connections,
                       const AcceptedSocketOptions& accepted_socket) {
  listener_ = std::make_unique<Listener>(listen_fd);
  open_connections_ = std::move(open_connections);
  max_connections_ = max_connections;
  accepted_socket_ = accepted_socket;
  backoff_timer_fd_ = make_timer_fd();
  loop_.add(listen_fd, EPOLLIN, kListenKey);
  loop_.add(backoff_timer_fd_, EPOLLIN, kBackoffTimerKey);
}

AcceptorStatsSnapshot Worker::listener_stats() const {
  AcceptorStatsSnapshot s;
  if (listener_) {
    s.accept_errors = listener_->accept_errors();
    s.connections_rejected = listener_->connections_rejected();
  }
  return s;
}

void Worker::start(int cpu) {
  thread_ = std::thread([this, cpu] {
    set_thread_log_name(fmt::format("worker-{}", id_), static_cast<int>(id_));
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        spdlog::warn("worker {}: cannot pin to CPU {}", id_, cpu);
      }
    }
    loop_.run(*this);
    shutting_down_ = true;
    close_all();
  });
}

void Worker::stop() {
  loop_.stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::begin_drain(std::uint64_t timeout_ms) {
  loop_.post([this, timeout_ms] { start_drain(timeout_ms); });
}

void Worker::hand_off(std::span<const int> fds) {
  {
    std::lock_guard<std::mutex> lock(incoming_mutex_);
    incoming_.insert(incoming_.end(), fds.begin(), fds.end());
  }
  loop_.wake();
}

WorkerStatsSnapshot Worker::stats() const {
  WorkerStatsSnapshot s = stats_.snapshot();
  s.wakeups = loop_.wakeups().get();
  s.loop_iterations = loop_.iterations().get();
  return s;
}

void Worker::on_wakeup() {
  {
    std::lock_guard<std::mutex> lock(incoming_mutex_);
    adopting_.swap(incoming_);
  }
  for (int fd : adopting_)
    adopt(fd);
  adopting_.clear();
}

void Worker::adopt(int fd) {
  loop_.assert_in_loop_thread();
  Connection* c = connections_.acquire(fd);
  c->interest = kReadable;
  c->last_active_tick = idle_wheel_.now();
  stats_.connections_accepted.add(1);
  stats_.connections_active.add(1);
  if (draining_) {
    // Accepted just before the acceptor stopped: nothing to flush, so it is drained at once.
    close_connection(*c, /*error=*/false);
    return;
  }
  loop_.add(fd, kReadable, c->key());
  if (idle_wheel_.enabled()) idle_wheel_.track(c->key());
  SPDLOG_DEBUG("worker {}: connection fd={} slot={}", id_, fd, c->slot);
}

void Worker::on_event(std::uint64_t key, std::uint32_t events) {
  if (key == kListenKey) {
    accept_connections();
    return;
  }
  if (key == kBackoffTimerKey) {
    read_timer(backoff_timer_fd_);
    if (!draining_) loop_.modify(listener_->fd(), EPOLLIN, kListenKey);
    return;
  }
  if (key == kIdleTimerKey) {
    for (std::uint64_t n = read_timer(idle_timer_fd_); n > 0; --n)
      on_idle_tick();
    return;
  }
  if (key == kBudgetTimerKey) {
    read_timer(budget_timer_fd_);
    budget_timer_armed_ = false;
    update_pressure();
    resume_waiting_for_budget();
    return;
  }
  if (key == kDrainTimerKey) {
    read_timer(drain_timer_fd_);
    // The flush deadline passed: what is still pending is cut.
    close_all();
    return;
  }
  Connection* c = connections_.find(key);
  if (c == nullptr) return;  // stale: the connection closed earlier in this batch
  if ((events & EPOLLERR) != 0) {
    close_connection(*c, /*error=*/true);
    return;
  }
  if ((events & EPOLLOUT) != 0) {
    on_writable(*c);
    if (!c->open()) return;
  }
  if ((events & EPOLLIN) != 0) {
    on_readable(*c);
  } else if ((events & EPOLLHUP) != 0) {
    // Both directions are gone and nothing is left to read: pending output cannot be delivered.
    close_connection(*c, /*error=*/false);
  }
}

std::size_t Worker::read_budget(Connection& c) {
  const std::size_t held = c.pending.size();
  const std::size_t below_mark =
      held < options_.high_water_mark ? options_.high_water_mark - held : 0;
  const std::size_t room = below_mark < read_cap_ ? below_mark : read_cap_;
  // Queueing all a read brings grows the buffer by at most room + its growth slack.
  if (budget_.spare() >= room + OutputBuffer::kMaxGrowthSlackBytes) [[likely]] {
    return room;
  }
  return read_budget_from_share(c, room);
}

std::size_t Worker::read_budget_from_share(Connection& c, std::size_t room) {
  const std::size_t slack = c.pending.growth_slack();
  budget_.reserve(room + slack);  // may fall short: the process budget is nearly spent
  update_pressure();
  const std::uint64_t spare = budget_.spare();
  if (spare > slack) return std::min<std::uint64_t>(room, spare - slack);
  if (room == 0) return 0;
  // Nothing left to read into: park the connection until the budget has room again.
  c.waiting_for_budget = true;
  c.reading_paused = true;
  stats_.overload_pauses.add(1);
  set_interest(c, c.pending.empty() ? 0 : kWritable);
  waiting_for_budget_.push_back(c.key());
  arm_budget_timer();
  return 0;
}

void Worker::arm_budget_timer() {
  if (budget_timer_armed_) return;
  budget_timer_armed_ = true;
  arm_timer(budget_timer_fd_, kBudgetRetryMs, 0);
}

void Worker::update_pressure() {
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

void Worker::resume_waiting_for_budget() {
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
    Connection* c = connections_.find(key);
    if (c == nullptr || !c->waiting_for_budget) continue;
    c->waiting_for_budget = false;
    c->reading_paused = false;
    set_interest(*c, kReadable | (c->pending.empty() ? 0 : kWritable));
  }
}

void Worker::charge_growth(std::size_t capacity_before, const Connection& c) {
  const std::size_t capacity = c.pending.capacity();
  if (capacity == capacity_before) return;
  assert(capacity - capacity_before <= budget_.spare() && "a read took more than the budget");
  budget_.charge(capacity - capacity_before);
  stats_.buffered_bytes.set(budget_.used());
}

void Worker::refund_buffer(Connection& c) {
  const std::size_t capacity = c.pending.capacity();
  c.pending.release();  // an idle connection holds no buffer memory
  if (capacity == 0) return;
  budget_.refund(capacity);
  stats_.buffered_bytes.set(budget_.used());
  update_pressure();
  if (!waiting_for_budget_.empty()) resume_waiting_for_budget();
}

void Worker::on_readable(Connection& c) {
  const std::size_t budget = read_budget(c);
  if (budget == 0) [[unlikely]]
    return;  // paused at the mark, or parked by the budget
  // Level-triggered epoll reports what is left next iteration, so stopping after a bounded
  // number of reads loses nothing; it keeps one busy connection from starving the others.
  const ssize_t n = raw::read(c.fd, scratch_.get(), budget);
  if (n > 0) {
    stats_.reads.add(1);
    stats_.bytes_received.add(static_cast<std::uint64_t>(n));
    c.last_active_tick = idle_wheel_.now();
    // Only a read that filled the whole scratch may be followed by another (a read cut short by
    // the high-water mark is not: that connection is near backpressure anyway). Comparing with
    // the scratch size keeps the read's budget from having to live across the system call.
    if (static_cast<std::size_t>(n) == options_.scratch_bytes && options_.reads_per_event > 1)
        [[unlikely]] {
      echo_and_read_again(c, static_cast<std::size_t>(n));
      return;
    }
    send_or_queue(c, scratch_.get(), static_cast<std::size_t>(n));  // a tail call
    return;
  }
  on_read_end(c, n);
}

void Worker::echo_and_read_again(Connection& c, std::size_t n) {
  for (unsigned reads = 1;; ++reads) {
    send_or_queue(c, scratch_.get(), n);
    if (n < options_.scratch_bytes || reads >= options_.reads_per_event || !c.open() ||
        !c.pending.empty()) {
      return;
    }
    const std::size_t budget = read_budget(c);
    if (budget == 0) return;
    const ssize_t got = raw::read(c.fd, scratch_.get(), budget);
    if (got <= 0) {
      on_read_end(c, got);
      return;
    }
    stats_.reads.add(1);
    stats_.bytes_received.add(static_cast<std::uint64_t>(got));
    n = static_cast<std::size_t>(got);
  }
}

void Worker::on_read_end(Connection& c, ssize_t n) {
  if (n == 0) {
    stats_.reads.add(1);
    c.peer_closed_write = true;
    if (c.pending.empty()) {
      close_connection(c, /*error=*/false);
    } else {
      set_interest(c, kWritable);
    }
    return;
  }
  if (errno == EAGAIN || errno == EINTR) return;
  close_connection(c, /*error=*/true);
}

void Worker::send_or_queue(Connection& c, const char* bytes, std::size_t n) {
  std::size_t sent = 0;
  if (c.pending.empty()) {
    ssize_t w = raw::send(c.fd, bytes, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    stats_.writes.add(1);
    if (w < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        close_connection(c, /*error=*/true);
        return;
      }
    } else {
      sent = static_cast<std::size_t>(w);
      stats_.bytes_sent.add(sent);
    }
    if (sent == n) return;
  }
  // The remainder waits for EPOLLOUT, after whatever was already pending.
  const std::size_t rest = n - sent;
  const std::size_t capacity_before = c.pending.capacity();
  c.pending.append(bytes + sent, rest);
  charge_growth(capacity_before, c);
  update_pressure();
  stats_.pending_output_bytes.add(rest);
  stats_.pending_output_peak_bytes.raise_to(c.pending.size());
  std::uint32_t interest = kReadable | kWritable;
  if (c.pending.size() >= options_.high_water_mark) {
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

void Worker::on_writable(Connection& c) {
  if (c.pending.empty()) {
    set_interest(c, c.peer_closed_write || c.waiting_for_budget ? 0 : kReadable);
    return;
  }
  ssize_t w = raw::send(c.fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  stats_.writes.add(1);
  if (w < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    close_connection(c, /*error=*/true);
    return;
  }
  const auto sent = static_cast<std::size_t>(w);
  c.pending.consume(sent);
  c.last_active_tick = idle_wheel_.now();
  stats_.bytes_sent.add(sent);
  stats_.pending_output_bytes.sub(sent);
  if (c.pending.empty()) {
    refund_buffer(c);
    c.reading_paused = c.waiting_for_budget;
    c.overload_paused = false;
    if (c.peer_closed_write) {
      close_connection(c, /*error=*/false);
    } else if (c.ending) {
      end_gracefully(c);
    } else {
      set_interest(c, c.waiting_for_budget ? 0 : kReadable);
    }
    return;
  }
  // An overload pause lasts until the queue is empty; a high-water pause until half of it.
  if (c.reading_paused && !c.overload_paused && !c.waiting_for_budget && !c.peer_closed_write &&
      !c.ending && c.pending.size() <= options_.high_water_mark / 2) {
    c.reading_paused = false;
    set_interest(c, kReadable | kWritable);
  }
}

void Worker::end_gracefully(Connection& c) {
  // close() with input still unread sends a reset, and a reset makes the peer's kernel drop
  // what it has not read yet: our echoes. Dropping the unread input first makes the close a
  // plain FIN after the last byte. Bounded, so a peer that keeps sending cannot hold us here.
  for (int i = 0; i < kDiscardReads; ++i) {
    const ssize_t n = raw::read(c.fd, scratch_.get(), options_.scratch_bytes);
    if (n <= 0) break;
  }
  close_connection(c, /*error=*/false);
}

void Worker::set_interest(Connection& c, std::uint32_t interest) {
  if (c.interest == interest) return;
  c.interest = interest;
  loop_.modify(c.fd, interest, c.key());
}

void Worker::close_connection(Connection& c, bool error) {
  loop_.assert_in_loop_thread();
  if (error) stats_.errors.add(1);
  if (shutting_down_ || draining_) {
    (c.pending.empty() ? stats_.connections_drained : stats_.connections_cut).add(1);
  }
  SPDLOG_DEBUG("worker {}: close fd={} slot={} pending={} error={}", id_, c.fd, c.slot,
               c.pending.size(), error);
  stats_.pending_output_bytes.sub(c.pending.size());
  refund_buffer(c);
  // close() also removes the descriptor from this loop's epoll set (it is never duplicated).
  close(c.fd);
  connections_.release(&c);
  stats_.connections_closed.add(1);
  stats_.connections_active.sub(1);
  if (draining_) finish_drain_if_done();
}

void Worker::close_all() {
  connections_.for_each_open([this](Connection& c) { close_connection(c, /*error=*/false); });
}

void Worker::on_idle_tick() {
  idle_wheel_.advance(
      [this](std::uint64_t key) -> std::optional<std::uint32_t> {
        const Connection* c = connections_.find(key);
        if (c == nullptr) return std::nullopt;
        return c->last_active_tick;
      },
      [this](std::uint64_t key) {
        Connection* c = connections_.find(key);
        SPDLOG_DEBUG("worker {}: idle timeout fd={}", id_, c->fd);
        stats_.idle_timeouts.add(1);
        close_connection(*c, /*error=*/false);
      });
}

void Worker::accept_connections() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    int fd = -1;
    const Listener::Outcome outcome = listener_->accept(fd);
    if (outcome == Listener::Outcome::kEmpty) return;
    if (outcome == Listener::Outcome::kShed) continue;
    if (outcome == Listener::Outcome::kFailed) {
      loop_.modify(listener_->fd(), 0, kListenKey);
      arm_timer(backoff_timer_fd_, 100, 0);
      return;
    }
    if (open_connections_() >= max_connections_) {
      close(fd);
      listener_->count_rejected();
      continue;
    }
    apply_accepted_socket_options(fd, accepted_socket_);
    adopt(fd);
  }
}

void Worker::start_drain(std::uint64_t timeout_ms) {
  loop_.assert_in_loop_thread();
  if (draining_) return;
  draining_ = true;
  if (listener_) {
    loop_.remove(listener_->fd());
    listener_->close_listener();  // stop accepting at once
  }
  connections_.for_each_open([this](Connection& c) {
    c.ending = true;
    if (!c.pending.empty()) {
      set_interest(c, kWritable);  // stop reading; end once the last pending byte is sent
      return;
    }
    end_gracefully(c);
  });
  arm_timer(drain_timer_fd_, timeout_ms, 0);
  finish_drain_if_done();  // nothing was pending anywhere
}

void Worker::finish_drain_if_done() {
  if (!draining_ || connections_.active() != 0) return;
  drained_.store(true, std::memory_order_release);
  loop_.stop();
}

}  // namespace mr
