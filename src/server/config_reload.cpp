#include "server/config_reload.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "log/logging.hpp"

namespace mr {

ConfigReload plan_config_reload(const ServerConfig& running, const ServerConfig& fresh) {
  ConfigReload plan;
  plan.log_level = fresh.log_level;
  plan.log_level_changed = fresh.log_level != running.log_level;
  const auto before = describe(running);
  const auto after = describe(fresh);
  for (const auto& name : option_names()) {
    if (name == "log_level") continue;
    const auto old_value = before.find(name);
    const auto new_value = after.find(name);
    if (old_value == before.end() || new_value == after.end()) continue;
    if (old_value->second != new_value->second) {
      plan.needs_restart.push_back(
          fmt::format("{}: {} -> {}", name, old_value->second, new_value->second));
    }
  }
  return plan;
}

ConfigReload reload_config(int argc, const char* const* argv, const char* const* envp,
                           ServerConfig& running) {
  if (const std::string error = reopen_log_file(); !error.empty()) {
    spdlog::error("SIGHUP: cannot reopen log file {}: {}", running.log_file, error);
  } else if (!running.log_file.empty()) {
    spdlog::info("SIGHUP: log file {} reopened", running.log_file);
  }

  ConfigOutcome again = parse_server_options(argc, argv, envp);
  if (again.action == ConfigOutcome::Action::kExitError) {
    ConfigReload refused;
    refused.log_level = running.log_level;
    refused.error = again.message;
    spdlog::error("SIGHUP: configuration not reloaded: {}", again.message);
    return refused;
  }
  ConfigReload plan = plan_config_reload(running, again.config);
  if (plan.log_level_changed) {
    // Logged under the new level: raising it to warn is a request for fewer info lines.
    set_log_level(plan.log_level);
    spdlog::info("SIGHUP: log_level {} -> {}", running.log_level, plan.log_level);
    running.log_level = plan.log_level;
  }
  for (const auto& change : plan.needs_restart) {
    spdlog::warn("SIGHUP: {} changed; needs a restart (the running value stays)", change);
  }
  if (!plan.log_level_changed && plan.needs_restart.empty()) {
    spdlog::info(
        "SIGHUP: configuration re-read{}; nothing changed",
        running.config_file.empty() ? " (no config file)" : " from " + running.config_file);
  }
  return plan;
}

}  // namespace mr
