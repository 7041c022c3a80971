// The echo server's engine, compiled once here rather than in every file that includes it.
#include "echo/echo_reactor.hpp"

namespace mr {

template class Worker<EchoProtocol>;
template class Reactor<EchoProtocol>;

}  // namespace mr
