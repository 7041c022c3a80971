// How much memory this process may use: the tightest of its cgroup's memory limit, its data and
// address-space rlimits, and the machine's physical memory. Feeds the automatic buffer budget.
//
// Contract: best effort, never throws; a source that cannot be read is skipped. Not for the data
// path (it reads /proc and /sys).
#pragma once

#include <cstdint>
#include <string>

namespace mr {

struct MemoryLimit {
  std::uint64_t bytes = 0;
  std::string source;  // e.g. "cgroup v2 memory.max (/sys/fs/cgroup/memory.max)", "RLIMIT_DATA"
};

// Where the limits are read from; tests point these at a tree of their own.
struct MemoryLimitPaths {
  std::string proc_self_cgroup = "/proc/self/cgroup";
  std::string cgroup_root = "/sys/fs/cgroup";
};

MemoryLimit tightest_memory_limit(const MemoryLimitPaths& paths = {});

}  // namespace mr
