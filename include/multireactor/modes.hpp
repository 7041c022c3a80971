// The engine's modes, as values: how connections reach workers and how the acceptor picks one.
//
// Contract: plain enums with no behaviour, so a configuration layer can hold them without
// including the engine (ReactorOptions in reactor.hpp uses them).
#pragma once

#include <cstdint>

namespace mr {

// kAcceptor: one acceptor thread hands connections to the workers; kReuseport: each worker
// accepts on its own SO_REUSEPORT socket.
enum class AcceptMode : std::uint8_t { kAcceptor, kReuseport };
// How the acceptor picks a worker for a new connection.
enum class Dispatch : std::uint8_t { kRoundRobin, kLeastConnections };

}  // namespace mr
