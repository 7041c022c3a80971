// --rate-sweep: find the knee, the highest offered rate at which the server still meets a p99
// objective.
//
// Contract: run_rate_sweep() runs one open-loop BenchClient run per rate FROM, FROM+STEP, ... up
// to TO (each with its own connect, --warmup and --duration), and stops after the first rate that
// misses: p99 above --slo-p99, or any error. The p99 is the open-loop one, measured from each
// message's intended send time, so a server that falls behind is charged for the queue it builds
// (coordinated omission corrected); the uncorrected p99 is kept beside it on the curve. The
// report returned is the knee step's run (the first step's when none met the SLO) with the whole
// curve in `sweep`. Throws only what BenchClient::run() throws.
#pragma once

#include <functional>

#include "bench_client.hpp"
#include "bench_options.hpp"
#include "bench_report.hpp"

namespace mr::bench {

BenchReport run_rate_sweep(const BenchOptions& options,
                           const std::function<void(const Progress&)>& on_progress,
                           const std::function<void(const RateStep&)>& on_step);

}  // namespace mr::bench
