#include "admin/health_check.hpp"

#include <cstdio>

#include <fmt/format.h>

#include "admin/http_client.hpp"

namespace mr {

std::string probe_address(const std::string& bind) {
  if (bind == "0.0.0.0") return "127.0.0.1";
  if (bind == "::" || bind == "::0") return "::1";
  return bind;
}

HealthCheckResult probe_http(const std::string& host, std::uint16_t port, const std::string& path,
                             std::chrono::milliseconds timeout) {
  // Only the status line matters; a server that never finishes it is unhealthy too.
  const HttpResponse response = http_get(host, port, path, timeout, HttpRead::status_line);
  HealthCheckResult result;
  result.status_code = response.status_code;
  result.detail = response.error.empty() ? response.status_line : response.error;
  result.healthy = response.error.empty() && response.status_code == 200;
  return result;
}

int run_health_check(const ServerConfig& config, std::chrono::milliseconds timeout) {
  if (config.admin_port == 0) {
    std::fprintf(stderr, "unhealthy: the admin listener is off (admin_port = 0)\n");
    return 1;
  }
  const std::string host = probe_address(config.admin_bind);
  const HealthCheckResult r = probe_http(host, config.admin_port, "/healthz", timeout);
  const std::string url = host.find(':') == std::string::npos
                              ? fmt::format("http://{}:{}/healthz", host, config.admin_port)
                              : fmt::format("http://[{}]:{}/healthz", host, config.admin_port);
  std::FILE* out = r.healthy ? stdout : stderr;
  std::fprintf(out, "%s: GET %s: %s\n", r.healthy ? "healthy" : "unhealthy", url.c_str(),
               r.detail.c_str());
  return r.healthy ? 0 : 1;
}

}  // namespace mr
