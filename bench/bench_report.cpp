#include "bench_report.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "json.hpp"
#include "multireactor/stats.hpp"

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif

namespace mr::bench {
namespace {

std::string ms(std::uint64_t ns) {
  return fmt::format("{:.3f}", static_cast<double>(ns) / 1e6);
}

std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string ratio(double r) {
  return std::isfinite(r) ? fmt::format("{:.3f}", r) : "inf";
}

void percentiles_json(JsonWriter& w, const LatencyHistogram& h) {
  w.begin_object()
      .field("count", h.count())
      .field("min", h.min())
      .field("mean", h.mean())
      .field("p50", h.percentile(50))
      .field("p90", h.percentile(90))
      .field("p99", h.percentile(99))
      .field("p99_9", h.percentile(99.9))
      .field("max", h.max())
      .end_object();
}

std::string percentiles_line(const LatencyHistogram& h) {
  if (h.count() == 0) return "no samples";
  return fmt::format("p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {} ms  (n={})",
                     ms(h.percentile(50)), ms(h.percentile(90)), ms(h.percentile(99)),
                     ms(h.percentile(99.9)), ms(h.max()), ms(static_cast<std::uint64_t>(h.mean())),
                     grouped(h.count()));
}

}  // namespace

ServerSide summarize_server(const ServerStats& before, const ServerStats& after,
                            std::size_t message_size) {
  ServerSide s;
  s.requested = true;
  s.ok = true;
  std::vector<std::uint64_t> messages;
  std::vector<std::uint64_t> connections;
  for (std::size_t i = 0; i < after.workers.size(); ++i) {
    const ServerWorkerStats& a = after.workers[i];
    ServerWorkerStats b;
    for (const auto& candidate : before.workers) {
      if (candidate.id == a.id) b = candidate;
    }
    ServerWorkerShare share;
    share.id = a.id;
    share.connections = a.connections_active;
    share.bytes_received = a.bytes_received - std::min(a.bytes_received, b.bytes_received);
    share.bytes_sent = a.bytes_sent - std::min(a.bytes_sent, b.bytes_sent);
    share.messages = message_size > 0 ? share.bytes_received / message_size : 0;
    share.errors = a.errors - std::min(a.errors, b.errors);
    s.bytes_received += share.bytes_received;
    s.bytes_sent += share.bytes_sent;
    messages.push_back(share.messages);
    connections.push_back(share.connections);
    s.workers.push_back(share);
  }
  s.messages_imbalance = mr::imbalance(messages);
  s.connections_imbalance = mr::imbalance(connections);
  if (before.has_cpu && after.has_cpu) {
    s.has_cpu = true;
    s.cpu_user_s = after.cpu_user_s - before.cpu_user_s;
    s.cpu_system_s = after.cpu_system_s - before.cpu_system_s;
  }
  if (before.has_rss && after.has_rss) {
    s.has_rss = true;
    s.rss_before_bytes = before.rss_bytes;
    s.rss_after_bytes = after.rss_bytes;
    std::uint64_t open = 0;
    for (auto c : connections)
      open += c;
    if (open > 0) {
      s.rss_per_connection_bytes =
          (static_cast<double>(after.rss_bytes) - static_cast<double>(before.rss_bytes)) /
          static_cast<double>(open);
    }
  }
  return s;
}

bool BenchReport::clean() const {
  if (errors() != 0) return false;
  if (options.mode == BenchMode::kEcho) {
    return totals.connections_opened == options.connections &&
           totals.messages_sent == totals.messages_received;
  }
  return true;
}

double BenchReport::messages_per_second() const {
  if (measured_seconds <= 0) return 0;
  const std::uint64_t n =
      options.mode == BenchMode::kConnect ? totals.window_storm_cycles : totals.window_messages;
  return static_cast<double>(n) / measured_seconds;
}

double BenchReport::mib_per_second() const {
  if (measured_seconds <= 0) return 0;
  return static_cast<double>(totals.window_bytes) / measured_seconds / (1024.0 * 1024.0);
}

std::string format_report_text(const BenchReport& r) {
  const BenchOptions& o = r.options;
  std::string out;
  const bool storm = o.mode == BenchMode::kConnect;
  out += fmt::format(
      "echo-bench {}  {}:{}  mode={} connections={} threads={} size={} pipeline={} {} verify={}\n",
      MR_VERSION, o.host, o.port, storm ? "connect" : "echo", o.connections, r.threads, o.size,
      o.pipeline, o.rate > 0 ? fmt::format("rate={}/s (open loop)", o.rate) : "closed-loop",
      o.verify ? "on" : "off");
  if (!storm) {
    out +=
        fmt::format("{:<12}{}/{} opened in {:.2f} s ({:.0f}/s), {} failed; connect {}\n", "connect",
                    grouped(r.totals.connections_opened), grouped(o.connections), r.connect_seconds,
                    r.connect_seconds > 0 ? r.totals.connections_opened / r.connect_seconds : 0.0,
                    r.totals.connect_failures, percentiles_line(r.connect_latency));
    out += fmt::format(
        "{:<12}{} msg/s  {:.2f} MiB/s each way  (measured {:.2f} s after {:.2f} s "
        "warm-up)\n",
        "throughput", grouped(static_cast<std::uint64_t>(r.messages_per_second())),
        r.mib_per_second(), r.measured_seconds, o.warmup_s);
    out +=
        fmt::format("{:<12}{}\n", o.rate > 0 ? "latency*" : "latency", percentiles_line(r.latency));
    if (o.rate > 0) {
      out += fmt::format("{:<12}{}\n", "uncorrected", percentiles_line(r.latency_uncorrected));
      out += "            * open loop: measured from each message's intended send time\n";
    }
  } else {
    out += fmt::format("{:<12}{} connections/s (connect, one {}-byte echo, close) over {:.2f} s\n",
                       "storm", grouped(static_cast<std::uint64_t>(r.messages_per_second())),
                       o.size, r.measured_seconds);
    out += fmt::format("{:<12}{}\n", "to-echo", percentiles_line(r.latency));
    out += fmt::format("{:<12}{}\n", "connect", percentiles_line(r.connect_latency));
  }
  out += fmt::format("{:<12}messages sent {}  echoed {}  bytes sent {}  received {}\n", "totals",
                     grouped(r.totals.messages_sent), grouped(r.totals.messages_received),
                     grouped(r.totals.bytes_sent), grouped(r.totals.bytes_received));
  out += fmt::format(
      "{:<12}{} (connect {}, closed by server {}, mismatched {}, i/o {}, lost messages {}{})\n",
      "errors", r.errors(), r.totals.connect_failures, r.totals.closed_by_server,
      r.totals.mismatches, r.totals.io_errors, r.totals.lost_messages,
      r.server.requested && !r.server.ok ? ", admin 1" : "");
  if (r.server.requested) {
    if (!r.server.ok) {
      out += fmt::format("{:<12}unavailable: {}\n", "server", r.server.error);
    } else {
      const ServerSide& s = r.server;
      std::string messages;
      std::string connections;
      for (const auto& w : s.workers) {
        messages += fmt::format("{}{}", messages.empty() ? "" : " / ", grouped(w.messages));
        connections += fmt::format("{}{}", connections.empty() ? "" : " / ", w.connections);
      }
      out += fmt::format("{:<12}{} workers; messages per worker {} (imbalance {})\n", "server",
                         s.workers.size(), messages, ratio(s.messages_imbalance));
      out += fmt::format("{:<12}connections per worker {} (imbalance {}); bytes in {} out {}\n", "",
                         connections, ratio(s.connections_imbalance), grouped(s.bytes_received),
                         grouped(s.bytes_sent));
      if (s.has_cpu) {
        out += fmt::format("{:<12}cpu {:.2f} s (user {:.2f}, system {:.2f})\n", "",
                           s.cpu_user_s + s.cpu_system_s, s.cpu_user_s, s.cpu_system_s);
      }
      if (s.has_rss) {
        out += fmt::format("{:<12}rss {:.1f} MiB (was {:.1f} MiB; {:.0f} bytes per connection)\n",
                           "", s.rss_after_bytes / 1048576.0, s.rss_before_bytes / 1048576.0,
                           s.rss_per_connection_bytes);
      }
    }
  }
  out += fmt::format("{:<12}{}\n", "result", r.clean() ? "clean" : "FAILED (see errors)");
  return out;
}

std::string format_report_json(const BenchReport& r) {
  const BenchOptions& o = r.options;
  JsonWriter w;
  w.begin_object().field("tool", "echo-bench").field("version", MR_VERSION);
  w.key("parameters").begin_object();
  w.field("host", o.host).field("port", static_cast<unsigned>(o.port));
  w.field("mode", o.mode == BenchMode::kConnect ? "connect" : "echo");
  w.field("connections", o.connections).field("threads", r.threads);
  w.field("size", static_cast<std::uint64_t>(o.size)).field("pipeline", o.pipeline);
  w.field("duration_s", o.duration_s).field("warmup_s", o.warmup_s).field("rate", o.rate);
  w.key("sources").begin_array();
  for (const auto& s : o.sources)
    w.value(s);
  w.end_array();
  w.field("connect_rate", o.connect_rate).field("verify", o.verify);
  if (o.has_admin) {
    w.field("admin", fmt::format("{}:{}", o.admin.host, o.admin.port));
  } else {
    w.key("admin").null();
  }
  w.end_object();

  w.key("connect").begin_object();
  w.field("requested", o.connections).field("opened", r.totals.connections_opened);
  w.field("failed", r.totals.connect_failures).field("seconds", r.connect_seconds);
  w.key("latency_ns");
  percentiles_json(w, r.connect_latency);
  w.end_object();

  w.key("throughput").begin_object();
  w.field("measured_s", r.measured_seconds);
  w.field("messages_per_s", r.messages_per_second());
  w.field("mib_per_s", r.mib_per_second());
  w.field("window_messages", r.totals.window_messages);
  w.field("window_bytes", r.totals.window_bytes);
  if (o.mode == BenchMode::kConnect) {
    w.field("connections_per_s", r.messages_per_second());
    w.field("storm_cycles", r.totals.storm_cycles);
  }
  w.end_object();

  w.key("latency_ns");
  percentiles_json(w, r.latency);
  w.field("latency_from", o.mode == BenchMode::kConnect ? "connect"
                          : o.rate > 0                  ? "intended_send"
                                                        : "send");
  if (o.rate > 0) {
    w.key("latency_uncorrected_ns");
    percentiles_json(w, r.latency_uncorrected);
  }

  w.key("totals").begin_object();
  w.field("messages_sent", r.totals.messages_sent);
  w.field("messages_received", r.totals.messages_received);
  w.field("bytes_sent", r.totals.bytes_sent).field("bytes_received", r.totals.bytes_received);
  w.end_object();

  w.key("errors").begin_object();
  w.field("total", r.errors());
  w.field("connect_failures", r.totals.connect_failures);
  w.field("closed_by_server", r.totals.closed_by_server);
  w.field("mismatches", r.totals.mismatches);
  w.field("io_errors", r.totals.io_errors);
  w.field("lost_messages", r.totals.lost_messages);
  w.field("admin", static_cast<std::uint64_t>(r.server.requested && !r.server.ok ? 1 : 0));
  w.end_object();

  w.key("server");
  if (!r.server.requested) {
    w.null();
  } else {
    const ServerSide& s = r.server;
    w.begin_object().field("ok", s.ok);
    if (!s.ok) w.field("error", s.error);
    w.key("workers").begin_array();
    for (const auto& x : s.workers) {
      w.begin_object()
          .field("id", x.id)
          .field("connections", x.connections)
          .field("messages", x.messages)
          .field("bytes_received", x.bytes_received)
          .field("bytes_sent", x.bytes_sent)
          .field("errors", x.errors)
          .end_object();
    }
    w.end_array();
    w.field("bytes_received", s.bytes_received).field("bytes_sent", s.bytes_sent);
    w.field("messages_imbalance", s.messages_imbalance);
    w.field("connections_imbalance", s.connections_imbalance);
    if (s.has_cpu) {
      w.field("cpu_user_s", s.cpu_user_s).field("cpu_system_s", s.cpu_system_s);
      w.field("cpu_s", s.cpu_user_s + s.cpu_system_s);
    }
    if (s.has_rss) {
      w.field("rss_before_bytes", s.rss_before_bytes).field("rss_bytes", s.rss_after_bytes);
      w.field("rss_per_connection_bytes", s.rss_per_connection_bytes);
    }
    w.end_object();
  }
  w.field("clean", r.clean());
  w.end_object();
  return w.str() + "\n";
}

}  // namespace mr::bench
