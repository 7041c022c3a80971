// echo-server: parses the configuration, starts the Server, and turns signals into actions.
//
// The main thread is the control thread: it blocks the signals it handles before any other
// thread starts (so every thread inherits the mask) and takes them with sigtimedwait, which also
// paces the periodic stats line and, once a second, the MemoryTrimmer. SIGPIPE is ignored: a peer
// that went away is an error on one connection, never the end of the process.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>

#include <spdlog/spdlog.h>

#include "admin/health_check.hpp"
#include "admin/stats_render.hpp"
#include "config/config.hpp"
#include "log/logging.hpp"
#include "multireactor/stats.hpp"
#include "server/config_reload.hpp"
#include "server/server.hpp"
#include "system/memory_trimmer.hpp"
#include "system/system.hpp"

extern char** environ;

namespace {

void log_final_stats(const mr::Server& server) {
  const auto workers = server.worker_stats();
  const auto total = mr::aggregate(workers);
  const auto acceptor = server.acceptor_stats();
  spdlog::info("final stats: {} | accept_errors={} rejected={} | drained={} cut={}",
               mr::format_stats_line(total, workers), acceptor.accept_errors,
               acceptor.connections_rejected, total.connections_drained, total.connections_cut);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    spdlog::info("final stats worker {}: {}", i, mr::format_brief_fields(workers[i]));
  }
}

// SIGUSR1: every counter of every worker, with the names /stats uses.
void log_stats_dump(const mr::Server& server) {
  const auto workers = server.worker_stats();
  spdlog::info("SIGUSR1 stats total: {} | acceptor: {}",
               mr::format_worker_fields(mr::aggregate(workers)),
               mr::format_acceptor_fields(server.acceptor_stats()));
  for (std::size_t i = 0; i < workers.size(); ++i) {
    spdlog::info("SIGUSR1 stats worker {}: {}", i, mr::format_worker_fields(workers[i]));
  }
}

// Stops accepting, lets the workers flush pending output for up to timeout_ms, then stops. A
// second SIGINT/SIGTERM while draining cuts the rest at once.
void drain_then_stop(mr::Server& server, const sigset_t& handled, std::uint64_t timeout_ms) {
  server.begin_drain(timeout_ms);
  // The workers enforce the deadline themselves; this bound only guards against a stuck one.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms) +
                       std::chrono::seconds(2);
  while (!server.drained() && std::chrono::steady_clock::now() < give_up) {
    timespec poll_interval{0, 20'000'000};
    int sig = sigtimedwait(&handled, nullptr, &poll_interval);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::warn("second signal: cutting remaining connections");
      break;
    }
  }
  server.stop();
}

}  // namespace

int main(int argc, char** argv) {
  mr::ConfigOutcome outcome = mr::parse_server_options(argc, argv, environ);
  if (outcome.action == mr::ConfigOutcome::Action::kExitError) {
    std::fprintf(stderr, "%s\n", outcome.message.c_str());
    return 2;
  }
  if (outcome.action == mr::ConfigOutcome::Action::kExitSuccess) {
    std::fputs(outcome.message.c_str(), stdout);
    return 0;
  }
  if (outcome.health_check) return mr::run_health_check(outcome.config);
  const mr::ServerConfig& config = outcome.config;
  if (std::string error = mr::setup_logging(config); !error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  mr::set_thread_log_name("main");
  if (config.io_backend == mr::IoBackend::kIoUring) {
    const mr::IoBackendChoice choice =
        mr::choose_io_backend(config.io_backend, config.io_uring_defer_taskrun);
    if (!choice.as_requested) {
      std::fprintf(stderr,
                   "io_backend = io_uring is not available here: %s (io_backend = auto would "
                   "use epoll)\n",
                   choice.reason.c_str());
      return 2;
    }
  }

  signal(SIGPIPE, SIG_IGN);
  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1})
    sigaddset(&handled, sig);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);

  const mr::FileLimit limit = mr::raise_file_limit();
  mr::MemoryTrimmer::keep_freed_memory_for_reuse();
  mr::Server server(config);
  try {
    server.start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  // The first interval starts before "listening" is logged: a client that reacts to that line
  // is counted in the first stats line.
  using Clock = std::chrono::steady_clock;
  auto interval_start = Clock::now();
  auto interval_stats = server.worker_stats();
  spdlog::info(
      "echo-server {} listening on {}:{} workers={} max_connections={} high_water_mark={} "
      "nofile soft={} (was {}) hard={}",
      mr::version_string(), config.bind, server.port(), server.worker_count(),
      config.max_connections, config.high_water_mark, limit.soft, limit.soft_before, limit.hard);
  if (server.admin_port() != 0) {
    spdlog::info("admin endpoint on {}:{} (/healthz /readyz /stats /metrics)", config.admin_bind,
                 server.admin_port());
  }

  // SIGHUP compares against this: log_level changes live, the rest is reported.
  mr::ServerConfig running = config;
  const auto interval = std::chrono::seconds(config.stats_interval_s);
  mr::MemoryTrimmer trimmer;
  for (;;) {
    // At least once a second for the trimmer, and at the end of each stats interval (signals in
    // between do not shift the interval: wait for what is left of it).
    std::chrono::nanoseconds wait_for = std::chrono::seconds(1);
    if (config.stats_interval_s > 0) {
      const auto left = std::max(Clock::duration::zero(), interval_start + interval - Clock::now());
      wait_for = std::min(wait_for, std::chrono::duration_cast<std::chrono::nanoseconds>(left));
    }
    timespec wait{};
    wait.tv_sec = static_cast<time_t>(wait_for.count() / 1'000'000'000);
    wait.tv_nsec = static_cast<long>(wait_for.count() % 1'000'000'000);
    int sig = sigtimedwait(&handled, nullptr, &wait);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("signal {}: stopping (draining for up to {} ms; a second signal exits at once)",
                   sig == SIGINT ? "SIGINT" : "SIGTERM", config.shutdown_timeout_ms);
      break;
    }
    if (sig == SIGHUP) mr::reload_config(argc, argv, environ, running);
    if (sig == SIGUSR1) log_stats_dump(server);
    trimmer.observe(mr::aggregate(server.worker_stats()).buffered_bytes);
    if (config.stats_interval_s > 0 && Clock::now() >= interval_start + interval) {
      const auto now = Clock::now();
      auto workers = server.worker_stats();
      const double seconds = std::chrono::duration<double>(now - interval_start).count();
      spdlog::info("{}", mr::format_interval_line(interval_stats, workers, seconds,
                                                  server.buffer_budget_bytes()));
      interval_start = now;
      interval_stats = std::move(workers);
    }
  }
  drain_then_stop(server, handled, config.shutdown_timeout_ms);
  log_final_stats(server);
  spdlog::info("stopped");
  return 0;
}
