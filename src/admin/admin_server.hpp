// The admin HTTP endpoint: /healthz, /readyz, /stats and /metrics, served on the acceptor
// thread's loop so the workers stay on the data path.
//
// Contract: an AdminServer owns its listening socket, its connections and one timerfd, and
// registers them on `loop` (keys from kFirstKey up, above the acceptor's own). Construct it
// before the loop runs; from then on everything runs on the loop's thread, and it must be
// destroyed only after that loop has stopped for good (the loop object itself must outlive every
// worker thread that may still answer a ping). Each connection gets one request and one answer
// (`Connection: close`). Nothing an admin client does can block the loop: sockets are
// non-blocking; a request head is bounded (HttpLimits) and must arrive within request_timeout
// (408 otherwise); the answer must be taken within response_timeout (else the connection is reset,
// dropping what the kernel still buffers); at most max_connections are open. GET is the only
// method (405 otherwise, 404 for an unknown path, 400/414/431/505 for a malformed request).
//
// Probes always get through: when every slot is busy, a new connection takes the slot of the
// oldest one lingering after its answer, else of the oldest one that has not sent a complete
// request yet (silent and slowloris clients), else of the oldest one whose answer is not taken
// yet (reset). Only when every slot waits for the workers' /healthz answers (bounded by
// health_timeout) is the newcomer closed at once. A new connection is read as soon as it is
// accepted, and only the oldest is dropped, so a client that sends its request with the connect
// (the kubelet, --health-check) keeps its slot until max_connections - 1 newer ones have come.
//
// /stats and /metrics cost O(workers): the descriptor count comes from the kernel in one stat
// call (system.hpp kernel_open_fds), never from a walk of /proc/self/fd.
//
// /healthz posts a ping to every worker's loop (at most one in flight per worker); each answers
// by posting back to this loop. 200 "ok" when all answered, 503 naming each worker that did not
// within health_timeout. /readyz is 200 until the source reports shutting down, then 503; also
// 503 while output buffers hold 3/4 of the buffer budget or more (budget_nearly_spent).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "admin/http_request.hpp"
#include "admin/stats_render.hpp"
#include "multireactor/detail/listener.hpp"
#include "multireactor/event_loop.hpp"
#include "multireactor/socket.hpp"
#include "multireactor/stats.hpp"

namespace mr {

// What the admin endpoint reports on. Every method is called on the admin loop's thread and
// must be safe there (Server's accessors are thread-safe).
class AdminSource {
 public:
  virtual ~AdminSource() = default;
  virtual unsigned worker_count() const = 0;
  virtual std::vector<WorkerStatsSnapshot> worker_stats() const = 0;
  virtual AcceptorStatsSnapshot acceptor_stats() const = 0;
  virtual bool shutting_down() const = 0;
  // The process buffer budget (0 = none reported): /readyz is 503 while it is nearly spent.
  virtual std::uint64_t buffer_budget_bytes() const { return 0; }
  // Runs `task` on worker `index`'s loop thread (a post: thread-safe).
  virtual void post_to_worker(unsigned index, EventLoop::Task task) = 0;
};

struct AdminOptions {
  std::size_t max_connections = 32;
  // The whole request head, from accept to the blank line: short, so slow clients free their
  // slot soon even when no newcomer evicts them (probes send their request at once).
  std::chrono::milliseconds request_timeout{2000};
  // TCP_DEFER_ACCEPT: the kernel hands a connection over once its first bytes have come, or after
  // this long (then it is accepted silent); 0 = off.
  std::chrono::seconds defer_accept{1};
  std::chrono::milliseconds response_timeout{5000};  // the whole answer taken by the client
  std::chrono::milliseconds health_timeout{1000};    // every worker answers the /healthz ping
  std::chrono::milliseconds linger{1000};            // reading leftovers after the answer
  HttpLimits limits;
};

class AdminServer final : private EventLoop::Handler {
 public:
  // Binds and listens on `address` (port 0 = a free port) and attaches to `loop`, on its thread
  // or before it runs; throws std::system_error.
  AdminServer(std::unique_ptr<AdminSource> source, EventLoop& loop, const SocketAddress& address,
              AdminOptions options = {});
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  void on_event(std::uint64_t key, std::uint32_t events) override;
  void on_iteration_end() override;

  using Clock = std::chrono::steady_clock;
  enum class State { kReading, kAwaitingHealth, kWriting, kLingering };

  struct Connection {
    int fd = -1;
    std::uint32_t generation = 0;
    State state = State::kReading;
    std::uint32_t interest = 0;
    Clock::time_point deadline{};
    std::uint64_t accepted = 0;  // accept sequence number: smaller is older
    std::unique_ptr<char[]> in;  // limits.max_head_bytes
    std::size_t in_size = 0;
    std::string out;
    std::size_t out_sent = 0;
    std::vector<bool> worker_answered;  // kAwaitingHealth
    unsigned workers_missing = 0;
  };

  std::uint64_t key_of(std::size_t slot) const;
  Connection* find(std::uint64_t key);
  Connection* slot_for_new_connection();
  void accept_all();
  void on_readable(Connection& c);
  void on_writable(Connection& c);
  void linger_read(Connection& c);
  void route(Connection& c, const HttpRequest& request);
  void start_health_check(Connection& c);
  void on_pong(unsigned worker);
  void respond(Connection& c, int status, std::string_view content_type, std::string_view body,
               std::string_view extra_headers = {});
  void set_interest(Connection& c, std::uint32_t interest);
  void close_connection(Connection& c, bool abort = false);
  void on_timer();
  void rearm_timer();
  void pause_accepting();

  std::unique_ptr<AdminSource> source_;
  EventLoop& loop_;
  const AdminOptions options_;
  Listener listener_;  // first: if binding throws, nothing is attached to the loop yet
  EventLoop::FdHandler listen_handler_{[this](std::uint32_t) { accept_all(); }};
  EventLoop::Registration registration_;  // connections: key (generation << 32 | slot)
  EventLoop::Registration listen_registration_;
  EventLoop::TimerId timer_ = 0;
  bool timer_armed_ = false;
  std::uint16_t port_ = 0;
  std::vector<Connection> connections_;  // max_connections slots
  std::vector<bool> ping_in_flight_;     // per worker
  bool timer_dirty_ = false;
  bool accept_paused_ = false;  // accept4 failed (EMFILE, ...): retried when the timer fires
  Clock::time_point accept_resume_at_{};
  const Clock::time_point started_;
  double process_start_time_s_ = 0;
  std::uint64_t rss_at_start_bytes_ = 0;  // baseline for memory_per_connection_bytes
  // Descriptors open when the admin listener started; with the echo and admin connections open
  // now, the open_fds figure on kernels that do not count descriptors for us (before 6.2).
  std::uint64_t fds_at_start_ = 0;
  std::uint64_t accepted_ = 0;
  AdminStats stats_;
};

}  // namespace mr
