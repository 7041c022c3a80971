// Test helpers for an in-process mr::Server on the loopback interface.
//
// Contract: loopback_config() is a ServerConfig bound to 127.0.0.1 on a free port (port 0) with
// the admin listener off and io_backend_under_test(); the stats helpers read
// Server::worker_stats(), which is thread-safe, and wait_for_stats() polls it until a condition
// holds or the deadline passes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "multireactor/stats.hpp"
#include "server/server.hpp"
#include "test_client.hpp"

namespace mr::test {

// The I/O backend the suite runs on: MULTIREACTOR_TEST_IO_BACKEND (auto|epoll|io_uring), or the
// default (tests/CMakeLists.txt runs the network tests once as they are and once with auto).
IoBackend io_backend_under_test();
ServerConfig loopback_config(unsigned workers);

WorkerStatsSnapshot total_stats(const Server& server);

// The acceptor's counters and every worker's, one line per thread, named as in /stats: what a
// failed expectation prints so that a rare failure says where the bytes or the connection stopped.
std::string describe_stats(const Server& server);

// Polls the server's per-worker stats until `condition(total, per_worker)` holds.
bool wait_for_stats(const Server& server,
                    const std::function<bool(const WorkerStatsSnapshot&,
                                             const std::vector<WorkerStatsSnapshot>&)>& condition,
                    const Deadline& deadline);

}  // namespace mr::test
