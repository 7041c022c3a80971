// Test helper: an echo-server child process on 127.0.0.1, and what /proc says about a process.
//
// Contract: ServerProcess::start() runs MR_ECHO_SERVER_PATH with `--bind 127.0.0.1 --port 0
// --admin_port 0` (each one unless the caller's arguments, which follow, give it), optionally under
// `prlimit --nofile=N:N` and/or `--data=B:B` (prlimit execs the server, so pid() is the server's
// own), and waits for the "listening on ADDR:PORT" line. terminate() sends SIGTERM and waits;
// final_stats() then parses the server's "final stats" log lines. The child is killed by its PID if
// the test ends first. The /proc readers return 0 (or -1 for the limit) when the process is gone.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "test_client.hpp"

namespace mr::test {

// Counters from the server's final log lines: the per-worker ones summed over all workers
// (accepted, closed, bytes_in, bytes_out, pauses, errors, idle_timeouts, drained, cut, ...)
// plus the acceptor's accept_errors and rejected. A missing key reads as absent, not 0.
class FinalStats {
 public:
  static FinalStats parse(const std::string& log);
  bool found() const { return found_; }
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  std::uint64_t operator[](const std::string& key) const;
  std::string describe() const;

 private:
  bool found_ = false;
  std::map<std::string, std::uint64_t> values_;
};

class ServerProcess {
 public:
  // Starts the server; false (with error() set) if it cannot or does not log its port in time.
  // A non-zero `data_limit_bytes` caps its data segment (RLIMIT_DATA, soft and hard), which
  // since Linux 4.7 counts every private writable mapping: malloc's heap and mmap'd chunks.
  bool start(const std::vector<std::string>& args, unsigned nofile_limit = 0,
             std::uint64_t data_limit_bytes = 0);

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return child_.pid(); }
  const std::string& error() const { return error_; }
  ChildProcess& child() { return child_; }
  // What the server logged so far (read while waiting for its lines or its exit).
  const std::string& log() const { return child_.stderr_text(); }

  // SIGTERM, then wait for the exit.
  ChildProcess::Exit terminate(const Deadline& deadline);
  FinalStats final_stats() const { return FinalStats::parse(child_.stderr_text()); }

 private:
  ChildProcess child_;
  std::uint16_t port_ = 0;
  std::string error_;
};

// Starts `server`; records a test failure with the reason when it cannot.
[[nodiscard]] bool start_or_fail(ServerProcess& server, const std::vector<std::string>& args,
                                 unsigned nofile_limit = 0, std::uint64_t data_limit_bytes = 0);
// SIGTERM; records a test failure unless the server exits 0 before `deadline` and logs its
// final stats. Returns those stats.
FinalStats stop_cleanly(ServerProcess& server, const Deadline& deadline);

// What became of a client that sent a message and waited for its echo.
enum class EchoOutcome {
  kEchoed,    // every byte came back
  kRefused,   // the server closed or reset the connection
  kNoAnswer,  // nothing conclusive before the deadline (e.g. left waiting in the backlog)
  kWrongBytes,
};
EchoOutcome probe_echo(TestClient& client, std::string_view message, const Deadline& deadline);
const char* to_string(EchoOutcome outcome);
inline void PrintTo(EchoOutcome outcome, std::ostream* os) {
  *os << to_string(outcome);
}

// /proc/PID/status VmRSS and VmHWM (peak resident set), in bytes.
std::uint64_t rss_bytes(pid_t pid);
std::uint64_t peak_rss_bytes(pid_t pid);
// True when every thread of `pid` is stopped (state T), e.g. after SIGSTOP.
bool process_stopped(pid_t pid);
// Entries in /proc/PID/fd.
std::size_t open_fds(pid_t pid);
// utime + stime from /proc/PID/stat, in seconds.
double cpu_seconds(pid_t pid);
// The hard RLIMIT_NOFILE of `pid` from /proc/PID/limits; -1 if unknown or unlimited.
long nofile_hard_limit(pid_t pid);
// The hard RLIMIT_DATA of `pid` in bytes; -1 if unknown or unlimited.
long long data_hard_limit(pid_t pid);
// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns the new soft limit.
std::uint64_t raise_own_file_limit();

// Unread bytes in the receive queue of the IPv4 loopback socket local_port -> remote_port, from
// /proc/net/tcp; -1 if no such socket.
long receive_queue_bytes(std::uint16_t local_port, std::uint16_t remote_port);
// The local port of a connected socket.
std::uint16_t local_port_of(int fd);

}  // namespace mr::test
