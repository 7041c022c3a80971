#include "bench_options.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
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
  if (o.mode == BenchMode::kEcho && o.rate > 0 &&
      o.rate / static_cast<double>(o.connections) > 1e6) {
    return fail("echo-bench: --rate above one million messages/s per connection is not useful");
  }
  return outcome;
}

}  // namespace mr::bench
