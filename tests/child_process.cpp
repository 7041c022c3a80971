#include "child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

extern char** environ;

namespace mr::test {
namespace {

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  close_fd(stdout_fd_);
  close_fd(stderr_fd_);
}

bool ChildProcess::spawn(const std::string& path, const std::vector<std::string>& args,
                         const std::vector<std::string>& extra_env) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    error_ = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    error_ = std::string("pipe2: ") + std::strerror(errno);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return false;
  }

  std::vector<std::string> env_strings;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, "MR_", 3) != 0) env_strings.emplace_back(*entry);
  }
  // The suite's second run names the I/O backend (tests/CMakeLists.txt); child servers take it
  // from their environment like any option.
  if (const char* backend = std::getenv("MULTIREACTOR_TEST_IO_BACKEND"); backend != nullptr) {
    env_strings.push_back(std::string("MR_IO_BACKEND=") + backend);
  }
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& e : env_strings)
    envp.push_back(e.data());
  envp.push_back(nullptr);

  std::vector<std::string> argv_strings;
  argv_strings.push_back(path);
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  // The child starts with default signal dispositions and an empty mask, whatever this process
  // (the test runner) has set.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all;
  sigfillset(&all);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, path.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    error_ = "posix_spawn " + path + ": " + std::strerror(rc);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return false;
  }
  pid_ = pid;
  stdout_fd_ = out_pipe[0];
  stderr_fd_ = err_pipe[0];
  return true;
}

bool ChildProcess::pump(int timeout_ms) {
  pollfd fds[2];
  std::string* sinks[2];
  int* owners[2];
  nfds_t count = 0;
  if (stdout_fd_ >= 0) {
    fds[count] = {stdout_fd_, POLLIN, 0};
    sinks[count] = &stdout_;
    owners[count++] = &stdout_fd_;
  }
  if (stderr_fd_ >= 0) {
    fds[count] = {stderr_fd_, POLLIN, 0};
    sinks[count] = &stderr_;
    owners[count++] = &stderr_fd_;
  }
  if (count == 0) return false;
  int n = ::poll(fds, count, timeout_ms);
  if (n <= 0) return true;
  for (nfds_t i = 0; i < count; ++i) {
    if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    char buffer[4096];
    ssize_t r = ::read(fds[i].fd, buffer, sizeof buffer);
    if (r > 0) {
      sinks[i]->append(buffer, static_cast<std::size_t>(r));
    } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
      close_fd(*owners[i]);
    }
  }
  return stdout_fd_ >= 0 || stderr_fd_ >= 0;
}

std::optional<std::string> ChildProcess::wait_for_stderr_line(const std::regex& pattern,
                                                              const Deadline& deadline) {
  std::size_t scanned = 0;  // stderr_ before this offset holds lines already tried
  for (;;) {
    for (std::size_t eol; (eol = stderr_.find('\n', scanned)) != std::string::npos;
         scanned = eol + 1) {
      const std::string line = stderr_.substr(scanned, eol - scanned);
      std::smatch match;
      if (std::regex_search(line, match, pattern)) {
        return match.size() > 1 ? match[1].str() : match[0].str();
      }
    }
    if (deadline.expired() || stderr_fd_ < 0) return std::nullopt;
    pump(deadline.poll_timeout_ms());
  }
}

std::optional<std::string> ChildProcess::wait_for_stderr_line(std::string_view text,
                                                              const Deadline& deadline) {
  std::size_t scanned = 0;
  for (;;) {
    for (std::size_t eol; (eol = stderr_.find('\n', scanned)) != std::string::npos;
         scanned = eol + 1) {
      std::string line = stderr_.substr(scanned, eol - scanned);
      if (line.find(text) != std::string::npos) return line;
    }
    if (deadline.expired() || stderr_fd_ < 0) return std::nullopt;
    pump(deadline.poll_timeout_ms());
  }
}

bool ChildProcess::send_signal(int signal) {
  if (pid_ <= 0 || reaped_) return false;
  return ::kill(pid_, signal) == 0;
}

ChildProcess::Exit ChildProcess::wait(const Deadline& deadline) {
  Exit result;
  if (pid_ <= 0) return result;
  if (reaped_) return exit_;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) return result;
    if (deadline.expired()) {
      result.timed_out = true;
      return result;
    }
    // Drain output while waiting (a child blocked on a full pipe would never exit); when both
    // pipes are closed, sleep a little instead.
    if (!pump(std::min(deadline.poll_timeout_ms(), 20))) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  reap(status);
  return exit_;
}

std::optional<ChildProcess::Exit> ChildProcess::exit_if_ended() {
  if (pid_ <= 0) return std::nullopt;
  if (reaped_) return exit_;
  pump(0);
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
  reap(status);
  return exit_;
}

void ChildProcess::reap(int status) {
  reaped_ = true;
  // The child is gone, so its pipe ends are closed: read what is left up to EOF (bounded, in
  // case a grandchild still holds them).
  const Deadline drain(std::chrono::seconds(2));
  while (!drain.expired() && pump(drain.poll_timeout_ms())) {
  }
  exit_ = Exit{};
  if (WIFEXITED(status)) {
    exit_.exited = true;
    exit_.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_.signaled = true;
    exit_.signal = WTERMSIG(status);
  }
}

ChildProcess::Exit run_to_exit(ChildProcess& child, const std::string& path,
                               const std::vector<std::string>& args,
                               const std::vector<std::string>& extra_env,
                               const Deadline& deadline) {
  if (!child.spawn(path, args, extra_env)) return {};
  return child.wait(deadline);
}

}  // namespace mr::test
