// The deny_io_uring launcher the io_backend fallback tests start echo-server under: the io_uring
// calls fail with the errno asked for, in the program and in everything it starts, while every
// other call still works; without it, the same probe gets a ring.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "test_client.hpp"

namespace mr {
namespace {

using namespace std::chrono_literals;
using test::ChildProcess;
using test::Deadline;

// io_uring call -> "0" or the errno name, as io_uring_probe printed them.
using ProbeAnswers = std::map<std::string, std::string>;

ProbeAnswers parse_probe(const std::string& text) {
  ProbeAnswers answers;
  std::istringstream lines(text);
  std::string call;
  std::string answer;
  while (lines >> call >> answer)
    answers[call] = answer;
  return answers;
}

// Runs `path args` to its end; the probe's answers, or a test failure when it did not exit 0.
ProbeAnswers run_probe(const std::string& path, const std::vector<std::string>& args) {
  ChildProcess child;
  const auto exit = test::run_to_exit(child, path, args, {}, Deadline(30s));
  EXPECT_TRUE(exit.exited && exit.code == 0) << path << " did not exit 0 (" << exit.code << "):\n"
                                             << child.error() << child.stderr_text();
  return parse_probe(child.stdout_text());
}

const ProbeAnswers kAllowed = {
    {"io_uring_setup", "0"}, {"io_uring_enter", "EBADF"}, {"io_uring_register", "EBADF"}};

ProbeAnswers all_failing_with(const std::string& name) {
  ProbeAnswers answers = {
      {"io_uring_setup", name}, {"io_uring_enter", name}, {"io_uring_register", name}};
#if defined(__x86_64__)
  answers["io_uring_setup_x32"] = name;  // the filter masks the x32 bit before it compares
#endif
  return answers;
}

TEST(DenyIoUring, WithEnosysEveryIoUringCallFailsWithEnosys) {
  EXPECT_EQ(run_probe(MR_DENY_IO_URING_PATH, {"ENOSYS", "--", MR_IO_URING_PROBE_PATH}),
            all_failing_with("ENOSYS"));
}

TEST(DenyIoUring, WithEpermEveryIoUringCallFailsWithEperm) {
  EXPECT_EQ(run_probe(MR_DENY_IO_URING_PATH, {"EPERM", "--", MR_IO_URING_PROBE_PATH}),
            all_failing_with("EPERM"));
}

TEST(DenyIoUring, WithoutTheLauncherTheProbeGetsARing) {
  ProbeAnswers answers = run_probe(MR_IO_URING_PROBE_PATH, {});
  answers.erase("io_uring_setup_x32");  // ENOSYS where the kernel has no x32 ABI: either is fine
  if (answers.count("io_uring_setup") != 0 && answers.at("io_uring_setup") != "0") {
    GTEST_SKIP() << "this host denies io_uring itself (io_uring_setup: "
                 << answers.at("io_uring_setup")
                 << "; kernel.io_uring_disabled or a seccomp profile): nothing to compare with";
  }
  EXPECT_EQ(answers, kAllowed);
}

TEST(DenyIoUring, TheFilterHoldsInEveryProcessTheProgramStarts) {
  // A shell that forks the probe: the filter is inherited across fork and exec, as echo-server's
  // threads inherit it.
  const std::string command = std::string(MR_IO_URING_PROBE_PATH) + "; exit 0";
  EXPECT_EQ(run_probe(MR_DENY_IO_URING_PATH, {"ENOSYS", "--", "/bin/sh", "-c", command}),
            all_failing_with("ENOSYS"));
}

TEST(DenyIoUring, EchoServerRunsUnderItAndEchoes) {
  // What the io_backend fallback tests build on: echo-server (epoll) starts, serves and stops
  // cleanly with io_uring denied.
  ChildProcess server;
  ASSERT_TRUE(server.spawn(MR_DENY_IO_URING_PATH, {"ENOSYS", "--", MR_ECHO_SERVER_PATH, "--bind",
                                                   "127.0.0.1", "--port", "0", "--workers", "2"}))
      << server.error();
  const auto port =
      server.wait_for_stderr_line(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), Deadline(10s));
  ASSERT_TRUE(port) << server.stderr_text();
  {
    test::TestClient client =
        test::TestClient::connect(static_cast<std::uint16_t>(std::stoi(*port)), Deadline(5s));
    ASSERT_TRUE(client.valid()) << client.connect_error();
    const std::string payload = test::random_bytes(64 * 1024, 15);
    std::string echoed;
    ASSERT_TRUE(client.exchange(payload, echoed, Deadline(20s)));
    EXPECT_EQ(echoed, payload);
  }
  ASSERT_TRUE(server.send_signal(SIGTERM));
  const auto exit = server.wait(Deadline(15s));
  EXPECT_TRUE(exit.exited && exit.code == 0) << server.stderr_text();
}

TEST(DenyIoUring, PassesArgumentsAndTheExitStatusThrough) {
  ChildProcess child;
  const auto exit = test::run_to_exit(
      child, MR_DENY_IO_URING_PATH,
      {"EPERM", "--", "/bin/sh", "-c", "echo \"$1 $2\"; exit 7", "sh", "a b", "c"}, {},
      Deadline(30s));
  EXPECT_TRUE(exit.exited) << child.stderr_text();
  EXPECT_EQ(exit.code, 7) << child.stderr_text();
  EXPECT_EQ(child.stdout_text(), "a b c\n");
}

TEST(DenyIoUring, UsageErrorsExit125AndAMissingProgram127) {
  struct Case {
    std::vector<std::string> args;
    int code;
  };
  const std::vector<Case> cases = {
      {{"EINVAL", "--", "/bin/true"}, 125},       // only ENOSYS and EPERM
      {{"ENOSYS", "/bin/true"}, 125},             // no "--"
      {{"ENOSYS", "--"}, 125},                    // no program
      {{"ENOSYS", "--", "/nonexistent/x"}, 127},  // not found
  };
  for (const Case& c : cases) {
    ChildProcess child;
    const auto exit = test::run_to_exit(child, MR_DENY_IO_URING_PATH, c.args, {}, Deadline(30s));
    EXPECT_TRUE(exit.exited) << c.args[0];
    EXPECT_EQ(exit.code, c.code) << c.args[0] << " " << c.args[1] << ": " << child.stderr_text();
    EXPECT_NE(child.stderr_text().find("deny_io_uring"), std::string::npos) << child.stderr_text();
  }
}

}  // namespace
}  // namespace mr
