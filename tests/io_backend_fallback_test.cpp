// io_backend against the real echo-server (issue 15): where the host takes io_uring away — a
// seccomp profile answering ENOSYS (the container runtimes' default profiles) or EPERM
// (kernel.io_uring_disabled), both played by deny_io_uring — `auto` serves on epoll and says so
// in /stats and /metrics, and `io_uring` refuses to start with exit status 2 and a line naming
// io_backend and the errno. Where the host allows io_uring, `io_uring` runs on it, and `auto`
// picks it.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/io_uring.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <memory>
#include <ostream>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "admin_http.hpp"
#include "child_process.hpp"
#include "test_client.hpp"

namespace mr {
namespace {

using namespace std::chrono_literals;
using test::ChildProcess;
using test::Deadline;

struct Denial {
  const char* name;  // deny_io_uring's argument
  int error;
};
const Denial kDenials[] = {{"ENOSYS", ENOSYS}, {"EPERM", EPERM}};
void PrintTo(const Denial& denial, std::ostream* out) {
  *out << denial.name;
}

// Why this process cannot create an io_uring ring, "" when it can (the tests that need the host
// to allow it skip otherwise).
std::string host_denies_io_uring() {
  io_uring_params params{};
  const long ring = ::syscall(__NR_io_uring_setup, 1, &params);
  if (ring < 0) return std::string("io_uring_setup: ") + std::strerror(errno);
  ::close(static_cast<int>(ring));
  return "";
}

// The command line that runs echo-server with `options`, under deny_io_uring when `denial`.
std::vector<std::string> server_command(const Denial* denial, std::vector<std::string> options) {
  options.insert(options.begin(), MR_ECHO_SERVER_PATH);
  if (denial != nullptr)
    options.insert(options.begin(), {MR_DENY_IO_URING_PATH, denial->name, "--"});
  return options;
}

struct Running {
  std::unique_ptr<ChildProcess> child;
  std::uint16_t port = 0;
  std::uint16_t admin_port = 0;
};

// Starts echo-server on 127.0.0.1:0 with an admin port that was free a moment ago (retried with
// another when it was taken in between).
Running start_server(const Denial* denial, const std::vector<std::string>& options) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::uint16_t admin_port = test::free_port();
    std::vector<std::string> all = options;
    all.insert(all.end(), {"--bind", "127.0.0.1", "--port", "0", "--admin_port",
                           std::to_string(admin_port), "--workers", "2"});
    std::vector<std::string> command = server_command(denial, all);
    auto child = std::make_unique<ChildProcess>();
    const std::string program = command.front();
    command.erase(command.begin());
    if (!child->spawn(program, command)) {
      ADD_FAILURE() << child->error();
      return {};
    }
    const auto port = child->wait_for_stderr_line(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"),
                                                  Deadline(10s));
    const auto admin =
        port ? child->wait_for_stderr_line(std::regex(R"(admin endpoint on 127\.0\.0\.1:(\d+))"),
                                           Deadline(10s))
             : std::nullopt;
    if (port && admin) {
      return {std::move(child), static_cast<std::uint16_t>(std::stoi(*port)),
              static_cast<std::uint16_t>(std::stoi(*admin))};
    }
    child->wait(Deadline(2s));
    if (attempt == 2 || child->stderr_text().find("Address already in use") == std::string::npos) {
      ADD_FAILURE() << "echo-server did not start:\n" << child->stderr_text();
      return {};
    }
  }
  return {};
}

void expect_echo(std::uint16_t port) {
  test::TestClient client = test::TestClient::connect(port, Deadline(5s));
  ASSERT_TRUE(client.valid()) << client.connect_error();
  const std::string payload = test::random_bytes(256 * 1024, 15);
  std::string echoed;
  ASSERT_TRUE(client.exchange(payload, echoed, Deadline(20s)));
  EXPECT_EQ(echoed, payload);
}

// /stats' io_backend and io_backend_reason (which, when given, must contain `reason_part`), and
// that /metrics' build_info carries the same backend as a label.
void expect_backend(const Running& server, const std::string& backend,
                    const std::string& reason_part = "") {
  const auto stats = test::http_get(server.admin_port, "/stats", Deadline(5s));
  ASSERT_EQ(stats.status, 200) << stats.error;
  const auto json = nlohmann::json::parse(stats.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(json.is_object()) << stats.body;
  ASSERT_TRUE(json.contains("io_backend")) << stats.body;
  EXPECT_EQ(json["io_backend"], backend) << stats.body;
  ASSERT_TRUE(json.contains("io_backend_reason")) << stats.body;
  ASSERT_TRUE(json["io_backend_reason"].is_string()) << stats.body;
  const auto reason = json["io_backend_reason"].get<std::string>();
  EXPECT_FALSE(reason.empty()) << stats.body;
  EXPECT_NE(reason.find(reason_part), std::string::npos) << stats.body;

  const auto metrics = test::http_get(server.admin_port, "/metrics", Deadline(5s));
  ASSERT_EQ(metrics.status, 200) << metrics.error;
  const std::regex build_info("\nmultireactor_build_info\\{[^}]*io_backend=\"" + backend +
                              "\"[^}]*\\} 1\n");
  EXPECT_TRUE(std::regex_search(metrics.body, build_info)) << metrics.body;
}

void stop(Running& server) {
  ASSERT_TRUE(server.child);
  EXPECT_TRUE(server.child->send_signal(SIGTERM));
  const auto exit = server.child->wait(Deadline(15s));
  EXPECT_TRUE(exit.exited) << server.child->stderr_text();
  EXPECT_EQ(exit.code, 0) << server.child->stderr_text();
}

class IoBackendDenied : public testing::TestWithParam<Denial> {};

TEST_P(IoBackendDenied, AutoFallsBackToEpollAndServes) {
  Running server = start_server(&GetParam(), {"--io_backend=auto"});
  ASSERT_TRUE(server.child);
  expect_echo(server.port);
  // The reason says what was missing, as the exit-2 line does (e.g. "io_uring_setup: Function
  // not implemented").
  expect_backend(server, "epoll", std::strerror(GetParam().error));
  stop(server);
}

TEST_P(IoBackendDenied, IoUringRequestedExits2NamingIoBackendAndTheError) {
  ChildProcess child;
  std::vector<std::string> command = server_command(
      &GetParam(),
      {"--io_backend=io_uring", "--bind", "127.0.0.1", "--port", "0", "--admin_port", "0"});
  const std::string program = command.front();
  command.erase(command.begin());
  const auto exit = test::run_to_exit(child, program, command, {}, Deadline(20s));
  ASSERT_TRUE(exit.exited) << child.error() << child.stderr_text();
  EXPECT_EQ(exit.code, 2) << child.stderr_text();
  bool named = false;
  for (const std::string& line : test::lines_of(child.stderr_text())) {
    named = named || (line.find("io_backend") != std::string::npos &&
                      line.find(std::strerror(GetParam().error)) != std::string::npos);
  }
  EXPECT_TRUE(named) << "no stderr line names io_backend and \"" << std::strerror(GetParam().error)
                     << "\":\n"
                     << child.stderr_text();
  EXPECT_EQ(child.stderr_text().find("listening on"), std::string::npos) << child.stderr_text();
}

INSTANTIATE_TEST_SUITE_P(Errno, IoBackendDenied, testing::ValuesIn(kDenials),
                         [](const testing::TestParamInfo<Denial>& param) {
                           return std::string(param.param.name);
                         });

TEST(IoBackendAllowed, IoUringRequestedRunsOnIoUringAndServes) {
  if (const std::string why = host_denies_io_uring(); !why.empty()) {
    GTEST_SKIP() << "this host denies io_uring (" << why << ")";
  }
  Running server = start_server(nullptr, {"--io_backend=io_uring"});
  ASSERT_TRUE(server.child);
  expect_echo(server.port);
  expect_backend(server, "io_uring");
  stop(server);
}

TEST(IoBackendAllowed, AutoPicksIoUringWhereIoUringStarts) {
  if (const std::string why = host_denies_io_uring(); !why.empty()) {
    GTEST_SKIP() << "this host denies io_uring (" << why << ")";
  }
  {
    // Only where io_uring itself starts: `auto` may also want kernel features beyond the ring.
    Running forced = start_server(nullptr, {"--io_backend=io_uring"});
    ASSERT_TRUE(forced.child);
    stop(forced);
  }
  Running server = start_server(nullptr, {"--io_backend=auto"});
  ASSERT_TRUE(server.child);
  expect_echo(server.port);
  expect_backend(server, "io_uring");
  stop(server);
}

}  // namespace
}  // namespace mr
