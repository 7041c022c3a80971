// The engine instantiated for echo: Reactor<EchoProtocol> and its workers.
//
// Contract: the instantiation lives in echo_reactor.cpp (extern here), so files that use the
// echo reactor do not each compile the engine's templates.
#pragma once

#include "echo/echo_protocol.hpp"
#include "multireactor/reactor.hpp"

namespace mr {

extern template class Worker<EchoProtocol>;
extern template class Reactor<EchoProtocol>;
using EchoReactor = Reactor<EchoProtocol>;
using EchoWorker = Worker<EchoProtocol>;

}  // namespace mr
