// Server configuration: one table of options, three sources.
//
// Contract: every option has one flat name used in all three sources — the config file
// (`name = value`, INI style, from --config FILE or MR_CONFIG), the environment (`MR_` + upper-case
// name) and the command line (`--name value`). Later sources win: file < environment < command
// line. parse_server_options() never exits and never throws: it returns what to do (run, print
// and exit 0, or print one error line and exit 2). An error line names the key, the offending
// value, where it came from and what is allowed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "multireactor/modes.hpp"

namespace mr {

// How the echo log lines are written and whether workers are pinned to CPUs. The engine's own
// modes (AcceptMode, Dispatch) are the library's enums, so the server needs no mapping for them.
enum class LogFormat : std::uint8_t { kText, kJson };
enum class CpuAffinity : std::uint8_t { kOff, kAuto };

// The one spelling of each mode value in all three sources, in --check-config and in errors.
template <typename Mode>
struct ModeName {
  Mode mode;
  std::string_view name;
};
inline constexpr ModeName<AcceptMode> kAcceptModeNames[] = {{AcceptMode::kAcceptor, "acceptor"},
                                                            {AcceptMode::kReuseport, "reuseport"}};
inline constexpr ModeName<Dispatch> kDispatchNames[] = {
    {Dispatch::kRoundRobin, "round_robin"}, {Dispatch::kLeastConnections, "least_connections"}};
inline constexpr ModeName<IoBackend> kIoBackendNames[] = {
    {IoBackend::kAuto, "auto"}, {IoBackend::kEpoll, "epoll"}, {IoBackend::kIoUring, "io_uring"}};
inline constexpr ModeName<CpuAffinity> kCpuAffinityNames[] = {{CpuAffinity::kOff, "off"},
                                                              {CpuAffinity::kAuto, "auto"}};
inline constexpr ModeName<LogFormat> kLogFormatNames[] = {{LogFormat::kText, "text"},
                                                          {LogFormat::kJson, "json"}};

// Every option, defined once: the ServerConfig field with its typed default, and (in config.cpp)
// the table row that parses, checks, describes and documents it; --help shows the default as
// describe() renders it. Columns: type, name, default, the rule for its values (a function of
// config.cpp: range, zero_or_range, flag, ip_address, text, one_of, mode), help text.
// clang-format off
#define MR_SERVER_OPTIONS(X)                                                                   \
  X(std::string, bind, "0.0.0.0", ip_address(),                                                \
    "address the echo listener binds to")                                                      \
  X(std::uint16_t, port, 9999, range(0, 65535),                                                \
    "echo port; 0 picks a free port (logged at start)")                                        \
  X(unsigned, workers, 0, range(0, 256),                                                       \
    "worker threads; 0 = one per CPU this process may use")                                    \
  X(int, backlog, 4096, range(1, 1 << 20),                                                     \
    "listen(2) backlog")                                                                       \
  X(std::uint64_t, max_connections, 100000, range(1, 10'000'000),                              \
    "connections held at once; beyond it new ones are accepted and closed")                    \
  X(std::uint64_t, high_water_mark, 1024 * 1024, range(1024, 1ULL << 30),                      \
    "bytes of pending output per connection before the server stops reading from it")          \
  X(std::uint64_t, max_buffered_bytes, 0, zero_or_range(65536, 1ULL << 40),                    \
    "process-wide bound on bytes held for pending output, all connections together; 0 = "      \
    "automatic: half the tightest of the cgroup memory limit, RLIMIT_DATA/RLIMIT_AS and "      \
    "physical memory")                                                                         \
  X(bool, tcp_nodelay, true, flag(),                                                           \
    "set TCP_NODELAY on echo connections")                                                     \
  X(std::uint64_t, socket_send_buffer_bytes, 0, zero_or_range(4096, 64ULL << 20),              \
    "SO_SNDBUF of echo connections; 0 = the kernel's autotuning (a value turns it off; the "   \
    "kernel doubles it)")                                                                      \
  X(std::uint64_t, socket_receive_buffer_bytes, 0, zero_or_range(4096, 64ULL << 20),           \
    "SO_RCVBUF of echo connections; 0 = the kernel's autotuning (a value turns it off; the "   \
    "kernel doubles it)")                                                                      \
  X(bool, tcp_keepalive, true, flag(),                                                         \
    "SO_KEEPALIVE on echo connections, so a vanished peer is found and closed")                \
  X(unsigned, tcp_keepidle_s, 60, range(1, 32767),                                             \
    "seconds of silence before the first keepalive probe")                                     \
  X(unsigned, tcp_keepintvl_s, 10, range(1, 32767),                                            \
    "seconds between keepalive probes")                                                        \
  X(unsigned, tcp_keepcnt, 6, range(1, 127),                                                   \
    "unanswered keepalive probes before the connection is dropped")                            \
  X(unsigned, tcp_user_timeout_ms, 0, range(0, 86'400'000),                                    \
    "TCP_USER_TIMEOUT: drop a connection whose sent data stays unacknowledged (or whose peer " \
    "keeps its window closed) this long; 0 = the kernel's default (off)")                      \
  X(std::string, log_level, "info",                                                            \
    one_of({"trace", "debug", "info", "warn", "error", "critical", "off"}),                    \
    "trace|debug|info|warn|error|critical|off")                                                \
  X(std::string, log_file, "", text(),                                                         \
    "also log to this file (empty = stderr only)")                                             \
  X(unsigned, stats_interval_s, 0, range(0, 86400),                                            \
    "seconds between aggregated stats log lines; 0 = off")                                     \
  X(LogFormat, log_format, LogFormat::kText, mode(kLogFormatNames),                            \
    "text|json (json: one object per line)")                                                   \
  X(std::uint64_t, log_file_max_bytes, 10 * 1024 * 1024, range(4096, 1ULL << 40),              \
    "rotate log_file when it reaches this size")                                               \
  X(unsigned, log_file_count, 3, range(1, 1000),                                               \
    "rotated log files kept besides the current one")                                          \
  X(std::string, admin_bind, "127.0.0.1", ip_address(),                                        \
    "address of the admin HTTP listener (/healthz, /stats, ...)")                              \
  X(std::uint16_t, admin_port, 9100, range(0, 65535),                                          \
    "admin HTTP port; 0 = no admin listener")                                                  \
  X(AcceptMode, accept_mode, AcceptMode::kAcceptor, mode(kAcceptModeNames),                    \
    "acceptor: one acceptor thread deals connections to the workers; reuseport: each worker "  \
    "accepts on its own SO_REUSEPORT socket")                                                  \
  X(Dispatch, dispatch, Dispatch::kRoundRobin, mode(kDispatchNames),                           \
    "how the acceptor picks a worker: round_robin|least_connections")                          \
  X(CpuAffinity, cpu_affinity, CpuAffinity::kOff, mode(kCpuAffinityNames),                     \
    "off|auto (auto: pin worker i to the i-th usable CPU, unless there are fewer CPUs than "   \
    "workers)")                                                                                \
  X(std::uint64_t, idle_timeout_ms, 0, range(0, 86'400'000),                                   \
    "close a connection idle this long in both directions; 0 = off")                           \
  X(std::uint64_t, shutdown_timeout_ms, 5000, range(0, 3'600'000),                             \
    "on SIGTERM, how long workers may flush pending output before closing the rest")           \
  X(unsigned, epoll_events, 256, range(1, 65536),                                              \
    "events one epoll_wait call of a worker can return")                                       \
  X(std::uint64_t, read_buffer_bytes, 65536, range(1024, 64ULL << 20),                         \
    "a worker's read buffer (shared by its connections): the most one read takes")             \
  X(unsigned, reads_per_event, 4, range(1, 64),                                                \
    "reads per readable event, continuing only while each read fills the read buffer")        \
  X(IoBackend, io_backend, IoBackend::kAuto,  mode(kIoBackendNames),                           \
    "epoll|io_uring|auto: how workers do socket I/O (auto: io_uring when the kernel and the "  \
    "seccomp profile allow it, else epoll)")                                                   \
  X(unsigned, io_uring_buffers, 256, range(2, 32768),                                          \
    "io_uring: provided receive buffers per worker (rounded up to a power of two), each "      \
    "min(read_buffer_bytes, 4096) bytes, plus as many bytes again in buffers of "              \
    "min(read_buffer_bytes, 16384) for connections whose messages fill a small one; "          \
    "multishot receives need one ring's bytes to fit under high_water_mark")                   \
  X(unsigned, io_uring_batch, 32, range(1, 4096),                                              \
    "io_uring: most receives one wait collects before returning; 1 = no batching")             \
  X(unsigned, io_uring_batch_timeout_us, 100, range(1, 1'000'000),                             \
    "io_uring: the longest a batched wait blocks for its batch (added latency at most)")       \
  X(bool, io_uring_defer_taskrun, true, flag(),                                                \
    "io_uring: IORING_SETUP_DEFER_TASKRUN when the kernel has it")
// clang-format on

struct ServerConfig {
  // One field per option of MR_SERVER_OPTIONS, initialised to its default.
#define MR_OPTION_FIELD(type, name, default_value, ...) type name = default_value;
  MR_SERVER_OPTIONS(MR_OPTION_FIELD)
#undef MR_OPTION_FIELD

  // Not options (tests, embedding): bind the admin listener to a free port whatever admin_port
  // says (Server::admin_port() tells which); the file the options came from, if any (re-read on
  // SIGHUP).
  bool admin_ephemeral_port = false;
  std::string config_file;
};

struct ConfigOutcome {
  enum class Action { kRun, kExitSuccess, kExitError };
  Action action = Action::kRun;
  ServerConfig config;
  bool check_only = false;  // --check-config: validate, print a line, exit 0
  std::string message;      // text to print for kExitSuccess (stdout) / kExitError (stderr)
  // --health-check: GET /healthz on the admin port of this configuration, exit 0 or 1.
  bool health_check = false;
};

// Parses argv and envp (a null-terminated `NAME=value` array, as `environ`).
ConfigOutcome parse_server_options(int argc, const char* const* argv, const char* const* envp);

// Reads only the config file `path` into name -> value (for SIGHUP). Returns false and sets
// `error` (one line naming the path) when it is missing, unreadable or not a regular file (a
// directory, a FIFO, a device), has a malformed line or an unknown key, or sets one key twice
// (both line numbers named: an error, not last-one-wins).
bool read_config_file(const std::string& path, std::map<std::string, std::string>& values,
                      std::string& error);

// Applies one `name = value` to `config`. Returns "" or the error line.
std::string apply_option(ServerConfig& config, const std::string& name, const std::string& value,
                         const std::string& source);

// The spelling of a mode value, as the parser accepts it.
std::string_view to_string(AcceptMode mode);
std::string_view to_string(Dispatch mode);
std::string_view to_string(IoBackend mode);
std::string_view to_string(CpuAffinity mode);
std::string_view to_string(LogFormat mode);

// Renders `config` back as name -> value text (the same spelling the parser accepts).
std::map<std::string, std::string> describe(const ServerConfig& config);

// The names of every option in the table, in table order.
std::vector<std::string> option_names();

// The --help text.
std::string help_text();

// The project version, e.g. "0.1.0".
const char* version_string();

}  // namespace mr
