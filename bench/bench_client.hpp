// echo-bench's driver: builds the client threads, walks the run through its phases — connect,
// warm up, measure, drain — and assembles the report.
//
// Contract: run() blocks the calling thread for the whole run and returns the report; it throws
// std::invalid_argument / std::system_error only for set-up failures (bad address, no threads),
// never for what the server does: refused connections, wrong bytes and silence are counted in
// the report. The calling thread only posts to the client threads and reads their relaxed
// counters, so a progress callback (on the calling thread, about once a second) costs the load
// nothing.
#pragma once

#include <functional>
#include <string>

#include "bench_options.hpp"
#include "bench_report.hpp"

namespace mr::bench {

struct Progress {
  double elapsed_s = 0;
  const char* phase = "";  // "connect", "warmup", "measure", "drain"
  double messages_per_s = 0;
  double mib_per_s = 0;
  std::uint64_t p99_ns = 0;  // over the measured window so far
  std::uint64_t open_connections = 0;
  std::uint64_t errors = 0;
};

class BenchClient {
 public:
  explicit BenchClient(BenchOptions options);

  std::function<void(const Progress&)> on_progress;

  BenchReport run();

 private:
  BenchOptions options_;
};

// The progress line as shown on a terminal (no newline).
std::string format_progress(const Progress& p);

}  // namespace mr::bench
