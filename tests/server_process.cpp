#include "server_process.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <utility>

namespace mr::test {
namespace {

// Adds every `key=value` token of `text` (value a plain integer) into `into`.
void add_counters(const std::string& text, std::map<std::string, std::uint64_t>& into) {
  static const std::regex token(R"(([a-z_]+)=(\d+))");
  for (std::sregex_iterator it(text.begin(), text.end(), token), end; it != end; ++it) {
    into[(*it)[1].str()] += std::stoull((*it)[2].str());
  }
}

std::uint64_t status_kib(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stoull(line.substr(prefix.size())) * 1024;
  }
  return 0;
}

}  // namespace

FinalStats FinalStats::parse(const std::string& log) {
  FinalStats stats;
  std::istringstream lines(log);
  std::string line;
  static const std::regex worker_line(R"(final stats worker \d+: (.*)$)");
  static const std::regex total_line(R"(final stats: .*\| (accept_errors=\d+ rejected=\d+))");
  while (std::getline(lines, line)) {
    std::smatch match;
    if (std::regex_search(line, match, worker_line)) {
      add_counters(match[1].str(), stats.values_);
      stats.found_ = true;
    } else if (std::regex_search(line, match, total_line)) {
      add_counters(match[1].str(), stats.values_);
    }
  }
  return stats;
}

std::uint64_t FinalStats::operator[](const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? 0 : it->second;
}

std::string FinalStats::describe() const {
  std::string out;
  for (const auto& [key, value] : values_)
    out += key + "=" + std::to_string(value) + " ";
  return out;
}

bool ServerProcess::start(const std::vector<std::string>& args, unsigned nofile_limit,
                          std::uint64_t data_limit_bytes) {
  std::vector<std::string> argv;
  std::string path = MR_ECHO_SERVER_PATH;
  if (nofile_limit > 0 || data_limit_bytes > 0) {
    // prlimit sets both limits and execs the server in its place.
    if (nofile_limit > 0) {
      argv.push_back("--nofile=" + std::to_string(nofile_limit) + ":" +
                     std::to_string(nofile_limit));
    }
    if (data_limit_bytes > 0) {
      argv.push_back("--data=" + std::to_string(data_limit_bytes) + ":" +
                     std::to_string(data_limit_bytes));
    }
    argv.insert(argv.end(), {"--", path});
    path = "/usr/bin/prlimit";
  }
  // The server refuses a flag given twice: a default the caller gives is left out.
  for (const auto& [flag, value] : {std::pair<std::string, std::string>{"--bind", "127.0.0.1"},
                                    {"--port", "0"},
                                    {"--admin_port", "0"}}) {
    if (std::find(args.begin(), args.end(), flag) == args.end()) {
      argv.insert(argv.end(), {flag, value});
    }
  }
  argv.insert(argv.end(), args.begin(), args.end());
  if (!child_.spawn(path, argv)) {
    error_ = child_.error();
    return false;
  }
  static const std::regex listening(R"(listening on [^ ]+:(\d+) workers=)");
  // Sanitizer builds start slowly; the bound only guards against a server that never starts.
  auto port = child_.wait_for_stderr_line(listening, Deadline(std::chrono::seconds(30)));
  if (!port) {
    error_ = "echo-server did not log its port; stderr:\n" + child_.stderr_text();
    return false;
  }
  port_ = static_cast<std::uint16_t>(std::stoul(*port));
  return true;
}

ChildProcess::Exit ServerProcess::terminate(const Deadline& deadline) {
  child_.send_signal(SIGTERM);
  return child_.wait(deadline);
}

EchoOutcome probe_echo(TestClient& client, std::string_view message, const Deadline& deadline) {
  if (!client.send_all(message, deadline)) {
    return client.send_error().find("deadline") != std::string::npos ? EchoOutcome::kNoAnswer
                                                                     : EchoOutcome::kRefused;
  }
  std::string echoed;
  if (client.read_exactly(message.size(), echoed, deadline)) {
    return echoed == message ? EchoOutcome::kEchoed : EchoOutcome::kWrongBytes;
  }
  return client.receive_error().find("deadline") != std::string::npos ? EchoOutcome::kNoAnswer
                                                                      : EchoOutcome::kRefused;
}

const char* to_string(EchoOutcome outcome) {
  switch (outcome) {
    case EchoOutcome::kEchoed:
      return "echoed";
    case EchoOutcome::kRefused:
      return "refused";
    case EchoOutcome::kNoAnswer:
      return "no answer";
    case EchoOutcome::kWrongBytes:
      return "wrong bytes";
  }
  return "?";
}

std::uint64_t rss_bytes(pid_t pid) {
  return status_kib(pid, "VmRSS");
}

std::uint64_t peak_rss_bytes(pid_t pid) {
  return status_kib(pid, "VmHWM");
}

bool process_stopped(pid_t pid) {
  DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (dir == nullptr) return false;
  bool all_stopped = true;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + entry->d_name + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close_paren = text.rfind(')');
    if (close_paren == std::string::npos || close_paren + 2 >= text.size()) continue;
    if (text[close_paren + 2] != 'T' && text[close_paren + 2] != 't') all_stopped = false;
  }
  closedir(dir);
  return all_stopped;
}

std::size_t open_fds(pid_t pid) {
  std::size_t n = 0;
  if (DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++n;
    }
    closedir(dir);
  }
  return n;
}

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name may hold spaces: the fields we want follow its closing parenthesis.
  const auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(close_paren + 2));
  std::string field;
  // After the name: state(3) ... utime is field 14 and stime field 15 of the whole line.
  std::uint64_t utime = 0;
  std::uint64_t stime = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::stoull(field);
    if (index == 15) {
      stime = std::stoull(field);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

namespace {

// The hard limit on the /proc/PID/limits line that starts with `name`; -1 if unknown/unlimited.
long long hard_limit(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    std::istringstream fields(line.substr(name.size()));
    std::string soft;
    std::string hard;
    fields >> soft >> hard;
    if (hard == "unlimited") return -1;
    return std::stoll(hard);
  }
  return -1;
}

}  // namespace

long nofile_hard_limit(pid_t pid) {
  return static_cast<long>(hard_limit(pid, "Max open files"));
}

long long data_hard_limit(pid_t pid) {
  return hard_limit(pid, "Max data size");
}

std::uint64_t raise_own_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

long receive_queue_bytes(std::uint16_t local_port, std::uint16_t remote_port) {
  // Lines: "sl local_address rem_address st tx_queue:rx_queue ...", addresses as HEX_IP:HEX_PORT.
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues;
    if (!(fields >> slot >> local >> remote >> state >> queues)) continue;
    const auto port_of = [](const std::string& address) {
      return static_cast<std::uint16_t>(
          std::stoul(address.substr(address.find(':') + 1), nullptr, 16));
    };
    if (port_of(local) != local_port || port_of(remote) != remote_port) continue;
    return std::stol(queues.substr(queues.find(':') + 1), nullptr, 16);
  }
  return -1;
}

std::uint16_t local_port_of(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return 0;
  return ntohs(address.sin_port);
}

bool start_or_fail(ServerProcess& server, const std::vector<std::string>& args,
                   unsigned nofile_limit, std::uint64_t data_limit_bytes) {
  const bool started = server.start(args, nofile_limit, data_limit_bytes);
  EXPECT_TRUE(started) << server.error();
  return started;
}

FinalStats stop_cleanly(ServerProcess& server, const Deadline& deadline) {
  const auto exit = server.terminate(deadline);
  EXPECT_TRUE(exit.exited && exit.code == 0)
      << "exited=" << exit.exited << " code=" << exit.code << " signal=" << exit.signal
      << " timed_out=" << exit.timed_out << "\n"
      << server.log();
  FinalStats stats = server.final_stats();
  EXPECT_TRUE(stats.found()) << server.log();
  return stats;
}

}  // namespace mr::test
