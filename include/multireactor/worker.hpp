// A worker: one thread, one EventLoop, the connections handed to it, and its stats.
//
// Contract: start() spawns the thread; hand_off() (thread-safe) queues accepted descriptors and
// wakes the loop at most once per batch; stop() (thread-safe) makes the loop close every
// connection and return; join() waits for the thread. Everything else — the connection table,
// the scratch buffer, the stats counters — is written only on the worker's thread.
//
// Echo path per readable event: one read of at most min(scratch, room under the high-water mark)
// bytes into the worker's scratch buffer, one send straight back, and only the unsent remainder
// copied into the connection's own buffer (EPOLLOUT armed while it is non-empty). Reading stops
// when pending output reaches high_water_mark and resumes below half of it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "multireactor/connection_table.hpp"
#include "multireactor/event_loop.hpp"
#include "multireactor/stats.hpp"

namespace mr {

struct WorkerOptions {
  std::size_t high_water_mark = 1024 * 1024;
  std::size_t scratch_bytes = 64 * 1024;
  int max_events = 256;
};

class Worker final : private EventLoop::Handler {
 public:
  Worker(unsigned id, WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  // Thread-safe: the worker takes ownership of these connected, non-blocking descriptors.
  void hand_off(std::span<const int> fds);
  // Thread-safe.
  void stop();
  void join();

  unsigned id() const { return id_; }
  EventLoop& loop() { return loop_; }
  // Thread-safe.
  WorkerStatsSnapshot stats() const;
  // Thread-safe: one counter, for the acceptor's connection limit.
  std::uint64_t connections_closed() const { return stats_.connections_closed.get(); }

 private:
  void on_event(std::uint64_t key, std::uint32_t events) override;
  void on_wakeup() override;

  void adopt(int fd);
  void on_readable(Connection& c);
  void on_writable(Connection& c);
  // Sends `n` bytes that follow the pending ones; keeps what the kernel does not take.
  void send_or_queue(Connection& c, const char* bytes, std::size_t n);
  void set_interest(Connection& c, std::uint32_t interest);
  void close_connection(Connection& c, bool error);
  void close_all();

  const unsigned id_;
  const WorkerOptions options_;
  EventLoop loop_;
  ConnectionTable connections_;
  std::unique_ptr<char[]> scratch_;
  WorkerStats stats_;
  std::thread thread_;

  std::mutex incoming_mutex_;
  std::vector<int> incoming_;  // guarded by incoming_mutex_
  std::vector<int> adopting_;  // loop thread only
};

}  // namespace mr
