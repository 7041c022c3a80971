#include "admin_http.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "child_process.hpp"

namespace mr::test {

HttpResponse http_exchange(std::uint16_t port, std::string_view raw, const Deadline& deadline) {
  HttpResponse response;
  TestClient client = TestClient::connect(port, deadline);
  if (!client.valid()) {
    response.error = "connect: " + client.connect_error();
    return response;
  }
  if (!client.send_all(raw, deadline)) {
    response.error = "send: " + client.send_error();
    return response;
  }
  std::string all;
  if (!client.read_until_eof(all, deadline, 64 << 20)) {
    response.error = "read: " + client.receive_error();
  }
  const std::size_t blank = all.find("\r\n\r\n");
  response.head = all.substr(0, blank);
  if (blank != std::string::npos) response.body = all.substr(blank + 4);
  // "HTTP/1.1 200 OK"
  if (all.rfind("HTTP/1.", 0) == 0 && all.size() >= 12) {
    response.status = std::atoi(all.substr(9, 3).c_str());
  } else if (response.error.empty()) {
    response.error = "no status line in: " + all.substr(0, 80);
  }
  return response;
}

HttpResponse http_get(std::uint16_t port, std::string_view target, const Deadline& deadline) {
  HttpResponse response;
  httplib::Client client("127.0.0.1", port);
  const auto budget = std::chrono::milliseconds(std::max(1, deadline.poll_timeout_ms()));
  client.set_connection_timeout(budget);
  client.set_read_timeout(budget);
  client.set_write_timeout(budget);
  client.set_keep_alive(false);
  const httplib::Result result = client.Get(std::string(target), {{"User-Agent", "mr-tests"}});
  if (!result) {
    response.error = httplib::to_string(result.error());
    return response;
  }
  response.status = result->status;
  // The head as it came, less the body's framing (cpp-httplib has undone any chunking).
  response.head = "HTTP/1.1 " + std::to_string(result->status) + " " + result->reason;
  for (const auto& [name, value] : result->headers) {
    response.head += "\r\n";
    response.head += name;
    response.head += ": ";
    response.head += value;
  }
  response.body = result->body;
  return response;
}

std::string header_value(const std::string& head, std::string_view name) {
  std::istringstream lines(head);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t colon = line.find(':');
    if (colon != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < colon; ++i) {
      same = same && std::tolower(static_cast<unsigned char>(line[i])) ==
                         std::tolower(static_cast<unsigned char>(name[i]));
    }
    if (!same) continue;
    std::size_t value = colon + 1;
    while (value < line.size() && line[value] == ' ')
      ++value;
    return line.substr(value);
  }
  return "";
}

std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  std::uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/mr-admin-test-XXXXXX";
  if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  return lines;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool write_file(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return static_cast<bool>(out);
}

std::string find_program(const std::string& program) {
  std::string dirs = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  dirs += ":/usr/bin:/usr/sbin:/bin";
  std::istringstream parts(dirs);
  std::string dir;
  while (std::getline(parts, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

CommandResult run_with_input_file(const std::vector<std::string>& argv,
                                  const std::string& input_file, const Deadline& deadline) {
  // ChildProcess gives its children /dev/null as stdin; a shell redirect supplies the file.
  // Each word single-quoted, after a space (appends only: GCC 12 misreads operator+ here).
  auto append_quoted = [](std::string& out, const std::string& word) {
    out += " '";
    for (char c : word) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    out += '\'';
  };
  std::string command = "exec";
  for (const auto& word : argv)
    append_quoted(command, word);
  command += " <";
  append_quoted(command, input_file);
  ChildProcess child;
  const ChildProcess::Exit exit = run_to_exit(child, "/bin/sh", {"-c", command}, {}, deadline);
  CommandResult result;
  result.finished = exit.exited;
  result.exit_code = exit.code;
  result.output = child.stdout_text() + child.stderr_text();
  if (!child.error().empty()) result.output += child.error();
  return result;
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace mr::test
