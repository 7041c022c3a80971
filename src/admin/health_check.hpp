// `echo-server --health-check`: a tiny HTTP client that asks the admin endpoint of a running
// server for /healthz, so a container's HEALTHCHECK needs no curl.
//
// Contract: probe_http() never throws and never takes longer than `timeout` (connect, send and
// reading the status line together). It is healthy only on an HTTP 200 status line; refusal,
// timeout, a closed connection or any other status is unhealthy, with the reason in `detail`.
// run_health_check() probes the admin listener of `config` (wildcard binds map to loopback),
// prints one line and returns the exit status: 0 healthy, 1 not.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "config/config.hpp"

namespace mr {

struct HealthCheckResult {
  bool healthy = false;
  int status_code = 0;  // 0 when no status line was read
  std::string detail;   // the status line, or why there is none
};

HealthCheckResult probe_http(const std::string& host, std::uint16_t port, const std::string& path,
                             std::chrono::milliseconds timeout);

// The address a client on the same host uses to reach a listener bound to `bind`:
// 0.0.0.0 -> 127.0.0.1, :: -> ::1, anything else unchanged.
std::string probe_address(const std::string& bind);

inline constexpr std::chrono::milliseconds kHealthCheckTimeout{2000};

int run_health_check(const ServerConfig& config,
                     std::chrono::milliseconds timeout = kHealthCheckTimeout);

}  // namespace mr
