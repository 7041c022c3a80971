// echo-bench: the load generator for echo servers, built on the multireactor event loop.
//
// Prints the report on stdout (and as JSON with --json FILE), a progress line once a second on
// stderr when that is a terminal, and exits 0 only for a clean run: 1 when a connection failed,
// a byte mismatched or any error was seen, 2 for bad options. `echo-bench merge` combines the
// JSON reports of runs made together (merge_command.hpp); --processes fans one run out over
// several processes (process_fanout.hpp); --rate-sweep looks for the knee (rate_sweep.hpp).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "bench_client.hpp"
#include "bench_options.hpp"
#include "bench_report.hpp"
#include "merge_command.hpp"
#include "process_fanout.hpp"
#include "rate_sweep.hpp"
#include "report_json.hpp"
#include "system/system.hpp"

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "merge") return mr::bench::run_merge_command(argc, argv);
  const mr::bench::BenchOptionsOutcome outcome = mr::bench::parse_bench_options(argc, argv);
  if (outcome.action == mr::bench::BenchOptionsOutcome::Action::kExitError) {
    std::fprintf(stderr, "%s\n", outcome.message.c_str());
    return 2;
  }
  if (outcome.action == mr::bench::BenchOptionsOutcome::Action::kExitSuccess) {
    std::fputs(outcome.message.c_str(), stdout);
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  const mr::FileLimit limit = mr::raise_file_limit();
  const mr::bench::BenchOptions& options = outcome.options;
  if (options.connections / options.processes + 64 > limit.soft) {
    std::fprintf(stderr,
                 "echo-bench: warning: %llu connections need more descriptors than the limit "
                 "(%llu); the excess will fail to connect\n",
                 static_cast<unsigned long long>(options.connections),
                 static_cast<unsigned long long>(limit.soft));
  }

  const bool progress = options.progress == 1 || (options.progress == -1 && isatty(STDERR_FILENO));
  const bool terminal = isatty(STDERR_FILENO) != 0;
  std::function<void(const mr::bench::Progress&)> on_progress;
  if (progress) {
    on_progress = [terminal](const mr::bench::Progress& p) {
      // On a terminal the line rewrites itself; elsewhere (--progress on) one line a second.
      std::fprintf(stderr, terminal ? "\r%s\033[K" : "%s\n", mr::bench::format_progress(p).c_str());
      std::fflush(stderr);
    };
  }
  mr::bench::BenchReport report;
  try {
    if (options.processes > 1) {
      std::string error;
      if (!mr::bench::run_processes(options, std::vector<std::string>(argv + 1, argv + argc),
                                    report, error)) {
        std::fprintf(stderr, "echo-bench: %s\n", error.c_str());
        return 1;
      }
    } else if (options.sweep_from > 0) {
      report = mr::bench::run_rate_sweep(options, on_progress, [&](const mr::bench::RateStep& s) {
        if (progress && terminal) std::fputs("\r\033[K", stderr);
        std::fprintf(stderr, "echo-bench: rate %.0f/s: p99 %.3f ms (%s)\n", s.rate,
                     static_cast<double>(s.p99_ns) / 1e6, s.meets_slo ? "meets" : "misses");
      });
    } else {
      mr::bench::BenchClient client(options);
      client.on_progress = on_progress;
      report = client.run();
    }
  } catch (const std::exception& e) {
    if (progress && terminal) std::fputs("\n", stderr);
    std::fprintf(stderr, "echo-bench: %s\n", e.what());
    return 1;
  }
  if (progress && terminal) std::fputs("\r\033[K", stderr);
  std::fputs(mr::bench::format_report_text(report).c_str(), stdout);
  if (!options.json_file.empty()) {
    std::ofstream out(options.json_file);
    out << mr::bench::format_report_json(report);
    if (!out) {
      std::fprintf(stderr, "echo-bench: cannot write %s\n", options.json_file.c_str());
      return 1;
    }
  }
  return report.clean() ? 0 : 1;
}
