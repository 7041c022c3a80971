// Limits and failure behaviour of a real echo-server process: running out of descriptors,
// max_connections, the idle timeout, draining shutdown, one busy connection among others, and
// the kernel options of accepted sockets (keepalive reclaiming a vanished peer, buffer sizes).
// Each test starts its own server on 127.0.0.1:0 and stops it with SIGTERM.
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server_process.hpp"
#include "test_client.hpp"

namespace mr::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::size_t kMiB = 1024 * 1024;

class Limits : public ::testing::Test {
 protected:
  void SetUp() override { raise_own_file_limit(); }

  [[nodiscard]] bool start(ServerProcess& server, const std::vector<std::string>& args,
                           unsigned nofile_limit = 0) {
    return start_or_fail(server, args, nofile_limit);
  }
  FinalStats stop(ServerProcess& server) { return stop_cleanly(server, Deadline(seconds(60))); }
};

// The same behaviour whichever way connections are accepted: one acceptor thread dealing them
// out, or each worker accepting on its own SO_REUSEPORT socket.
class LimitsPerAcceptMode : public Limits, public ::testing::WithParamInterface<const char*> {
 protected:
  std::vector<std::string> with_mode(std::vector<std::string> args) const {
    args.insert(args.end(), {"--accept_mode", GetParam()});
    return args;
  }
};

INSTANTIATE_TEST_SUITE_P(AcceptModes, LimitsPerAcceptMode,
                         ::testing::Values("acceptor", "reuseport"));

std::size_t count_lines(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Out of file descriptors.

TEST_P(LimitsPerAcceptMode, OutOfDescriptorsShedsNewClientsWithoutSpinningAndKeepsServingOthers) {
  constexpr unsigned kNofile = 64;
  constexpr std::size_t kFlood = 200;  // far more clients than 64 descriptors can hold
  ServerProcess server;
  const auto started = Clock::now();
  ASSERT_TRUE(start(server, with_mode({"--workers", "2"}), kNofile));
  ASSERT_EQ(nofile_hard_limit(server.pid()), static_cast<long>(kNofile));
  const std::size_t baseline_fds = open_fds(server.pid());

  // The flood: every client connects (the kernel completes the handshake from the backlog),
  // then each sends one message. Those the server can hold are echoed; the rest must be shed,
  // not left waiting in the backlog.
  std::vector<TestClient> clients;
  for (std::size_t i = 0; i < kFlood; ++i) {
    clients.push_back(TestClient::connect(server.port(), Deadline(seconds(10))));
    ASSERT_TRUE(clients.back().valid()) << clients.back().connect_error();
  }
  std::vector<std::size_t> served;
  std::size_t refused = 0;
  std::size_t no_answer = 0;
  const Deadline probe_deadline(seconds(20));
  for (std::size_t i = 0; i < kFlood; ++i) {
    const std::string message = "flood client " + std::to_string(i);
    switch (probe_echo(clients[i], message, probe_deadline)) {
      case EchoOutcome::kEchoed:
        served.push_back(i);
        break;
      case EchoOutcome::kRefused:
        ++refused;
        break;
      default:
        ++no_answer;
        break;
    }
  }
  EXPECT_GT(served.size(), 0u) << server.log();
  EXPECT_LT(served.size(), static_cast<std::size_t>(kNofile));
  EXPECT_GT(refused, 0u);
  EXPECT_EQ(no_answer, 0u) << "clients left hanging instead of being shed; server log:\n"
                           << server.log();

  // With every descriptor in use and shed clients still connecting, the acceptor must not spin
  // on the readable listening socket. More clients arrive during the window; the server's CPU
  // time (read from /proc) must stay a small fraction of the wall time.
  const double cpu_before = cpu_seconds(server.pid());
  const auto wall_before = Clock::now();
  std::vector<TestClient> late;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 5; ++i)
      late.push_back(TestClient::connect(server.port(), Deadline(seconds(5))));
    std::this_thread::sleep_for(milliseconds(200));
  }
  const double cpu_used = cpu_seconds(server.pid()) - cpu_before;
  const double wall = std::chrono::duration<double>(Clock::now() - wall_before).count();
  // A busy-looping acceptor burns a whole CPU (still a quarter of one on a machine loaded 8 deep
  // on 2 cores); shedding 50 clients costs milliseconds. Sanitizer builds measure 0.00 too.
  std::printf(
      "out of descriptors: %zu served, %zu shed; server CPU %.2f s in %.2f s of wall time\n",
      served.size(), refused, cpu_used, wall);
  EXPECT_LT(cpu_used / wall, 0.1) << "server CPU " << cpu_used << " s in " << wall << " s";
  const Deadline late_deadline(seconds(10));
  for (TestClient& c : late) {
    if (!c.valid()) continue;
    EXPECT_NE(probe_echo(c, "late", late_deadline), EchoOutcome::kNoAnswer);
  }
  late.clear();

  // Everyone already connected is still served.
  for (std::size_t i : served) {
    EXPECT_EQ(probe_echo(clients[i], "still here", Deadline(seconds(10))), EchoOutcome::kEchoed)
        << "client " << i;
  }

  // After the flood, descriptors come back and a new client is served.
  clients.clear();
  EXPECT_TRUE(
      wait_until([&] { return open_fds(server.pid()) <= baseline_fds; }, Deadline(seconds(10))))
      << "server holds " << open_fds(server.pid()) << " descriptors, baseline " << baseline_fds;
  TestClient after = TestClient::connect(server.port(), Deadline(seconds(10)));
  ASSERT_TRUE(after.valid()) << after.connect_error();
  EXPECT_EQ(probe_echo(after, "after the flood", Deadline(seconds(10))), EchoOutcome::kEchoed);
  after.close();

  const FinalStats stats = stop(server);
  const double lifetime_s = std::chrono::duration<double>(Clock::now() - started).count();
  EXPECT_GE(stats["accept_errors"], refused) << stats.describe();
  EXPECT_GE(stats["rejected"], refused) << stats.describe();
  // The warning is rate-limited to one a second per listener (in reuseport mode each of the two
  // workers has its own), however many connections were shed.
  const std::size_t listeners = std::string_view(GetParam()) == "reuseport" ? 2 : 1;
  const std::size_t warnings = count_lines(server.log(), "out of file descriptors");
  EXPECT_GE(warnings, 1u) << server.log();
  EXPECT_LE(warnings, listeners * (static_cast<std::size_t>(std::ceil(lifetime_s)) + 1))
      << server.log();
}

// ---------------------------------------------------------------------------------------------
// max_connections.

TEST_P(LimitsPerAcceptMode, ClientsBeyondMaxConnectionsAreRefusedAtOnceAndServedOnceThereIsRoom) {
  constexpr std::size_t kMax = 4;
  ServerProcess server;
  ASSERT_TRUE(
      start(server, with_mode({"--workers", "2", "--max_connections", std::to_string(kMax)})));

  std::vector<TestClient> held;
  for (std::size_t i = 0; i < kMax; ++i) {
    held.push_back(TestClient::connect(server.port(), Deadline(seconds(10))));
    ASSERT_EQ(probe_echo(held.back(), "held " + std::to_string(i), Deadline(seconds(10))),
              EchoOutcome::kEchoed);
  }
  // One more: accepted and closed at once, so the client sees EOF or a reset, not a hang.
  for (int attempt = 0; attempt < 3; ++attempt) {
    TestClient extra = TestClient::connect(server.port(), Deadline(seconds(10)));
    ASSERT_TRUE(extra.valid()) << extra.connect_error();
    EXPECT_EQ(probe_echo(extra, "one too many", Deadline(seconds(10))), EchoOutcome::kRefused);
  }
  for (TestClient& c : held) {
    EXPECT_EQ(probe_echo(c, "still served", Deadline(seconds(10))), EchoOutcome::kEchoed);
  }

  // A slot frees up: a new client is served (once the worker has closed the old one).
  held.pop_back();
  bool served = wait_until(
      [&] {
        TestClient next = TestClient::connect(server.port(), Deadline(seconds(5)));
        return probe_echo(next, "room again", Deadline(seconds(5))) == EchoOutcome::kEchoed;
      },
      Deadline(seconds(10)));
  EXPECT_TRUE(served);

  const FinalStats stats = stop(server);
  EXPECT_GE(stats["rejected"], 3u) << stats.describe();
}

// ---------------------------------------------------------------------------------------------
// Idle timeout.

TEST_F(Limits, IdleTimeoutClosesSilentClientsButNotActiveOnes) {
  constexpr int kTimeoutMs = 500;
  ServerProcess server;
  ASSERT_TRUE(start(server, {"--workers", "1", "--idle_timeout_ms", std::to_string(kTimeoutMs)}));

  // Slowloris-style: connects and never sends. And one that talks once and then goes quiet.
  TestClient silent = TestClient::connect(server.port(), Deadline(seconds(10)));
  TestClient once = TestClient::connect(server.port(), Deadline(seconds(10)));
  TestClient active = TestClient::connect(server.port(), Deadline(seconds(10)));
  ASSERT_TRUE(silent.valid() && once.valid() && active.valid());
  ASSERT_EQ(probe_echo(once, "hello once", Deadline(seconds(10))), EchoOutcome::kEchoed);

  // The active client exchanges a message every 50 ms for five timeout periods.
  const auto until = Clock::now() + milliseconds(5 * kTimeoutMs);
  int exchanges = 0;
  while (Clock::now() < until) {
    ASSERT_EQ(probe_echo(active, "tick " + std::to_string(exchanges), Deadline(seconds(10))),
              EchoOutcome::kEchoed)
        << "after " << exchanges << " exchanges: " << active.receive_error();
    ++exchanges;
    std::this_thread::sleep_for(milliseconds(50));
  }

  std::string rest;
  EXPECT_TRUE(silent.read_until_eof(rest, Deadline(seconds(10)))) << silent.receive_error();
  EXPECT_TRUE(once.read_until_eof(rest, Deadline(seconds(10)))) << once.receive_error();
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(probe_echo(active, "still active", Deadline(seconds(10))), EchoOutcome::kEchoed);

  const FinalStats stats = stop(server);
  EXPECT_EQ(stats["idle_timeouts"], 2u) << stats.describe();
}

// ---------------------------------------------------------------------------------------------
// Draining shutdown.

// A client that sends `payload` without reading (its small receive buffer fills), and waits
// until the server has read every byte, so the echo of all of it is pending in the server.
TestClient slow_client_with_pending_echo(const ServerProcess& server, const std::string& payload) {
  TestClient client = TestClient::connect(server.port(), Deadline(seconds(10)));
  EXPECT_TRUE(client.valid()) << client.connect_error();
  client.set_receive_buffer(64 * 1024);
  EXPECT_TRUE(client.send_all(payload, Deadline(seconds(60)))) << client.send_error();
  const std::uint16_t port = local_port_of(client.fd());
  // Everything left the client (SIOCOUTQ: not yet acknowledged) and the server read it all: the
  // server's queue alone can be empty for a moment while the client still holds bytes back.
  const auto client_holds = [&] {
    int n = 0;
    return ioctl(client.fd(), SIOCOUTQ, &n) == 0 ? n : -1;
  };
  EXPECT_TRUE(wait_until(
      [&] { return client_holds() == 0 && receive_queue_bytes(server.port(), port) == 0; },
      Deadline(seconds(30))))
      << "the server did not read everything the client sent";
  return client;
}

TEST_P(LimitsPerAcceptMode, SigtermStopsAcceptingAndDeliversPendingOutputToASlowClientBeforeExit) {
  const std::size_t bytes = 16 * kMiB;
  ServerProcess server;
  ASSERT_TRUE(
      start(server, with_mode({"--workers", "2", "--high_water_mark", std::to_string(64 * kMiB),
                               "--shutdown_timeout_ms", "60000"})));
  const std::string payload = random_bytes(bytes, 7);
  TestClient idle = TestClient::connect(server.port(), Deadline(seconds(10)));
  TestClient slow = slow_client_with_pending_echo(server, payload);
  ASSERT_TRUE(idle.valid() && slow.valid());

  ASSERT_TRUE(server.child().send_signal(SIGTERM));
  // Accepting stops at once, while the slow client is still being drained.
  EXPECT_TRUE(wait_until(
      [&] {
        TestClient probe = TestClient::connect(server.port(), Deadline(seconds(1)));
        return !probe.valid();
      },
      Deadline(seconds(10))))
      << "new connections are still accepted after SIGTERM";
  std::string rest;
  EXPECT_TRUE(idle.read_until_eof(rest, Deadline(seconds(10)))) << idle.receive_error();

  // Now the slow client reads: every byte arrives, then EOF.
  std::string echoed;
  EXPECT_TRUE(slow.read_exactly(payload.size(), echoed, Deadline(seconds(60))))
      << slow.receive_error();
  EXPECT_TRUE(echoed == payload) << "echo differs from what was sent (" << echoed.size()
                                 << " bytes back)";
  EXPECT_TRUE(slow.read_until_eof(rest, Deadline(seconds(10)))) << slow.receive_error();

  const auto exit = server.child().wait(Deadline(seconds(30)));
  EXPECT_TRUE(exit.exited && exit.code == 0) << server.log();
  const FinalStats stats = server.final_stats();
  // The two clients were drained (so may be a probe that got in before the listener closed).
  EXPECT_GE(stats["drained"], 2u) << stats.describe();
  EXPECT_EQ(stats["cut"], 0u) << stats.describe();
}

TEST_F(Limits, AClientThatKeepsSendingWhileTheServerDrainsGetsEveryEchoThenEof) {
  // Once its echo is all in the kernel, the server ends the connection. This slow client has
  // not read most of it yet and keeps sending. A close() would meet those bytes unread (or
  // have them arrive after it) and answer with a reset, which throws away the echo still in the
  // server's socket buffer; the lingering close sends a FIN after the echo and drops the
  // client's input until the client is done.
  ServerProcess server;
  ASSERT_TRUE(start(server, {"--workers", "1", "--high_water_mark", std::to_string(64 * kMiB),
                             "--shutdown_timeout_ms", "60000"}));
  const std::string payload = random_bytes(8 * kMiB, 10);
  TestClient client = slow_client_with_pending_echo(server, payload);
  ASSERT_TRUE(client.valid());
  ASSERT_TRUE(server.child().send_signal(SIGTERM));

  const std::string chunk(1024, 'x');
  std::vector<char> buffer(16 * 1024);
  std::string echoed;
  bool fin_seen = false;  // from then on the client only reads
  bool eof = false;
  const Deadline deadline(seconds(120));
  while (!eof && !deadline.expired()) {
    if (!fin_seen) {
      ASSERT_GE(client.send_now(chunk), 0) << client.send_error();
    }
    pollfd p{client.fd(), POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    if ((p.revents & POLLRDHUP) != 0) fin_seen = true;
    const ssize_t n = recv(client.fd(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
      ASSERT_TRUE(errno == EAGAIN || errno == EINTR)
          << std::strerror(errno) << " after " << echoed.size() << " of " << payload.size()
          << " bytes of echo";
      continue;
    }
    eof = n == 0;
    echoed.append(buffer.data(), static_cast<std::size_t>(n));
  }
  EXPECT_TRUE(eof) << "no EOF before the deadline";
  // The payload, then the echo of whatever chunks the server read before its drain began.
  ASSERT_GE(echoed.size(), payload.size());
  EXPECT_TRUE(std::string_view(echoed).substr(0, payload.size()) == payload)
      << "echo differs from what was sent";
  EXPECT_EQ(echoed.find_first_not_of('x', payload.size()), std::string::npos);
  client.close();
  const auto exit = server.child().wait(Deadline(seconds(30)));
  EXPECT_TRUE(exit.exited && exit.code == 0) << server.log();
  const FinalStats stats = server.final_stats();
  EXPECT_EQ(stats["bytes_out"], echoed.size()) << stats.describe();
  EXPECT_EQ(stats["drained"], 1u) << stats.describe();
  EXPECT_EQ(stats["cut"], 0u) << stats.describe();
}

TEST_F(Limits, DrainingCutsAClientThatNeverReadsAtTheShutdownTimeoutAndExitsZero) {
  ServerProcess server;
  ASSERT_TRUE(start(server, {"--workers", "1", "--high_water_mark", std::to_string(64 * kMiB),
                             "--shutdown_timeout_ms", "300"}));
  TestClient stuck = slow_client_with_pending_echo(server, random_bytes(8 * kMiB, 8));
  ASSERT_TRUE(stuck.valid());
  const FinalStats stats = stop(server);
  EXPECT_EQ(stats["cut"], 1u) << stats.describe();
  EXPECT_EQ(stats["drained"], 0u) << stats.describe();
}

TEST_F(Limits, ASecondSigtermWhileDrainingExitsAtOnce) {
  ServerProcess server;
  // The flush deadline is far away: only the second signal can end the drain in time.
  ASSERT_TRUE(start(server, {"--workers", "1", "--high_water_mark", std::to_string(64 * kMiB),
                             "--shutdown_timeout_ms", "600000"}));
  TestClient stuck = slow_client_with_pending_echo(server, random_bytes(8 * kMiB, 9));
  ASSERT_TRUE(stuck.valid());
  ASSERT_TRUE(server.child().send_signal(SIGTERM));
  EXPECT_TRUE(server.child().wait(Deadline(milliseconds(500))).timed_out)
      << "the server exited while a client still had pending output";
  ASSERT_TRUE(server.child().send_signal(SIGTERM));
  const auto exit = server.child().wait(Deadline(seconds(30)));
  EXPECT_TRUE(exit.exited && exit.code == 0) << server.log();
  EXPECT_EQ(server.final_stats()["cut"], 1u) << server.final_stats().describe();
}

// ---------------------------------------------------------------------------------------------
// Fairness.

// Bytes written on `fd` that the kernel has not sent yet.
std::size_t unsent_bytes(int fd) {
  int n = 0;
  return ioctl(fd, SIOCOUTQNSD, &n) == 0 ? static_cast<std::size_t>(n) : 0;
}

// Freezes or thaws the whole server process and waits until every thread has stopped.
void freeze(ServerProcess& server) {
  ASSERT_TRUE(server.child().send_signal(SIGSTOP));
  ASSERT_TRUE(wait_until([&] { return process_stopped(server.pid()); }, Deadline(seconds(10))));
}

TEST_F(Limits, ABusyConnectionDoesNotStarveAnotherOnItsWorker) {
  // One worker; several connections with a deep backlog of unread input, and one more client.
  // The server is frozen (SIGSTOP) while the backlog builds up and the other client's request
  // goes in, so when it is thawed every connection is ready at once. With a bounded read per
  // connection per loop iteration the request is answered after a little of each backlog was
  // read; a worker that drained each busy connection first would answer only after reading all
  // of it. The moment the answer arrives the server is frozen again and the unread backlog is
  // measured from the kernel's socket queues.
  constexpr int kFlooders = 8;
  ServerProcess server;
  ASSERT_TRUE(start(server, {"--workers", "1", "--high_water_mark", std::to_string(1024 * kMiB)}));
  TestClient victim = TestClient::connect(server.port(), Deadline(seconds(10)));
  ASSERT_EQ(probe_echo(victim, "warm-up", Deadline(seconds(10))), EchoOutcome::kEchoed);
  std::vector<TestClient> flooders;
  const std::string chunk = random_bytes(4 * kMiB, 3);
  std::string echoed;
  for (int i = 0; i < kFlooders; ++i) {
    flooders.push_back(TestClient::connect(server.port(), Deadline(seconds(10))));
    // Traffic first, so the kernel grows the socket buffers that will hold the backlog.
    for (int round = 0; round < 8; ++round) {
      echoed.clear();
      ASSERT_TRUE(flooders.back().exchange(chunk, echoed, Deadline(seconds(60))))
          << flooders.back().receive_error();
    }
  }

  ASSERT_NO_FATAL_FAILURE(freeze(server));
  std::size_t backlog = 0;
  for (TestClient& f : flooders) {
    for (std::ptrdiff_t n; (n = f.send_now(chunk)) > 0;)
      backlog += static_cast<std::size_t>(n);
  }
  ASSERT_TRUE(victim.send_all("ping", Deadline(seconds(10))));
  ASSERT_TRUE(server.child().send_signal(SIGCONT));
  const std::string answer = victim.read_exactly(4, Deadline(seconds(60)));
  ASSERT_NO_FATAL_FAILURE(freeze(server));
  std::size_t unread = 0;
  for (TestClient& f : flooders) {
    const long queued = receive_queue_bytes(server.port(), local_port_of(f.fd()));
    unread += static_cast<std::size_t>(std::max(0L, queued)) + unsent_bytes(f.fd());
  }
  ASSERT_TRUE(server.child().send_signal(SIGCONT));
  std::printf("fairness: answered with %zu of %zu backlog bytes still unread\n", unread, backlog);
  EXPECT_EQ(answer, "ping");
  EXPECT_GT(backlog, kFlooders * kMiB) << "the backlog is too small to tell";
  EXPECT_GE(unread, backlog / 2) << "the other client was answered only after the busy "
                                    "connections' backlog was read";
  for (TestClient& f : flooders)
    f.reset();
  stop(server);
}

// ---------------------------------------------------------------------------------------------
// Kernel options of accepted sockets, read back with ss(8) (iproute2, installed by
// scripts/lib.sh): the server's end of a connection is the socket whose source port is the
// server's.

// `ss -tnmoi` for the server's end of the connection to the client on `client_port`: a header
// line, then the socket's lines (timer:(keepalive,...), skmem:(...,rbN,...,tbN,...)), or only
// the header when there is no such established socket.
std::string server_side_socket(std::uint16_t server_port, std::uint16_t client_port) {
  ChildProcess ss;
  const std::string filter = "( sport = :" + std::to_string(server_port) +
                             " and dport = :" + std::to_string(client_port) + " )";
  const auto exit = run_to_exit(ss, "/usr/bin/ss", {"-tnmoi", "state", "established", filter}, {},
                                Deadline(seconds(10)));
  EXPECT_TRUE(exit.exited && exit.code == 0)
      << "ss (iproute2) failed: " << ss.error() << ss.stderr_text();
  return ss.stdout_text();
}

bool has_socket(const std::string& ss_output) {
  return ss_output.find("skmem:") != std::string::npos;
}

// A connected client whose echo came back, so the server has accepted it and set its options.
TestClient echoed_client(const ServerProcess& server) {
  TestClient client = TestClient::connect(server.port(), Deadline(seconds(10)));
  EXPECT_EQ(probe_echo(client, "options?", Deadline(seconds(10))), EchoOutcome::kEchoed);
  return client;
}

TEST_P(LimitsPerAcceptMode, AcceptedSocketsGetKeepaliveAndTheConfiguredKernelBuffers) {
  ServerProcess server;
  ASSERT_TRUE(start(server, with_mode({"--workers", "2", "--socket_send_buffer_bytes", "40960",
                                       "--socket_receive_buffer_bytes", "24576"})));
  std::vector<TestClient> clients;
  for (int i = 0; i < 4; ++i) {  // both workers in either mode, whichever way they are dealt
    clients.push_back(echoed_client(server));
    const std::string ss = server_side_socket(server.port(), local_port_of(clients.back().fd()));
    ASSERT_TRUE(has_socket(ss)) << ss;
    EXPECT_NE(ss.find("timer:(keepalive,"), std::string::npos) << ss;
    // The kernel doubles SO_SNDBUF / SO_RCVBUF; ss shows the doubled value.
    EXPECT_NE(ss.find(",tb81920,"), std::string::npos) << ss;
    EXPECT_NE(ss.find(",rb49152,"), std::string::npos) << ss;
  }
  stop(server);
}

TEST_P(LimitsPerAcceptMode, KeepaliveCanBeTurnedOff) {
  ServerProcess server;
  ASSERT_TRUE(start(server, with_mode({"--workers", "1", "--tcp_keepalive", "false"})));
  TestClient client = echoed_client(server);
  const std::string ss = server_side_socket(server.port(), local_port_of(client.fd()));
  ASSERT_TRUE(has_socket(ss)) << ss;
  EXPECT_EQ(ss.find("keepalive"), std::string::npos) << ss;
  stop(server);
}

// A peer that disappears without a FIN or a reset (its host rebooted, a NAT entry expired): the
// client's socket is closed in TCP_REPAIR mode, which drops it without sending anything. The
// server's keepalive probe then finds no socket there; without keepalive the server would hold
// the connection, its descriptor and its max_connections slot forever.
TEST_P(LimitsPerAcceptMode, APeerThatVanishedWithoutAWordIsDroppedByKeepalive) {
  ServerProcess server;
  ASSERT_TRUE(start(server, with_mode({"--workers", "1", "--tcp_keepidle_s", "1",
                                       "--tcp_keepintvl_s", "1", "--tcp_keepcnt", "2"})));
  TestClient client = echoed_client(server);
  const std::uint16_t client_port = local_port_of(client.fd());
  ASSERT_TRUE(has_socket(server_side_socket(server.port(), client_port)));
  const int on = 1;
  if (setsockopt(client.fd(), IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) != 0) {
    GTEST_SKIP() << "TCP_REPAIR needs CAP_NET_ADMIN: " << std::strerror(errno);
  }
  client.close();  // silently: no FIN, no RST
  EXPECT_TRUE(
      wait_until([&] { return !has_socket(server_side_socket(server.port(), client_port)); },
                 Deadline(seconds(60))))
      << "the server still holds the connection of the vanished peer";
  const FinalStats stats = stop(server);
  EXPECT_EQ(stats["closed"], 1u) << stats.describe();
  EXPECT_EQ(stats["errors"], 1u) << "the probe's reset is a socket error" << stats.describe();
}

}  // namespace
}  // namespace mr::test
