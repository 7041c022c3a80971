#include "admin/http_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <exception>
#include <optional>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "multireactor/fd.hpp"
#include "multireactor/socket.hpp"

namespace mr {
namespace {

using Clock = std::chrono::steady_clock;

// Bounds on what we accept: the admin endpoint's answers are a few KiB (/stats grows with the
// workers); anything far larger is not the server we meant to ask.
constexpr std::size_t kMaxStatusLine = 1024;
constexpr std::size_t kMaxHead = 64 * 1024;
constexpr std::size_t kMaxResponse = 16 * 1024 * 1024;

// Waits for `events` on `fd` until `deadline`. Returns "" when ready, else why not.
std::string wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return "timed out";
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return "";
    if (n < 0 && errno != EINTR)
      return fmt::format("poll: {}", std::generic_category().message(errno));
  }
}

// "HTTP/1.1 200 OK" -> 200; 0 when the line is not an HTTP/1.x status line.
int parse_status_line(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return 0;
  int code = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return 0;
    code = code * 10 + (line[i] - '0');
  }
  if (line.size() > 12 && line[12] != ' ') return 0;
  return code;
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The value of header `name` in `head` (the header lines after the status line, each ending in
// "\r\n"), or nullopt.
std::optional<std::string_view> header_value(std::string_view head, std::string_view name) {
  while (!head.empty()) {
    const std::size_t end = head.find("\r\n");
    const std::string_view line = head.substr(0, end);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && equals_ignoring_case(line.substr(0, colon), name))
      return trim(line.substr(colon + 1));
    if (end == std::string_view::npos) break;
    head.remove_prefix(end + 2);
  }
  return std::nullopt;
}

// Digits in `base` (10 or 16) making up all of `text`; nullopt when empty, not digits, or huge.
std::optional<std::size_t> parse_size(std::string_view text, unsigned base) {
  if (text.empty() || text.size() > 15) return std::nullopt;
  std::size_t value = 0;
  for (const char c : text) {
    const char l = lower(c);
    unsigned digit = 0;
    if (l >= '0' && l <= '9') {
      digit = static_cast<unsigned>(l - '0');
    } else if (base == 16 && l >= 'a' && l <= 'f') {
      digit = static_cast<unsigned>(l - 'a' + 10);
    } else {
      return std::nullopt;
    }
    value = value * base + digit;
  }
  return value;
}

// The received bytes of one response, read on demand until a deadline. After a false return,
// error() says why ("" when the peer closed the connection cleanly).
class ResponseReader {
 public:
  ResponseReader(int fd, Clock::time_point deadline) : fd_(fd), deadline_(deadline) {}

  const std::string& data() const { return data_; }
  const std::string& error() const { return error_; }
  bool closed() const { return closed_; }

  // Reads what has arrived (at least one byte). False at the end of the stream or on error.
  bool read_more() {
    if (closed_) return false;
    for (;;) {
      if (data_.size() >= kMaxResponse) {
        error_ = fmt::format("response larger than {} bytes", kMaxResponse);
        return false;
      }
      if (std::string why = wait_for(fd_, POLLIN, deadline_); !why.empty()) {
        error_ = std::move(why);
        return false;
      }
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) {
        error_ = fmt::format("recv: {}", std::generic_category().message(errno));
        return false;
      }
      if (n == 0) {
        closed_ = true;
        return false;
      }
      data_.append(buf, static_cast<std::size_t>(n));
      return true;
    }
  }

  // The position of `delimiter` at or after `from`, reading until it arrives or `limit` bytes
  // are held; npos if it does not.
  std::size_t find(std::string_view delimiter, std::size_t from, std::size_t limit) {
    for (;;) {
      const std::size_t at = data_.find(delimiter, from);
      if (at != std::string::npos) return at;
      if (data_.size() >= limit || !read_more()) return std::string::npos;
    }
  }

  // True once at least `size` bytes are held.
  bool have(std::size_t size) {
    while (data_.size() < size)
      if (!read_more()) return false;
    return true;
  }

 private:
  int fd_;
  Clock::time_point deadline_;
  std::string data_;
  std::string error_;
  bool closed_ = false;
};

// Why `reader` stopped early, for a message that starts with `what`.
std::string early_end(const ResponseReader& reader, std::string_view what) {
  return fmt::format("{}: {}", what, reader.error().empty() ? "connection closed" : reader.error());
}

// The chunked body starting at `from`; false with `error` set when it is cut short or malformed.
bool read_chunked(ResponseReader& reader, std::size_t from, std::string& body, std::string& error) {
  std::size_t at = from;
  for (;;) {
    const std::size_t line_end = reader.find("\r\n", at, kMaxResponse);
    if (line_end == std::string::npos) {
      error = early_end(reader, "chunked body");
      return false;
    }
    std::string_view size_text = std::string_view(reader.data()).substr(at, line_end - at);
    size_text = trim(size_text.substr(0, size_text.find(';')));  // chunk extensions ignored
    const std::optional<std::size_t> size = parse_size(size_text, 16);
    if (!size || *size > kMaxResponse) {
      error = "chunked body: bad chunk size line";
      return false;
    }
    at = line_end + 2;
    if (*size == 0) return true;  // trailers, if any, are not needed
    if (!reader.have(at + *size + 2)) {
      error = early_end(reader, "chunked body");
      return false;
    }
    body.append(reader.data(), at, *size);
    if (reader.data().compare(at + *size, 2, "\r\n") != 0) {
      error = "chunked body: chunk not followed by CRLF";
      return false;
    }
    at += *size + 2;
  }
}

// Reads the head and the body after the status line that ends at `line_end`.
void read_rest(ResponseReader& reader, std::size_t line_end, HttpResponse& response) {
  if (line_end == std::string::npos) {  // a status line the connection's end cut off
    response.error = early_end(reader, "headers");
    return;
  }
  const std::size_t head_end = reader.find("\r\n\r\n", line_end, kMaxHead);
  if (head_end == std::string::npos) {
    response.error = reader.data().size() >= kMaxHead ? "header section too large"
                                                      : early_end(reader, "headers");
    return;
  }
  const std::string_view head =
      std::string_view(reader.data()).substr(line_end + 2, head_end + 2 - (line_end + 2));
  const std::size_t body_start = head_end + 4;
  const auto encoding = header_value(head, "Transfer-Encoding");
  const auto length_text = header_value(head, "Content-Length");
  if (encoding && equals_ignoring_case(*encoding, "chunked")) {
    read_chunked(reader, body_start, response.body, response.error);
    return;
  }
  if (length_text) {
    const std::optional<std::size_t> length = parse_size(*length_text, 10);
    if (!length || *length > kMaxResponse) {
      response.error = "bad Content-Length";
      return;
    }
    if (!reader.have(body_start + *length)) {
      response.error = early_end(reader, "body");
      return;
    }
    response.body = reader.data().substr(body_start, *length);
    return;
  }
  // Neither: the body runs to the end of the connection.
  while (reader.read_more()) {
  }
  if (!reader.closed()) {
    response.error = early_end(reader, "body");
    return;
  }
  response.body = reader.data().substr(body_start);
}

}  // namespace

HttpResponse http_get(const std::string& host, std::uint16_t port, const std::string& path,
                      std::chrono::milliseconds timeout, HttpRead read,
                      std::string_view extra_headers) {
  HttpResponse response;
  const auto deadline = Clock::now() + timeout;
  SocketAddress address;
  int raw_fd = -1;
  try {
    address = make_address(host, port);
    raw_fd = connect_tcp(address);
  } catch (const std::exception& e) {
    response.error = e.what();
    return response;
  }
  const Fd fd(raw_fd);

  if (std::string why = wait_for(fd.get(), POLLOUT, deadline); !why.empty()) {
    response.error = "connect: " + why;
    return response;
  }
  int error = 0;
  socklen_t length = sizeof error;
  if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) {
    response.error = fmt::format("connect {}: {}", describe_address(address),
                                 std::generic_category().message(error));
    return response;
  }

  const std::string request = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: multireactor\r\n{}Connection: close\r\n\r\n",
      path, describe_address(address), extra_headers);
  std::size_t sent = 0;
  while (sent < request.size()) {
    if (std::string why = wait_for(fd.get(), POLLOUT, deadline); !why.empty()) {
      response.error = "send: " + why;
      return response;
    }
    const ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) {
      response.error = fmt::format("send: {}", std::generic_category().message(errno));
      return response;
    }
    sent += static_cast<std::size_t>(n);
  }

  ResponseReader reader(fd.get(), deadline);
  const std::size_t line_end = reader.find("\r\n", 0, kMaxStatusLine);
  if (line_end == std::string::npos && !reader.error().empty()) {
    response.error = "no status line: " + reader.error();
    return response;
  }
  const std::string line = reader.data().substr(0, line_end);
  response.status_code = parse_status_line(line);
  if (response.status_code == 0) {
    response.error = line.empty() ? "connection closed without a response"
                                  : "not an HTTP status line: " + line.substr(0, 80);
    return response;
  }
  response.status_line = line;
  if (read == HttpRead::whole_response) read_rest(reader, line_end, response);
  return response;
}

}  // namespace mr
