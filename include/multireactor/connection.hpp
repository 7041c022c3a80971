// One echo connection's state, as its worker keeps it.
//
// Contract: a Connection lives in its worker's ConnectionTable slot and is touched only on that
// worker's thread. The epoll key of a connection is (generation << 32 | slot), so an event that
// was queued for a connection already closed (and whose slot may be in use again) carries an old
// generation and is recognised as stale. An idle connection holds no buffer memory.
#pragma once

#include <cstdint>

#include "multireactor/output_buffer.hpp"

namespace mr {

struct Connection {
  int fd = -1;
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
  std::uint32_t interest = 0;          // the epoll events currently registered
  std::uint32_t last_active_tick = 0;  // IdleWheel tick of the last byte moved either way
  // One byte of flags keeps a connection at 48 bytes.
  bool reading_paused : 1 = false;      // EPOLLIN dropped: high-water mark or overload pause
  bool overload_paused : 1 = false;     // paused by the process budget: resumes once drained
  bool waiting_for_budget : 1 = false;  // no budget left to read into: parked, EPOLLIN dropped
  bool peer_closed_write : 1 = false;   // read returned 0: send what is pending, then close
  bool ending : 1 = false;              // shutdown drain: no more reading; flush, then end
  OutputBuffer pending;                 // bytes the kernel did not take yet

  std::uint64_t key() const { return (std::uint64_t{generation} << 32) | slot; }
  bool open() const { return fd >= 0; }
};

}  // namespace mr
