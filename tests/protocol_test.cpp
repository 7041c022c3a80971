// A second protocol on the engine, built only from the public API (include/multireactor): it
// answers each complete line, so input and output are not the same bytes, a partial line is
// kept across reads, and it uses every part of the seam — on_open (a greeting), on_data,
// on_drained (after a reply too large to send at once), on_close with its reason, and the
// handle's send, shutdown_write and close.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "multireactor/reactor.hpp"
#include "test_client.hpp"

namespace {

using namespace std::chrono_literals;
using mr::CloseReason;
using mr::Connection;
using mr::test::Deadline;
using mr::test::TestClient;

// What the protocol saw, across workers (written on worker threads, read by the test).
struct Seen {
  std::atomic<int> opened{0};
  std::atomic<int> drained{0};
  std::atomic<int> closed_by_peer{0};
  std::atomic<int> closed_by_protocol{0};
  std::atomic<int> closed_at_shutdown{0};
};

constexpr std::size_t kBigReplyBytes = 8 * 1024 * 1024;

// "name\n" -> "hello, name\n"; "BIG\n" -> 8 MiB of 'x' then "\n"; "BYE\n" -> "bye\n" and a FIN;
// "DROP\n" -> closed at once.
class GreeterProtocol {
 public:
  explicit GreeterProtocol(Seen* seen) : seen_(seen) {}

  void on_open(Connection& conn) {
    ++seen_->opened;
    partial_[conn.id()];
    conn.send(std::string_view("ready\n"));
  }

  void on_data(Connection& conn, std::span<const char> bytes) {
    std::string& line = partial_[conn.id()];
    for (const char b : bytes) {
      if (b != '\n') {
        line.push_back(b);
        continue;
      }
      answer(conn, line);
      // close() ran on_close, which erased this connection's partial line: `line` is gone.
      if (!conn.open()) return;
      line.clear();
    }
  }

  void on_drained(Connection& /*conn*/) { ++seen_->drained; }

  void on_close(Connection& conn, CloseReason reason) {
    partial_.erase(conn.id());
    if (reason == CloseReason::kPeerClosed) ++seen_->closed_by_peer;
    if (reason == CloseReason::kClosedByProtocol) ++seen_->closed_by_protocol;
    if (reason == CloseReason::kShutdown) ++seen_->closed_at_shutdown;
  }

 private:
  void answer(Connection& conn, const std::string& line) {
    if (line == "BIG") {
      conn.send(std::string(kBigReplyBytes, 'x') + "\n");
    } else if (line == "BYE") {
      conn.send(std::string_view("bye\n"));
      conn.shutdown_write();
    } else if (line == "DROP") {
      conn.close();
    } else {
      conn.send("hello, " + line + "\n");
    }
  }

  Seen* seen_;
  std::unordered_map<std::uint64_t, std::string> partial_;  // per connection id
};

static_assert(mr::Protocol<GreeterProtocol>);

class GreeterServer : public ::testing::Test {
 protected:
  void SetUp() override {
    mr::ReactorOptions options;
    options.workers = 2;
    options.worker.high_water_mark = 16 * 1024 * 1024;  // the big reply queues whole
    reactor_ = std::make_unique<mr::Reactor<GreeterProtocol>>(options, &seen_);
    reactor_->start();
  }
  TestClient connect() {
    TestClient client = TestClient::connect(reactor_->port(), Deadline(5s));
    EXPECT_TRUE(client.valid()) << client.connect_error();
    EXPECT_EQ(client.read_exactly(6, Deadline(5s)), "ready\n");
    return client;
  }

  Seen seen_;
  std::unique_ptr<mr::Reactor<GreeterProtocol>> reactor_;
};

TEST_F(GreeterServer, AnswersEachCompleteLineAndKeepsAPartialOneAcrossReads) {
  TestClient client = connect();
  ASSERT_TRUE(client.send_all("ali", Deadline(5s)));
  // The server has read the partial line before the rest is sent: two reads, one line.
  ASSERT_TRUE(mr::test::wait_until(
      [&] { return mr::aggregate(reactor_->worker_stats()).bytes_received == 3; }, Deadline(5s)));
  ASSERT_TRUE(client.send_all("ce\nbob\ncar", Deadline(5s)));
  ASSERT_TRUE(client.send_all("ol\n", Deadline(5s)));
  const std::string want = "hello, alice\nhello, bob\nhello, carol\n";
  EXPECT_EQ(client.read_exactly(want.size(), Deadline(5s)), want);
}

TEST_F(GreeterServer, ConnectionsOnBothWorkersKeepTheirOwnPartialLines) {
  TestClient a = connect();
  TestClient b = connect();  // round-robin: the other worker
  ASSERT_TRUE(a.send_all("fir", Deadline(5s)));
  ASSERT_TRUE(b.send_all("sec", Deadline(5s)));
  ASSERT_TRUE(a.send_all("st\n", Deadline(5s)));
  ASSERT_TRUE(b.send_all("ond\n", Deadline(5s)));
  EXPECT_EQ(a.read_exactly(13, Deadline(5s)), "hello, first\n");
  EXPECT_EQ(b.read_exactly(14, Deadline(5s)), "hello, second\n");
}

TEST_F(GreeterServer, AReplyTooBigToSendAtOnceArrivesWholeAndReportsDrained) {
  TestClient client = connect();
  ASSERT_TRUE(client.send_all("BIG\nafter\n", Deadline(5s)));
  const std::string reply = client.read_exactly(kBigReplyBytes + 1, Deadline(30s));
  ASSERT_EQ(reply.size(), kBigReplyBytes + 1);
  EXPECT_EQ(reply.find_first_not_of('x'), kBigReplyBytes);
  EXPECT_EQ(client.read_exactly(13, Deadline(5s)), "hello, after\n");
  EXPECT_TRUE(mr::test::wait_until([&] { return seen_.drained.load() >= 1; }, Deadline(5s)))
      << "8 MiB do not fit the socket buffers: the queue drained later, and the protocol heard";
}

TEST_F(GreeterServer, ShutdownWriteSendsWhatIsQueuedThenAFin) {
  TestClient client = connect();
  ASSERT_TRUE(client.send_all("BYE\n", Deadline(5s)));
  std::string rest;
  ASSERT_TRUE(client.read_until_eof(rest, Deadline(5s)));
  EXPECT_EQ(rest, "bye\n");
  client.close();
  EXPECT_TRUE(mr::test::wait_until([&] { return seen_.closed_by_peer.load() == 1; }, Deadline(5s)));
}

TEST_F(GreeterServer, CloseFromTheProtocolEndsTheConnectionAndSaysWhy) {
  TestClient client = connect();
  ASSERT_TRUE(client.send_all("DROP\n", Deadline(5s)));
  std::string rest;
  EXPECT_TRUE(client.read_until_eof(rest, Deadline(5s)));
  EXPECT_EQ(rest, "");
  EXPECT_TRUE(
      mr::test::wait_until([&] { return seen_.closed_by_protocol.load() == 1; }, Deadline(5s)));
}

TEST_F(GreeterServer, StopClosesOpenConnectionsWithTheShutdownReason) {
  TestClient a = connect();
  TestClient b = connect();
  EXPECT_EQ(seen_.opened.load(), 2);
  reactor_->stop();
  EXPECT_EQ(seen_.closed_at_shutdown.load(), 2);
  const std::vector<mr::WorkerStatsSnapshot> workers = reactor_->worker_stats();
  EXPECT_EQ(mr::aggregate(workers).connections_closed, 2u);
}

}  // namespace
