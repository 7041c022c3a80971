// The echo protocol: every byte received is sent back, in order.
//
// Contract: stateless, so one instance per worker holds nothing. Backpressure, the buffer
// budget and partial writes are the engine's (Connection::send keeps what the kernel did not
// take and pauses reading at the high-water mark), so echo itself is one line: a slow reader
// costs memory up to the mark, never bytes.
#pragma once

#include <span>

#include "multireactor/protocol.hpp"

namespace mr {

struct EchoProtocol {
  void on_open(Connection& /*conn*/) {}
  void on_data(Connection& conn, std::span<const char> bytes) { conn.send(bytes); }
  void on_drained(Connection& /*conn*/) {}
  void on_close(Connection& /*conn*/, CloseReason /*reason*/) {}
};

static_assert(Protocol<EchoProtocol>);

}  // namespace mr
