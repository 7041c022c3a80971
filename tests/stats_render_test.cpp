// /stats JSON, /metrics Prometheus text and the stats log lines, from fixed snapshots.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin/stats_render.hpp"

namespace mr {
namespace {

using nlohmann::json;

// Every field a distinct value, so a swapped or dropped field shows.
WorkerStatsSnapshot numbered(std::uint64_t base) {
  WorkerStatsSnapshot s;
  std::uint64_t n = base;
  for (auto* field :
       {&s.connections_active, &s.connections_accepted, &s.connections_closed, &s.bytes_received,
        &s.bytes_sent, &s.reads, &s.writes, &s.wakeups, &s.loop_iterations, &s.backpressure_pauses,
        &s.errors, &s.idle_timeouts, &s.pending_output_bytes, &s.pending_output_peak_bytes,
        &s.connections_drained, &s.connections_cut, &s.buffered_bytes, &s.overload_pauses}) {
    *field = n++;
  }
  return s;
}

StatsReport sample_report() {
  StatsReport r;
  r.uptime_s = 12.5;
  r.process_start_time_s = 1700000000.25;
  r.process.rss_bytes = 5 << 20;
  r.process.open_fds = 17;
  r.process.cpu_user_s = 1.5;
  r.process.cpu_system_s = 0.25;
  r.max_fds = 20000;
  r.ready = true;
  r.buffer_budget_bytes = 512 << 20;
  r.workers = {numbered(100), numbered(200), numbered(300)};
  r.acceptor.accept_errors = 1;
  r.acceptor.connections_rejected = 2;
  r.acceptor.accept_batches = 3;
  r.acceptor.handoffs = 4;
  return r;
}

TEST(StatsJson, HasTheDocumentedFieldsAndTotalIsTheSumOfTheWorkers) {
  const StatsReport report = sample_report();
  const json stats = json::parse(render_stats_json(report));
  for (const char* key : {"uptime_s", "workers_count", "rss_bytes", "open_fds", "cpu_user_s",
                          "cpu_system_s", "workers", "total", "acceptor", "version", "ready"}) {
    EXPECT_TRUE(stats.contains(key)) << key;
  }
  EXPECT_EQ(stats["workers_count"], 3);
  EXPECT_DOUBLE_EQ(stats["uptime_s"].get<double>(), 12.5);
  EXPECT_EQ(stats["rss_bytes"], 5 << 20);
  EXPECT_EQ(stats["open_fds"], 17);
  EXPECT_EQ(stats["buffer_budget_bytes"], 512 << 20);
  EXPECT_DOUBLE_EQ(stats["cpu_user_s"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(stats["cpu_system_s"].get<double>(), 0.25);
  EXPECT_EQ(stats["acceptor"]["connections_rejected"], 2);
  EXPECT_EQ(stats["acceptor"]["accept_errors"], 1);

  const auto names = worker_field_names();
  ASSERT_EQ(stats["workers"].size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const json& w = stats["workers"][i];
    EXPECT_EQ(w["id"], i);
    EXPECT_EQ(w.size(), names.size() + 1) << "id plus one key per field";
  }
  for (const auto& name : names) {
    std::uint64_t sum = 0;
    std::uint64_t max = 0;
    for (const json& w : stats["workers"]) {
      sum += w[name].get<std::uint64_t>();
      max = std::max(max, w[name].get<std::uint64_t>());
    }
    // A peak is not additive: its total is the largest of any worker.
    const std::uint64_t expected = name == "pending_output_peak_bytes" ? max : sum;
    EXPECT_EQ(stats["total"][name].get<std::uint64_t>(), expected) << name;
  }
  EXPECT_EQ(stats["workers"][1]["connections_active"], 200);
  EXPECT_EQ(stats["workers"][2]["connections_cut"], 315);
}

TEST(StatsJson, NoWorkersStillRendersValidJson) {
  StatsReport report;
  const json stats = json::parse(render_stats_json(report));
  EXPECT_EQ(stats["workers_count"], 0);
  EXPECT_TRUE(stats["workers"].empty());
  EXPECT_EQ(stats["total"]["connections_active"], 0);
}

struct Family {
  std::string help;
  std::string type;
  std::vector<std::string> samples;
};

// name -> family, checking the exposition format's line shapes on the way.
std::map<std::string, Family> parse_exposition(const std::string& text) {
  std::map<std::string, Family> families;
  std::istringstream lines(text);
  std::string line;
  std::string current;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string rest = line.substr(7);
      current = rest.substr(0, rest.find(' '));
      EXPECT_FALSE(families.count(current)) << "family repeated: " << current;
      families[current].help = rest.substr(rest.find(' ') + 1);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      const std::string rest = line.substr(7);
      EXPECT_EQ(rest.substr(0, rest.find(' ')), current) << "TYPE without its HELP: " << line;
      families[current].type = rest.substr(rest.find(' ') + 1);
    } else {
      const std::string name = line.substr(0, line.find_first_of("{ "));
      EXPECT_EQ(name, current) << "sample outside its family: " << line;
      families[current].samples.push_back(line);
    }
  }
  return families;
}

TEST(PrometheusText, EveryFamilyHasHelpAndTypeAndCountersEndInTotal) {
  const std::string text = render_prometheus(sample_report());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const auto families = parse_exposition(text);
  for (const auto& [name, family] : families) {
    EXPECT_FALSE(family.help.empty()) << name;
    ASSERT_TRUE(family.type == "counter" || family.type == "gauge") << name << ": " << family.type;
    const bool ends_in_total = name.size() > 6 && name.substr(name.size() - 6) == "_total";
    EXPECT_EQ(family.type == "counter", ends_in_total) << name;
    EXPECT_FALSE(family.samples.empty()) << name;
    const bool process_metric = name.rfind("process_", 0) == 0;
    EXPECT_TRUE(process_metric || name.rfind("multireactor_", 0) == 0) << name;
  }
  for (const char* name :
       {"process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total",
        "process_start_time_seconds", "multireactor_build_info", "multireactor_connections_active",
        "multireactor_connections_rejected_total", "multireactor_accept_errors_total",
        "multireactor_idle_timeouts_total", "multireactor_pending_output_bytes",
        "multireactor_connections_drained_total", "multireactor_connections_cut_total",
        "multireactor_buffered_bytes", "multireactor_overload_pauses_total",
        "multireactor_buffer_budget_bytes"}) {
    EXPECT_TRUE(families.count(name)) << name;
  }
}

TEST(PrometheusText, PerWorkerFamiliesHaveOneSampleLabelledWithEachWorker) {
  const auto families = parse_exposition(render_prometheus(sample_report()));
  const Family& active = families.at("multireactor_connections_active");
  ASSERT_EQ(active.samples.size(), 3u);
  EXPECT_EQ(active.samples[0], "multireactor_connections_active{worker=\"0\"} 100");
  EXPECT_EQ(active.samples[1], "multireactor_connections_active{worker=\"1\"} 200");
  EXPECT_EQ(active.samples[2], "multireactor_connections_active{worker=\"2\"} 300");
  EXPECT_EQ(families.at("multireactor_received_bytes_total").samples[2],
            "multireactor_received_bytes_total{worker=\"2\"} 303");
  EXPECT_EQ(families.at("process_cpu_seconds_total").samples[0],
            "process_cpu_seconds_total 1.750000");
  EXPECT_EQ(families.at("multireactor_connections_rejected_total").samples[0],
            "multireactor_connections_rejected_total 2");
  const std::string build = families.at("multireactor_build_info").samples[0];
  EXPECT_NE(build.find("version=\""), std::string::npos) << build;
  EXPECT_EQ(build.substr(build.size() - 2), " 1");
}

TEST(StatsLog, IntervalLineGivesRatesOverTheIntervalAndPerWorkerConnections) {
  WorkerStatsSnapshot a0;
  WorkerStatsSnapshot a1;
  std::vector<WorkerStatsSnapshot> before{a0, a1};
  WorkerStatsSnapshot b0 = a0;
  WorkerStatsSnapshot b1 = a1;
  b0.connections_active = 3;
  b1.connections_active = 4;
  b0.connections_accepted = 5;
  b1.connections_accepted = 4;
  b0.connections_closed = 2;
  b0.reads = 1500;
  b1.reads = 500;
  b0.bytes_received = 1 << 20;
  b1.bytes_received = 1 << 20;
  b0.bytes_sent = 1 << 20;
  std::vector<WorkerStatsSnapshot> after{b0, b1};
  const std::string line = format_interval_line(before, after, 2.0);
  EXPECT_NE(line.find("active=7 opened=9 closed=2"), std::string::npos) << line;
  EXPECT_NE(line.find("1000.0 msgs/s"), std::string::npos) << line;
  EXPECT_NE(line.find("in 1.000 MiB/s out 0.500 MiB/s"), std::string::npos) << line;
  EXPECT_NE(line.find("per-worker active=[3,4]"), std::string::npos) << line;
  EXPECT_EQ(line.find("buffered"), std::string::npos) << "no budget given, none shown: " << line;

  after[0].buffered_bytes = 3 << 20;
  after[1].buffered_bytes = 1 << 20;
  after[1].overload_pauses = 6;
  const std::string with_budget = format_interval_line(before, after, 2.0, 64 << 20);
  EXPECT_NE(with_budget.find("buffered 4.0 of 64.0 MiB, overload_pauses +6"), std::string::npos)
      << with_budget;
}

TEST(StatsLog, DumpNamesEveryFieldWithItsStatsName) {
  const std::string line = format_worker_fields(numbered(1));
  for (const auto& name : worker_field_names()) {
    EXPECT_NE(line.find(name + "="), std::string::npos) << name;
  }
  EXPECT_NE(line.find("connections_active=1 "), std::string::npos) << line;
  AcceptorStatsSnapshot acceptor;
  acceptor.connections_rejected = 9;
  EXPECT_NE(format_acceptor_fields(acceptor).find("connections_rejected=9"), std::string::npos);
}

// "a=1 b=2" -> {a: "1", b: "2"}.
std::map<std::string, std::string> key_values(const std::string& line) {
  std::map<std::string, std::string> out;
  std::istringstream in(line);
  for (std::string word; in >> word;) {
    const auto eq = word.find('=');
    if (eq != std::string::npos) out[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return out;
}

// A counter added to MR_WORKER_COUNTERS (multireactor/stats.hpp) reaches every output from that
// one line: /stats (each worker and the total), /metrics (HELP, TYPE of its kind, one sample per
// worker), the SIGUSR1 dump, the final log line when it has a brief key, and echo-bench's reader.
TEST(WorkerCounterList, EveryCounterOfTheListReachesEveryOutput) {
  // The list is the whole snapshot: no field outside it.
  EXPECT_EQ(std::size(kWorkerCounters) * sizeof(std::uint64_t), sizeof(WorkerStatsSnapshot));
  StatsReport report;
  report.workers.resize(2);
  std::uint64_t n = 1000;
  for (const auto& c : kWorkerCounters) {
    for (auto& w : report.workers)
      w.*c.member = n++;
  }
  const WorkerStatsSnapshot& second = report.workers[1];
  const json stats = json::parse(render_stats_json(report));
  const std::string metrics = render_prometheus(report);
  const auto dump = key_values(format_worker_fields(second));
  const auto brief = key_values(format_brief_fields(second));
  std::set<std::string> names;
  std::set<std::string> metric_names;
  std::size_t with_brief = 0;
  for (const auto& c : kWorkerCounters) {
    const std::string name(c.name);
    const std::uint64_t first_value = report.workers[0].*c.member;
    const std::uint64_t value = second.*c.member;
    EXPECT_TRUE(names.insert(name).second) << name << " is listed twice";
    EXPECT_TRUE(metric_names.insert(std::string(c.metric)).second) << c.metric;
    EXPECT_FALSE(c.help.empty()) << name;

    EXPECT_EQ(stats["workers"][1].value(name, json()), value) << name << " missing in /stats";
    const std::uint64_t total =
        c.merge == CounterMerge::kMax ? std::max(first_value, value) : first_value + value;
    EXPECT_EQ(stats["total"].value(name, json()), total) << name << " missing in /stats total";

    const std::string metric = "multireactor_" + std::string(c.metric);
    EXPECT_EQ(c.kind == CounterKind::kCounter, metric.ends_with("_total")) << metric;
    EXPECT_NE(metrics.find("# HELP " + metric + " " + std::string(c.help) + "\n"),
              std::string::npos)
        << metric;
    EXPECT_NE(metrics.find("# TYPE " + metric +
                           (c.kind == CounterKind::kCounter ? " counter\n" : " gauge\n")),
              std::string::npos)
        << metric;
    EXPECT_NE(metrics.find(metric + "{worker=\"1\"} " + std::to_string(value) + "\n"),
              std::string::npos)
        << metric;

    EXPECT_EQ(dump.count(name) ? dump.at(name) : "", std::to_string(value))
        << name << " missing in the SIGUSR1 dump";
    if (!c.brief.empty()) {
      ++with_brief;
      const std::string key(c.brief);
      EXPECT_EQ(brief.count(key) ? brief.at(key) : "", std::to_string(value)) << key;
    }
    EXPECT_EQ(worker_field(name), c.member) << name << " unreadable by echo-bench";
  }
  EXPECT_EQ(dump.size(), std::size(kWorkerCounters));
  EXPECT_EQ(brief.size(), with_brief);
}

TEST(AdminDocumentation, ReadmeNamesEveryStatsFieldAndEveryMetric) {
  std::ifstream in(std::string(MR_SOURCE_DIR) + "/README.md");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string readme = buffer.str();
  ASSERT_FALSE(readme.empty());
  for (const auto& name : worker_field_names()) {
    EXPECT_NE(readme.find("`" + name + "`"), std::string::npos) << "/stats field " << name;
  }
  for (const auto& [name, family] : parse_exposition(render_prometheus(sample_report()))) {
    EXPECT_NE(readme.find(name), std::string::npos) << "metric " << name;
  }
  for (const char* endpoint : {"/healthz", "/readyz", "/stats", "/metrics"}) {
    EXPECT_NE(readme.find(endpoint), std::string::npos) << endpoint;
  }
}

}  // namespace
}  // namespace mr
