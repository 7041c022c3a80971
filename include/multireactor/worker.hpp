// A worker: one thread, one EventLoop, the connections handed to it, its stats, and one
// protocol object that gives their bytes a meaning.
//
// Contract: start() spawns the thread; hand_off() (thread-safe) queues accepted descriptors and
// wakes the loop at most once per batch; begin_drain() (thread-safe) stops reading, lets pending
// output flush for up to a timeout and then ends the loop; stop() (thread-safe) makes the loop
// close every connection and return; join() waits for the thread. Everything else — the
// connection table, the read buffer, the idle wheel, the stats counters, the protocol — is used
// only on the worker's thread.
//
// Read path per readable event: a read of at most min(read buffer, room under the high-water
// mark, what the budget share covers) bytes into the worker's read buffer, then the protocol's
// on_data with those bytes; its send() writes straight back and only the unsent remainder is
// copied into the connection's own buffer (EPOLLOUT armed while it is non-empty). Another read
// follows in the same event only when this one filled the buffer and the protocol left nothing
// queued, up to reads_per_event reads: a bulk sender gets at most reads_per_event x buffer bytes
// per loop iteration before the other connections on its worker get their turn, and a small
// message never costs a read that returns EAGAIN. Reading stops when pending output reaches
// high_water_mark and resumes below half of it.
//
// Process budget (options.budget, shared by all workers): a read never takes more than the
// worker's share could queue, so output buffers over the whole process stay within the budget.
// Past half the budget, connections with the largest queues stop being read (an overload pause,
// until their output has drained completely); past three quarters every connection with a queue
// does and reads shrink to 4 KiB. A connection that cannot read at all because the budget is
// spent waits, not reading, and is retried every 10 ms, as is the pressure while it is high. No
// byte is dropped and no connection is closed for it.
#pragma once

#include <utility>

#include "multireactor/detail/raw_syscall.hpp"
#include "multireactor/detail/worker_core.hpp"
#include "multireactor/protocol.hpp"

namespace mr {

template <Protocol P>
class Worker final : public detail::WorkerCore {
 public:
  template <class... Args>
  Worker(unsigned id, WorkerOptions options, Args&&... protocol_args)
      : WorkerCore(id, std::move(options)), protocol_(std::forward<Args>(protocol_args)...) {}
  // The thread ends before the protocol it calls is destroyed.
  ~Worker() override {
    stop();
    join();
  }

  P& protocol() { return protocol_; }

 private:
  using State = detail::ConnectionState;

  void on_event(std::uint64_t key, std::uint32_t events) override {
    State* c = connections_.find(key);
    if (c == nullptr) return;  // stale: the connection closed earlier in this batch
    if ((events & EPOLLERR) != 0) {
      close_connection(*c, CloseReason::kError);
      return;
    }
    if ((events & EPOLLOUT) != 0) {
      on_writable(*c);
      if (!c->open()) return;
    }
    if ((events & EPOLLIN) != 0) {
      if (c->lingering) [[unlikely]] {
        linger_read(*c);
      } else {
        on_readable(*c);
      }
    } else if ((events & EPOLLHUP) != 0) {
      // Both directions are gone and nothing is left to read: pending output cannot be
      // delivered.
      close_connection(*c, CloseReason::kPeerClosed);
    }
  }

  void on_readable(State& c) {
    const std::size_t budget = read_budget(c);
    if (budget == 0) [[unlikely]]
      return;  // paused at the mark, or parked by the budget
    // Level-triggered epoll reports what is left next iteration, so stopping after a bounded
    // number of reads loses nothing; it keeps one busy connection from starving the others.
    const ssize_t n = raw::read(c.fd, scratch_.get(), budget);
    if (n <= 0) {
      on_read_end(c, n);
      return;
    }
    count_read(c, n);
    // Only a read that filled the whole buffer may be followed by another (a read cut short by
    // the high-water mark is not: that connection is near backpressure anyway). Comparing with
    // the buffer size keeps the read's budget from having to live across the system call.
    if (static_cast<std::size_t>(n) == options_.scratch_bytes && options_.reads_per_event > 1)
        [[unlikely]] {
      deliver_and_read_again(c, static_cast<std::size_t>(n));
      return;
    }
    deliver_data(c, static_cast<std::size_t>(n));
  }

  // A read of `n` bytes filled the buffer: delivers them, then reads again while each read fills
  // the buffer and the protocol queued nothing, up to reads_per_event reads in all.
  void deliver_and_read_again(State& c, std::size_t n) {
    for (unsigned reads = 1;; ++reads) {
      deliver_data(c, n);
      if (n < options_.scratch_bytes || reads >= options_.reads_per_event || !c.open() ||
          !c.pending.empty() || c.protocol_paused) {
        return;
      }
      const std::size_t budget = read_budget(c);
      if (budget == 0) return;
      const ssize_t got = raw::read(c.fd, scratch_.get(), budget);
      if (got <= 0) {
        on_read_end(c, got);
        return;
      }
      count_read(c, got);
      n = static_cast<std::size_t>(got);
    }
  }

  void count_read(State& c, ssize_t n) {
    stats_.reads.add(1);
    stats_.bytes_received.add(static_cast<std::uint64_t>(n));
    c.last_active_tick = idle_wheel_.now();
  }

  void deliver_data(State& c, std::size_t n) {
    Connection conn = handle(c);
    protocol_.on_data(conn, std::span<const char>(scratch_.get(), n));
  }

  // The io_uring backend: one submit-and-wait per batch, then every completion of it.
  void run_completions() override {
    while (uring_wait()) {
      for (const detail::Completion& e : completions_) {
        if (e.op() == detail::UringOp::kRecv) {
          State* c = uring_received(e);
          if (c == nullptr) continue;
          Connection conn = handle(*c);
          protocol_.on_data(conn, received_bytes());
          uring_after_delivery(*c);
        } else if (e.op() == detail::UringOp::kPollIn) {
          State* c = uring_readable(e);
          if (c == nullptr) continue;
          const std::uint64_t before = stats_.bytes_received.get();
          on_readable(*c);  // epoll's bounded read, into the worker's own buffer
          uring_after_poll_read(*c, stats_.bytes_received.get() - before);
        } else {
          uring_completion(e);
        }
      }
    }
  }

  void deliver_open(Connection& conn) override { protocol_.on_open(conn); }
  void deliver_drained(Connection& conn) override { protocol_.on_drained(conn); }
  void deliver_close(Connection& conn, CloseReason reason) override {
    protocol_.on_close(conn, reason);
  }

  P protocol_;
};

}  // namespace mr
