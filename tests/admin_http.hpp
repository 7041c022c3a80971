// Test helpers for the admin endpoint: a GET through cpp-httplib (the HTTP client the tests and
// echo-bench share), a one-shot exchange of raw bytes over TestClient (for requests no client
// would send: malformed, partial, oversized), a free-port picker for programs that need a port
// number up front, temporary directories, and running a command with a file on its standard
// input (promtool).
//
// Contract: every call is bounded by the Deadline it is given; nothing here throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "test_client.hpp"

namespace mr::test {

struct HttpResponse {
  int status = 0;  // 0 when no status line arrived
  std::string head;
  std::string body;
  std::string error;  // why the exchange failed, when it did
};

// Sends `raw` to 127.0.0.1:port and reads until the server closes; parses the status line and
// splits head and body (the body is what follows the blank line, as sent).
HttpResponse http_exchange(std::uint16_t port, std::string_view raw, const Deadline& deadline);
// GET `target` with cpp-httplib (HTTP/1.1, Connection: close); the head is rebuilt from the
// status and header fields it parsed, the body is decoded (chunking undone).
HttpResponse http_get(std::uint16_t port, std::string_view target, const Deadline& deadline);
// The value of header `name` (case-insensitive) in `head`, "" when absent.
std::string header_value(const std::string& head, std::string_view name);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to 0, read, closed).
std::uint16_t free_port();

// A fresh directory under $TMPDIR (or /tmp), removed with its content by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
// `text` split at newlines (the newlines dropped).
std::vector<std::string> lines_of(const std::string& text);
bool write_file(const std::string& path, std::string_view content);

// The absolute path of `program` found in PATH (or /usr/bin, /usr/sbin), "" when absent.
std::string find_program(const std::string& program);

struct CommandResult {
  bool finished = false;  // false: could not start, or still running at the deadline (killed)
  int exit_code = -1;
  std::string output;  // stdout then stderr
};
// Runs argv[0] (a path) with `input_file` as its standard input.
CommandResult run_with_input_file(const std::vector<std::string>& argv,
                                  const std::string& input_file, const Deadline& deadline);

// Percent-encodes everything but unreserved characters (for query strings).
std::string url_encode(std::string_view text);

}  // namespace mr::test
