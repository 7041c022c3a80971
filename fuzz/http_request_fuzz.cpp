// libFuzzer target for the admin endpoint's request parser (mr::parse_http_request).
//
// Besides "no crash, no sanitizer report", it checks the parser's contract on every input: views
// point into the input, a complete head parses the same on its own and every shorter prefix of it
// is incomplete, and an error, once the bytes show it, does not go away when more bytes follow.
// Each input is parsed under the default limits and under small ones (so the limit paths are
// reached with short inputs).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "admin/http_request.hpp"

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

void check(std::string_view input, const mr::HttpLimits& limits) {
  using S = mr::HttpParseStatus;
  const std::string_view window = input.substr(0, std::min(input.size(), limits.max_head_bytes));
  auto inside = [&](std::string_view v) {
    return v.empty() || (v.data() >= window.data() && v.data() + v.size() <= window.end());
  };

  mr::HttpRequest request;
  const mr::HttpParseResult result = mr::parse_http_request(input, request, limits);
  switch (result.status) {
    case S::kComplete: {
      require(result.head_bytes > 0 && result.head_bytes <= window.size());
      require(!request.method.empty() && inside(request.method));
      require(!request.target.empty() && inside(request.target) && inside(request.query));
      require(!request.path.empty() && request.path.front() == '/');
      require(inside(request.path) || request.path == "/");
      require(inside(request.host));
      require(request.header_count <= limits.max_headers);
      require(request.version_minor >= 0 && request.version_minor <= 9);
      require(!(request.has_content_length && request.has_transfer_encoding));

      const std::string_view head = input.substr(0, result.head_bytes);
      mr::HttpRequest alone;
      const mr::HttpParseResult again = mr::parse_http_request(head, alone, limits);
      require(again.status == S::kComplete && again.head_bytes == result.head_bytes);
      require(alone.method == request.method && alone.path == request.path &&
              alone.query == request.query && alone.header_count == request.header_count);

      mr::HttpRequest shorter;
      require(mr::parse_http_request(head.substr(0, head.size() - 1), shorter, limits).status ==
              S::kIncomplete);
      break;
    }
    case S::kIncomplete:
      require(input.size() < limits.max_head_bytes);
      break;
    default: {
      require(mr::http_status_code(result.status) >= 400);
      require(result.error != nullptr && result.error[0] != '\0');
      std::string longer(input);
      longer += "\r\nHost: x\r\n\r\n";
      mr::HttpRequest extended;
      require(mr::parse_http_request(longer, extended, limits).status == result.status);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check(input, mr::HttpLimits{});
  check(input, mr::HttpLimits{.max_head_bytes = 200, .max_target_bytes = 24, .max_headers = 3});
  return 0;
}
