// The admin endpoint's request parser: what it accepts, what it refuses and with which status.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "admin/http_request.hpp"

namespace mr {
namespace {

using S = HttpParseStatus;
using namespace std::string_view_literals;

HttpParseResult parse(std::string_view text, HttpRequest& request, const HttpLimits& limits = {}) {
  return parse_http_request(text, request, limits);
}

S status_of(std::string_view text, const HttpLimits& limits = {}) {
  HttpRequest request;
  return parse(text, request, limits).status;
}

TEST(HttpRequest, ParsesAPrometheusScrape) {
  const std::string text =
      "GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9100\r\nUser-Agent: Prometheus/2.42.0\r\n"
      "Accept: text/plain;version=0.0.4;q=0.5\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";
  HttpRequest request;
  const HttpParseResult result = parse(text, request);
  ASSERT_EQ(result.status, S::kComplete) << result.error;
  EXPECT_EQ(result.head_bytes, text.size());
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.target, "/metrics?x=1");
  EXPECT_EQ(request.path, "/metrics");
  EXPECT_EQ(request.query, "x=1");
  EXPECT_EQ(request.version_minor, 1);
  EXPECT_EQ(request.header_count, 4u);
  EXPECT_EQ(request.host, "127.0.0.1:9100");
  EXPECT_FALSE(request.has_content_length);
}

TEST(HttpRequest, EveryPrefixOfAValidHeadIsIncomplete) {
  const std::string text = "GET /healthz HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
  for (std::size_t n = 0; n < text.size(); ++n) {
    EXPECT_EQ(status_of(text.substr(0, n)), S::kIncomplete) << "prefix of " << n << " bytes";
  }
  EXPECT_EQ(status_of(text), S::kComplete);
}

TEST(HttpRequest, HeadBytesStopAtTheBlankLineAndIgnoreTheBody) {
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
  HttpRequest request;
  const HttpParseResult result = parse(head + "hello", request);
  ASSERT_EQ(result.status, S::kComplete);
  EXPECT_EQ(result.head_bytes, head.size());
  EXPECT_TRUE(request.has_content_length);
  EXPECT_EQ(request.content_length, 5u);
}

TEST(HttpRequest, AcceptsBareLineFeedsLeadingEmptyLinesAndHttp10WithoutHost) {
  HttpRequest request;
  ASSERT_EQ(parse("\r\n\nGET /stats HTTP/1.0\n\n", request).status, S::kComplete);
  EXPECT_EQ(request.path, "/stats");
  EXPECT_EQ(request.version_minor, 0);
  EXPECT_TRUE(request.host.empty());
}

TEST(HttpRequest, AbsoluteFormTargetGivesItsPathAndQuery) {
  HttpRequest request;
  ASSERT_EQ(
      parse("GET http://admin:9100/metrics?a=b HTTP/1.1\r\nHost: admin\r\n\r\n", request).status,
      S::kComplete);
  EXPECT_EQ(request.path, "/metrics");
  EXPECT_EQ(request.query, "a=b");
  ASSERT_EQ(parse("GET HTTPS://admin HTTP/1.1\r\nHost: admin\r\n\r\n", request).status,
            S::kComplete);
  EXPECT_EQ(request.path, "/");
}

TEST(HttpRequest, TrimsFieldValuesAndMatchesNamesCaseInsensitively) {
  HttpRequest request;
  ASSERT_EQ(
      parse("GET / HTTP/1.1\r\nhOsT: \t example \t\r\ncontent-length: 0\r\n\r\n", request).status,
      S::kComplete);
  EXPECT_EQ(request.host, "example");
  EXPECT_TRUE(request.has_content_length);
}

TEST(HttpRequest, RefusesWhatCouldBeMisreadWithBadRequest) {
  // string_view literals keep the embedded NUL of one case.
  const std::string_view cases[] = {
      "GARBAGE\r\n\r\n"sv,
      "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"sv,              // two spaces
      "GET / HTTP/1.1 \r\nHost: a\r\n\r\n"sv,              // trailing space
      "get / http/1.1\r\nHost: a\r\n\r\n"sv,               // version is case-sensitive
      "GET * HTTP/1.1\r\nHost: a\r\n\r\n"sv,               // asterisk-form
      "GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n"sv,  // authority-form
      "GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"sv,         // fragment
      "GET / HTTP/1.1\r\nHost : a\r\n\r\n"sv,              // space before colon
      "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"sv,    // obs-fold
      "GET / HTTP/1.1\rHost: a\r\n\r\n"sv,                 // bare CR
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"sv,    // NUL in a value
      "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"sv,
      "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"sv,
      "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -3\r\n\r\n"sv,
      "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"sv,
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"sv,  // two Hosts
      "GET / HTTP/1.1\r\n\r\n"sv,                        // 1.1 without Host
      "GET / HTTP/1.1\r\n: empty-name\r\nHost: a\r\n\r\n"sv,
      "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"sv,  // too many empty lines
      "VERYLONGMETHODNAMEXXXXXXXXXX / HTTP/1.1\r\nHost: a\r\n\r\n"sv,
  };
  for (const std::string_view input : cases) {
    HttpRequest request;
    const HttpParseResult result = parse(input, request);
    EXPECT_EQ(result.status, S::kBadRequest) << "accepted: " << input;
    EXPECT_EQ(http_status_code(result.status), 400);
    EXPECT_STRNE(result.error, "");
  }
}

TEST(HttpRequest, OtherMajorVersionsAre505) {
  EXPECT_EQ(status_of("GET / HTTP/2.0\r\n\r\n"), S::kVersionNotSupported);
  EXPECT_EQ(status_of("GET / HTTP/0.9\r\n\r\n"), S::kVersionNotSupported);
  EXPECT_EQ(http_status_code(S::kVersionNotSupported), 505);
  // A higher minor version is still HTTP/1.
  EXPECT_EQ(status_of("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), S::kComplete);
}

TEST(HttpRequest, LimitsGive414And431) {
  const HttpLimits limits{.max_head_bytes = 128, .max_target_bytes = 16, .max_headers = 2};
  EXPECT_EQ(status_of("GET /" + std::string(16, 'a') + " HTTP/1.1\r\n", limits), S::kTargetTooLong);
  EXPECT_EQ(status_of("GET /" + std::string(15, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", limits),
            S::kComplete);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", limits),
            S::kHeadTooLarge);
  // No blank line within max_head_bytes: too large, not "send more".
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(200, 'x'), limits),
            S::kHeadTooLarge);
  EXPECT_EQ(http_status_code(S::kTargetTooLong), 414);
  EXPECT_EQ(http_status_code(S::kHeadTooLarge), 431);
}

TEST(HttpRequest, AnErrorStaysAnErrorWhenMoreBytesArrive) {
  const std::string broken = "GET / HTTP/1.1\r\nHost : a";
  ASSERT_EQ(status_of(broken), S::kBadRequest);
  EXPECT_EQ(status_of(broken + "\r\n\r\n"), S::kBadRequest);
}

TEST(HttpRequest, ReasonPhrasesCoverTheStatusesTheEndpointSends) {
  for (int code : {200, 400, 404, 405, 408, 414, 431, 503, 505}) {
    EXPECT_STRNE(http_reason_phrase(code), "Unknown") << code;
  }
}

}  // namespace
}  // namespace mr
