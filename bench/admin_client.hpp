// Reads the server's /stats from its admin endpoint: one blocking HTTP GET (our own
// admin/http_client, so a static echo-bench needs no HTTP library) and the fields echo-bench
// reports (nlohmann-json).
//
// Contract: fetch_server_stats() sends one GET, reads the whole answer within `timeout_ms` in all
// (connecting, sending and reading together), and returns false with a one-line reason on any
// failure (refused, timed out, status not 200, body not the /stats JSON). Fields the server does
// not expose stay at their defaults and their has_ flag stays false. Never used on a data path:
// echo-bench calls it before connecting and after the run.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench_options.hpp"
#include "multireactor/stats.hpp"

namespace mr::bench {

// One worker's counters as /stats reports them (the server's own snapshot type, so every counter
// the server names is read), and the worker's id.
struct ServerWorkerStats : WorkerStatsSnapshot {
  std::uint64_t id = 0;
};

struct ServerStats {
  double uptime_s = 0;
  std::uint64_t workers_count = 0;
  bool has_rss = false;
  std::uint64_t rss_bytes = 0;
  std::uint64_t open_fds = 0;
  bool has_cpu = false;
  double cpu_user_s = 0;
  double cpu_system_s = 0;
  std::vector<ServerWorkerStats> workers;
};

// Parses a /stats document. Requires a `workers` array of objects.
bool parse_server_stats(std::string_view json, ServerStats& out, std::string& error);

// GET http://endpoint/stats.
bool fetch_server_stats(const HostPort& endpoint, ServerStats& out, std::string& error,
                        int timeout_ms = 5000);

}  // namespace mr::bench
