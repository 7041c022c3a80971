#include "bench_report.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

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
  if (r.started_late_s > 0) {
    out += fmt::format("{:<12}--start-at had passed {:.3f} s before the connections were open\n",
                       "late", r.started_late_s);
  }
  if (r.processes > 1) out += fmt::format("{:<12}{} processes, merged\n", "processes", r.processes);
  if (!r.merged_from.empty()) {
    out += fmt::format("{:<12}{} runs merged:", "merged", r.merged_from.size());
    for (const auto& f : r.merged_from)
      out += " " + f;
    out += "\n";
  }
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
  if (r.sweep.requested) {
    const RateSweep& w = r.sweep;
    out += fmt::format("{:<12}{:>12} {:>12} {:>10} {:>10} {:>14}  SLO p99 <= {} ms\n", "sweep",
                       "rate/s", "msg/s", "p50 ms", "p99 ms", "uncorrected", w.slo_p99_ms);
    for (const RateStep& step : w.steps) {
      out += fmt::format("{:<12}{:>12} {:>12} {:>10} {:>10} {:>14}  {}\n", "",
                         grouped(static_cast<std::uint64_t>(step.rate)),
                         grouped(static_cast<std::uint64_t>(step.messages_per_s)), ms(step.p50_ns),
                         ms(step.p99_ns), ms(step.p99_uncorrected_ns),
                         step.meets_slo ? "meets" : (step.errors > 0 ? "errors" : "misses"));
    }
    out += w.found ? fmt::format("{:<12}{} msg/s: the highest rate whose p99 meets the SLO\n",
                                 "knee", grouped(static_cast<std::uint64_t>(w.knee_rate)))
                   : fmt::format("{:<12}none: even {} msg/s misses the SLO\n", "knee",
                                 grouped(static_cast<std::uint64_t>(w.from)));
  }
  out += fmt::format("{:<12}{}\n", "result", r.clean() ? "clean" : "FAILED (see errors)");
  return out;
}

}  // namespace mr::bench
