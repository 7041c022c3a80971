// SIGHUP: what a running server takes from its configuration without a restart.
//
// Contract: plan_config_reload() compares the running configuration with a freshly parsed one;
// only log_level is applied live, every other option that differs is reported as needing a
// restart ("workers: 2 -> 4"). reload_config() is the SIGHUP action of echo-server: it reopens
// the log file, parses the same command line and environment again with the config file read
// anew (so precedence is unchanged: file < environment < command line), applies the plan and
// logs what it did. A config file that no longer parses changes nothing and is logged as an error.
// Both run on the control thread.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace mr {

struct ConfigReload {
  bool log_level_changed = false;
  std::string log_level;                   // the level from now on
  std::vector<std::string> needs_restart;  // "name: old -> new", in option-table order
  std::string error;                       // the parse error, when the reload was refused
};

ConfigReload plan_config_reload(const ServerConfig& running, const ServerConfig& fresh);

// Updates running.log_level when it changed; returns what was done.
ConfigReload reload_config(int argc, const char* const* argv, const char* const* envp,
                           ServerConfig& running);

}  // namespace mr
