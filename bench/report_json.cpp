#include "report_json.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hdr_encoding.hpp"

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif

namespace mr::bench {
namespace {

// ordered_json: the file keeps the order a reader expects (parameters first, clean last).
using json = nlohmann::ordered_json;

json latency_json(const LatencyHistogram& h) {
  return json{{"count", h.count()},
              {"min", h.min()},
              {"mean", h.mean()},
              {"p50", h.percentile(50)},
              {"p90", h.percentile(90)},
              {"p99", h.percentile(99)},
              {"p99_9", h.percentile(99.9)},
              {"max", h.max()},
              {"sum", h.sum()},
              {"histogram", encode_hdr_compressed(h)}};
}

// JSON has no infinity; an imbalance with an idle worker is written as null and read back so.
json finite_or_null(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

double number_or_infinity(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::numeric_limits<double>::infinity();
  return it->get<double>();
}

template <typename T>
T value_or(const json& j, const char* key, T fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->get<T>();
}

const json& member(const json& j, const char* key) {
  static const json empty = json::object();
  const auto it = j.find(key);
  return it == j.end() || !it->is_object() ? empty : *it;
}

bool read_latency(const json& j, const char* key, LatencyHistogram& out, std::string& error) {
  const json& h = member(j, key);
  const std::string encoded = value_or<std::string>(h, "histogram", "");
  if (encoded.empty()) {
    out.reset();
    return true;
  }
  std::string why;
  if (!decode_hdr_compressed(encoded, out, why)) {
    error = fmt::format("{}: {}", key, why);
    return false;
  }
  if (out.count() != value_or<std::uint64_t>(h, "count", out.count())) {
    error = fmt::format("{}: the histogram holds {} values, the report says {}", key, out.count(),
                        value_or<std::uint64_t>(h, "count", 0));
    return false;
  }
  out.set_exact_summary(value_or<std::uint64_t>(h, "min", out.min()),
                        value_or<std::uint64_t>(h, "max", out.max()),
                        value_or<std::uint64_t>(h, "sum", out.sum()));
  return true;
}

json sweep_json(const RateSweep& s) {
  json steps = json::array();
  for (const RateStep& step : s.steps) {
    steps.push_back({{"rate", step.rate},
                     {"messages_per_s", step.messages_per_s},
                     {"p50_ns", step.p50_ns},
                     {"p99_ns", step.p99_ns},
                     {"p99_uncorrected_ns", step.p99_uncorrected_ns},
                     {"errors", step.errors},
                     {"meets_slo", step.meets_slo}});
  }
  return json{{"from", s.from},
              {"to", s.to},
              {"step", s.step},
              {"slo_p99_ms", s.slo_p99_ms},
              {"knee_rate", s.found ? json(s.knee_rate) : json(nullptr)},
              {"steps", steps}};
}

}  // namespace

std::string format_report_json(const BenchReport& r) {
  const BenchOptions& o = r.options;
  json doc;
  doc["tool"] = "echo-bench";
  doc["version"] = MR_VERSION;
  doc["parameters"] = {
      {"host", o.host},
      {"port", o.port},
      {"mode", o.mode == BenchMode::kConnect ? "connect" : "echo"},
      {"connections", o.connections},
      {"threads", r.threads},
      {"size", o.size},
      {"pipeline", o.pipeline},
      {"duration_s", o.duration_s},
      {"warmup_s", o.warmup_s},
      {"rate", o.rate},
      {"sources", o.sources},
      {"connect_rate", o.connect_rate},
      {"verify", o.verify},
      {"admin",
       o.has_admin ? json(fmt::format("{}:{}", o.admin.host, o.admin.port)) : json(nullptr)},
      {"processes", r.processes},
      {"start_at", o.start_at_unix_s > 0 ? json(o.start_at_unix_s) : json(nullptr)},
  };
  doc["connect"] = {{"requested", o.connections},
                    {"opened", r.totals.connections_opened},
                    {"failed", r.totals.connect_failures},
                    {"seconds", r.connect_seconds},
                    {"latency_ns", latency_json(r.connect_latency)}};
  json throughput = {{"measured_s", r.measured_seconds},
                     {"messages_per_s", r.messages_per_second()},
                     {"mib_per_s", r.mib_per_second()},
                     {"window_messages", r.totals.window_messages},
                     {"window_bytes", r.totals.window_bytes},
                     {"storm_cycles", r.totals.storm_cycles},
                     {"window_storm_cycles", r.totals.window_storm_cycles}};
  if (o.mode == BenchMode::kConnect) throughput["connections_per_s"] = r.messages_per_second();
  doc["throughput"] = throughput;
  doc["latency_ns"] = latency_json(r.latency);
  doc["latency_from"] = o.mode == BenchMode::kConnect ? "connect"
                        : o.rate > 0                  ? "intended_send"
                                                      : "send";
  if (o.rate > 0) doc["latency_uncorrected_ns"] = latency_json(r.latency_uncorrected);
  doc["totals"] = {{"messages_sent", r.totals.messages_sent},
                   {"messages_received", r.totals.messages_received},
                   {"bytes_sent", r.totals.bytes_sent},
                   {"bytes_received", r.totals.bytes_received}};
  doc["errors"] = {
      {"total", r.errors()},
      {"connect_failures", r.totals.connect_failures},
      {"closed_by_server", r.totals.closed_by_server},
      {"mismatches", r.totals.mismatches},
      {"io_errors", r.totals.io_errors},
      {"lost_messages", r.totals.lost_messages},
      {"admin", r.server.requested && !r.server.ok ? 1 : 0},
  };
  if (!r.server.requested) {
    doc["server"] = nullptr;
  } else {
    const ServerSide& s = r.server;
    json server = {{"ok", s.ok}};
    if (!s.ok) server["error"] = s.error;
    json workers = json::array();
    for (const auto& x : s.workers) {
      workers.push_back({{"id", x.id},
                         {"connections", x.connections},
                         {"messages", x.messages},
                         {"bytes_received", x.bytes_received},
                         {"bytes_sent", x.bytes_sent},
                         {"errors", x.errors}});
    }
    server["workers"] = workers;
    server["bytes_received"] = s.bytes_received;
    server["bytes_sent"] = s.bytes_sent;
    server["messages_imbalance"] = finite_or_null(s.messages_imbalance);
    server["connections_imbalance"] = finite_or_null(s.connections_imbalance);
    if (s.has_cpu) {
      server["cpu_user_s"] = s.cpu_user_s;
      server["cpu_system_s"] = s.cpu_system_s;
      server["cpu_s"] = s.cpu_user_s + s.cpu_system_s;
    }
    if (s.has_rss) {
      server["rss_before_bytes"] = s.rss_before_bytes;
      server["rss_bytes"] = s.rss_after_bytes;
      server["rss_per_connection_bytes"] = s.rss_per_connection_bytes;
    }
    doc["server"] = server;
  }
  if (r.sweep.requested) doc["rate_sweep"] = sweep_json(r.sweep);
  if (!r.merged_from.empty()) doc["merged_from"] = r.merged_from;
  doc["clean"] = r.clean();
  return doc.dump(2) + "\n";
}

bool parse_report_json(std::string_view text, BenchReport& out, std::string& error) {
  const json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    error = "not JSON";
    return false;
  }
  if (value_or<std::string>(doc, "tool", "") != "echo-bench") {
    error = "not an echo-bench report (no \"tool\": \"echo-bench\")";
    return false;
  }
  try {
    BenchReport r;
    const json& p = member(doc, "parameters");
    BenchOptions& o = r.options;
    o.host = value_or<std::string>(p, "host", o.host);
    o.port = value_or<std::uint16_t>(p, "port", o.port);
    o.mode = value_or<std::string>(p, "mode", "echo") == "connect" ? BenchMode::kConnect
                                                                   : BenchMode::kEcho;
    o.connections = value_or<std::uint64_t>(p, "connections", 0);
    r.threads = value_or<unsigned>(p, "threads", 0);
    o.size = value_or<std::size_t>(p, "size", o.size);
    o.pipeline = value_or<unsigned>(p, "pipeline", o.pipeline);
    o.duration_s = value_or<double>(p, "duration_s", o.duration_s);
    o.warmup_s = value_or<double>(p, "warmup_s", o.warmup_s);
    o.rate = value_or<double>(p, "rate", 0);
    o.sources = value_or<std::vector<std::string>>(p, "sources", {});
    o.connect_rate = value_or<double>(p, "connect_rate", 0);
    o.verify = value_or<bool>(p, "verify", true);
    o.start_at_unix_s = value_or<double>(p, "start_at", 0);
    r.processes = value_or<unsigned>(p, "processes", 1);
    const std::string admin = value_or<std::string>(p, "admin", "");
    o.has_admin = !admin.empty() && parse_host_port(admin, o.admin);

    const json& c = member(doc, "connect");
    r.totals.connections_opened = value_or<std::uint64_t>(c, "opened", 0);
    r.totals.connect_failures = value_or<std::uint64_t>(c, "failed", 0);
    r.connect_seconds = value_or<double>(c, "seconds", 0);
    if (!read_latency(c, "latency_ns", r.connect_latency, error)) return false;

    const json& t = member(doc, "throughput");
    r.measured_seconds = value_or<double>(t, "measured_s", 0);
    r.totals.window_messages = value_or<std::uint64_t>(t, "window_messages", 0);
    r.totals.window_bytes = value_or<std::uint64_t>(t, "window_bytes", 0);
    r.totals.storm_cycles = value_or<std::uint64_t>(t, "storm_cycles", 0);
    r.totals.window_storm_cycles = value_or<std::uint64_t>(t, "window_storm_cycles", 0);

    if (!read_latency(doc, "latency_ns", r.latency, error)) return false;
    if (!read_latency(doc, "latency_uncorrected_ns", r.latency_uncorrected, error)) return false;

    const json& totals = member(doc, "totals");
    r.totals.messages_sent = value_or<std::uint64_t>(totals, "messages_sent", 0);
    r.totals.messages_received = value_or<std::uint64_t>(totals, "messages_received", 0);
    r.totals.bytes_sent = value_or<std::uint64_t>(totals, "bytes_sent", 0);
    r.totals.bytes_received = value_or<std::uint64_t>(totals, "bytes_received", 0);

    const json& e = member(doc, "errors");
    r.totals.closed_by_server = value_or<std::uint64_t>(e, "closed_by_server", 0);
    r.totals.mismatches = value_or<std::uint64_t>(e, "mismatches", 0);
    r.totals.io_errors = value_or<std::uint64_t>(e, "io_errors", 0);
    r.totals.lost_messages = value_or<std::uint64_t>(e, "lost_messages", 0);

    const auto server_it = doc.find("server");
    if (server_it != doc.end() && server_it->is_object()) {
      const json& s = *server_it;
      ServerSide& side = r.server;
      side.requested = true;
      side.ok = value_or<bool>(s, "ok", false);
      side.error = value_or<std::string>(s, "error", "");
      if (const auto w = s.find("workers"); w != s.end() && w->is_array()) {
        for (const json& x : *w) {
          ServerWorkerShare share;
          share.id = value_or<std::uint64_t>(x, "id", 0);
          share.connections = value_or<std::uint64_t>(x, "connections", 0);
          share.messages = value_or<std::uint64_t>(x, "messages", 0);
          share.bytes_received = value_or<std::uint64_t>(x, "bytes_received", 0);
          share.bytes_sent = value_or<std::uint64_t>(x, "bytes_sent", 0);
          share.errors = value_or<std::uint64_t>(x, "errors", 0);
          side.workers.push_back(share);
        }
      }
      side.bytes_received = value_or<std::uint64_t>(s, "bytes_received", 0);
      side.bytes_sent = value_or<std::uint64_t>(s, "bytes_sent", 0);
      side.messages_imbalance = number_or_infinity(s, "messages_imbalance");
      side.connections_imbalance = number_or_infinity(s, "connections_imbalance");
      side.has_cpu = s.contains("cpu_user_s");
      side.cpu_user_s = value_or<double>(s, "cpu_user_s", 0);
      side.cpu_system_s = value_or<double>(s, "cpu_system_s", 0);
      side.has_rss = s.contains("rss_bytes");
      side.rss_before_bytes = value_or<std::uint64_t>(s, "rss_before_bytes", 0);
      side.rss_after_bytes = value_or<std::uint64_t>(s, "rss_bytes", 0);
      side.rss_per_connection_bytes = value_or<double>(s, "rss_per_connection_bytes", 0);
    }
    out = std::move(r);
    return true;
  } catch (const json::exception& x) {
    error = fmt::format("a field has the wrong type: {}", x.what());
    return false;
  }
}

}  // namespace mr::bench
