#include "bench_options.hpp"

#include <arpa/inet.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <functional>
#include <sstream>

#include <fmt/format.h>
#include <boost/program_options.hpp>

#include "config/option_values.hpp"

#ifndef MR_VERSION
#define MR_VERSION "0.0.0"
#endif

namespace po = boost::program_options;

namespace mr::bench {
namespace {

using Setter = mr::Setter<BenchOptions>;

struct OptionSpec {
  const char* name;
  const char* default_value;
  const char* help;
  Setter set;
};

bool is_numeric_address(const std::string& text) {
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

std::string normalise_host(const std::string& host) {
  return host == "localhost" ? "127.0.0.1" : host;
}

Setter real(double BenchOptions::*field, double lo, double hi, bool lo_open) {
  return [=](BenchOptions& o, const std::string& v) -> std::string {
    double parsed = 0;
    const char* end = v.data() + v.size();
    auto [ptr, ec] = std::from_chars(v.data(), end, parsed);
    if (v.empty() || ec != std::errc() || ptr != end || !std::isfinite(parsed) ||
        (lo_open ? parsed <= lo : parsed < lo) || parsed > hi) {
      return fmt::format("a number {} {} and at most {}", lo_open ? "above" : "from", lo, hi);
    }
    o.*field = parsed;
    return "";
  };
}

const std::vector<OptionSpec>& option_table() {
  static const std::vector<OptionSpec> table = {
      {"host", "127.0.0.1", "server address (numeric IPv4/IPv6, or localhost)",
       [](BenchOptions& o, const std::string& v) -> std::string {
         if (!is_numeric_address(normalise_host(v))) return "a numeric IPv4 or IPv6 address";
         o.host = normalise_host(v);
         return "";
       }},
      {"port", "9999", "server port", integer_option(&BenchOptions::port, 1, 65535)},
      {"connections", "100", "connections held open at once (C)",
       integer_option(&BenchOptions::connections, 1, 1'000'000)},
      {"threads", "0", "client reactor threads; 0 = one per CPU this process may use",
       integer_option(&BenchOptions::threads, 0, 1024)},
      {"size", "64", "message bytes (at least 16: connection id, size, sequence number)",
       integer_option(&BenchOptions::size, 16, 64ULL << 20)},
      {"pipeline", "1", "messages in flight per connection; 1 = ping-pong",
       integer_option(&BenchOptions::pipeline, 1, 65536)},
      {"duration", "10", "measured seconds", real(&BenchOptions::duration_s, 0, 86400, true)},
      {"warmup", "1", "seconds of load before measuring",
       real(&BenchOptions::warmup_s, 0, 3600, false)},
      {"rate", "0",
       "total messages/s over all connections (open loop, latency from the intended send time); "
       "0 = closed loop, as fast as the echoes come back",
       real(&BenchOptions::rate, 0, 1e9, false)},
      {"sources", "",
       "local addresses to bind, comma or space separated, used round-robin (more source "
       "addresses = more ephemeral ports)",
       [](BenchOptions& o, const std::string& v) -> std::string {
         std::vector<std::string> list;
         std::string item;
         std::istringstream in(v);
         while (std::getline(in, item, ',')) {
           std::istringstream words(item);
           std::string word;
           while (words >> word) {
             word = normalise_host(word);
             if (!is_numeric_address(word)) return "numeric addresses (e.g. 127.0.0.2,127.0.0.3)";
             list.push_back(word);
           }
         }
         o.sources.insert(o.sources.end(), list.begin(), list.end());
         return "";
       }},
      {"connect-rate", "0", "connections opened per second; 0 = as fast as the backlog allows",
       real(&BenchOptions::connect_rate, 0, 1e7, false)},
      {"admin", "",
       "host:port of the server's admin endpoint; /stats is read before and after the run",
       [](BenchOptions& o, const std::string& v) -> std::string {
         if (v.empty()) {
           o.has_admin = false;
           return "";
         }
         if (!parse_host_port(v, o.admin)) return "host:port (e.g. 127.0.0.1:9100)";
         o.has_admin = true;
         return "";
       }},
      {"json", "", "also write the report as JSON to this file",
       [](BenchOptions& o, const std::string& v) -> std::string {
         o.json_file = v;
         return "";
       }},
      {"verify", "true", "check every echoed byte against what was sent",
       [](BenchOptions& o, const std::string& v) { return parse_bool(v, o.verify); }},
      {"mode", "echo",
       "echo (hold connections, echo messages) or connect (storm: connect, one echo, close)",
       [](BenchOptions& o, const std::string& v) -> std::string {
         if (v == "echo") {
           o.mode = BenchMode::kEcho;
         } else if (v == "connect") {
           o.mode = BenchMode::kConnect;
         } else {
           return "echo or connect";
         }
         return "";
       }},
      {"connect-timeout", "10", "seconds a connection may take to be established",
       real(&BenchOptions::connect_timeout_s, 0, 3600, true)},
      {"drain-timeout", "10", "seconds to wait for echoes still in flight when the run ends",
       real(&BenchOptions::drain_timeout_s, 0, 3600, true)},
      {"start-at", "",
       "wall-clock time the load starts, so generators on several machines start together: "
       "unix seconds, RFC 3339 (2026-01-01T12:00:00Z) or +SECONDS from now; connections are "
       "opened before it",
       [](BenchOptions& o, const std::string& v) -> std::string {
         if (v.empty()) {
           o.start_at_unix_s = 0;
           return "";
         }
         if (!parse_start_at(v, wall_clock_s(), o.start_at_unix_s)) {
           return "unix seconds, RFC 3339 (2026-01-01T12:00:00Z) or +SECONDS";
         }
         return "";
       }},
      {"processes", "1",
       "run as this many local echo-bench processes (connections, threads and rate shared "
       "out, reports merged) when one process' descriptor limit is not enough",
       integer_option(&BenchOptions::processes, 1, 1024)},
      {"rate-sweep", "",
       "FROM:TO:STEP messages/s: open-loop runs at each rate (each --warmup + --duration), "
       "stopping at the first that misses --slo-p99; reports the knee",
       [](BenchOptions& o, const std::string& v) -> std::string {
         double parts[3] = {0, 0, 0};
         std::size_t at = 0;
         for (int i = 0; i < 3; ++i) {
           const std::size_t end = i < 2 ? v.find(':', at) : v.size();
           if (end == std::string::npos) return "FROM:TO:STEP (e.g. 1000:20000:1000)";
           const char* first = v.data() + at;
           const char* last = v.data() + end;
           auto [ptr, ec] = std::from_chars(first, last, parts[i]);
           if (first == last || ec != std::errc() || ptr != last || !(parts[i] > 0)) {
             return "FROM:TO:STEP, three positive numbers";
           }
           at = end + 1;
         }
         if (parts[1] < parts[0]) return "FROM:TO:STEP with TO at least FROM";
         o.sweep_from = parts[0];
         o.sweep_to = parts[1];
         o.sweep_step = parts[2];
         return "";
       }},
      {"slo-p99", "0", "with --rate-sweep: the p99 latency objective in milliseconds",
       real(&BenchOptions::slo_p99_ms, 0, 3.6e6, true)},
      {"progress", "auto", "live progress line on stderr: auto (when a terminal), on, off",
       [](BenchOptions& o, const std::string& v) -> std::string {
         if (v == "auto") {
           o.progress = -1;
           return "";
         }
         bool on = false;
         if (!parse_bool(v, on).empty()) return "auto, on or off";
         o.progress = on ? 1 : 0;
         return "";
       }},
  };
  return table;
}

po::options_description description() {
  po::options_description desc("Options (--name value)");
  desc.add_options()("help", "print this help and exit")("version", "print the version and exit");
  for (const auto& spec : option_table()) {
    auto* value = po::value<std::vector<std::string>>()->composing();
    // Only --sources takes several words: `--sources 127.0.0.2 127.0.0.3`.
    if (std::string(spec.name) == "sources") value->multitoken();
    desc.add_options()(spec.name, value,
                       fmt::format("{} [{}]", spec.help, spec.default_value).c_str());
  }
  return desc;
}

}  // namespace

double wall_clock_s() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

bool parse_start_at(const std::string& text, double now_unix_s, double& out) {
  auto number = [](std::string_view v, double& n) {
    const char* end = v.data() + v.size();
    auto [ptr, ec] = std::from_chars(v.data(), end, n);
    return !v.empty() && ec == std::errc() && ptr == end && std::isfinite(n) && n >= 0;
  };
  if (!text.empty() && text.front() == '+') {
    double offset = 0;
    if (!number(std::string_view(text).substr(1), offset)) return false;
    out = now_unix_s + offset;
    return true;
  }
  double seconds = 0;
  if (number(text, seconds)) {
    out = seconds;
    return seconds > 0;
  }
  // RFC 3339: YYYY-MM-DD[Tt ]HH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, used = 0;
  char sep = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &year, &month, &day, &sep, &hour,
                  &minute, &second, &used) != 7 ||
      used != 19 || (sep != 'T' && sep != 't' && sep != ' ') || month < 1 || month > 12 ||
      day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return false;
  }
  std::string_view rest = std::string_view(text).substr(19);
  double fraction = 0;
  if (!rest.empty() && rest.front() == '.') {
    std::size_t digits = 1;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits])))
      ++digits;
    if (digits == 1 || !number("0" + std::string(rest.substr(0, digits)), fraction)) return false;
    rest.remove_prefix(digits);
  }
  int offset_s = 0;
  if (rest == "Z" || rest == "z") {
    offset_s = 0;
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &oh, &om) != 2 || oh > 23 ||
        om > 59) {
      return false;
    }
    offset_s = (rest[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  } else {
    return false;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  const time_t utc = timegm(&tm);
  out = static_cast<double>(utc - offset_s) + fraction;
  return out > 0;
}

bool parse_host_port(const std::string& text, HostPort& out) {
  std::string host = "127.0.0.1";
  std::string port_text = text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    if (text.find(':') != colon) return false;  // a bare IPv6 address needs brackets
    if (colon > 0) host = normalise_host(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  const char* end = port_text.data() + port_text.size();
  auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
  if (port_text.empty() || ec != std::errc() || ptr != end || port == 0 || port > 65535) {
    return false;
  }
  if (!is_numeric_address(host)) return false;
  out.host = host;
  out.port = static_cast<std::uint16_t>(port);
  return true;
}

std::string bench_help_text() {
  std::ostringstream out;
  out << "echo-bench " << MR_VERSION << " - load generator for TCP echo servers\n\n"
      << "Usage: echo-bench [--name value ...]\n"
      << "       echo-bench merge A.json B.json ... [--json OUT]   (combine runs exactly)\n"
      << "Opens --connections connections to --host:--port, echoes --size byte messages with\n"
      << "--pipeline of them in flight per connection (closed loop, or --rate messages/s in\n"
      << "total), checks every echoed byte, and reports throughput and latency percentiles.\n"
      << "Exit status: 0 = clean run; 1 = connections failed, bytes mismatched or errors seen;\n"
      << "2 = bad options.\n\n"
      << description();
  return out.str();
}

BenchOptionsOutcome parse_bench_options(int argc, const char* const* argv) {
  BenchOptionsOutcome outcome;
  auto fail = [&outcome](std::string message) {
    outcome.action = BenchOptionsOutcome::Action::kExitError;
    outcome.message = std::move(message);
    return outcome;
  };
  po::variables_map vm;
  std::vector<std::pair<std::string, std::string>> given;
  // parsed_options keeps a pointer to the description: it must outlive store().
  const po::options_description desc = description();
  try {
    po::parsed_options parsed = po::command_line_parser(argc, argv).options(desc).run();
    po::store(parsed, vm);
    for (const auto& opt : parsed.options) {
      if (opt.string_key == "help" || opt.string_key == "version") continue;
      if (opt.value.empty())
        return fail(fmt::format("echo-bench: --{} needs a value", opt.string_key));
      std::string joined;
      for (const auto& part : opt.value)
        joined += (joined.empty() ? "" : " ") + part;
      given.emplace_back(opt.string_key, joined);
    }
  } catch (const po::unknown_option& e) {
    return fail(fmt::format("echo-bench: unknown option '{}'; see --help", e.get_option_name()));
  } catch (const po::error& e) {
    return fail(fmt::format("echo-bench: {}; see --help", e.what()));
  }
  if (vm.count("help")) {
    outcome.action = BenchOptionsOutcome::Action::kExitSuccess;
    outcome.message = bench_help_text();
    return outcome;
  }
  if (vm.count("version")) {
    outcome.action = BenchOptionsOutcome::Action::kExitSuccess;
    outcome.message = fmt::format("echo-bench {}\n", MR_VERSION);
    return outcome;
  }
  for (const auto& [name, value] : given) {
    for (const auto& spec : option_table()) {
      if (name != spec.name) continue;
      // Applied in command-line order: a repeated option's last value wins (--sources adds up).
      if (std::string allowed = spec.set(outcome.options, value); !allowed.empty()) {
        return fail(fmt::format("echo-bench: --{} '{}': expected {}", name, value, allowed));
      }
    }
  }
  const BenchOptions& o = outcome.options;
  if ((o.sweep_from > 0) != (o.slo_p99_ms > 0)) {
    return fail("echo-bench: --rate-sweep and --slo-p99 go together");
  }
  if (o.sweep_from > 0 && (o.rate > 0 || o.mode == BenchMode::kConnect)) {
    return fail("echo-bench: --rate-sweep sets the rate itself; drop --rate and --mode connect");
  }
  if (o.sweep_from > 0 && (o.sweep_to - o.sweep_from) / o.sweep_step > 1000) {
    return fail("echo-bench: --rate-sweep with more than 1000 steps; use a larger STEP");
  }
  if (o.processes > 1 && o.sweep_from > 0) {
    return fail("echo-bench: --processes and --rate-sweep cannot be combined");
  }
  if (o.processes > o.connections) {
    return fail("echo-bench: --processes above --connections leaves a process without any");
  }
  if (o.mode == BenchMode::kEcho && o.rate > 0 &&
      o.rate / static_cast<double>(o.connections) > 1e6) {
    return fail("echo-bench: --rate above one million messages/s per connection is not useful");
  }
  return outcome;
}

}  // namespace mr::bench
