// A parser for the head of one HTTP/1.x request (request line and header fields), for the admin
// endpoint.
//
// Contract: parse_http_request() is a pure function: it allocates nothing, keeps no state between
// calls, reads at most limits.max_head_bytes bytes of `input`, and every string_view it fills in
// points into `input` (except `path`, a static "/" for an absolute-form target without a path).
// Called again with more bytes it gives the same answer for the same prefix, so a connection
// simply re-parses its bounded buffer after each read. It is strict where leniency lets requests
// be misread (RFC 9112): whitespace before a colon, obsolete line folding, a bare CR, control
// bytes, Content-Length together with Transfer-Encoding, conflicting Content-Lengths, or HTTP/1.1
// without exactly one Host are all kBadRequest. Bare LF line ends are accepted, as are up to
// kMaxLeadingEmptyLines empty lines before the request line. The body, if any, is not parsed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mr {

struct HttpLimits {
  std::size_t max_head_bytes = 8192;    // request line + header fields + blank line
  std::size_t max_target_bytes = 2048;  // the request target (path and query)
  std::size_t max_headers = 64;
};

struct HttpRequest {
  std::string_view method;  // as sent (methods are case-sensitive)
  std::string_view target;  // origin-form "/path?query" or absolute-form "http://host/path"
  std::string_view path;    // the target's path, "/" at least
  std::string_view query;   // after '?', without it; empty when there is none
  int version_minor = 0;    // HTTP/1.<minor>
  std::size_t header_count = 0;
  std::string_view host;  // the Host field value, empty when absent
  std::uint64_t content_length = 0;
  bool has_content_length = false;
  bool has_transfer_encoding = false;
};

enum class HttpParseStatus {
  kIncomplete,           // a valid prefix: read more
  kComplete,             // the whole head is there
  kBadRequest,           // 400
  kTargetTooLong,        // 414
  kHeadTooLarge,         // 431: no complete head within max_head_bytes, or too many fields
  kVersionNotSupported,  // 505: HTTP/<major> other than 1
};

struct HttpParseResult {
  HttpParseStatus status = HttpParseStatus::kIncomplete;
  std::size_t head_bytes = 0;  // kComplete: bytes of the head, the blank line included
  const char* error = "";      // a static text for the error statuses
};

inline constexpr int kMaxLeadingEmptyLines = 4;

HttpParseResult parse_http_request(std::string_view input, HttpRequest& request,
                                   const HttpLimits& limits = {});

// The status code answering an error status (400, 414, 431, 505); 200 for kComplete.
int http_status_code(HttpParseStatus status);

// The reason phrase of the status codes the admin endpoint sends ("Not Found", ...).
const char* http_reason_phrase(int status_code);

}  // namespace mr
