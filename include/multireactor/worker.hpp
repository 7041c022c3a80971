// A worker: one thread, one EventLoop, the connections handed to it, and its stats.
//
// Contract: start() spawns the thread; hand_off() (thread-safe) queues accepted descriptors and
// wakes the loop at most once per batch; begin_drain() (thread-safe) stops reading, lets pending
// output flush for up to a timeout and then ends the loop; stop() (thread-safe) makes the loop
// close every connection and return; join() waits for the thread. Everything else — the
// connection table, the scratch buffer, the idle wheel, the stats counters — is written only on
// the worker's thread.
//
// Echo path per readable event: a read of at most min(scratch, room under the high-water mark)
// bytes into the worker's scratch buffer, one send straight back, and only the unsent remainder
// copied into the connection's own buffer (EPOLLOUT armed while it is non-empty). Another read
// follows in the same event only when this one filled the scratch and was sent in full, up to
// reads_per_event reads: a bulk sender gets at most reads_per_event x scratch bytes per loop
// iteration before the other connections on its worker get their turn, and a small message never
// costs a read that returns EAGAIN. Reading stops when pending output reaches high_water_mark
// and resumes below half of it.
//
// Process budget (options.budget, shared by all workers): a read never takes more than the
// worker's share could queue, so output buffers over the whole process stay within the budget.
// Past half the budget, connections with the largest queues stop being read (an overload pause,
// until their output has drained completely); past three quarters every connection with a queue
// does and reads shrink to 4 KiB (buffer_budget.hpp). A connection that cannot read at all
// because the budget is spent waits, not reading, and is retried every kBudgetRetryMs, as is the
// pressure while it is high. No byte is dropped and no connection is closed for it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "multireactor/buffer_budget.hpp"
#include "multireactor/connection_table.hpp"
#include "multireactor/event_loop.hpp"
#include "multireactor/idle_wheel.hpp"
#include "multireactor/listener.hpp"
#include "multireactor/socket.hpp"
#include "multireactor/stats.hpp"

namespace mr {

struct WorkerOptions {
  std::size_t high_water_mark = 1024 * 1024;
  std::size_t scratch_bytes = 64 * 1024;
  int max_events = 256;
  // Reads per readable event, each after one that filled the scratch (see the contract above).
  unsigned reads_per_event = 4;
  std::uint64_t idle_timeout_ms = 0;  // 0 = off
  // The process-wide buffer budget (must outlive the worker); the worker takes it in chunks.
  BufferBudget* budget = nullptr;
  std::uint64_t budget_chunk_bytes = 256 * 1024;
};

class Worker final : private EventLoop::Handler {
 public:
  Worker(unsigned id, WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Before start(), accept_mode = reuseport: the worker accepts on its own SO_REUSEPORT socket
  // (taking ownership of listen_fd) and adopts connections itself while open_connections()
  // (a thread-safe count across all workers) is below max_connections.
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
  // Thread-safe: one counter, for the acceptor's connection limit.
  std::uint64_t connections_closed() const { return stats_.connections_closed.get(); }
  std::uint64_t connections_active() const { return stats_.connections_active.get(); }
  // Thread-safe: the worker's own listener's counters (reuseport mode; zero otherwise).
  AcceptorStatsSnapshot listener_stats() const;
  // Thread-safe.
  bool drained() const { return drained_.load(std::memory_order_acquire); }

 private:
  // Worker-owned descriptors use slots no connection can have.
  static constexpr std::uint64_t kIdleTimerKey = 0xFFFF'FFF0;
  static constexpr std::uint64_t kDrainTimerKey = 0xFFFF'FFF1;
  static constexpr std::uint64_t kListenKey = 0xFFFF'FFF2;
  static constexpr std::uint64_t kBackoffTimerKey = 0xFFFF'FFF3;
  static constexpr std::uint64_t kBudgetTimerKey = 0xFFFF'FFF4;
  static constexpr std::uint64_t kBudgetRetryMs = 10;
  static constexpr int kAcceptBatch = 64;
  static constexpr int kDiscardReads = 128;  // at most 8 MiB of unread input dropped at the end

  void on_event(std::uint64_t key, std::uint32_t events) override;
  void on_wakeup() override;

  void adopt(int fd);
  // The most the next read may take: the scratch, or less when pending output nears the mark.
  std::size_t read_budget(Connection& c);
  // The share cannot cover a full read: reads what it can cover, or parks `c` (returns 0).
  std::size_t read_budget_from_share(Connection& c, std::size_t room);
  // Output buffer growth and shrinkage, charged to the budget share and the stats.
  void charge_growth(std::size_t capacity_before, const Connection& c);
  void refund_buffer(Connection& c);
  // Reads the budget's pressure into overload_threshold_ and read_cap_.
  void update_pressure();
  void arm_budget_timer();
  void resume_waiting_for_budget();
  void on_readable(Connection& c);
  // reads_per_event > 1 and a read of `n` bytes filled the scratch: echoes them, then reads again
  // while each read fills the scratch and is sent in full, up to reads_per_event reads in all.
  void echo_and_read_again(Connection& c, std::size_t n);
  // A read returned 0 (the peer's FIN) or failed.
  void on_read_end(Connection& c, ssize_t n);
  void on_writable(Connection& c);
  // Sends `n` bytes that follow the pending ones; keeps what the kernel does not take.
  void send_or_queue(Connection& c, const char* bytes, std::size_t n);
  // After the last pending byte during a drain: drop unread input, then close (a FIN, not a
  // reset that would destroy what the peer has not read yet).
  void end_gracefully(Connection& c);
  void set_interest(Connection& c, std::uint32_t interest);
  void close_connection(Connection& c, bool error);
  void close_all();
  void on_idle_tick();
  void start_drain(std::uint64_t timeout_ms);
  void finish_drain_if_done();
  void accept_connections();

  const unsigned id_;
  const WorkerOptions options_;
  EventLoop loop_;
  ConnectionTable connections_;
  std::unique_ptr<char[]> scratch_;
  BufferBudget own_budget_;  // used when options.budget is null (unbounded in practice)
  BudgetShare budget_;
  std::vector<std::uint64_t> waiting_for_budget_;  // keys of connections parked by the budget
  int budget_timer_fd_ = -1;
  bool budget_timer_armed_ = false;
  // Under pressure: the pending output at which reading from a connection pauses, and the most
  // one read takes (read_buffer_bytes otherwise).
  std::size_t overload_threshold_;
  std::size_t read_cap_;
  IdleWheel idle_wheel_;
  int idle_timer_fd_ = -1;
  int drain_timer_fd_ = -1;
  std::unique_ptr<Listener> listener_;  // reuseport mode only
  std::function<std::uint64_t()> open_connections_;
  std::uint64_t max_connections_ = 0;
  AcceptedSocketOptions accepted_socket_;
  int backoff_timer_fd_ = -1;
  bool draining_ = false;
  bool shutting_down_ = false;  // closes from here on count as drained or cut
  std::atomic<bool> drained_{false};
  WorkerStats stats_;
  std::thread thread_;

  std::mutex incoming_mutex_;
  std::vector<int> incoming_;  // guarded by incoming_mutex_
  std::vector<int> adopting_;  // loop thread only
};

}  // namespace mr
