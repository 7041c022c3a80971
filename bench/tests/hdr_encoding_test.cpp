#include "hdr_encoding.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace mr::bench {
namespace {

TEST(HdrEncoding, ZigZagLeb128RoundTripsEveryMagnitudeIncludingTheNineByteForm) {
  const std::vector<std::int64_t> values{
      0,         1,        -1, 63, 64, -64, -65, 300, 1LL << 40, -(1LL << 40), (1LL << 55) + 7,
      INT64_MAX, INT64_MIN};
  std::vector<std::uint8_t> bytes;
  for (const auto v : values)
    put_zigzag_leb128(bytes, v);
  std::size_t at = 0;
  for (const auto v : values) {
    std::int64_t back = 0;
    ASSERT_TRUE(get_zigzag_leb128(bytes, at, back));
    EXPECT_EQ(back, v);
  }
  EXPECT_EQ(at, bytes.size());
  // Small magnitudes take one byte; the extremes take nine, never ten.
  std::vector<std::uint8_t> one;
  put_zigzag_leb128(one, -64);
  EXPECT_EQ(one.size(), 1U);
  std::vector<std::uint8_t> nine;
  put_zigzag_leb128(nine, INT64_MIN);
  EXPECT_EQ(nine.size(), 9U);
}

TEST(HdrEncoding, Base64RoundTripsAndRefusesForeignCharacters) {
  for (std::size_t n = 0; n < 8; ++n) {
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = 0; i < n; ++i)
      bytes.push_back(static_cast<std::uint8_t>(i * 77 + 3));
    std::vector<std::uint8_t> back;
    ASSERT_TRUE(base64_decode(base64_encode(bytes), back));
    EXPECT_EQ(back, bytes);
  }
  EXPECT_EQ(base64_encode({'M', 'a', 'n'}), "TWFu");
  EXPECT_EQ(base64_encode({'M'}), "TQ==");
  std::vector<std::uint8_t> out;
  EXPECT_FALSE(base64_decode("TW!u", out));
}

TEST(HdrEncoding, IsHdrHistogramsCompressedV2FormatAsLogFilesCarryIt) {
  LatencyHistogram h;
  h.record(1000);
  // The compressed cookie 0x1c849314 in big-endian base64 is the familiar log-file prefix.
  EXPECT_EQ(encode_hdr_compressed(h).rfind("HISTFAA", 0), 0U);
}

TEST(HdrEncoding, DecodingGivesBackEveryCountInItsBucket) {
  LatencyHistogram h;
  std::mt19937_64 random(42);
  std::lognormal_distribution<double> latency(11.0, 1.5);  // around 60 µs, long tail
  for (int i = 0; i < 50'000; ++i)
    h.record(static_cast<std::uint64_t>(latency(random)));
  h.record(0);
  h.record(3'600'000'000'000ULL);  // an hour
  LatencyHistogram back;
  std::string error;
  ASSERT_TRUE(decode_hdr_compressed(encode_hdr_compressed(h), back, error)) << error;
  EXPECT_EQ(back.counts(), h.counts());
  EXPECT_EQ(back.count(), h.count());
  for (const double p : {1.0, 50.0, 90.0, 99.0, 99.9, 99.99})
    EXPECT_EQ(back.percentile(p), h.percentile(p)) << p;
}

TEST(HdrEncoding, AnEmptyHistogramRoundTrips) {
  LatencyHistogram empty;
  LatencyHistogram back;
  back.record(5);
  std::string error;
  ASSERT_TRUE(decode_hdr_compressed(encode_hdr_compressed(empty), back, error)) << error;
  EXPECT_EQ(back.count(), 0U);
}

TEST(HdrEncoding, DamagedOrForeignInputIsRefusedWithAReason) {
  LatencyHistogram h;
  h.record(12345);
  const std::string good = encode_hdr_compressed(h);
  std::string foreign_cookie = good;
  foreign_cookie[0] = 'A';
  LatencyHistogram out;
  std::string error;
  for (const std::string& bad : {std::string("not base64!"), std::string("AAAA"),
                                 good.substr(0, good.size() / 2), foreign_cookie}) {
    error.clear();
    EXPECT_FALSE(decode_hdr_compressed(bad, out, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

}  // namespace
}  // namespace mr::bench
