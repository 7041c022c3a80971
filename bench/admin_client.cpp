#include "admin_client.hpp"

#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "admin/http_client.hpp"
#include "admin/stats_render.hpp"

namespace mr::bench {
namespace {

using nlohmann::json;

std::uint64_t u64_field(const json& object, const std::string& name) {
  const auto it = object.find(name);
  return it != object.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

}  // namespace

bool parse_server_stats(std::string_view text, ServerStats& out, std::string& error) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) {
    error = "admin: /stats is not JSON";
    return false;
  }
  const auto workers = doc.is_object() ? doc.find("workers") : doc.end();
  if (!doc.is_object() || workers == doc.end() || !workers->is_array()) {
    error = "admin: /stats has no 'workers' array";
    return false;
  }
  out = ServerStats{};
  if (const auto v = doc.find("uptime_s"); v != doc.end() && v->is_number()) {
    out.uptime_s = v->get<double>();
  }
  out.workers_count = u64_field(doc, "workers_count");
  if (const auto v = doc.find("rss_bytes"); v != doc.end() && v->is_number()) {
    out.has_rss = true;
    out.rss_bytes = v->get<std::uint64_t>();
  }
  out.open_fds = u64_field(doc, "open_fds");
  const auto user = doc.find("cpu_user_s");
  const auto sys = doc.find("cpu_system_s");
  if (user != doc.end() && sys != doc.end() && user->is_number() && sys->is_number()) {
    out.has_cpu = true;
    out.cpu_user_s = user->get<double>();
    out.cpu_system_s = sys->get<double>();
  }
  for (std::size_t i = 0; i < workers->size(); ++i) {
    const json& w = (*workers)[i];
    if (!w.is_object()) {
      error = "admin: /stats 'workers' holds something other than objects";
      return false;
    }
    ServerWorkerStats s;
    s.id = w.contains("id") ? u64_field(w, "id") : i;
    for (const auto& name : worker_field_names())
      s.*worker_field(name) = u64_field(w, std::string(name));
    out.workers.push_back(s);
  }
  if (out.workers_count == 0) out.workers_count = out.workers.size();
  return true;
}

bool fetch_server_stats(const HostPort& endpoint, ServerStats& out, std::string& error,
                        int timeout_ms) {
  const std::string host =
      endpoint.host.find(':') != std::string::npos ? "[" + endpoint.host + "]" : endpoint.host;
  const std::string where = fmt::format("{}:{}", host, endpoint.port);
  const HttpResponse response =
      http_get(endpoint.host, endpoint.port, "/stats", std::chrono::milliseconds(timeout_ms),
               HttpRead::whole_response, "Accept: application/json\r\n");
  if (!response.error.empty()) {
    error = fmt::format("admin {}: {}", where, response.error);
    return false;
  }
  if (response.status_code != 200) {
    error = fmt::format("admin {}: {}", where, response.status_line);
    return false;
  }
  return parse_server_stats(response.body, out, error);
}

}  // namespace mr::bench
