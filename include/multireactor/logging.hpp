// Process-wide logging set-up (spdlog).
//
// Contract: setup_logging() installs the default logger: stderr always, plus `log_file` when
// set. It returns "" or an error line (the file cannot be opened). Logging is for start-up,
// shutdown, connection-level events at debug, and rate-limited warnings; never per message.
#pragma once

#include <string>

#include "multireactor/config.hpp"

namespace mr {

std::string setup_logging(const ServerConfig& config);

// Changes the level of the default logger ("trace".."off").
void set_log_level(const std::string& level);

}  // namespace mr
