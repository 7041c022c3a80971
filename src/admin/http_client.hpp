// A small blocking HTTP/1.1 GET over a numeric address, of our own and without dependencies, so
// the static executables need no HTTP library: `echo-server --health-check` reads only the status
// line of /healthz, echo-bench reads all of /stats.
//
// Contract: http_get() never throws and never takes longer than `timeout` in all (connecting,
// sending, and reading as much as `read` asks for). It sends one request with
// `Connection: close`. On success `error` is empty and `status_code` holds the status; with
// HttpRead::whole_response `body` holds the body, framed by Content-Length, by the chunked
// transfer coding or by the end of the connection. On failure `error` is a one-line reason
// (refused, timed out, closed early, not HTTP, too large) and `status_code` is 0 unless a status
// line was read. Any status is a success here: the caller judges it. Not for the data path.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace mr {

enum class HttpRead { status_line, whole_response };

struct HttpResponse {
  int status_code = 0;      // 0 when no status line was read
  std::string status_line;  // e.g. "HTTP/1.1 200 OK", without the line end
  std::string body;         // HttpRead::whole_response only, de-chunked
  std::string error;        // empty on success
};

// GET `path` from host:port. `extra_headers` are whole header lines, each ending in "\r\n".
HttpResponse http_get(const std::string& host, std::uint16_t port, const std::string& path,
                      std::chrono::milliseconds timeout, HttpRead read,
                      std::string_view extra_headers = {});

}  // namespace mr
