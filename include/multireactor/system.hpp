// Facts about the process and the machine it runs on, read from /proc, /sys and rlimits.
//
// Contract: every function returns a best effort answer and never throws; none is used on the
// data path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mr {

// CPUs this process may use: the affinity mask, lowered by a cgroup v2 `cpu.max` or v1 CFS quota
// (rounded up), never below 1.
unsigned usable_cpu_count();

// The CPUs to pin `workers` worker threads to, one each, in affinity-mask order; empty when the
// process may use fewer CPUs than that (pinning would stack workers on a throttled quota).
std::vector<int> pinning_cpus(unsigned workers);

struct FileLimit {
  std::uint64_t soft_before = 0;
  std::uint64_t soft = 0;
  std::uint64_t hard = 0;
};
// Raises RLIMIT_NOFILE's soft limit to the hard limit.
FileLimit raise_file_limit();

struct ProcessUsage {
  std::uint64_t rss_bytes = 0;
  std::uint64_t open_fds = 0;
  double cpu_user_s = 0;
  double cpu_system_s = 0;
};
ProcessUsage process_usage();

}  // namespace mr
