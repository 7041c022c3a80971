// Process-wide logging set-up (spdlog).
//
// Contract: setup_logging() installs the default logger: stderr always, plus `log_file` when set
// (a RotatingFileSink: log_file_max_bytes, log_file_count). log_format picks the record shape for
// both: `text` ("2024-05-01T12:00:00.123 info [worker-1] message", local time) or `json` (one
// object per line, see json_log_formatter.hpp). It returns "" or an error line (the file cannot
// be opened). reopen_log_file() is for SIGHUP after logrotate moved the file. Logging is for
// start-up, shutdown, connection-level events at debug, and rate-limited warnings; never per
// message.
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"

namespace mr {

std::string setup_logging(const ServerConfig& config);

// Changes the level of the default logger ("trace".."off").
void set_log_level(const std::string& level);

// Closes and reopens the log file by name; "" on success or when there is no log file, else the
// error text (logging then goes on to stderr only until the next successful reopen).
std::string reopen_log_file();

// Names the calling thread in log records ("acceptor", "worker-3", ...) and, except on the main
// thread (whose kernel name is the process name), for the kernel: pthread_setname_np, first 15
// bytes, what `top -H` shows. `worker` >= 0 marks a worker thread.
void set_thread_log_name(std::string_view name, int worker = -1);
// The calling thread's log name ("" when unnamed) and worker index (-1 when not a worker).
std::string_view thread_log_name();
int thread_log_worker();

}  // namespace mr
