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

// Descriptors open in this process as the kernel counts them: the size Linux (6.2 and later)
// reports for the /proc/self/fd directory, a population count of the descriptor table's bitmap.
// One stat call, no directory walk, so it costs the same at 10 or 100,000 connections. 0 where
// the kernel does not report it (older kernels give the directory size 0).
std::uint64_t kernel_open_fds();

// Descriptors open in this process, counted by walking /proc/self/fd: O(descriptors). For start-up
// only (a baseline when kernel_open_fds() says 0), never per request.
std::uint64_t walk_open_fds();

struct ProcessUsage {
  std::uint64_t rss_bytes = 0;
  std::uint64_t open_fds = 0;  // kernel_open_fds(): 0 when the kernel does not tell
  double cpu_user_s = 0;
  double cpu_system_s = 0;
};
// RSS (/proc/self/statm), open descriptors (kernel_open_fds) and CPU time (getrusage): a fixed
// number of syscalls, whatever the number of connections.
ProcessUsage process_usage();

}  // namespace mr
