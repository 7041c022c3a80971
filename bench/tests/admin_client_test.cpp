#include "admin_client.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include <fmt/format.h>

#include "admin/stats_render.hpp"
#include "bench_report.hpp"
#include "fake_http_server.hpp"
#include "multireactor/socket.hpp"

namespace mr::bench {
namespace {

// The /stats document exactly as the server renders it.
std::string rendered_stats(std::uint64_t bytes0, std::uint64_t bytes1, std::uint64_t rss) {
  StatsReport report;
  report.uptime_s = 12.5;
  report.process.rss_bytes = rss;
  report.process.open_fds = 42;
  report.process.cpu_user_s = 1.5;
  report.process.cpu_system_s = 2.25;
  report.workers.resize(2);
  report.workers[0].bytes_received = bytes0;
  report.workers[0].bytes_sent = bytes0;
  report.workers[0].connections_active = 3;
  report.workers[1].bytes_received = bytes1;
  report.workers[1].bytes_sent = bytes1;
  report.workers[1].connections_active = 4;
  report.workers[1].errors = 1;
  return render_stats_json(report);
}

TEST(AdminClient, ReadsEveryFieldOfTheServersOwnStatsDocument) {
  ServerStats stats;
  std::string error;
  ASSERT_TRUE(parse_server_stats(rendered_stats(1000, 2000, 8 << 20), stats, error)) << error;
  EXPECT_DOUBLE_EQ(stats.uptime_s, 12.5);
  EXPECT_EQ(stats.workers_count, 2U);
  ASSERT_TRUE(stats.has_rss);
  EXPECT_EQ(stats.rss_bytes, 8U << 20);
  EXPECT_EQ(stats.open_fds, 42U);
  ASSERT_TRUE(stats.has_cpu);
  EXPECT_DOUBLE_EQ(stats.cpu_user_s, 1.5);
  EXPECT_DOUBLE_EQ(stats.cpu_system_s, 2.25);
  ASSERT_EQ(stats.workers.size(), 2U);
  EXPECT_EQ(stats.workers[0].id, 0U);
  EXPECT_EQ(stats.workers[1].id, 1U);
  EXPECT_EQ(stats.workers[0].bytes_received, 1000U);
  EXPECT_EQ(stats.workers[1].connections_active, 4U);
  EXPECT_EQ(stats.workers[1].errors, 1U);
}

TEST(AdminClient, ReadsEveryWorkerCounterTheServerNames) {
  StatsReport report;
  report.workers.resize(1);
  std::uint64_t value = 100;
  for (const auto& name : worker_field_names())
    report.workers[0].*worker_field(name) = value++;
  ServerStats stats;
  std::string error;
  ASSERT_TRUE(parse_server_stats(render_stats_json(report), stats, error)) << error;
  ASSERT_EQ(stats.workers.size(), 1U);
  value = 100;
  for (const auto& name : worker_field_names())
    EXPECT_EQ(stats.workers[0].*worker_field(name), value++) << name;
}

TEST(AdminClient, FetchesStatsOverHttpAndComputesTheRunsShareOfEachWorker) {
  int call = 0;
  test::FakeHttpServer server([&call](const std::string& head) {
    EXPECT_EQ(head.rfind("GET /stats HTTP/1.1\r\n", 0), 0U) << head;
    ++call;
    return test::FakeHttpServer::ok_json(call == 1 ? rendered_stats(100, 100, 1 << 20)
                                                   : rendered_stats(6500, 6100, 2 << 20));
  });
  const HostPort endpoint{"127.0.0.1", server.port()};
  ServerStats before;
  ServerStats after;
  std::string error;
  ASSERT_TRUE(fetch_server_stats(endpoint, before, error)) << error;
  ASSERT_TRUE(fetch_server_stats(endpoint, after, error)) << error;
  const ServerSide side = summarize_server(before, after, 64);
  ASSERT_EQ(side.workers.size(), 2U);
  EXPECT_EQ(side.workers[0].messages, 100U);  // (6500 - 100) / 64
  EXPECT_EQ(side.workers[1].messages, 93U);   // (6100 - 100) / 64, rounded down
  EXPECT_EQ(side.bytes_received, 12400U);
  EXPECT_NEAR(side.messages_imbalance, 100.0 / 93.0, 1e-9);
  EXPECT_NEAR(side.connections_imbalance, 4.0 / 3.0, 1e-9);
  EXPECT_TRUE(side.has_rss);
  EXPECT_DOUBLE_EQ(side.rss_per_connection_bytes, (1 << 20) / 7.0);
}

TEST(AdminClient, ChunkedAndReadToCloseBodiesAreUnderstood) {
  const std::string doc = rendered_stats(5, 6, 1 << 20);
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n" +
      fmt::format("{:x}\r\n{}\r\n", 10, doc.substr(0, 10)) +
      fmt::format("{:x}\r\n{}\r\n", doc.size() - 10, doc.substr(10)) + "0\r\n\r\n";
  const std::string to_close = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + doc;
  for (const std::string& response : {chunked, to_close}) {
    test::FakeHttpServer server([&response](const std::string&) { return response; });
    ServerStats stats;
    std::string error;
    ASSERT_TRUE(fetch_server_stats(HostPort{"127.0.0.1", server.port()}, stats, error, 2000))
        << error << "\n"
        << response;
    ASSERT_EQ(stats.workers.size(), 2U);
    EXPECT_EQ(stats.workers[1].bytes_received, 6U);
  }
}

TEST(AdminClient, FailuresAreOneLineReasonsNotCrashes) {
  std::string error;
  ServerStats stats;
  EXPECT_FALSE(parse_server_stats("{\"uptime_s\": 1}", stats, error));
  EXPECT_NE(error.find("workers"), std::string::npos);
  EXPECT_FALSE(parse_server_stats("not json", stats, error));

  // Nothing listening: the port of a socket we bound and closed.
  const int fd = listen_tcp(make_address("127.0.0.1", 0), 1);
  const std::uint16_t port = local_port(fd);
  close(fd);
  EXPECT_FALSE(fetch_server_stats(HostPort{"127.0.0.1", port}, stats, error, 2000));
  EXPECT_FALSE(error.empty());

  test::FakeHttpServer server([](const std::string&) {
    return std::string("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
  });
  EXPECT_FALSE(fetch_server_stats(HostPort{"127.0.0.1", server.port()}, stats, error, 2000));
  EXPECT_NE(error.find("500"), std::string::npos) << error;

  test::FakeHttpServer garbage([](const std::string&) { return std::string("garbage"); });
  EXPECT_FALSE(fetch_server_stats(HostPort{"127.0.0.1", garbage.port()}, stats, error, 2000));
  EXPECT_FALSE(error.empty());

  // Framing the connection's end cuts short: a body shorter than its Content-Length, a chunked
  // body without its last chunk, a head without its blank line.
  for (const std::string& response :
       {std::string("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"workers\": []}"),
        std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"wor"),
        std::string("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")}) {
    test::FakeHttpServer cut([&response](const std::string&) { return response; });
    EXPECT_FALSE(fetch_server_stats(HostPort{"127.0.0.1", cut.port()}, stats, error, 2000))
        << response;
    EXPECT_NE(error.find("connection closed"), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace mr::bench
