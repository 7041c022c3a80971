#include "admin/stats_render.hpp"

#include <iterator>

#include <fmt/format.h>

#include "config/config.hpp"

namespace mr {
namespace {

// The worker counters come from MR_WORKER_COUNTERS (multireactor/stats.hpp); the acceptor's and
// the admin endpoint's own few are listed here, where they are rendered.
using Kind = CounterKind;

struct AcceptorField {
  const char* name;
  std::uint64_t AcceptorStatsSnapshot::*member;
  const char* metric;
  const char* help;
};

using A = AcceptorStatsSnapshot;
constexpr AcceptorField kAcceptorFields[] = {
    {"accept_errors", &A::accept_errors, "accept_errors_total",
     "accept4 failures other than EAGAIN (EMFILE, ENFILE, ENOBUFS, ...)."},
    {"connections_rejected", &A::connections_rejected, "connections_rejected_total",
     "Connections accepted and closed at once: max_connections reached or no descriptor left."},
    {"accept_batches", &A::accept_batches, "accept_batches_total",
     "Listen-socket wake-ups of the acceptor that accepted at least one connection."},
    {"handoffs", &A::handoffs, "handoffs_total",
     "Connections handed from the acceptor to workers."},
};

struct AdminField {
  const char* name;  // key in the /stats "admin" object
  std::uint64_t AdminStats::*member;
  const char* metric;  // after multireactor_admin_
  const char* help;
};

constexpr AdminField kAdminFields[] = {
    {"connections_evicted", &AdminStats::connections_evicted, "connections_evicted_total",
     "Admin connections dropped before their answer (request unfinished or answer not taken) "
     "to make room for a new one."},
    {"connections_refused", &AdminStats::connections_refused, "connections_refused_total",
     "Admin connections closed at once because no slot could be freed."},
    {"request_timeouts", &AdminStats::request_timeouts, "request_timeouts_total",
     "Admin connections whose request head did not arrive within the request timeout."},
};

// Label values and HELP text: escape what the exposition format requires.
std::string escape_label(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string compiler_name() {
#if defined(__clang__)
  return fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("gcc {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

void family(std::string& out, std::string_view name, Kind kind, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                 kind == Kind::kCounter ? "counter" : "gauge");
}

void append_fields_json(std::string& out, const WorkerStatsSnapshot& s) {
  bool first = true;
  for (const auto& f : kWorkerCounters) {
    fmt::format_to(std::back_inserter(out), "{}\"{}\":{}", first ? "" : ",", f.name, s.*f.member);
    first = false;
  }
}

std::uint64_t delta(std::uint64_t after, std::uint64_t before) {
  return after >= before ? after - before : 0;
}

}  // namespace

std::vector<std::string> worker_field_names() {
  std::vector<std::string> names;
  for (const auto& f : kWorkerCounters)
    names.emplace_back(f.name);
  return names;
}

std::uint64_t WorkerStatsSnapshot::*worker_field(std::string_view name) {
  for (const auto& f : kWorkerCounters) {
    if (name == f.name) return f.member;
  }
  return nullptr;
}

namespace {
// Resident memory the server gained since it started, per open connection: what holding one
// more connection costs (an idle one owns only its slot). 0 with no connection open.
std::uint64_t memory_per_connection(const StatsReport& r) {
  std::uint64_t active = 0;
  for (const auto& w : r.workers)
    active += w.connections_active;
  if (active == 0 || r.process.rss_bytes <= r.rss_at_start_bytes) return 0;
  return (r.process.rss_bytes - r.rss_at_start_bytes) / active;
}
}  // namespace

std::string render_stats_json(const StatsReport& r) {
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "{{\"version\":\"{}\",\"ready\":{},\"uptime_s\":{:.3f},\"workers_count\":{},"
                 "\"rss_bytes\":{},\"open_fds\":{},\"max_fds\":{},\"cpu_user_s\":{:.6f},"
                 "\"cpu_system_s\":{:.6f},\"process_start_time_s\":{:.3f},"
                 "\"rss_at_start_bytes\":{},\"memory_per_connection_bytes\":{},"
                 "\"buffer_budget_bytes\":{},",
                 version_string(), r.ready ? "true" : "false", r.uptime_s, r.workers.size(),
                 r.process.rss_bytes, r.process.open_fds, r.max_fds, r.process.cpu_user_s,
                 r.process.cpu_system_s, r.process_start_time_s, r.rss_at_start_bytes,
                 memory_per_connection(r), r.buffer_budget_bytes);
  out += "\"acceptor\":{";
  bool first = true;
  for (const auto& f : kAcceptorFields) {
    fmt::format_to(it, "{}\"{}\":{}", first ? "" : ",", f.name, r.acceptor.*f.member);
    first = false;
  }
  out += "},\"admin\":{";
  first = true;
  for (const auto& f : kAdminFields) {
    fmt::format_to(it, "{}\"{}\":{}", first ? "" : ",", f.name, r.admin.*f.member);
    first = false;
  }
  out += "},\"workers\":[";
  for (std::size_t i = 0; i < r.workers.size(); ++i) {
    fmt::format_to(it, "{}{{\"id\":{},", i == 0 ? "" : ",", i);
    append_fields_json(out, r.workers[i]);
    out += '}';
  }
  out += "],\"total\":{";
  append_fields_json(out, aggregate(r.workers));
  out += "}}\n";
  return out;
}

std::string render_prometheus(const StatsReport& r) {
  std::string out;
  out.reserve(4096 + r.workers.size() * 1024);
  auto it = std::back_inserter(out);
  for (const auto& f : kWorkerCounters) {
    const std::string name = fmt::format("multireactor_{}", f.metric);
    family(out, name, f.kind, f.help);
    for (std::size_t i = 0; i < r.workers.size(); ++i) {
      fmt::format_to(it, "{}{{worker=\"{}\"}} {}\n", name, i, r.workers[i].*f.member);
    }
  }
  for (const auto& f : kAcceptorFields) {
    const std::string name = fmt::format("multireactor_{}", f.metric);
    family(out, name, Kind::kCounter, f.help);
    fmt::format_to(it, "{} {}\n", name, r.acceptor.*f.member);
  }
  for (const auto& f : kAdminFields) {
    const std::string name = fmt::format("multireactor_admin_{}", f.metric);
    family(out, name, Kind::kCounter, f.help);
    fmt::format_to(it, "{} {}\n", name, r.admin.*f.member);
  }
  family(out, "multireactor_workers", Kind::kGauge, "Worker threads (event loops) serving echo.");
  fmt::format_to(it, "multireactor_workers {}\n", r.workers.size());
  family(out, "multireactor_ready", Kind::kGauge,
         "1 while the server accepts connections, 0 once it is shutting down.");
  fmt::format_to(it, "multireactor_ready {}\n", r.ready ? 1 : 0);
  family(out, "multireactor_buffer_budget_bytes", Kind::kGauge,
         "max_buffered_bytes in force: the most all output buffers together may hold.");
  fmt::format_to(it, "multireactor_buffer_budget_bytes {}\n", r.buffer_budget_bytes);
  family(out, "multireactor_build_info", Kind::kGauge,
         "Always 1; the labels say which build is running.");
  fmt::format_to(it, "multireactor_build_info{{version=\"{}\",compiler=\"{}\"}} 1\n",
                 escape_label(version_string()), escape_label(compiler_name()));

  family(out, "multireactor_memory_per_connection_bytes", Kind::kGauge,
         "Resident memory gained since start, per open connection.");
  fmt::format_to(it, "multireactor_memory_per_connection_bytes {}\n", memory_per_connection(r));
  family(out, "process_resident_memory_bytes", Kind::kGauge, "Resident memory size in bytes.");
  fmt::format_to(it, "process_resident_memory_bytes {}\n", r.process.rss_bytes);
  family(out, "process_open_fds", Kind::kGauge,
         "Number of open file descriptors (the kernel's count; see README).");
  fmt::format_to(it, "process_open_fds {}\n", r.process.open_fds);
  family(out, "process_max_fds", Kind::kGauge, "Maximum number of open file descriptors.");
  fmt::format_to(it, "process_max_fds {}\n", r.max_fds);
  family(out, "process_cpu_seconds_total", Kind::kCounter,
         "Total user and system CPU time spent in seconds.");
  fmt::format_to(it, "process_cpu_seconds_total {:.6f}\n",
                 r.process.cpu_user_s + r.process.cpu_system_s);
  family(out, "process_start_time_seconds", Kind::kGauge,
         "Start time of the process since unix epoch in seconds.");
  fmt::format_to(it, "process_start_time_seconds {:.3f}\n", r.process_start_time_s);
  return out;
}

std::string format_worker_fields(const WorkerStatsSnapshot& s) {
  std::string out;
  for (const auto& f : kWorkerCounters) {
    fmt::format_to(std::back_inserter(out), "{}{}={}", out.empty() ? "" : " ", f.name, s.*f.member);
  }
  return out;
}

std::string format_acceptor_fields(const AcceptorStatsSnapshot& s) {
  std::string out;
  for (const auto& f : kAcceptorFields) {
    fmt::format_to(std::back_inserter(out), "{}{}={}", out.empty() ? "" : " ", f.name, s.*f.member);
  }
  return out;
}

std::string format_interval_line(std::span<const WorkerStatsSnapshot> before,
                                 std::span<const WorkerStatsSnapshot> after, double seconds,
                                 std::uint64_t buffer_budget_bytes) {
  const WorkerStatsSnapshot b = aggregate(before);
  const WorkerStatsSnapshot a = aggregate(after);
  const double per_second = seconds > 0 ? 1.0 / seconds : 0.0;
  constexpr double kMiB = 1024.0 * 1024.0;
  std::string per_worker;
  for (const auto& w : after) {
    fmt::format_to(std::back_inserter(per_worker), "{}{}", per_worker.empty() ? "" : ",",
                   w.connections_active);
  }
  std::string buffered;
  if (buffer_budget_bytes > 0) {
    buffered = fmt::format(" | buffered {:.1f} of {:.1f} MiB, overload_pauses +{}",
                           static_cast<double>(a.buffered_bytes) / kMiB,
                           static_cast<double>(buffer_budget_bytes) / kMiB,
                           delta(a.overload_pauses, b.overload_pauses));
  }
  return fmt::format(
      "stats: {:.1f} s: connections active={} opened={} closed={} | {:.1f} msgs/s | "
      "in {:.3f} MiB/s out {:.3f} MiB/s{} | per-worker active=[{}]",
      seconds, a.connections_active, delta(a.connections_accepted, b.connections_accepted),
      delta(a.connections_closed, b.connections_closed),
      static_cast<double>(delta(a.reads, b.reads)) * per_second,
      static_cast<double>(delta(a.bytes_received, b.bytes_received)) * per_second / kMiB,
      static_cast<double>(delta(a.bytes_sent, b.bytes_sent)) * per_second / kMiB, buffered,
      per_worker);
}

}  // namespace mr
