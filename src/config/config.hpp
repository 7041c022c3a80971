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
#include <vector>

namespace mr {

struct ServerConfig {
  std::string bind = "0.0.0.0";
  std::uint16_t port = 9999;
  unsigned workers = 0;  // 0 = the CPUs this process may use (affinity and cgroup quota)
  int backlog = 4096;
  std::uint64_t max_connections = 100000;
  std::uint64_t high_water_mark = 1024 * 1024;  // bytes of pending output per connection
  // Pending output over all connections together; 0 = automatic (half the tightest of the
  // cgroup memory limit, RLIMIT_DATA/RLIMIT_AS and physical memory).
  std::uint64_t max_buffered_bytes = 0;
  bool tcp_nodelay = true;
  // Kernel side of each echo connection (README "Kernel memory per connection").
  std::uint64_t socket_send_buffer_bytes = 0;     // SO_SNDBUF; 0 = the kernel's autotuning
  std::uint64_t socket_receive_buffer_bytes = 0;  // SO_RCVBUF; 0 = the kernel's autotuning
  // TCP keepalive: a vanished peer is dropped after idle + intvl * cnt seconds (2 min).
  bool tcp_keepalive = true;
  unsigned tcp_keepidle_s = 60;
  unsigned tcp_keepintvl_s = 10;
  unsigned tcp_keepcnt = 6;
  unsigned tcp_user_timeout_ms = 0;  // TCP_USER_TIMEOUT; 0 = off (README says why)
  std::string log_level = "info";
  std::string log_file;  // empty = stderr only
  unsigned stats_interval_s = 0;
  std::string log_format = "text";  // text | json
  std::uint64_t log_file_max_bytes = 10 * 1024 * 1024;
  unsigned log_file_count = 3;

  std::string admin_bind = "127.0.0.1";
  std::uint16_t admin_port = 9100;  // 0 = no admin listener
  // Not an option (tests, embedding): bind the admin listener to a free port whatever admin_port
  // says; Server::admin_port() tells which.
  bool admin_ephemeral_port = false;

  std::string accept_mode = "acceptor";  // acceptor | reuseport
  std::string dispatch = "round_robin";  // round_robin | least_connections (acceptor mode)
  std::string cpu_affinity = "off";      // off | auto

  std::uint64_t idle_timeout_ms = 0;  // 0 = connections may stay idle forever
  std::uint64_t shutdown_timeout_ms = 5000;

  // Tuning; the README's "Knobs" paragraph says what each one measured.
  unsigned epoll_events = 256;              // epoll_wait array size per worker
  std::uint64_t read_buffer_bytes = 65536;  // a worker's scratch: the most one read takes
  unsigned reads_per_event = 4;             // reads per readable event while each fills the buffer

  std::string config_file;  // the file the options came from, if any (re-read on SIGHUP)
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

// Renders `config` back as name -> value text (the same spelling the parser accepts).
std::map<std::string, std::string> describe(const ServerConfig& config);

// The names of every option in the table, in table order.
std::vector<std::string> option_names();

// The --help text.
std::string help_text();

// The project version, e.g. "0.1.0".
const char* version_string();

}  // namespace mr
