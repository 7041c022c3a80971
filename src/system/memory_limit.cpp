#include "system/memory_limit.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

namespace mr {
namespace {

// cgroup v1 writes "no limit" as a huge page-aligned number (PAGE_COUNTER_MAX pages).
constexpr std::uint64_t kNoLimitAbove = 1ULL << 60;

bool read_limit_file(const std::string& path, std::uint64_t& bytes) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return false;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value >= kNoLimitAbove) {
    return false;
  }
  bytes = value;
  return true;
}

void consider(MemoryLimit& best, std::uint64_t bytes, std::string source) {
  if (bytes == 0) return;
  if (best.bytes == 0 || bytes < best.bytes) {
    best.bytes = bytes;
    best.source = std::move(source);
  }
}

// The cgroup's limit file and those of its ancestors up to the root: a parent's limit binds too.
void consider_cgroup(MemoryLimit& best, const std::string& root, std::string dir, const char* file,
                     const char* label) {
  for (;;) {
    const std::string path = root + dir + (dir.empty() || dir.back() != '/' ? "/" : "") + file;
    std::uint64_t bytes = 0;
    if (read_limit_file(path, bytes)) consider(best, bytes, fmt::format("{} ({})", label, path));
    if (dir.empty() || dir == "/") return;
    const std::size_t slash = dir.rfind('/');
    dir = slash == 0 || slash == std::string::npos ? "/" : dir.substr(0, slash);
  }
}

void consider_rlimit(MemoryLimit& best, int resource, const char* name) {
  rlimit limit{};
  if (getrlimit(resource, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return;
  consider(best, limit.rlim_cur, name);
}

}  // namespace

MemoryLimit tightest_memory_limit(const MemoryLimitPaths& paths) {
  MemoryLimit best;
  // /proc/self/cgroup: "0::/path" (v2) or "N:memory:/path" (v1, possibly among other lines).
  std::ifstream cgroups(paths.proc_self_cgroup);
  std::string line;
  while (std::getline(cgroups, line)) {
    const std::size_t first = line.find(':');
    const std::size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string_view controllers(line.data() + first + 1, second - first - 1);
    const std::string dir = line.substr(second + 1);
    if (controllers.empty() && line.compare(0, first, "0") == 0) {
      consider_cgroup(best, paths.cgroup_root, dir, "memory.max", "cgroup v2 memory.max");
    } else {
      std::istringstream names{std::string(controllers)};
      std::string name;
      while (std::getline(names, name, ',')) {
        if (name == "memory") {
          consider_cgroup(best, paths.cgroup_root + "/memory", dir, "memory.limit_in_bytes",
                          "cgroup v1 memory.limit_in_bytes");
        }
      }
    }
  }
  consider_rlimit(best, RLIMIT_DATA, "RLIMIT_DATA");
  consider_rlimit(best, RLIMIT_AS, "RLIMIT_AS");
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_bytes = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_bytes > 0) {
    consider(best, static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_bytes),
             "physical memory");
  }
  return best;
}

}  // namespace mr
