// --processes N: one run fanned out over N local echo-bench processes, for when one process'
// descriptor limit (or one process' ephemeral ports per source) is not enough.
//
// Contract: run_processes() starts N children of this same executable with the command line it
// was given plus overrides: each child holds its share of --connections, --threads and --rate
// (the remainders go to the first children), writes its JSON into a private temporary
// directory, shows no progress and starts its load at one shared --start-at (the given one, or a
// moment after all are started), so their measured windows coincide. It waits for every child,
// merges their reports with merge_reports() and removes the directory. Children's stdout goes to
// /dev/null, their stderr is ours. Returns false with a reason when a child could not be started
// or left no report; a child's unclean run is not a failure here (it shows in the merge).
#pragma once

#include <string>
#include <vector>

#include "bench_options.hpp"
#include "bench_report.hpp"

namespace mr::bench {

bool run_processes(const BenchOptions& options, const std::vector<std::string>& args,
                   BenchReport& merged, std::string& error);

}  // namespace mr::bench
