// What one echo-bench run measured, and its two renderings: the human table and the JSON file.
//
// Contract: a BenchReport is a plain value assembled by BenchClient after the run. Rates are
// over the measured window only (warm-up and drain excluded); totals cover the whole run, so they
// can be compared with the server's own byte counters. The server side is filled only with
// --admin, from /stats read before connecting and after the last echo (connections still open).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "admin_client.hpp"
#include "bench_options.hpp"
#include "client_thread.hpp"
#include "latency_histogram.hpp"

namespace mr::bench {

struct ServerWorkerShare {
  std::uint64_t id = 0;
  std::uint64_t connections = 0;     // open at the end of the run
  std::uint64_t bytes_received = 0;  // during the run
  std::uint64_t bytes_sent = 0;
  std::uint64_t messages = 0;  // bytes_received / message size
  std::uint64_t errors = 0;
};

struct ServerSide {
  bool requested = false;
  bool ok = false;
  std::string error;
  std::vector<ServerWorkerShare> workers;
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  double messages_imbalance = 1;     // max/min of the workers' messages during the run
  double connections_imbalance = 1;  // max/min of the workers' open connections
  bool has_cpu = false;
  double cpu_user_s = 0;
  double cpu_system_s = 0;
  bool has_rss = false;
  std::uint64_t rss_before_bytes = 0;
  std::uint64_t rss_after_bytes = 0;
  double rss_per_connection_bytes = 0;  // (after - before) / connections open at the end
};

// Derives the server side of a report from /stats before and after.
ServerSide summarize_server(const ServerStats& before, const ServerStats& after,
                            std::size_t message_size);

// One step of --rate-sweep and the curve they make.
struct RateStep {
  double rate = 0;  // offered messages/s
  double messages_per_s = 0;
  std::uint64_t p50_ns = 0;
  std::uint64_t p99_ns = 0;  // from each message's intended send time (coordinated omission)
  std::uint64_t p99_uncorrected_ns = 0;
  std::uint64_t errors = 0;
  bool meets_slo = false;  // clean, and p99 within --slo-p99
};

struct RateSweep {
  bool requested = false;
  double from = 0;
  double to = 0;
  double step = 0;
  double slo_p99_ms = 0;
  std::vector<RateStep> steps;
  bool found = false;
  double knee_rate = 0;  // the highest rate that met the SLO
};

struct BenchReport {
  BenchOptions options;
  unsigned threads = 0;
  ThreadTotals totals;
  LatencyHistogram latency;
  LatencyHistogram latency_uncorrected;
  LatencyHistogram connect_latency;
  double connect_seconds = 0;
  double measured_seconds = 0;
  ServerSide server;
  double started_late_s = 0;             // --start-at had passed when the connections were open
  unsigned processes = 1;                // > 1 when merged from --processes children
  std::vector<std::string> merged_from;  // `echo-bench merge`: the files combined
  RateSweep sweep;

  std::uint64_t errors() const {
    return totals.errors() + (server.requested && !server.ok ? 1 : 0);
  }
  // The exit status's rule: every connection opened, no byte wrong, no error of any kind.
  bool clean() const;
  double messages_per_second() const;
  double mib_per_second() const;  // echoed payload, one direction
};

std::string format_report_text(const BenchReport& report);

}  // namespace mr::bench
