// LatencyHistogram in HdrHistogram's compressed V2 encoding: the base64 "HISTFAA..." strings of
// HdrHistogram log files, so any HdrHistogram implementation (Java, C, Go, Rust, JS) can read
// echo-bench's latencies and merge them with its own.
//
// Contract: encode_hdr_compressed() writes the histogram as HdrHistogram with lowest discernible
// value 1 and 2 significant digits — exactly LatencyHistogram's bucket layout, so no count moves
// bucket. The encoding: a big-endian header (cookie 0x1c849314, length of the zlib stream), then
// zlib-deflated: cookie 0x1c849313, payload length, normalizing index offset (0), significant
// digits, lowest and highest trackable values, integer-to-double ratio (1.0), and the counts as
// ZigZag LEB128-64b9B words where a negative word is a run of that many empty buckets.
// decode_hdr_compressed() reads that format back, and refuses (false, with a reason) any other
// layout, since its counts could not be placed into our buckets without changing them. The
// decoded histogram's counts are exact; min, max and mean are bucket estimates (a report keeps
// the exact ones beside the string).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "latency_histogram.hpp"

namespace mr::bench {

std::string encode_hdr_compressed(const LatencyHistogram& histogram);
bool decode_hdr_compressed(std::string_view base64, LatencyHistogram& out, std::string& error);

// The pieces, public for the tests.
void put_zigzag_leb128(std::vector<std::uint8_t>& out, std::int64_t value);
// Reads one word at `at`, advancing it; false when the input ends inside the word.
bool get_zigzag_leb128(const std::vector<std::uint8_t>& in, std::size_t& at, std::int64_t& value);
std::string base64_encode(const std::vector<std::uint8_t>& bytes);
bool base64_decode(std::string_view text, std::vector<std::uint8_t>& bytes);

}  // namespace mr::bench
