// The protocol-independent part of a worker: its thread, loop, connections, budget and stats.
//
// Contract: see multireactor/worker.hpp, which is the public face (Worker<Protocol> derives from
// this). The core owns everything about a connection except what its bytes mean: adoption, the
// connection table, sending with send-first-queue-the-rest, backpressure at the high-water mark
// and the process budget, idle timeouts, draining, and (reuseport mode) its own listener. The
// only calls that cross to the protocol are the deliver_* hooks — once per connection open,
// drain and close, not per message; the per-message read path is in Worker<Protocol>, where the
// protocol's on_data is called directly. Everything but the thread-safe methods named in
// worker.hpp runs on the worker's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>
#include <vector>

#include "multireactor/connection.hpp"
#include "multireactor/detail/buffer_budget.hpp"
#include "multireactor/detail/connection_table.hpp"
#include "multireactor/detail/idle_wheel.hpp"
#include "multireactor/detail/listener.hpp"
#include "multireactor/detail/uring_ring.hpp"
#include "multireactor/event_loop.hpp"
#include "multireactor/modes.hpp"
#include "multireactor/socket.hpp"
#include "multireactor/stats.hpp"

namespace mr {

// Called first on every thread the engine starts: (name, worker index or -1).
using ThreadStartHook = std::function<void(std::string_view name, int worker)>;

struct WorkerOptions {
  std::size_t high_water_mark = 1024 * 1024;
  std::size_t scratch_bytes = 64 * 1024;
  int max_events = 256;
  // Reads per readable event, each after one that filled the scratch (see worker.hpp).
  unsigned reads_per_event = 4;
  std::uint64_t idle_timeout_ms = 0;  // 0 = off
  // The process-wide buffer budget (must outlive the worker); the worker takes it in chunks.
  BufferBudget* budget = nullptr;
  std::uint64_t budget_chunk_bytes = 256 * 1024;
  ThreadStartHook on_thread_start;  // e.g. to name the thread in logs
  // kEpoll or kIoUring (the reactor resolves kAuto). A worker whose ring cannot be set up on its
  // thread logs why and runs on epoll.
  IoBackend backend = IoBackend::kEpoll;
  detail::UringParams uring;
};

namespace detail {

class WorkerCore : protected EventLoop::Handler {
 public:
  WorkerCore(const WorkerCore&) = delete;
  WorkerCore& operator=(const WorkerCore&) = delete;
  virtual ~WorkerCore();

  // Before start(), reuseport mode: the worker accepts on its own SO_REUSEPORT socket (taking
  // ownership of listen_fd) and adopts connections itself while open_connections() (a
  // thread-safe count across all workers) is below max_connections.
  void listen_on(int listen_fd, std::function<std::uint64_t()> open_connections,
                 std::uint64_t max_connections, const AcceptedSocketOptions& accepted_socket);
  // cpu >= 0 pins the worker thread to that CPU.
  void start(int cpu = -1);
  // Thread-safe: the worker takes ownership of these connected, non-blocking descriptors.
  void hand_off(std::span<const int> fds);
  // Thread-safe: stop reading, flush pending output for at most timeout_ms, then close what is
  // left and end the loop. drained() turns true when the loop has ended this way.
  void begin_drain(std::uint64_t timeout_ms);
  // Thread-safe.
  void stop();
  void join();

  unsigned id() const { return id_; }
  EventLoop& loop() { return loop_; }
  // Thread-safe.
  WorkerStatsSnapshot stats() const;
  std::uint64_t connections_closed() const { return stats_.connections_closed.get(); }
  std::uint64_t connections_active() const { return stats_.connections_active.get(); }
  // Thread-safe: the worker's own listener's counters (reuseport mode; zero otherwise).
  AcceptorStatsSnapshot listener_stats() const;
  bool drained() const { return drained_.load(std::memory_order_acquire); }
  // Thread-safe: the backend the worker's loop runs on (kIoUring only once its ring is set up).
  IoBackend backend() const { return backend_.load(std::memory_order_acquire); }

  // What the Connection handle calls (worker thread).
  void send(ConnectionState& c, const char* bytes, std::size_t n) {
    if (uring_ != nullptr) {
      uring_send(c, bytes, n);
      return;
    }
    send_now(c, bytes, n);
  }
  void shutdown_write(ConnectionState& c);
  void close_by_protocol(ConnectionState& c) {
    close_connection(c, CloseReason::kClosedByProtocol);
  }
  void pause_reading(ConnectionState& c);
  void resume_reading(ConnectionState& c);

 protected:
  static constexpr std::uint32_t kReadable = EPOLLIN;
  static constexpr std::uint32_t kWritable = EPOLLOUT;

  WorkerCore(unsigned id, WorkerOptions options);
  Connection handle(ConnectionState& c) { return Connection(*this, c); }

  // The protocol's once-per-connection hooks (Worker<Protocol> forwards them).
  virtual void deliver_open(Connection& conn) = 0;
  virtual void deliver_drained(Connection& conn) = 0;
  virtual void deliver_close(Connection& conn, CloseReason reason) = 0;
  // The io_uring backend's loop (Worker<Protocol> runs it with the protocol's on_data inlined).
  virtual void run_completions() = 0;

  // The most the next read may take: the scratch, or less when pending output nears the mark or
  // the budget share cannot cover it (then the connection may be parked: returns 0).
  std::size_t read_budget(ConnectionState& c) {
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
  std::uint32_t readable(const ConnectionState& c) const {
    return c.protocol_paused ? 0 : kReadable;
  }
  // A read returned 0 (the peer's FIN) or failed.
  void on_read_end(ConnectionState& c, ssize_t n);
  // Readable while lingering (see end_gracefully): reads and drops; closes at the peer's FIN.
  void linger_read(ConnectionState& c);
  void on_writable(ConnectionState& c);
  void close_connection(ConnectionState& c, CloseReason reason);

  // The io_uring backend's steps, in the order run_completions() takes them: uring_wait()
  // prepares the queued sends, submits and waits for the next batch in completions_ (false once
  // the loop should end); each receive goes through uring_received(), which returns the
  // connection whose protocol gets received_bytes() (or null when there is nothing to deliver),
  // and uring_after_delivery(); every other completion through uring_completion().
  bool uring_wait();
  ConnectionState* uring_received(const Completion& e);
  // A POLLIN poll (see uring_arm_receive) completed: the connection to read as on epoll, or null.
  ConnectionState* uring_readable(const Completion& e);
  void uring_after_read(ConnectionState& c);
  // After the read a POLLIN poll asked for, which took `bytes`.
  void uring_after_poll_read(ConnectionState& c, std::uint64_t bytes);
  // Counts `c` once among this batch's receiving connections (what batching waits for).
  void count_batch_receiver(ConnectionState& c);
  std::span<const char> received_bytes() const {
    return {uring_->buffer(current_buffer_), current_length_};
  }
  void uring_after_delivery(ConnectionState& c);
  void uring_completion(const Completion& e);

  const unsigned id_;
  const WorkerOptions options_;
  EventLoop loop_;
  EventLoop::Registration registration_;
  ConnectionTable connections_;
  std::unique_ptr<char[]> scratch_;
  IdleWheel idle_wheel_;
  WorkerStats stats_;
  std::unique_ptr<UringRing> uring_;  // the io_uring backend's ring; null on epoll
  std::vector<Completion> completions_;

 private:
  static constexpr std::uint64_t kBudgetRetryMs = 10;
  static constexpr int kAcceptBatch = 64;
  static constexpr int kDiscardReads = 128;  // reads per readiness while lingering
  // A lingering connection is closed after a sweep interval in which nothing arrived (what
  // was in flight when our FIN left has arrived by then), and after kLingerSweeps in any case.
  static constexpr std::uint64_t kLingerSweepMs = 250;
  static constexpr unsigned kLingerSweeps = 7;

  void on_wakeup() override;
  void adopt(int fd);
  std::size_t read_budget_from_share(ConnectionState& c, std::size_t room);
  void park_for_budget(ConnectionState& c);
  void charge_growth(std::size_t capacity_before, const ConnectionState& c);
  void refund_buffer(ConnectionState& c);
  void update_pressure();
  void arm_budget_timer();
  void resume_waiting_for_budget();
  // After the last pending byte during a drain: a lingering close (FIN, then the peer's input
  // dropped until its FIN), not a reset that would destroy what the peer has not read yet.
  void end_gracefully(ConnectionState& c);
  void arm_linger_timer();
  void sweep_lingering();
  void set_interest(ConnectionState& c, std::uint32_t interest);
  void close_all();
  void on_idle_tick();
  void start_drain(std::uint64_t timeout_ms);
  void finish_drain_if_done();
  void accept_connections();
  void run_thread(int cpu);
  bool start_uring();
  void send_now(ConnectionState& c, const char* bytes, std::size_t n);
  // Keeps bytes the kernel did not take: the queue, and the pauses at the mark and the budget.
  void queue_output(ConnectionState& c, const char* bytes, std::size_t n);
  // After `sent` bytes of `pending` went out (either backend).
  void after_pending_sent(ConnectionState& c, std::size_t sent);
  // Output is idle: nothing pending and (io_uring) no send waiting for its completion.
  static bool output_idle(const ConnectionState& c) {
    return c.pending.empty() && !c.send_in_flight;
  }
  // What a connection owes once its output went idle: the FIN it asked for, the close after the
  // peer's, the end of a drain.
  void after_output_idle(ConnectionState& c);
  void uring_send(ConnectionState& c, const char* bytes, std::size_t n);
  void uring_interest(ConnectionState& c, std::uint32_t interest);
  void uring_arm_receive(ConnectionState& c);
  bool multishot_allowed(ConnectionState& c);
  void uring_queue_flush(ConnectionState& c);
  void uring_flush();
  void uring_rearm_starved();
  void uring_release(ConnectionState& c);
  void uring_send_done(const Completion& e);
  void uring_buffer_send_done(const Completion& e);
  // Joins bytes of the buffer being delivered to c's send; false when they must be queued.
  bool uring_gather(ConnectionState& c, std::uint32_t offset, std::uint32_t length);
  void uring_prepare_gathered();
  void recycle_from(std::uint16_t id);  // a held buffer and those linked after it
  // After a delivery: should c's receive move to the other size of buffers (and so be re-armed)?
  bool switch_buffer_size(ConnectionState& c);
  void uring_close_held();  // the descriptors in closing_fds_, after a submit
  void uring_close(int fd);
  void uring_finish();

  BufferBudget own_budget_;  // used when options.budget is null (unbounded in practice)
  BudgetShare budget_;
  std::vector<std::uint64_t> waiting_for_budget_;  // keys of connections parked by the budget
  bool budget_timer_armed_ = false;
  bool linger_timer_armed_ = false;
  // Under pressure: the pending output at which reading from a connection pauses, and the most
  // one read takes (read_buffer_bytes otherwise).
  std::size_t overload_threshold_;
  std::size_t read_cap_;
  std::unique_ptr<Listener> listener_;  // reuseport mode only
  EventLoop::FdHandler listen_handler_{[this](std::uint32_t) { accept_connections(); }};
  EventLoop::Registration listen_registration_;
  std::function<std::uint64_t()> open_connections_;
  std::uint64_t max_connections_ = 0;
  AcceptedSocketOptions accepted_socket_;
  bool draining_ = false;
  bool shutting_down_ = false;  // closes from here on count as drained or cut
  std::atomic<bool> drained_{false};
  std::thread thread_;

  // The io_uring backend (loop thread only). A buffer a receive filled stays with the send that
  // echoes it until that send's completion; held_ tells which connection and which bytes, and
  // links the buffers one send takes together, in order.
  static constexpr std::uint16_t kNoBuffer = 0xFFFF;  // ids are below 32768
  struct HeldBuffer {
    std::uint64_t key = 0;
    std::uint32_t offset = 0;
    std::uint32_t length = 0;
    std::uint16_t next = kNoBuffer;
  };
  std::vector<HeldBuffer> held_;  // by buffer id
  // The sends gathered in this batch, prepared just before the next submit: a connection's
  // buffers that arrive while its send is still being gathered join that send instead of being
  // copied into its queue (several receive completions come in a row for a pipelining client).
  struct GatheredSend {
    std::uint64_t key;
    std::uint16_t first;
    std::uint16_t last;
    std::uint16_t parts;
  };
  std::vector<GatheredSend> gathered_;
  std::vector<iovec> send_parts_;  // scratch for one gathered send's pieces
  std::uint16_t current_buffer_ = 0;
  std::uint32_t current_length_ = 0;
  bool delivering_ = false;    // received_bytes() is valid
  bool current_held_ = false;  // a send took the buffer being delivered
  // Keys of the connections that received data in the last batch, each once.
  std::vector<std::uint64_t> batch_receivers_;
  unsigned receive_peak_ = 0;   // their recent peak count, decaying by an eighth per batch
  std::size_t ring_bytes_ = 0;  // the receive buffers of one size together
  std::vector<std::uint64_t> flush_list_;  // keys whose pending output is sent at the next wait
  std::vector<std::uint64_t> starved_;     // keys waiting for a small buffer, oldest first
  std::vector<int> closing_fds_;           // closed after the next submit (see uring_release)
  RelaxedCounter uring_iterations_;
  std::atomic<IoBackend> backend_{IoBackend::kEpoll};

  std::mutex incoming_mutex_;
  std::vector<int> incoming_;  // guarded by incoming_mutex_
  std::vector<int> adopting_;  // loop thread only
};

}  // namespace detail

inline std::uint64_t Connection::id() const {
  return state_->key();
}
inline int Connection::fd() const {
  return state_->fd;
}
inline bool Connection::open() const {
  return state_->open();
}
inline std::size_t Connection::pending_bytes() const {
  return state_->pending.size();
}
inline void Connection::send(std::span<const char> bytes) {
  if (state_->open()) core_->send(*state_, bytes.data(), bytes.size());
}
inline void Connection::shutdown_write() {
  if (state_->open()) core_->shutdown_write(*state_);
}
inline void Connection::close() {
  if (state_->open()) core_->close_by_protocol(*state_);
}
inline void Connection::pause_reading() {
  if (state_->open()) core_->pause_reading(*state_);
}
inline void Connection::resume_reading() {
  if (state_->open()) core_->resume_reading(*state_);
}

}  // namespace mr
