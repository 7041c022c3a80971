#include "process_fanout.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "report_json.hpp"
#include "report_merge.hpp"
#include "system/system.hpp"

extern char** environ;  // NOLINT(readability-redundant-declaration): posix_spawn wants it

namespace mr::bench {
namespace {

// The share of `total` that child `i` of `n` gets: equal parts, the remainder to the first ones.
std::uint64_t share(std::uint64_t total, unsigned n, unsigned i) {
  return total / n + (i < total % n ? 1 : 0);
}

}  // namespace

bool run_processes(const BenchOptions& options, const std::vector<std::string>& args,
                   BenchReport& merged, std::string& error) {
  const unsigned n = options.processes;
  std::error_code no_tmp;
  std::string dir = std::filesystem::temp_directory_path(no_tmp).string() + "/echo-bench-XXXXXX";
  if (no_tmp || mkdtemp(dir.data()) == nullptr) {
    error = fmt::format("cannot create a temporary directory: {}",
                        std::system_category().message(no_tmp ? no_tmp.value() : errno));
    return false;
  }
  // One start instant for all: the one given, or a moment after the children are all started
  // (one second plus the time to open this many connections at a modest 10,000/s).
  const double start_at =
      options.start_at_unix_s > 0
          ? options.start_at_unix_s
          : wall_clock_s() + 1.0 + static_cast<double>(options.connections) / 10000.0;
  const unsigned threads_total =
      options.threads != 0 ? options.threads : std::max(n, usable_cpu_count());

  std::vector<pid_t> children;
  std::vector<std::string> files;
  for (unsigned i = 0; i < n && error.empty(); ++i) {
    const std::string file = fmt::format("{}/process-{}.json", dir, i);
    std::vector<std::string> argv{"/proc/self/exe"};
    argv.insert(argv.end(), args.begin(), args.end());
    // Options apply in order and the last value wins, so appended ones override.
    const std::vector<std::string> overrides{
        "--processes",   "1",
        "--connections", std::to_string(share(options.connections, n, i)),
        "--threads",     std::to_string(std::max<std::uint64_t>(1, share(threads_total, n, i))),
        "--rate",        fmt::format("{}", options.rate / n),
        "--json",        file,
        "--progress",    "off",
        "--start-at",    fmt::format("{:.6f}", start_at)};
    argv.insert(argv.end(), overrides.begin(), overrides.end());
    std::vector<char*> cargv;
    cargv.reserve(argv.size() + 1);
    for (auto& a : argv)
      cargv.push_back(a.data());
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      error = fmt::format("cannot start child echo-bench {}: {}", i,
                          std::system_category().message(rc));
      break;
    }
    children.push_back(pid);
    files.push_back(file);
  }
  for (const pid_t pid : children) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  std::vector<BenchReport> runs;
  for (std::size_t i = 0; i < files.size() && error.empty(); ++i) {
    std::ifstream in(files[i]);
    std::stringstream text;
    text << in.rdbuf();
    BenchReport r;
    std::string why;
    if (!in || !parse_report_json(text.str(), r, why)) {
      error = fmt::format("child echo-bench {} left no report ({})", i, !in ? "no file" : why);
      break;
    }
    runs.push_back(std::move(r));
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  if (!error.empty()) return false;
  merged = merge_reports(runs);
  merged.options.threads = options.threads;
  merged.options.json_file = options.json_file;
  merged.options.processes = n;
  merged.options.start_at_unix_s = start_at;
  return true;
}

}  // namespace mr::bench
