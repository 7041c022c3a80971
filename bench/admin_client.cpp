#include "admin_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>

#include <fmt/format.h>

#include "admin/stats_render.hpp"
#include "json.hpp"
#include "multireactor/socket.hpp"

namespace mr::bench {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Waits until `fd` is ready for `events` or the deadline passes.
bool wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

bool decode_chunked(std::string_view in, std::string& out) {
  for (;;) {
    const auto line_end = in.find("\r\n");
    if (line_end == std::string_view::npos) return false;
    std::size_t size = 0;
    const std::string size_text(in.substr(0, line_end));
    char* end = nullptr;
    size = std::strtoul(size_text.c_str(), &end, 16);
    if (end == size_text.c_str()) return false;
    in.remove_prefix(line_end + 2);
    if (size == 0) return true;
    if (in.size() < size + 2) return false;
    out.append(in.substr(0, size));
    in.remove_prefix(size + 2);
  }
}

// True once `raw` holds a whole response, so a server that keeps the connection open despite
// `Connection: close` does not make us wait for the timeout.
bool response_complete(const std::string& raw) {
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  const std::string head = lower(std::string_view(raw).substr(0, head_end));
  const auto length_at = head.find("\r\ncontent-length:");
  if (length_at != std::string::npos) {
    const long long length = std::atoll(head.c_str() + length_at + 17);
    return raw.size() >= head_end + 4 + static_cast<std::size_t>(std::max(0LL, length));
  }
  if (head.find("chunked") != std::string::npos) {
    return raw.size() >= 5 && raw.compare(raw.size() - 5, 5, "0\r\n\r\n") == 0;
  }
  return false;
}

std::uint64_t u64_field(const JsonValue& object, std::string_view name) {
  const JsonValue* v = object.find(name);
  return v != nullptr ? v->as_u64() : 0;
}

}  // namespace

bool http_response_body(std::string_view raw, std::string& body, std::string& error) {
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    error = "admin: incomplete HTTP response";
    return false;
  }
  const std::string_view head = raw.substr(0, head_end);
  std::string_view rest = raw.substr(head_end + 4);
  const auto status_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, status_end);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) {
    error = fmt::format("admin: not an HTTP response: '{}'", status_line);
    return false;
  }
  if (status_line.substr(9, 3) != "200") {
    error = fmt::format("admin: {}", status_line);
    return false;
  }
  bool chunked = false;
  long long content_length = -1;
  std::string_view headers =
      status_end == std::string_view::npos ? std::string_view{} : head.substr(status_end + 2);
  while (!headers.empty()) {
    const auto line_end = headers.find("\r\n");
    const std::string_view line = headers.substr(0, line_end);
    headers =
        line_end == std::string_view::npos ? std::string_view{} : headers.substr(line_end + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string name = lower(line.substr(0, colon));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
    if (name == "content-length") content_length = std::atoll(std::string(value).c_str());
    if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) {
      chunked = true;
    }
  }
  body.clear();
  if (chunked) {
    if (!decode_chunked(rest, body)) {
      error = "admin: malformed chunked body";
      return false;
    }
    return true;
  }
  if (content_length >= 0) {
    if (rest.size() < static_cast<std::size_t>(content_length)) {
      error = "admin: body shorter than its Content-Length";
      return false;
    }
    rest = rest.substr(0, static_cast<std::size_t>(content_length));
  }
  body.assign(rest);
  return true;
}

bool parse_server_stats(std::string_view json, ServerStats& out, std::string& error) {
  JsonValue doc;
  std::string why;
  if (!parse_json(json, doc, why)) {
    error = "admin: /stats is not JSON: " + why;
    return false;
  }
  const JsonValue* workers = doc.find("workers");
  if (doc.type != JsonValue::Type::kObject || workers == nullptr ||
      workers->type != JsonValue::Type::kArray) {
    error = "admin: /stats has no 'workers' array";
    return false;
  }
  out = ServerStats{};
  if (const JsonValue* v = doc.find("uptime_s")) out.uptime_s = v->as_double();
  out.workers_count = u64_field(doc, "workers_count");
  if (const JsonValue* v = doc.find("rss_bytes"); v != nullptr && v->is_number()) {
    out.has_rss = true;
    out.rss_bytes = v->as_u64();
  }
  out.open_fds = u64_field(doc, "open_fds");
  const JsonValue* user = doc.find("cpu_user_s");
  const JsonValue* sys = doc.find("cpu_system_s");
  if (user != nullptr && sys != nullptr && user->is_number() && sys->is_number()) {
    out.has_cpu = true;
    out.cpu_user_s = user->as_double();
    out.cpu_system_s = sys->as_double();
  }
  for (std::size_t i = 0; i < workers->items.size(); ++i) {
    const JsonValue& w = workers->items[i];
    if (w.type != JsonValue::Type::kObject) {
      error = "admin: /stats 'workers' holds something other than objects";
      return false;
    }
    ServerWorkerStats s;
    s.id = w.find("id") != nullptr ? u64_field(w, "id") : i;
    for (const auto& name : worker_field_names())
      s.*worker_field(name) = u64_field(w, name);
    out.workers.push_back(s);
  }
  if (out.workers_count == 0) out.workers_count = out.workers.size();
  return true;
}

bool fetch_server_stats(const HostPort& endpoint, ServerStats& out, std::string& error,
                        int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int fd = -1;
  try {
    fd = connect_tcp(make_address(endpoint.host, endpoint.port));
  } catch (const std::exception& e) {
    error = fmt::format("admin: {}", e.what());
    return false;
  }
  const std::string where = fmt::format("{}:{}", endpoint.host, endpoint.port);
  auto give_up = [&](std::string why) {
    close(fd);
    error = fmt::format("admin {}: {}", where, why);
    return false;
  };
  if (!wait_for(fd, POLLOUT, deadline)) return give_up("connect timed out");
  int so_error = 0;
  socklen_t len = sizeof so_error;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
  if (so_error != 0) return give_up(std::strerror(so_error));

  const std::string request = fmt::format(
      "GET /stats HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
      where);
  std::size_t sent = 0;
  while (sent < request.size()) {
    if (!wait_for(fd, POLLOUT, deadline)) return give_up("send timed out");
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return give_up(std::strerror(errno));
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    if (!wait_for(fd, POLLIN, deadline)) return give_up("response timed out");
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return give_up(std::strerror(errno));
    }
    raw.append(buf, static_cast<std::size_t>(n));
    if (raw.size() > (64U << 20)) return give_up("response larger than 64 MiB");
    if (response_complete(raw)) break;
  }
  close(fd);
  std::string body;
  if (!http_response_body(raw, body, error)) return false;
  return parse_server_stats(body, out, error);
}

}  // namespace mr::bench
