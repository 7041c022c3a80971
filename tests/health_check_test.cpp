// `echo-server --health-check` against a tiny fake HTTP server on 127.0.0.1, port 0.
#include "admin/health_check.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "multireactor/socket.hpp"

namespace {

using namespace std::chrono_literals;

// Accepts connections one at a time, reads a request head, then answers with `response`; an
// empty response with `hold` keeps the connection open and silent until the server stops, an
// empty one without it closes the connection at once.
class FakeHttpServer {
 public:
  FakeHttpServer(std::string response, bool hold) : response_(std::move(response)), hold_(hold) {
    listen_fd_ = mr::listen_tcp(mr::make_address("127.0.0.1", 0), 16);
    port_ = mr::local_port(listen_fd_);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeHttpServer() {
    stop_.store(true);
    thread_.join();
    close(listen_fd_);
  }
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::vector<std::string> request_lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return request_lines_;
  }

 private:
  bool wait_readable(int fd) {
    while (!stop_.load()) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }

  void run() {
    while (wait_readable(listen_fd_)) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::string head;
      while (head.find("\r\n\r\n") == std::string::npos && head.size() < 8192 &&
             wait_readable(fd)) {
        char buf[1024];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<std::size_t>(n));
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        request_lines_.push_back(head.substr(0, head.find("\r\n")));
      }
      if (!response_.empty()) {
        (void)send(fd, response_.data(), response_.size(), MSG_NOSIGNAL);
      } else if (hold_) {
        while (!stop_.load())
          std::this_thread::sleep_for(10ms);
      }
      close(fd);
    }
  }

  std::string response_;
  bool hold_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::string> request_lines_;
  std::thread thread_;
};

const char* kOk = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n";
const char* kUnavailable =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9\r\n\r\nstopping\n";

// A port on 127.0.0.1 that nothing listens on (bound, then released).
std::uint16_t closed_port() {
  int fd = mr::listen_tcp(mr::make_address("127.0.0.1", 0), 1);
  std::uint16_t port = mr::local_port(fd);
  close(fd);
  return port;
}

// Runs echo-server with `args` and an environment without MR_ variables; returns its exit status.
int run_echo_server(std::vector<std::string> args) {
  args.insert(args.begin(), MR_ECHO_SERVER_PATH);
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

TEST(HealthCheck, OkStatusIsHealthyAndTheRequestAsksForThePath) {
  FakeHttpServer server(kOk, false);
  auto r = mr::probe_http("127.0.0.1", server.port(), "/healthz", 2000ms);
  EXPECT_TRUE(r.healthy) << r.detail;
  EXPECT_EQ(r.status_code, 200);
  ASSERT_EQ(server.request_lines().size(), 1U);
  EXPECT_EQ(server.request_lines()[0], "GET /healthz HTTP/1.1");
}

TEST(HealthCheck, ServiceUnavailableIsUnhealthy) {
  FakeHttpServer server(kUnavailable, false);
  auto r = mr::probe_http("127.0.0.1", server.port(), "/healthz", 2000ms);
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.status_code, 503);
}

TEST(HealthCheck, ServerThatNeverAnswersIsUnhealthyOnceTheTimeoutPasses) {
  FakeHttpServer server("", true);
  auto r = mr::probe_http("127.0.0.1", server.port(), "/healthz", 300ms);
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.status_code, 0);
  EXPECT_NE(r.detail.find("timed out"), std::string::npos) << r.detail;
}

TEST(HealthCheck, ConnectionClosedWithoutAResponseIsUnhealthy) {
  FakeHttpServer server("", false);
  auto r = mr::probe_http("127.0.0.1", server.port(), "/healthz", 2000ms);
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.status_code, 0);
}

TEST(HealthCheck, SomethingOtherThanHttpIsUnhealthy) {
  FakeHttpServer server("SSH-2.0-OpenSSH_9.2\r\n", false);
  auto r = mr::probe_http("127.0.0.1", server.port(), "/healthz", 2000ms);
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.status_code, 0);
  EXPECT_NE(r.detail.find("not an HTTP status line"), std::string::npos) << r.detail;
}

TEST(HealthCheck, RefusedConnectionIsUnhealthy) {
  auto r = mr::probe_http("127.0.0.1", closed_port(), "/healthz", 2000ms);
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.status_code, 0);
}

TEST(HealthCheck, WildcardBindsAreProbedOnLoopback) {
  EXPECT_EQ(mr::probe_address("0.0.0.0"), "127.0.0.1");
  EXPECT_EQ(mr::probe_address("::"), "::1");
  EXPECT_EQ(mr::probe_address("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(mr::probe_address("10.1.2.3"), "10.1.2.3");
}

TEST(HealthCheckCommand, ExitsZeroWhenTheAdminPortOfItsConfigAnswers200) {
  FakeHttpServer server(kOk, false);
  EXPECT_EQ(run_echo_server({"--health-check", "--admin_bind", "0.0.0.0", "--admin_port",
                             std::to_string(server.port())}),
            0);
  ASSERT_EQ(server.request_lines().size(), 1U);
  EXPECT_EQ(server.request_lines()[0], "GET /healthz HTTP/1.1");
}

TEST(HealthCheckCommand, ExitsOneWhenTheAdminPortAnswers503) {
  FakeHttpServer server(kUnavailable, false);
  EXPECT_EQ(run_echo_server({"--health-check", "--admin_bind", "127.0.0.1", "--admin_port",
                             std::to_string(server.port())}),
            1);
}

TEST(HealthCheckCommand, ExitsOneWhenNothingListens) {
  EXPECT_EQ(run_echo_server({"--health-check", "--admin_port", std::to_string(closed_port())}), 1);
}

TEST(HealthCheckCommand, ExitsOneWhenTheAdminListenerIsOff) {
  EXPECT_EQ(run_echo_server({"--health-check", "--admin_port", "0"}), 1);
}

}  // namespace
