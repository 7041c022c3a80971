#include "client_thread.hpp"

#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <system_error>

namespace mr::bench {
namespace {

constexpr std::int64_t kHousekeepingNs = 5'000'000;  // timeouts and phase checks every 5 ms

std::uint64_t key_of(std::uint32_t slot, std::uint32_t cycle) {
  // Within the loop's 60-bit key space: a slot reconnects far fewer than 2^28 times.
  return static_cast<std::uint64_t>(slot) |
         (static_cast<std::uint64_t>(cycle & 0x0FFF'FFFFu) << 32);
}

}  // namespace

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

ThreadTotals& ThreadTotals::operator+=(const ThreadTotals& o) {
  connections_opened += o.connections_opened;
  connect_failures += o.connect_failures;
  closed_by_server += o.closed_by_server;
  mismatches += o.mismatches;
  io_errors += o.io_errors;
  lost_messages += o.lost_messages;
  messages_sent += o.messages_sent;
  messages_received += o.messages_received;
  bytes_sent += o.bytes_sent;
  bytes_received += o.bytes_received;
  window_messages += o.window_messages;
  window_bytes += o.window_bytes;
  storm_cycles += o.storm_cycles;
  window_storm_cycles += o.window_storm_cycles;
  return *this;
}

ClientThread::ClientThread(const RunPlan& plan, std::vector<std::uint32_t> connection_ids)
    : plan_(plan),
      storm_(plan.options.mode == BenchMode::kConnect),
      open_loop_(plan.options.mode == BenchMode::kEcho && plan.options.rate > 0),
      tx_scratch_(new unsigned char[kScratchBytes]),
      rx_scratch_(new unsigned char[kScratchBytes]) {
  const std::size_t ring = storm_ ? 1 : plan.options.pipeline;
  connections_.resize(connection_ids.size());
  for (std::size_t i = 0; i < connections_.size(); ++i) {
    Connection& c = connections_[i];
    c.slot = static_cast<std::uint32_t>(i);
    c.id = connection_ids[i];
    c.send_times_ns = std::make_unique<std::int64_t[]>(ring);
  }
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) throw std::system_error(errno, std::generic_category(), "timerfd_create");
  registration_ = loop_.attach(*this);
  // The pacing timer is a timerfd of its own: open-loop sends are scheduled to the nanosecond,
  // the loop's run_after() to the millisecond.
  loop_.attach(timer_handler_).add(timer_fd_, EPOLLIN, 0);
}

ClientThread::~ClientThread() {
  if (thread_.joinable()) {
    loop_.stop();
    thread_.join();
  }
  for (auto& c : connections_) {
    if (c.fd >= 0) close(c.fd);
  }
  close(timer_fd_);
}

void ClientThread::start() {
  thread_ = std::thread([this] { loop_.run(); });
}

void ClientThread::join() {
  if (thread_.joinable()) thread_.join();
}

void ClientThread::begin_connecting(std::int64_t now_ns) {
  loop_.post([this, now_ns] {
    if (storm_) {  // storm slots connect during the load phase
      connected_.store(true, std::memory_order_release);
      return;
    }
    phase_ = Phase::kConnecting;
    connect_phase_start_ns_ = now_ns;
    pending_open_.clear();
    for (const auto& c : connections_)
      pending_open_.push_back(c.slot);
    open_more(monotonic_ns());
    check_connect_phase(monotonic_ns());
    arm_timer(monotonic_ns() + kHousekeepingNs);
  });
}

void ClientThread::begin_load(const LoadSchedule& schedule) {
  loop_.post([this, schedule] {
    schedule_ = schedule;
    phase_ = Phase::kLoading;
    load_started_ = false;
    if (storm_) {
      pending_open_.clear();
      for (const auto& c : connections_)
        pending_open_.push_back(c.slot);
    } else {
      open_slots_.clear();
      for (auto& c : connections_) {
        if (c.state != State::kOpen) continue;
        c.open_index = static_cast<std::uint32_t>(open_slots_.size());
        open_slots_.push_back(c.slot);
      }
      if (open_loop_ && schedule_.thread_rate > 0) period_ns_ = 1e9 / schedule_.thread_rate;
      issued_ = 0;
    }
    arm_timer(schedule_.start_ns);
  });
}

std::future<LatencyHistogram> ClientThread::snapshot_latency() {
  auto promise = std::make_shared<std::promise<LatencyHistogram>>();
  auto future = promise->get_future();
  loop_.post([this, promise] { promise->set_value(result_.latency); });
  return future;
}

std::future<ThreadResult> ClientThread::collect() {
  auto promise = std::make_shared<std::promise<ThreadResult>>();
  auto future = promise->get_future();
  loop_.post([this, promise] { promise->set_value(result_); });
  return future;
}

void ClientThread::close_all_and_stop() {
  loop_.post([this] {
    for (auto& c : connections_) {
      close_connection(c);
      if (c.state == State::kOpen || c.state == State::kConnecting) c.state = State::kDone;
    }
    loop_.stop();
  });
}

void ClientThread::count_error() {
  live_errors_.add(1);
}

void ClientThread::arm_timer(std::int64_t at_ns) {
  itimerspec spec{};
  spec.it_value.tv_sec = at_ns / 1'000'000'000;
  spec.it_value.tv_nsec = at_ns % 1'000'000'000;
  if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void ClientThread::on_timer_fd() {
  std::uint64_t expirations = 0;
  if (read(timer_fd_, &expirations, sizeof expirations) < 0) return;
  on_timer();
}

void ClientThread::on_event(std::uint64_t key, std::uint32_t events) {
  const auto slot = static_cast<std::uint32_t>(key);
  if (slot >= connections_.size()) return;
  Connection& c = connections_[slot];
  // A slot reconnected (storm mode) gets a new cycle: events for its old socket are stale.
  if (c.fd < 0 || key != key_of(c.slot, c.cycle)) return;
  const std::int64_t now = monotonic_ns();
  if (c.state == State::kConnecting) {
    on_connected(c, events, now);
    return;
  }
  if (c.state != State::kOpen) return;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c, now);
  if (c.state == State::kOpen && (events & EPOLLOUT)) try_send(c, now);
}

std::int64_t ClientThread::connect_housekeeping(std::int64_t now) {
  const auto timeout_ns = static_cast<std::int64_t>(plan_.options.connect_timeout_s * 1e9);
  for (auto& c : connections_) {
    if (c.state == State::kConnecting && now - c.connect_started_ns > timeout_ns) {
      fail(c, Failure::kConnect);
    }
  }
  open_more(now);
  // With a connect rate the next opening is due within a millisecond.
  return plan_.options.connect_rate > 0 ? now + 1'000'000 : now + kHousekeepingNs;
}

void ClientThread::on_timer() {
  const std::int64_t now = monotonic_ns();
  std::int64_t next = now + kHousekeepingNs;
  switch (phase_) {
    case Phase::kConnecting:
      next = std::min(next, connect_housekeeping(now));
      check_connect_phase(now);
      break;
    case Phase::kLoading:
    case Phase::kEnding:
      if (now < schedule_.start_ns) {
        next = schedule_.start_ns;
        break;
      }
      if (!load_started_) {
        load_started_ = true;
        connect_phase_start_ns_ = schedule_.start_ns;
        opens_ = 0;
        if (!open_loop_ && !storm_) {
          for (auto& c : connections_)
            try_send(c, now);
        }
      }
      if (phase_ == Phase::kLoading && now >= schedule_.end_ns) phase_ = Phase::kEnding;
      if (storm_) next = std::min(next, connect_housekeeping(now));
      if (open_loop_ && period_ns_ > 0 && !open_slots_.empty() && issued_ < schedule_cap()) {
        const std::uint64_t due = scheduled_total(now);
        const std::uint64_t n = open_slots_.size();
        // Past one full round every connection is offered its whole backlog at once.
        const std::uint64_t from = due - issued_ > n ? due - n : issued_;
        for (std::uint64_t j = from; j < due; ++j) {
          try_send(connections_[open_slots_[j % n]], now);
        }
        issued_ = due;
        if (issued_ < schedule_cap()) {
          next = std::min(next,
                          schedule_.start_ns +
                              static_cast<std::int64_t>(static_cast<double>(issued_) * period_ns_));
        }
      }
      check_drain(now);
      if (phase_ == Phase::kDrained) return;
      if (phase_ == Phase::kLoading) next = std::min(next, schedule_.end_ns);
      break;
    default:
      return;  // nothing timed in the other phases
  }
  arm_timer(std::max(next, now + 1));
}

void ClientThread::open_more(std::int64_t now_ns) {
  const bool storm_open = storm_ && phase_ == Phase::kLoading && now_ns < schedule_.end_ns;
  if (!storm_open && phase_ != Phase::kConnecting) return;
  const double rate = plan_.options.connect_rate / plan_.threads;
  while (!pending_open_.empty() && connects_in_flight_ < kMaxConnectsInFlight) {
    if (rate > 0) {
      const double elapsed_s = static_cast<double>(now_ns - connect_phase_start_ns_) / 1e9;
      const auto allowed = static_cast<std::uint64_t>(std::floor(elapsed_s * rate)) + 1;
      if (opens_ >= allowed) break;
    }
    const std::uint32_t slot = pending_open_.front();
    pending_open_.pop_front();
    ++opens_;
    open_connection(connections_[slot], now_ns);
  }
}

void ClientThread::open_connection(Connection& c, std::int64_t now_ns) {
  const SocketAddress* source =
      plan_.sources.empty() ? nullptr : &plan_.sources[c.id % plan_.sources.size()];
  c.tx_sequence = 0;
  c.tx_offset = 0;
  c.writing = false;
  c.verifier = EchoVerifier(plan_.pattern.get(), c.id);
  c.connect_started_ns = now_ns;
  try {
    c.fd = connect_tcp(plan_.server, source);
  } catch (const std::system_error&) {
    // No descriptor, no port for this source address, or refused at once: a failed connection.
    c.fd = -1;
    c.state = State::kFailed;
    ++result_.totals.connect_failures;
    count_error();
    if (!storm_) ++settled_;
    return;
  }
  set_tcp_nodelay(c.fd, true);
  c.state = State::kConnecting;
  ++connects_in_flight_;
  if (storm_) ++in_flight_;
  registration_.add(c.fd, EPOLLOUT, key_of(c.slot, c.cycle));
}

void ClientThread::on_connected(Connection& c, std::uint32_t events, std::int64_t now_ns) {
  int error = 0;
  socklen_t len = sizeof error;
  getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len);
  if (error != 0 || (events & (EPOLLERR | EPOLLHUP)) != 0) {
    fail(c, Failure::kConnect);
    if (!storm_) {
      open_more(now_ns);
      check_connect_phase(now_ns);
    }
    return;
  }
  --connects_in_flight_;
  c.state = State::kOpen;
  registration_.modify(c.fd, EPOLLIN, key_of(c.slot, c.cycle));
  ++result_.totals.connections_opened;
  live_opened_.add(1);
  live_open_.add(1);
  if (!storm_ ||
      (c.connect_started_ns >= schedule_.measure_ns && c.connect_started_ns < schedule_.end_ns)) {
    result_.connect_latency.record(static_cast<std::uint64_t>(now_ns - c.connect_started_ns));
  }
  if (storm_) {
    open_more(now_ns);
    try_send(c, now_ns);
    return;
  }
  ++settled_;
  open_more(now_ns);
  check_connect_phase(now_ns);
}

void ClientThread::check_connect_phase(std::int64_t) {
  if (phase_ == Phase::kConnecting && settled_ == connections_.size()) {
    phase_ = Phase::kConnected;
    connected_.store(true, std::memory_order_release);
  }
}

std::uint64_t ClientThread::schedule_cap() const {
  // Messages whose intended send time falls before the end of the run.
  const double span = static_cast<double>(schedule_.end_ns - schedule_.start_ns);
  return static_cast<std::uint64_t>(std::ceil(span / period_ns_));
}

std::uint64_t ClientThread::scheduled_total(std::int64_t now_ns) const {
  if (now_ns < schedule_.start_ns) return 0;
  const double elapsed = static_cast<double>(now_ns - schedule_.start_ns);
  const auto due = static_cast<std::uint64_t>(std::floor(elapsed / period_ns_)) + 1;
  return std::min(due, schedule_cap());
}

std::uint64_t ClientThread::scheduled(std::uint32_t open_index, std::int64_t now_ns) const {
  const std::uint64_t due = scheduled_total(now_ns);
  if (due <= open_index) return 0;
  return (due - 1 - open_index) / open_slots_.size() + 1;
}

std::int64_t ClientThread::intended_ns(const Connection& c, std::uint64_t sequence) const {
  const double j = static_cast<double>(sequence * open_slots_.size() + c.open_index);
  return schedule_.start_ns + static_cast<std::int64_t>(j * period_ns_);
}

void ClientThread::set_writing(Connection& c, bool on) {
  if (c.writing == on) return;
  c.writing = on;
  registration_.modify(c.fd, on ? (EPOLLIN | EPOLLOUT) : EPOLLIN, key_of(c.slot, c.cycle));
}

void ClientThread::try_send(Connection& c, std::int64_t now_ns) {
  if (c.state != State::kOpen) return;
  const std::size_t size = plan_.pattern->message_size();
  const std::uint64_t pipeline = storm_ ? 1 : plan_.options.pipeline;
  std::uint64_t limit = c.verifier.next_sequence() + pipeline;
  if (storm_) {
    limit = 1;
  } else if (open_loop_ && load_started_ && phase_ != Phase::kDrained) {
    // Every message due before the end is sent, even late: skipping the backlog of a stalled
    // run would hide exactly the latency the open loop is there to show.
    limit = std::min(limit, scheduled(c.open_index, now_ns));
  } else if (phase_ != Phase::kLoading || !load_started_ || now_ns >= schedule_.end_ns) {
    limit = c.started();  // no new message; only finish one already begun
  }
  limit = std::max(limit, c.started());
  while (c.tx_sequence < limit) {
    // Fill the scratch with as many of the allowed messages as fit, from where the last send
    // stopped.
    std::size_t bytes = 0;
    std::uint64_t sequence = c.tx_sequence;
    std::size_t offset = c.tx_offset;
    while (bytes < kScratchBytes && sequence < limit) {
      const std::size_t take = std::min(size - offset, kScratchBytes - bytes);
      plan_.pattern->write(c.id, sequence, offset, take, tx_scratch_.get() + bytes);
      bytes += take;
      offset += take;
      if (offset == size) {
        offset = 0;
        ++sequence;
      }
    }
    const ssize_t n = send(c.fd, tx_scratch_.get(), bytes, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_writing(c, true);
        return;
      }
      fail(c, errno == EPIPE || errno == ECONNRESET ? Failure::kClosedByServer : Failure::kIo);
      return;
    }
    std::size_t left = static_cast<std::size_t>(n);
    result_.totals.bytes_sent += left;
    while (left > 0) {
      if (c.tx_offset == 0) {
        c.send_times_ns[c.tx_sequence % pipeline] = now_ns;
        ++result_.totals.messages_sent;
        if (!storm_) ++in_flight_;
      }
      const std::size_t take = std::min(left, size - c.tx_offset);
      c.tx_offset += take;
      left -= take;
      if (c.tx_offset == size) {
        c.tx_offset = 0;
        ++c.tx_sequence;
      }
    }
    if (static_cast<std::size_t>(n) < bytes) {
      set_writing(c, true);
      return;
    }
  }
  set_writing(c, false);
}

void ClientThread::on_readable(Connection& c, std::int64_t now_ns) {
  for (int round = 0; round < 4; ++round) {
    const ssize_t n = recv(c.fd, rx_scratch_.get(), kScratchBytes, 0);
    if (n == 0) {
      fail(c, Failure::kClosedByServer);
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      fail(c, errno == ECONNRESET ? Failure::kClosedByServer : Failure::kIo);
      return;
    }
    const auto got = static_cast<std::size_t>(n);
    result_.totals.bytes_received += got;
    live_bytes_.add(got);
    const std::uint64_t before = c.verifier.next_sequence();
    const EchoVerifier::Result r = c.verifier.consume(rx_scratch_.get(), got, plan_.options.verify);
    // Bytes beyond what was sent are as wrong as changed bytes.
    const bool overrun =
        c.verifier.next_sequence() > c.tx_sequence ||
        (c.verifier.next_sequence() == c.tx_sequence && c.verifier.offset() > c.tx_offset);
    if (r.mismatch || overrun) {
      fail(c, Failure::kMismatch);
      return;
    }
    for (std::uint64_t s = before; s < before + r.messages_completed; ++s) {
      complete(c, s, now_ns);
      if (c.state != State::kOpen) return;  // storm mode closes after its one echo
    }
    if (got < kScratchBytes) break;
  }
  try_send(c, now_ns);
}

void ClientThread::complete(Connection& c, std::uint64_t sequence, std::int64_t now_ns) {
  const std::uint64_t pipeline = storm_ ? 1 : plan_.options.pipeline;
  const std::int64_t sent_ns = c.send_times_ns[sequence % pipeline];
  ++result_.totals.messages_received;
  live_messages_.add(1);
  const bool in_window = now_ns >= schedule_.measure_ns && now_ns < schedule_.end_ns;
  if (in_window) {
    ++result_.totals.window_messages;
    result_.totals.window_bytes += plan_.pattern->message_size();
  }
  if (storm_) {
    // The storm's latency: from connect() to the first echo complete.
    if (c.connect_started_ns >= schedule_.measure_ns && c.connect_started_ns < schedule_.end_ns) {
      result_.latency.record(static_cast<std::uint64_t>(now_ns - c.connect_started_ns));
    }
    storm_cycle_done(c, now_ns, in_window);
    return;
  }
  --in_flight_;
  // Latency belongs to the window its message was meant to be sent in, however late the echo.
  const std::int64_t origin_ns = open_loop_ ? intended_ns(c, sequence) : sent_ns;
  if (origin_ns >= schedule_.measure_ns && origin_ns < schedule_.end_ns) {
    result_.latency.record(
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, now_ns - origin_ns)));
    if (open_loop_) {
      result_.latency_uncorrected.record(static_cast<std::uint64_t>(now_ns - sent_ns));
    }
  }
}

void ClientThread::storm_cycle_done(Connection& c, std::int64_t now_ns, bool in_window) {
  ++result_.totals.storm_cycles;
  if (in_window) ++result_.totals.window_storm_cycles;
  close_connection(c);
  c.state = State::kDone;
  --in_flight_;
  if (phase_ == Phase::kLoading && now_ns < schedule_.end_ns) {
    ++c.cycle;
    // A fresh id per cycle: an echo from an earlier socket cannot pass for this one's.
    c.id += static_cast<std::uint32_t>(plan_.options.connections);
    pending_open_.push_back(c.slot);
    open_more(now_ns);
  }
}

std::uint64_t ClientThread::unsent_backlog() const {
  if (!open_loop_ || period_ns_ <= 0) return 0;
  std::uint64_t unsent = 0;
  for (const std::uint32_t slot : open_slots_) {
    const Connection& c = connections_[slot];
    if (c.state != State::kOpen) continue;
    const std::uint64_t due = scheduled(c.open_index, schedule_.end_ns);
    if (due > c.started()) unsent += due - c.started();
  }
  return unsent;
}

void ClientThread::check_drain(std::int64_t now_ns) {
  if (phase_ != Phase::kEnding) return;
  const std::uint64_t unsent = unsent_backlog();
  if ((in_flight_ != 0 || unsent != 0) && now_ns < schedule_.drain_deadline_ns) return;
  if (unsent != 0) {
    // Due before the end and never sent: the client (or the server's window) fell behind.
    result_.totals.lost_messages += unsent;
    count_error();
  }
  if (in_flight_ != 0) {
    // Echoes that never came: counted as lost, and their connections closed.
    for (auto& c : connections_) {
      if (storm_) {
        if (c.state == State::kOpen || c.state == State::kConnecting) {
          ++result_.totals.lost_messages;
          count_error();
          --in_flight_;
          close_connection(c);
          c.state = State::kDone;
        }
        continue;
      }
      if (c.state != State::kOpen) continue;
      const std::uint64_t outstanding = c.started() - c.verifier.next_sequence();
      if (outstanding == 0) continue;
      result_.totals.lost_messages += outstanding;
      count_error();
      in_flight_ -= outstanding;
      close_connection(c);
      c.state = State::kDone;
    }
  }
  phase_ = Phase::kDrained;
  drained_.store(true, std::memory_order_release);
}

void ClientThread::fail(Connection& c, Failure why) {
  if (c.state == State::kConnecting) {
    --connects_in_flight_;
    if (!storm_) ++settled_;
  }
  if (storm_) {
    if (c.state == State::kConnecting || c.state == State::kOpen) --in_flight_;
  } else if (c.state == State::kOpen) {
    const std::uint64_t outstanding = c.started() - c.verifier.next_sequence();
    result_.totals.lost_messages += outstanding;
    in_flight_ -= outstanding;
  }
  switch (why) {
    case Failure::kConnect:
      ++result_.totals.connect_failures;
      break;
    case Failure::kClosedByServer:
      ++result_.totals.closed_by_server;
      break;
    case Failure::kMismatch:
      ++result_.totals.mismatches;
      break;
    case Failure::kIo:
      ++result_.totals.io_errors;
      break;
  }
  count_error();
  close_connection(c);
  c.state = State::kFailed;
}

void ClientThread::close_connection(Connection& c) {
  if (c.fd < 0) return;
  loop_.remove(c.fd);
  close(c.fd);
  c.fd = -1;
  c.writing = false;
  if (c.state == State::kOpen) live_open_.sub(1);
}

}  // namespace mr::bench
