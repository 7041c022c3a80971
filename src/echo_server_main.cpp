// echo-server: parses the configuration, starts the Server, and turns signals into actions.
//
// The main thread is the control thread: it blocks the signals it handles before any other
// thread starts (so every thread inherits the mask) and takes them with sigtimedwait, which also
// paces the periodic stats line. SIGPIPE is ignored: a peer that went away is an error on one
// connection, never the end of the process.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>

#include <spdlog/spdlog.h>

#include "multireactor/config.hpp"
#include "multireactor/logging.hpp"
#include "multireactor/server.hpp"
#include "multireactor/stats.hpp"
#include "multireactor/system.hpp"

extern char** environ;

namespace {

void log_final_stats(const mr::Server& server) {
  const auto workers = server.worker_stats();
  const auto total = mr::aggregate(workers);
  const auto acceptor = server.acceptor_stats();
  spdlog::info("final stats: {} | accept_errors={} rejected={}",
               mr::format_stats_line(total, workers), acceptor.accept_errors,
               acceptor.connections_rejected);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    const auto& w = workers[i];
    spdlog::info(
        "final stats worker {}: accepted={} closed={} bytes_in={} bytes_out={} reads={} "
        "writes={} wakeups={} loops={} pauses={} errors={}",
        i, w.connections_accepted, w.connections_closed, w.bytes_received, w.bytes_sent, w.reads,
        w.writes, w.wakeups, w.loop_iterations, w.backpressure_pauses, w.errors);
  }
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
  const mr::ServerConfig& config = outcome.config;
  if (std::string error = mr::setup_logging(config); !error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }

  signal(SIGPIPE, SIG_IGN);
  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&handled, sig);
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);

  const mr::FileLimit limit = mr::raise_file_limit();
  mr::Server server(config);
  try {
    server.start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  spdlog::info(
      "echo-server {} listening on {}:{} workers={} max_connections={} high_water_mark={} "
      "nofile soft={} (was {}) hard={}",
      mr::version_string(), config.bind, server.port(), server.worker_count(),
      config.max_connections, config.high_water_mark, limit.soft, limit.soft_before, limit.hard);

  for (;;) {
    timespec wait{};
    wait.tv_sec = config.stats_interval_s > 0 ? config.stats_interval_s : 3600;
    int sig = sigtimedwait(&handled, nullptr, &wait);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("signal {}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (sig < 0 && errno == EAGAIN && config.stats_interval_s > 0) {
      const auto workers = server.worker_stats();
      spdlog::info("stats: {}", mr::format_stats_line(mr::aggregate(workers), workers));
    }
  }
  server.stop();
  log_final_stats(server);
  spdlog::info("stopped");
  return 0;
}
