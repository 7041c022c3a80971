// `echo-bench merge A.json B.json ... [--json OUT]`: the reports of runs made at the same time
// (on several machines, each with --json) combined into one, exactly (report_merge.hpp).
//
// Contract: prints the merged human table on stdout and writes the merged JSON to OUT; returns
// the exit status: 0 when the merged run is clean, 1 when it is not or a file cannot be read or
// written (one line on stderr naming the file), 2 for a bad command line.
#pragma once

namespace mr::bench {

// argv[0] is the program, argv[1] "merge".
int run_merge_command(int argc, const char* const* argv);

}  // namespace mr::bench
