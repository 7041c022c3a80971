#include "hdr_encoding.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>

#include <fmt/format.h>

namespace mr::bench {
namespace {

constexpr std::uint32_t kEncodingCookie = 0x1c849303U | 0x10U;
constexpr std::uint32_t kCompressedCookie = 0x1c849304U | 0x10U;
constexpr std::uint32_t kCookieBaseMask = ~0xf0U;
constexpr std::int32_t kSignificantDigits = 2;  // 256 sub-buckets: LatencyHistogram's layout
constexpr std::int64_t kLowestDiscernible = 1;
constexpr std::size_t kHeaderBytes = 40;
constexpr std::size_t kMaxPayloadBytes = 64U << 20;

static_assert(LatencyHistogram::kSubBuckets * 2 == 256,
              "2 significant digits mean 256 sub-buckets of which the upper 128 repeat per "
              "power of two; LatencyHistogram must keep that layout for the encoding to be exact");

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>(v >> shift));
}

void put_u64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>(v >> shift));
}

void set_u32(std::vector<std::uint8_t>& out, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

std::uint64_t get_be(const std::uint8_t* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | p[i];
  return v;
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

void put_zigzag_leb128(std::vector<std::uint8_t>& out, std::int64_t value) {
  auto zigzag = (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
  // LEB128-64b9B: eight 7-bit groups with a continuation bit, then a ninth byte of 8 bits.
  for (int i = 0; i < 8; ++i) {
    if ((zigzag >> 7) == 0) {
      out.push_back(static_cast<std::uint8_t>(zigzag));
      return;
    }
    out.push_back(static_cast<std::uint8_t>((zigzag & 0x7f) | 0x80));
    zigzag >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(zigzag));
}

bool get_zigzag_leb128(const std::vector<std::uint8_t>& in, std::size_t& at, std::int64_t& value) {
  std::uint64_t zigzag = 0;
  for (int i = 0; i < 9; ++i) {
    if (at >= in.size()) return false;
    const std::uint8_t b = in[at++];
    if (i == 8) {
      zigzag |= static_cast<std::uint64_t>(b) << 56;
      break;
    }
    zigzag |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) break;
  }
  value = static_cast<std::int64_t>((zigzag >> 1) ^ (~(zigzag & 1) + 1));
  return true;
}

std::string base64_encode(const std::vector<std::uint8_t>& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t group = static_cast<std::uint32_t>(bytes[i]) << 16;
    if (n > 1) group |= static_cast<std::uint32_t>(bytes[i + 1]) << 8;
    if (n > 2) group |= bytes[i + 2];
    for (std::size_t k = 0; k < 4; ++k)
      out += k <= n ? kAlphabet[(group >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

bool base64_decode(std::string_view text, std::vector<std::uint8_t>& bytes) {
  std::array<int, 256> value{};
  value.fill(-1);
  for (int i = 0; i < 64; ++i)
    value[static_cast<unsigned char>(kAlphabet[i])] = i;
  bytes.clear();
  std::uint32_t group = 0;
  int bits = 0;
  bool padding = false;
  for (const char ch : text) {
    if (ch == '\n' || ch == '\r' || ch == ' ') continue;
    if (ch == '=') {
      padding = true;
      continue;
    }
    const int v = value[static_cast<unsigned char>(ch)];
    if (v < 0 || padding) return false;  // a foreign character, or data after the padding
    group = (group << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<std::uint8_t>(group >> bits));
    }
  }
  return true;
}

std::string encode_hdr_compressed(const LatencyHistogram& histogram) {
  const std::vector<std::uint64_t>& counts = histogram.counts();
  const std::size_t limit = LatencyHistogram::index_of(histogram.max()) + 1;
  std::vector<std::uint8_t> raw;
  put_u32(raw, kEncodingCookie);
  put_u32(raw, 0);  // payload length, filled in below
  put_u32(raw, 0);  // normalizing index offset
  put_u32(raw, kSignificantDigits);
  put_u64(raw, kLowestDiscernible);
  put_u64(raw, std::max<std::uint64_t>(2, histogram.max()));
  double ratio = 1.0;
  std::uint64_t ratio_bits = 0;
  std::memcpy(&ratio_bits, &ratio, sizeof ratio_bits);
  put_u64(raw, ratio_bits);
  for (std::size_t i = 0; i < limit;) {
    if (counts[i] != 0) {
      put_zigzag_leb128(raw, static_cast<std::int64_t>(counts[i++]));
      continue;
    }
    std::size_t run = 0;
    while (i < limit && counts[i] == 0) {
      ++run;
      ++i;
    }
    // A lone empty bucket is the word 0; a run of them is its negated length.
    put_zigzag_leb128(raw, run == 1 ? 0 : -static_cast<std::int64_t>(run));
  }
  set_u32(raw, 4, static_cast<std::uint32_t>(raw.size() - kHeaderBytes));

  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<std::uint8_t> out(8 + packed_size);
  compress2(out.data() + 8, &packed_size, raw.data(), static_cast<uLong>(raw.size()),
            Z_DEFAULT_COMPRESSION);
  out.resize(8 + packed_size);
  set_u32(out, 0, kCompressedCookie);
  set_u32(out, 4, static_cast<std::uint32_t>(packed_size));
  return base64_encode(out);
}

bool decode_hdr_compressed(std::string_view base64, LatencyHistogram& out, std::string& error) {
  std::vector<std::uint8_t> bytes;
  if (!base64_decode(base64, bytes)) {
    error = "histogram: not base64";
    return false;
  }
  if (bytes.size() < 8 || (static_cast<std::uint32_t>(get_be(bytes.data(), 4)) & kCookieBaseMask) !=
                              (kCompressedCookie & kCookieBaseMask)) {
    error = "histogram: not HdrHistogram's compressed V2 encoding";
    return false;
  }
  const std::uint64_t packed_size = get_be(bytes.data() + 4, 4);
  if (packed_size > bytes.size() - 8) {
    error = "histogram: truncated";
    return false;
  }
  // The payload length is in the inner header: inflate with a bound, then check it.
  std::vector<std::uint8_t> raw(kHeaderBytes + 1024);
  z_stream z{};
  if (inflateInit(&z) != Z_OK) {
    error = "histogram: zlib failed to start";
    return false;
  }
  z.next_in = bytes.data() + 8;
  z.avail_in = static_cast<uInt>(packed_size);
  std::size_t produced = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (produced == raw.size()) {
      if (raw.size() >= kMaxPayloadBytes) break;
      raw.resize(raw.size() * 2);
    }
    z.next_out = raw.data() + produced;
    z.avail_out = static_cast<uInt>(raw.size() - produced);
    rc = inflate(&z, Z_NO_FLUSH);
    produced = raw.size() - z.avail_out;
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) {
    error = "histogram: the zlib stream is damaged";
    return false;
  }
  raw.resize(produced);
  if (raw.size() < kHeaderBytes || (static_cast<std::uint32_t>(get_be(raw.data(), 4)) &
                                    kCookieBaseMask) != (kEncodingCookie & kCookieBaseMask)) {
    error = "histogram: no V2 encoding cookie inside the zlib stream";
    return false;
  }
  const std::uint64_t payload = get_be(raw.data() + 4, 4);
  const std::uint64_t digits = get_be(raw.data() + 12, 4);
  const std::uint64_t lowest = get_be(raw.data() + 16, 8);
  if (digits != kSignificantDigits || lowest != kLowestDiscernible) {
    error = fmt::format(
        "histogram: recorded with {} significant digits and lowest value {}; echo-bench reads "
        "its own layout only (2 digits, lowest 1)",
        digits, lowest);
    return false;
  }
  if (payload > raw.size() - kHeaderBytes) {
    error = "histogram: payload longer than the data";
    return false;
  }
  std::vector<std::uint64_t> counts(LatencyHistogram::bucket_count(), 0);
  std::size_t at = kHeaderBytes;
  const std::size_t end = kHeaderBytes + payload;
  std::size_t index = 0;
  while (at < end) {
    std::int64_t word = 0;
    if (!get_zigzag_leb128(raw, at, word) || at > end) {
      error = "histogram: a count runs past the payload";
      return false;
    }
    if (word < 0) {
      const auto run = static_cast<std::uint64_t>(-word);
      if (run > counts.size() - index) {
        error = "histogram: more buckets than values up to 2^64";
        return false;
      }
      index += run;
      continue;
    }
    if (index >= counts.size()) {
      error = "histogram: more buckets than values up to 2^64";
      return false;
    }
    counts[index++] = static_cast<std::uint64_t>(word);
  }
  out = LatencyHistogram::from_counts(std::move(counts));
  return true;
}

}  // namespace mr::bench
