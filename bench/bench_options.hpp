// echo-bench's options: what to connect to, how much load, how long, and what to report.
//
// Contract: parse_bench_options() never exits and never throws; it returns what to do — run,
// print a text and exit 0 (--help, --version), or print one error line and exit 2. An error line
// names the option, the offending value and what is allowed. Parsing is separate from running so
// the tests can pin every rule down.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mr::bench {

enum class BenchMode {
  kEcho,     // hold `connections` open and echo messages over them
  kConnect,  // connection storm: connect, one echo, close, again, on `connections` slots
};

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

struct BenchOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9999;
  std::uint64_t connections = 100;
  unsigned threads = 0;              // 0 = one per CPU this process may use
  std::size_t size = 64;             // message bytes, header included
  unsigned pipeline = 1;             // messages in flight per connection
  double duration_s = 10;            // measured part of the run
  double warmup_s = 1;               // load before measuring, not counted in latency or rates
  double rate = 0;                   // total messages/s; 0 = closed loop
  std::vector<std::string> sources;  // local addresses to bind, round-robin per connection
  double connect_rate = 0;           // connections opened per second; 0 = as fast as possible
  bool has_admin = false;
  HostPort admin;  // the server's admin endpoint, for /stats before and after
  std::string json_file;
  bool verify = true;
  BenchMode mode = BenchMode::kEcho;
  double connect_timeout_s = 10;  // a connection not established by then has failed
  double drain_timeout_s = 10;    // after the run, how long to wait for echoes still in flight
  int progress = -1;              // -1 = when stderr is a terminal, 0 = never, 1 = always
  double start_at_unix_s = 0;     // wall-clock instant the load starts (0 = when connected)
  unsigned processes = 1;         // fan the run out over this many local echo-bench processes
  double sweep_from = 0;          // --rate-sweep FROM:TO:STEP (0 = no sweep)
  double sweep_to = 0;
  double sweep_step = 0;
  double slo_p99_ms = 0;
};

struct BenchOptionsOutcome {
  enum class Action { kRun, kExitSuccess, kExitError };
  Action action = Action::kRun;
  BenchOptions options;
  std::string message;  // for kExitSuccess (stdout) or kExitError (stderr)
};

BenchOptionsOutcome parse_bench_options(int argc, const char* const* argv);

// "host:port", "[v6]:port" or ":port"/"port" (host 127.0.0.1). Returns false when malformed.
bool parse_host_port(const std::string& text, HostPort& out);

// A wall-clock instant as unix seconds: "1767225600", "1767225600.25", RFC 3339
// ("2026-01-01T00:00:00Z", "...T00:00:00.5+01:00"), or "+S" for S seconds from now.
bool parse_start_at(const std::string& text, double now_unix_s, double& out);
// CLOCK_REALTIME in seconds.
double wall_clock_s();

std::string bench_help_text();

}  // namespace mr::bench
