#include "test_server.hpp"

#include <cstdio>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "admin/stats_render.hpp"

namespace mr::test {
namespace {

// spdlog builds its registry and default logger on first use, behind a guard inside the
// uninstrumented libspdlog. When two workers log for the first time at once, ThreadSanitizer
// cannot see that guard and reports a race; echo-server never meets this because it calls
// setup_logging() before any thread starts. Tests that run workers in this process get the same
// order from this initializer, which runs on the main thread before main().
[[maybe_unused]] const bool spdlog_ready = (spdlog::default_logger_raw(), true);

}  // namespace

IoBackend io_backend_under_test() {
  const char* name = std::getenv("MULTIREACTOR_TEST_IO_BACKEND");
  if (name == nullptr) return ServerConfig{}.io_backend;
  for (const auto& [mode, spelling] : kIoBackendNames) {
    if (spelling == name) return mode;
  }
  std::fprintf(stderr, "MULTIREACTOR_TEST_IO_BACKEND=%s: not auto, epoll or io_uring\n", name);
  std::abort();
}

ServerConfig loopback_config(unsigned workers) {
  ServerConfig config;
  config.bind = "127.0.0.1";
  config.port = 0;
  config.admin_port = 0;
  config.workers = workers;
  config.io_backend = io_backend_under_test();
  return config;
}

WorkerStatsSnapshot total_stats(const Server& server) {
  const auto workers = server.worker_stats();
  return aggregate(workers);
}

std::string describe_stats(const Server& server) {
  std::string text = "acceptor: " + format_acceptor_fields(server.acceptor_stats());
  const auto workers = server.worker_stats();
  for (std::size_t w = 0; w < workers.size(); ++w) {
    text += "\nworker ";
    text += std::to_string(w);
    text += ": ";
    text += format_worker_fields(workers[w]);
  }
  return text;
}

bool wait_for_stats(const Server& server,
                    const std::function<bool(const WorkerStatsSnapshot&,
                                             const std::vector<WorkerStatsSnapshot>&)>& condition,
                    const Deadline& deadline) {
  return wait_until(
      [&] {
        const auto workers = server.worker_stats();
        return condition(aggregate(workers), workers);
      },
      deadline);
}

}  // namespace mr::test
