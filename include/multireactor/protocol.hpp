// What an application gives the engine: a protocol, called on its worker's thread.
//
// Contract: each worker owns one protocol object (share-nothing: no locks needed inside it), and
// calls it for the connections of that worker only. The calls are resolved at compile time (the
// Worker is a template over the protocol), so a protocol costs no virtual call per message.
//   on_open(conn)            a connection was adopted by this worker
//   on_data(conn, bytes)     bytes arrived; `bytes` is valid during the call only (it is the
//                            worker's read buffer): send(), keep or copy what you need
//   on_drained(conn)         output that had to be kept was all sent (the queue is empty again)
//   on_close(conn, reason)   the connection is closing; conn.send() does nothing any more
// None may block; a callback may call any method of the Connection handle.
#pragma once

#include <concepts>
#include <span>

#include "multireactor/connection.hpp"

namespace mr {

template <class P>
concept Protocol = requires(P& protocol, Connection& conn, std::span<const char> bytes,
                            CloseReason reason) {
  protocol.on_open(conn);
  protocol.on_data(conn, bytes);
  protocol.on_drained(conn);
  protocol.on_close(conn, reason);
};

}  // namespace mr
