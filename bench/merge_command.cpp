#include "merge_command.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "report_json.hpp"
#include "report_merge.hpp"

namespace mr::bench {

int run_merge_command(int argc, const char* const* argv) {
  std::vector<std::string> files;
  std::string out_file;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help") {
      std::fputs(
          "Usage: echo-bench merge A.json B.json ... [--json OUT]\n"
          "Combines the JSON reports of echo-bench runs made at the same time against one\n"
          "server: counts, bytes and errors summed, latency histograms merged (percentiles of\n"
          "all the values), the server side from the run that read /stats over the widest\n"
          "window. Prints the merged report; --json writes it as JSON.\n",
          stdout);
      return 0;
    }
    if (arg == "--json" || arg.rfind("--json=", 0) == 0) {
      if (arg == "--json" && i + 1 >= argc) {
        std::fputs("echo-bench merge: --json needs a file name\n", stderr);
        return 2;
      }
      out_file = arg == "--json" ? argv[++i] : arg.substr(7);
      continue;
    }
    if (arg.rfind("--", 0) == 0) {
      std::fprintf(stderr, "echo-bench merge: unknown option '%s'; see --help\n", arg.c_str());
      return 2;
    }
    files.push_back(arg);
  }
  if (files.empty()) {
    std::fputs("echo-bench merge: no report files given; see --help\n", stderr);
    return 2;
  }
  std::vector<BenchReport> runs;
  for (const auto& file : files) {
    std::ifstream in(file);
    if (!in) {
      std::fprintf(stderr, "echo-bench merge: cannot read %s\n", file.c_str());
      return 1;
    }
    std::stringstream text;
    text << in.rdbuf();
    BenchReport r;
    std::string error;
    if (!parse_report_json(text.str(), r, error)) {
      std::fprintf(stderr, "echo-bench merge: %s: %s\n", file.c_str(), error.c_str());
      return 1;
    }
    runs.push_back(std::move(r));
  }
  BenchReport merged = merge_reports(runs);
  merged.merged_from = files;
  std::fputs(format_report_text(merged).c_str(), stdout);
  if (!out_file.empty()) {
    std::ofstream out(out_file);
    out << format_report_json(merged);
    if (!out) {
      std::fprintf(stderr, "echo-bench merge: cannot write %s\n", out_file.c_str());
      return 1;
    }
  }
  return merged.clean() ? 0 : 1;
}

}  // namespace mr::bench
