#include "system/system.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mr {
namespace {

// Returns the CPU count a "quota period" pair allows, or 0 when unlimited / unreadable.
unsigned quota_cpus(double quota, double period) {
  if (quota <= 0 || period <= 0) return 0;
  return static_cast<unsigned>(std::max(1.0, std::ceil(quota / period)));
}

unsigned cgroup_cpu_limit() {
  // cgroup v2: "max 100000" or "200000 100000".
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  std::string quota_text;
  double period = 0;
  if (v2 >> quota_text >> period) {
    if (quota_text == "max") return 0;
    return quota_cpus(std::stod(quota_text), period);
  }
  std::ifstream quota_file("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  std::ifstream period_file("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  double quota = 0;
  if (quota_file >> quota && period_file >> period) return quota_cpus(quota, period);
  return 0;
}

}  // namespace

unsigned usable_cpu_count() {
  unsigned cpus = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = static_cast<unsigned>(CPU_COUNT(&set));
  if (cpus == 0) cpus = static_cast<unsigned>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  try {
    unsigned limit = cgroup_cpu_limit();
    if (limit != 0) cpus = std::min(cpus, limit);
  } catch (...) {
    // An unparsable cgroup file leaves the affinity answer.
  }
  return std::max(1U, cpus);
}

std::vector<int> pinning_cpus(unsigned workers) {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return {};
  for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < workers; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  if (cpus.size() < workers || usable_cpu_count() < workers) return {};
  return cpus;
}

FileLimit raise_file_limit() {
  FileLimit out;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return out;
  out.soft_before = limit.rlim_cur;
  out.hard = limit.rlim_max;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  out.soft = limit.rlim_cur;
  return out;
}

std::uint64_t kernel_open_fds() {
  struct stat fd_dir {};
  if (stat("/proc/self/fd", &fd_dir) != 0 || fd_dir.st_size <= 0) return 0;
  return static_cast<std::uint64_t>(fd_dir.st_size);
}

std::uint64_t walk_open_fds() {
  std::uint64_t open = 0;
  std::error_code error;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
       it.increment(error)) {
    ++open;
  }
  return open > 0 ? open - 1 : 0;  // the directory stream's own descriptor
}

ProcessUsage process_usage() {
  ProcessUsage u;
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size_pages = 0;
  std::uint64_t resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    u.rss_bytes = resident_pages * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  }
  u.open_fds = kernel_open_fds();
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    u.cpu_user_s = static_cast<double>(usage.ru_utime.tv_sec) + usage.ru_utime.tv_usec / 1e6;
    u.cpu_system_s = static_cast<double>(usage.ru_stime.tv_sec) + usage.ru_stime.tv_usec / 1e6;
  }
  return u;
}

}  // namespace mr
