#include "report_merge.hpp"

#include <algorithm>

namespace mr::bench {

BenchReport merge_reports(const std::vector<BenchReport>& runs) {
  BenchReport merged;
  if (runs.empty()) return merged;
  merged.options = runs.front().options;
  merged.options.connections = 0;
  merged.options.rate = 0;
  merged.processes = 0;
  const ServerSide* server = nullptr;
  for (const BenchReport& r : runs) {
    merged.options.connections += r.options.connections;
    merged.options.rate += r.options.rate;
    merged.options.has_admin = merged.options.has_admin || r.options.has_admin;
    merged.threads += r.threads;
    merged.processes += r.processes;
    merged.totals += r.totals;
    merged.latency.add(r.latency);
    merged.latency_uncorrected.add(r.latency_uncorrected);
    merged.connect_latency.add(r.connect_latency);
    merged.connect_seconds = std::max(merged.connect_seconds, r.connect_seconds);
    merged.measured_seconds = std::max(merged.measured_seconds, r.measured_seconds);
    merged.started_late_s = std::max(merged.started_late_s, r.started_late_s);
    if (!r.server.requested) continue;
    // A run whose admin read failed still counts as asked; one that succeeded is preferred.
    if (server == nullptr || (r.server.ok && !server->ok) ||
        (r.server.ok == server->ok && r.server.bytes_received > server->bytes_received)) {
      server = &r.server;
    }
  }
  if (server != nullptr) merged.server = *server;
  return merged;
}

}  // namespace mr::bench
