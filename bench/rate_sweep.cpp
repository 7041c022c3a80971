#include "rate_sweep.hpp"

#include <cmath>

namespace mr::bench {

BenchReport run_rate_sweep(const BenchOptions& options,
                           const std::function<void(const Progress&)>& on_progress,
                           const std::function<void(const RateStep&)>& on_step) {
  RateSweep sweep;
  sweep.requested = true;
  sweep.from = options.sweep_from;
  sweep.to = options.sweep_to;
  sweep.step = options.sweep_step;
  sweep.slo_p99_ms = options.slo_p99_ms;
  const auto slo_ns = static_cast<std::uint64_t>(std::llround(options.slo_p99_ms * 1e6));
  // Steps are counted, not accumulated, so 0.1-sized steps do not drift past TO.
  const auto steps = static_cast<std::uint64_t>(std::floor(
                         (options.sweep_to - options.sweep_from) / options.sweep_step + 1e-9)) +
                     1;
  BenchReport chosen;
  bool have_chosen = false;
  for (std::uint64_t i = 0; i < steps; ++i) {
    BenchOptions step_options = options;
    step_options.rate = options.sweep_from + static_cast<double>(i) * options.sweep_step;
    BenchClient client(step_options);
    client.on_progress = on_progress;
    BenchReport run = client.run();
    RateStep step;
    step.rate = step_options.rate;
    step.messages_per_s = run.messages_per_second();
    step.p50_ns = run.latency.percentile(50);
    step.p99_ns = run.latency.percentile(99);
    step.p99_uncorrected_ns = run.latency_uncorrected.percentile(99);
    step.errors = run.errors();
    step.meets_slo = run.clean() && run.latency.count() > 0 && step.p99_ns <= slo_ns;
    sweep.steps.push_back(step);
    if (on_step) on_step(step);
    if (step.meets_slo) {
      sweep.found = true;
      sweep.knee_rate = step.rate;
      chosen = std::move(run);
      have_chosen = true;
    } else {
      if (!have_chosen) chosen = std::move(run);
      break;
    }
  }
  chosen.sweep = std::move(sweep);
  return chosen;
}

}  // namespace mr::bench
