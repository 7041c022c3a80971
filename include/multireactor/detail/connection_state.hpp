// One connection's state, as its worker keeps it (the engine's, not a protocol's).
//
// Contract: a ConnectionState lives in its worker's ConnectionTable slot and is touched only on
// that worker's thread. The epoll key of a connection is (generation << 32 | slot), so an event
// that was queued for a connection already closed (and whose slot may be in use again) carries
// an old generation and is recognised as stale. Generations wrap within kGenerationBits so that
// a key fits the event loop's key space. An idle connection holds no buffer memory.
#pragma once

#include <cstdint>

#include "multireactor/detail/output_buffer.hpp"

namespace mr::detail {

struct ConnectionState {
  static constexpr unsigned kGenerationBits = 28;  // 32 slot bits + 28 = EventLoop::kKeyBits
  static constexpr std::uint32_t kGenerationMask = (std::uint32_t{1} << kGenerationBits) - 1;

  int fd = -1;
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
  std::uint32_t interest = 0;          // the epoll events currently registered
  std::uint32_t last_active_tick = 0;  // IdleWheel tick of the last byte moved either way
  // Four bytes of flags keep a connection at 48 bytes (they fill what would be padding).
  bool reading_paused : 1 = false;      // EPOLLIN dropped: high-water mark or overload pause
  bool overload_paused : 1 = false;     // paused by the process budget: resumes once drained
  bool waiting_for_budget : 1 = false;  // no budget left to read into: parked, EPOLLIN dropped
  bool peer_closed_write : 1 = false;   // read returned 0: send what is pending, then close
  bool ending : 1 = false;              // shutdown drain: no more reading; flush, then end
  bool protocol_paused : 1 = false;     // the protocol called pause_reading()
  bool write_shut : 1 = false;          // the protocol called shutdown_write(): FIN once drained
  // The end of a drain: our FIN is sent, the peer's input is read and dropped until its FIN.
  bool lingering : 1 = false;
  bool linger_heard : 1 = false;   // input arrived since the last linger sweep
  unsigned linger_sweeps : 3 = 0;  // sweeps survived (a peer that keeps sending is cut)
  // The io_uring backend's view of the connection's operations in the kernel.
  bool recv_live : 1 = false;         // a receive or POLLIN poll is armed (its end not seen yet)
  bool recv_cancelling : 1 = false;   // ... and a cancel for it was submitted
  bool recv_multishot : 1 = false;    // ... and it is a multishot receive (else the poll)
  bool recv_starved : 1 = false;      // the small buffers ran out: waits for one to come back
  bool recv_was_starved : 1 = false;  // ... and was re-armed, and has received nothing since
  bool recv_by_poll : 1 = false;      // a stream, or the buffers ran out again: reads as epoll
  bool send_in_flight : 1 = false;    // a send was prepared; its completion is not seen yet
  bool flush_queued : 1 = false;      // on the worker's list of sends to prepare from `pending`
  bool pollout_armed : 1 = false;     // the socket was full: a POLLOUT poll waits for room
  bool batch_receiver : 1 = false;    // counted among the last batch's receiving connections
  bool recv_large : 1 = false;        // receives into the large buffers (its messages fill small)
  unsigned small_receives : 2 = 0;    // ... and how many in a row were small (3: back to small)
  OutputBuffer pending;               // bytes the kernel did not take yet

  std::uint64_t key() const { return (std::uint64_t{generation} << 32) | slot; }
  bool open() const { return fd >= 0; }
  void next_generation() { generation = (generation + 1) & kGenerationMask; }
  void forget_uring_operations() {
    recv_live = false;
    recv_cancelling = false;
    recv_multishot = false;
    recv_starved = false;
    recv_was_starved = false;
    recv_by_poll = false;
    send_in_flight = false;
    flush_queued = false;
    pollout_armed = false;
    batch_receiver = false;
    recv_large = false;
    small_receives = 0;
  }
};

}  // namespace mr::detail
