#include "admin/http_request.hpp"

#include <algorithm>

namespace mr {
namespace {

constexpr std::size_t kMaxMethodBytes = 20;

bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  static constexpr std::string_view kPunctuation = "!#$%&'*+-.^_`|~";  // RFC 9110 tchar
  return c != 0 && kPunctuation.find(static_cast<char>(c)) != std::string_view::npos;
}

// Visible ASCII without '#': a fragment is never part of a request target.
bool is_target_char(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != '#';
}

// Field values: visible ASCII, obs-text, space and tab; never control bytes or DEL.
bool is_field_value_char(unsigned char c) {
  return c == '\t' || c == ' ' || (c > 0x20 && c != 0x7f);
}

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

enum class LineEnd { kNone, kLf, kCrLf, kNeedMore, kBareCr };

LineEnd line_end_at(std::string_view in, std::size_t pos) {
  if (in[pos] == '\n') return LineEnd::kLf;
  if (in[pos] != '\r') return LineEnd::kNone;
  if (pos + 1 >= in.size()) return LineEnd::kNeedMore;
  return in[pos + 1] == '\n' ? LineEnd::kCrLf : LineEnd::kBareCr;
}

std::size_t line_end_size(LineEnd e) {
  return e == LineEnd::kCrLf ? 2 : 1;
}

// Fills path and query from target; false if the target is neither origin- nor absolute-form.
bool split_target(HttpRequest& req) {
  std::string_view rest = req.target;
  if (rest.front() != '/') {
    std::size_t scheme = 0;
    if (istarts_with(rest, "http://")) {
      scheme = 7;
    } else if (istarts_with(rest, "https://")) {
      scheme = 8;
    } else {
      return false;  // asterisk-form and authority-form have no use here
    }
    rest.remove_prefix(scheme);
    const std::size_t authority = rest.find_first_of("/?");
    if (authority == 0) return false;
    rest.remove_prefix(authority == std::string_view::npos ? rest.size() : authority);
  }
  const std::size_t question = rest.find('?');
  req.path = rest.substr(0, question);
  if (question != std::string_view::npos) req.query = rest.substr(question + 1);
  if (req.path.empty()) req.path = "/";  // "http://host" and "http://host?x" mean the root
  return true;
}

bool parse_decimal(std::string_view text, std::uint64_t& value) {
  if (text.empty()) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  value = v;
  return true;
}

}  // namespace

HttpParseResult parse_http_request(std::string_view input, HttpRequest& req,
                                   const HttpLimits& limits) {
  using S = HttpParseStatus;
  req = HttpRequest{};
  const std::string_view in = input.substr(0, std::min(input.size(), limits.max_head_bytes));
  // The bytes ran out before the head ended: more may come, unless the window is already full.
  auto out_of_bytes = [&]() -> HttpParseResult {
    if (input.size() >= limits.max_head_bytes) {
      return {S::kHeadTooLarge, 0, "request head larger than the limit"};
    }
    return {S::kIncomplete, 0, ""};
  };
  auto bad = [](const char* why) { return HttpParseResult{S::kBadRequest, 0, why}; };
  std::size_t pos = 0;

  for (int skipped = 0;; ++skipped) {
    if (pos >= in.size()) return out_of_bytes();
    const LineEnd e = line_end_at(in, pos);
    if (e == LineEnd::kNone) break;
    if (e == LineEnd::kNeedMore) return out_of_bytes();
    if (e == LineEnd::kBareCr) return bad("bare CR");
    if (skipped == kMaxLeadingEmptyLines) return bad("too many empty lines before the request");
    pos += line_end_size(e);
  }

  // method SP
  const std::size_t method_begin = pos;
  while (pos < in.size() && is_tchar(static_cast<unsigned char>(in[pos]))) {
    if (pos - method_begin == kMaxMethodBytes) return bad("method too long");
    ++pos;
  }
  if (pos >= in.size()) return out_of_bytes();
  if (pos == method_begin || in[pos] != ' ') return bad("malformed method");
  req.method = in.substr(method_begin, pos - method_begin);
  ++pos;

  // request-target SP
  const std::size_t target_begin = pos;
  while (pos < in.size() && is_target_char(static_cast<unsigned char>(in[pos]))) {
    if (pos - target_begin == limits.max_target_bytes) {
      return {S::kTargetTooLong, 0, "request target longer than the limit"};
    }
    ++pos;
  }
  if (pos >= in.size()) return out_of_bytes();
  if (pos == target_begin || in[pos] != ' ') return bad("malformed request target");
  req.target = in.substr(target_begin, pos - target_begin);
  ++pos;
  if (!split_target(req)) return bad("request target is neither origin-form nor absolute-form");

  // HTTP-version line-end: "HTTP/" DIGIT "." DIGIT
  static constexpr std::string_view kVersionShape = "HTTP/0.0";
  for (std::size_t i = 0; i < kVersionShape.size(); ++i) {
    if (pos + i >= in.size()) return out_of_bytes();
    const char c = in[pos + i];
    const bool ok = kVersionShape[i] == '0' ? (c >= '0' && c <= '9') : c == kVersionShape[i];
    if (!ok) return bad("malformed HTTP version");
  }
  const char major = in[pos + 5];
  req.version_minor = in[pos + 7] - '0';
  pos += kVersionShape.size();
  if (pos >= in.size()) return out_of_bytes();
  {
    const LineEnd e = line_end_at(in, pos);
    if (e == LineEnd::kNeedMore) return out_of_bytes();
    if (e == LineEnd::kNone || e == LineEnd::kBareCr) return bad("malformed request line end");
    pos += line_end_size(e);
  }
  // Fields of another major version cannot be read with 1.x rules.
  if (major != '1') return {S::kVersionNotSupported, 0, "only HTTP/1.x is supported"};

  bool host_seen = false;
  for (;;) {
    if (pos >= in.size()) return out_of_bytes();
    const LineEnd e = line_end_at(in, pos);
    if (e == LineEnd::kNeedMore) return out_of_bytes();
    if (e == LineEnd::kBareCr) return bad("bare CR");
    if (e != LineEnd::kNone) {
      pos += line_end_size(e);
      break;  // the blank line: end of the head
    }
    if (is_ows(in[pos])) return bad("obsolete line folding or whitespace before a field");
    if (req.header_count == limits.max_headers) {
      return {S::kHeadTooLarge, 0, "more header fields than the limit"};
    }

    const std::size_t name_begin = pos;
    while (pos < in.size() && is_tchar(static_cast<unsigned char>(in[pos])))
      ++pos;
    if (pos >= in.size()) return out_of_bytes();
    if (pos == name_begin || in[pos] != ':') return bad("malformed field name");
    const std::string_view name = in.substr(name_begin, pos - name_begin);
    ++pos;

    while (pos < in.size() && is_ows(in[pos]))
      ++pos;
    const std::size_t value_begin = pos;
    while (pos < in.size() && is_field_value_char(static_cast<unsigned char>(in[pos])))
      ++pos;
    if (pos >= in.size()) return out_of_bytes();
    const LineEnd value_end = line_end_at(in, pos);
    if (value_end == LineEnd::kNeedMore) return out_of_bytes();
    if (value_end == LineEnd::kNone) return bad("control byte in a field value");
    if (value_end == LineEnd::kBareCr) return bad("bare CR");
    std::size_t value_size = pos - value_begin;
    while (value_size > 0 && is_ows(in[value_begin + value_size - 1]))
      --value_size;
    const std::string_view value = in.substr(value_begin, value_size);
    pos += line_end_size(value_end);
    ++req.header_count;

    if (iequals(name, "host")) {
      if (host_seen) return bad("more than one Host field");
      host_seen = true;
      req.host = value;
    } else if (iequals(name, "content-length")) {
      std::uint64_t length = 0;
      if (!parse_decimal(value, length)) return bad("malformed Content-Length");
      if (req.has_content_length && length != req.content_length) {
        return bad("conflicting Content-Length fields");
      }
      req.has_content_length = true;
      req.content_length = length;
    } else if (iequals(name, "transfer-encoding")) {
      req.has_transfer_encoding = true;
    }
  }

  if (req.has_content_length && req.has_transfer_encoding) {
    return bad("both Content-Length and Transfer-Encoding");
  }
  if (req.version_minor >= 1 && !host_seen) return bad("HTTP/1.1 request without Host");
  return {S::kComplete, pos, ""};
}

int http_status_code(HttpParseStatus status) {
  switch (status) {
    case HttpParseStatus::kBadRequest:
      return 400;
    case HttpParseStatus::kTargetTooLong:
      return 414;
    case HttpParseStatus::kHeadTooLarge:
      return 431;
    case HttpParseStatus::kVersionNotSupported:
      return 505;
    case HttpParseStatus::kIncomplete:
    case HttpParseStatus::kComplete:
      break;
  }
  return 200;
}

const char* http_reason_phrase(int status_code) {
  switch (status_code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace mr
