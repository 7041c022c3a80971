// One echo-bench reactor thread: its own mr::EventLoop, the client connections given to it, and
// its share of the load.
//
// Contract: everything a ClientThread owns — connections, histograms, counters' writes — is
// touched only on its loop thread. The run's driver (BenchClient, on another thread) talks to it
// only by post(): begin_connecting(), begin_load(), snapshot(), collect(), close_all(), plus
// stop(). It reads progress through the relaxed single-writer counters and the two phase flags
// (connected(), drained()). Per message: no allocation, no lock, no log; messages are generated
// from (connection id, sequence, offset) into one scratch buffer per thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "bench_options.hpp"
#include "latency_histogram.hpp"
#include "message_framing.hpp"
#include "multireactor/event_loop.hpp"
#include "multireactor/socket.hpp"
#include "multireactor/stats.hpp"

namespace mr::bench {

// Fixed for the whole run and shared read-only by every thread.
struct RunPlan {
  BenchOptions options;
  SocketAddress server;
  std::vector<SocketAddress> sources;
  std::unique_ptr<MessagePattern> pattern;
  unsigned threads = 1;
};

// The load phase's instants, CLOCK_MONOTONIC nanoseconds.
struct LoadSchedule {
  std::int64_t start_ns = 0;    // load begins (open loop: message 0 is due)
  std::int64_t measure_ns = 0;  // warm-up over
  std::int64_t end_ns = 0;      // no new message after this
  std::int64_t drain_deadline_ns = 0;
  double thread_rate = 0;  // this thread's messages/s (open loop), 0 = closed loop
};

// A plain copy of one thread's counters; summed over threads for the report.
struct ThreadTotals {
  std::uint64_t connections_opened = 0;
  std::uint64_t connect_failures = 0;
  std::uint64_t closed_by_server = 0;  // the server closed a connection we still used
  std::uint64_t mismatches = 0;        // an echoed byte differed from the byte sent
  std::uint64_t io_errors = 0;         // send/recv failed
  std::uint64_t lost_messages = 0;  // not echoed by the drain deadline, or on a failed connection
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t window_messages = 0;  // echoes completed inside the measured window
  std::uint64_t window_bytes = 0;
  std::uint64_t storm_cycles = 0;  // --mode connect: connect+echo+close cycles completed
  std::uint64_t window_storm_cycles = 0;

  std::uint64_t errors() const {
    return connect_failures + closed_by_server + mismatches + io_errors + lost_messages;
  }
  ThreadTotals& operator+=(const ThreadTotals& o);
};

struct ThreadResult {
  ThreadTotals totals;
  LatencyHistogram latency;              // echo latency (open loop: from the intended time)
  LatencyHistogram latency_uncorrected;  // open loop only: from the actual send
  LatencyHistogram connect_latency;      // connect() to established (storm: to first echo)
};

class ClientThread final : private EventLoop::Handler {
 public:
  // `connection_ids`: the global ids of the connections (or storm slots) this thread runs.
  ClientThread(const RunPlan& plan, std::vector<std::uint32_t> connection_ids);
  ~ClientThread();
  ClientThread(const ClientThread&) = delete;
  ClientThread& operator=(const ClientThread&) = delete;

  void start();
  void join();

  // Thread-safe (posted): open the connections (echo mode); connected() turns true when every
  // one is established or has failed.
  void begin_connecting(std::int64_t now_ns);
  // Thread-safe (posted): start sending. drained() turns true once the run is over and every
  // message sent was echoed (or the drain deadline passed).
  void begin_load(const LoadSchedule& schedule);
  // Thread-safe (posted): a copy of the latency histogram so far.
  std::future<LatencyHistogram> snapshot_latency();
  // Thread-safe (posted): everything counted.
  std::future<ThreadResult> collect();
  // Thread-safe (posted): close every connection, then stop the loop.
  void close_all_and_stop();

  bool connected() const { return connected_.load(std::memory_order_acquire); }
  bool drained() const { return drained_.load(std::memory_order_acquire); }

  // Relaxed single-writer counters for the progress line.
  std::uint64_t live_messages_received() const { return live_messages_.get(); }
  std::uint64_t live_bytes_received() const { return live_bytes_.get(); }
  std::uint64_t live_open_connections() const { return live_open_.get(); }
  std::uint64_t live_errors() const { return live_errors_.get(); }
  std::uint64_t live_connections_opened() const { return live_opened_.get(); }

 private:
  enum class State : std::uint8_t { kIdle, kConnecting, kOpen, kDone, kFailed };
  enum class Phase : std::uint8_t { kIdle, kConnecting, kConnected, kLoading, kEnding, kDrained };
  enum class Failure : std::uint8_t { kConnect, kClosedByServer, kMismatch, kIo };

  struct Connection {
    int fd = -1;
    State state = State::kIdle;
    bool writing = false;           // EPOLLOUT armed
    std::uint32_t id = 0;           // carried in every message header
    std::uint32_t slot = 0;         // index in connections_
    std::uint32_t open_index = 0;   // position among this thread's open connections (open loop)
    std::uint32_t cycle = 0;        // storm mode: how many times this slot reconnected
    std::uint64_t tx_sequence = 0;  // the message whose byte goes out next
    std::size_t tx_offset = 0;      // ... and that byte's offset in it
    EchoVerifier verifier;
    std::int64_t connect_started_ns = 0;
    std::unique_ptr<std::int64_t[]> send_times_ns;  // ring of `pipeline` send instants
    std::uint64_t started() const { return tx_sequence + (tx_offset > 0 ? 1 : 0); }
  };

  void on_event(std::uint64_t key, std::uint32_t events) override;

  void on_timer();
  // Fails connects past --connect-timeout and opens more; returns when it is due again.
  std::int64_t connect_housekeeping(std::int64_t now);
  void arm_timer(std::int64_t at_ns);
  void on_timer_fd();
  void open_more(std::int64_t now_ns);
  void open_connection(Connection& c, std::int64_t now_ns);
  void on_connected(Connection& c, std::uint32_t events, std::int64_t now_ns);
  void on_readable(Connection& c, std::int64_t now_ns);
  void try_send(Connection& c, std::int64_t now_ns);
  void complete(Connection& c, std::uint64_t sequence, std::int64_t now_ns);
  void set_writing(Connection& c, bool on);
  void fail(Connection& c, Failure why);
  void close_connection(Connection& c);
  void storm_cycle_done(Connection& c, std::int64_t now_ns, bool in_window);
  void check_connect_phase(std::int64_t now_ns);
  void check_drain(std::int64_t now_ns);
  // Open loop: how many of connection `open_index`'s messages are due at `now_ns`.
  std::uint64_t scheduled(std::uint32_t open_index, std::int64_t now_ns) const;
  // Open loop: messages of this thread due at `now_ns`, and how many fall inside the run.
  std::uint64_t scheduled_total(std::int64_t now_ns) const;
  std::uint64_t schedule_cap() const;
  // Open loop: messages due before the end that no connection has started yet.
  std::uint64_t unsent_backlog() const;
  std::int64_t intended_ns(const Connection& c, std::uint64_t sequence) const;
  void count_error();

  static constexpr std::size_t kScratchBytes = 64 * 1024;
  static constexpr unsigned kMaxConnectsInFlight = 256;

  const RunPlan& plan_;
  const bool storm_;
  const bool open_loop_;
  EventLoop loop_;
  EventLoop::Registration registration_;  // connections: key_of(slot, cycle)
  EventLoop::FdHandler timer_handler_{[this](std::uint32_t) { on_timer_fd(); }};
  int timer_fd_ = -1;
  std::thread thread_;
  std::vector<Connection> connections_;
  std::vector<std::uint32_t> open_slots_;  // open loop: slots in open_index order
  std::unique_ptr<unsigned char[]> tx_scratch_;
  std::unique_ptr<unsigned char[]> rx_scratch_;

  Phase phase_ = Phase::kIdle;
  LoadSchedule schedule_;
  double period_ns_ = 0;      // open loop: ns between this thread's messages
  std::uint64_t issued_ = 0;  // open loop: messages of this thread already made due
  std::int64_t connect_phase_start_ns_ = 0;
  std::deque<std::uint32_t> pending_open_;  // slots waiting for their connect()
  std::uint64_t opens_ = 0;                 // connect() calls since the phase began (rate limit)
  bool load_started_ = false;
  unsigned connects_in_flight_ = 0;
  std::uint64_t settled_ = 0;    // connections established or failed (echo mode connect phase)
  std::uint64_t in_flight_ = 0;  // messages started and not yet echoed (storm: busy slots)
  std::uint32_t next_storm_id_ = 0;

  ThreadResult result_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> drained_{false};
  WorkerStats::Counter live_messages_;
  WorkerStats::Counter live_bytes_;
  WorkerStats::Counter live_open_;
  WorkerStats::Counter live_errors_;
  WorkerStats::Counter live_opened_;
};

// CLOCK_MONOTONIC in nanoseconds.
std::int64_t monotonic_ns();

}  // namespace mr::bench
