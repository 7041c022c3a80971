// A protocol's handle on one connection, and why a connection ended.
//
// Contract: the engine passes a Connection& to each protocol callback; it is valid for that call
// only (keep id() to recognise the connection later, never the handle). Every method runs on the
// connection's worker thread, inside a callback. send() writes at once and keeps what the kernel
// did not take, in order, for when the socket is writable again; when the kept bytes reach the
// worker's high-water mark (or the process buffer budget is under pressure) the engine stops
// reading from this connection until they drain, so a peer that does not read cannot make the
// process hold unbounded memory. The budget is strict for a protocol that sends at most what it
// received (an echo, a filter); one that sends more is bounded by the high-water mark per
// connection and should pause_reading() while pending_bytes() is large. shutdown_write() sends
// a FIN after the kept bytes; close() ends the connection now and drops what is kept, and calls
// the protocol's on_close before it returns (so state that on_close frees is gone once close()
// returns, even inside on_data). After close(), the handle's other methods do nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace mr {

namespace detail {
class WorkerCore;
struct ConnectionState;
}  // namespace detail

enum class CloseReason : std::uint8_t {
  kPeerClosed,   // the peer ended its side and everything owed to it was sent
  kError,        // a socket error (reset, timeout of the kernel's own) or EPOLLERR
  kIdleTimeout,  // nothing moved either way for idle_timeout_ms
  kClosedByProtocol,
  kShutdown,  // the server drained or stopped
};

class Connection {
 public:
  // Unique among this worker's open connections (a closed one's id is never matched again).
  std::uint64_t id() const;
  int fd() const;
  bool open() const;
  // Bytes sent by the protocol that the kernel has not taken yet.
  std::size_t pending_bytes() const;

  void send(std::span<const char> bytes);
  void send(std::string_view bytes) { send(std::span<const char>(bytes.data(), bytes.size())); }
  void send(const std::string& bytes) { send(std::string_view(bytes)); }
  void shutdown_write();
  void close();
  // Stop and restart reading from this connection (independent of the engine's own pauses).
  void pause_reading();
  void resume_reading();

 private:
  friend class detail::WorkerCore;
  Connection(detail::WorkerCore& core, detail::ConnectionState& state)
      : core_(&core), state_(&state) {}
  detail::WorkerCore* core_;
  detail::ConnectionState* state_;
};

}  // namespace mr
