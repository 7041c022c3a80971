// Test helper: run a program (usually echo-server) as a child process and watch its output.
//
// Contract: spawn() starts the program with stdin from /dev/null and stdout/stderr captured
// through pipes. The child gets this process's environment minus every MR_* variable (the test
// runner's own MR_SANITIZER_BUILD would otherwise be an unknown option to echo-server) plus the
// `NAME=value` entries given. Every wait takes a Deadline. A child still running when its
// ChildProcess is destroyed is killed with SIGKILL and reaped — by its PID, nothing else.
#pragma once

#include <sys/types.h>

#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "test_client.hpp"

namespace mr::test {

class ChildProcess {
 public:
  struct Exit {
    bool exited = false;     // returned from main / called exit
    int code = -1;           // exit status when `exited`
    bool signaled = false;   // killed by a signal
    int signal = 0;          // that signal when `signaled`
    bool timed_out = false;  // still running at the deadline
  };

  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts `path` with `args` (argv[1..]). Returns false, with error() set, if it cannot.
  bool spawn(const std::string& path, const std::vector<std::string>& args,
             const std::vector<std::string>& extra_env = {});

  pid_t pid() const { return pid_; }
  const std::string& error() const { return error_; }
  // Everything read so far from the child's stdout / stderr.
  const std::string& stdout_text() const { return stdout_; }
  const std::string& stderr_text() const { return stderr_; }

  // Reads stderr until one of its complete lines (from the start) matches `pattern`; returns the
  // match's first capture group (or the whole match when there is none), or nothing at the
  // deadline or when stderr ends first.
  std::optional<std::string> wait_for_stderr_line(const std::regex& pattern,
                                                  const Deadline& deadline);
  // The same without a regex: the first whole line that contains `text`.
  std::optional<std::string> wait_for_stderr_line(std::string_view text, const Deadline& deadline);

  bool send_signal(int signal);
  // Waits for the child to end, draining its output meanwhile. At the deadline it returns
  // `timed_out` and leaves the child running (the destructor kills it).
  Exit wait(const Deadline& deadline);
  // Without waiting: how the child ended if it has (reaped then; wait() returns the same), or
  // nothing while it runs. Reads whatever output is ready either way.
  std::optional<Exit> exit_if_ended();

 private:
  // Reads whatever both pipes hold, waiting at most `timeout_ms`; false once both are at EOF.
  bool pump(int timeout_ms);

  // Reaps the child from a waitpid() status and reads the rest of its output.
  void reap(int status);

  pid_t pid_ = -1;
  bool reaped_ = false;
  Exit exit_;  // how the child ended, once reaped_
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::string stdout_;
  std::string stderr_;
  std::string error_;
};

// Runs `path` to completion (bounded by `deadline`) and returns how it ended; `child` keeps the
// output.
ChildProcess::Exit run_to_exit(ChildProcess& child, const std::string& path,
                               const std::vector<std::string>& args,
                               const std::vector<std::string>& extra_env, const Deadline& deadline);

}  // namespace mr::test
