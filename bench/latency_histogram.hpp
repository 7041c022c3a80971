// A log-linear latency histogram (the HdrHistogram idea, our own code) for echo-bench.
//
// Contract: values are non-negative integers (echo-bench records nanoseconds). Values below
// 2 * kSubBuckets are counted exactly; above that every power-of-two range is cut into
// kSubBuckets equal slices, so a recorded value and the value a percentile reports for it differ
// by at most 1/(2 * kSubBuckets) of the value (< 0.4 %, well inside the 1 % promised). record()
// is a few shifts and one increment, with no allocation: one histogram per client thread, merged
// with add() when a report is made. min, max, count and mean are exact. Not thread-safe.
//
// The layout is HdrHistogram's for 2 significant digits and lowest discernible value 1 (bucket 0
// holds [0, 256) one by one, bucket b >= 1 holds [128 << b, 256 << b) in 128 slices), index for
// index, so the counts are written in HdrHistogram's encoding (hdr_encoding.hpp) and merged by
// other HdrHistogram tools without moving a count: the precision of our own layout already meets
// what a report promises, so we kept it rather than record at 3 digits (8x the buckets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mr::bench {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBucketBits = 7;
  static constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBucketBits;  // 128

  LatencyHistogram();

  void record(std::uint64_t value) {
    ++counts_[index_of(value)];
    ++count_;
    sum_ += value;
    if (value < min_) min_ = value;
    if (value > max_) max_ = value;
  }
  // A histogram holding exactly `counts` (indexed as index_of(); shorter is padded with zeros).
  // min and max are the bounds of the lowest and highest non-empty buckets and the sum assumes
  // each value sat in its bucket's middle, until set_exact_summary() says otherwise.
  static LatencyHistogram from_counts(std::vector<std::uint64_t> counts);
  // Replaces the estimates from_counts() made with the recorded ones (kept beside the counts).
  void set_exact_summary(std::uint64_t min, std::uint64_t max, std::uint64_t sum);
  const std::vector<std::uint64_t>& counts() const { return counts_; }
  std::uint64_t sum() const { return sum_; }

  // Adds every value recorded in `other`.
  void add(const LatencyHistogram& other);
  void reset();

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The nearest-rank percentile: the value of rank ceil(p/100 * count) in sorted order,
  // reported as the middle of its bucket (clamped to [min, max]). p in [0, 100]; 0 when empty.
  std::uint64_t percentile(double p) const;

  // Bucket arithmetic, public for the tests.
  static std::size_t index_of(std::uint64_t value) {
    if (value < 2 * kSubBuckets) return static_cast<std::size_t>(value);
    const unsigned top_bit = 63U - static_cast<unsigned>(__builtin_clzll(value));
    const unsigned shift = top_bit - kSubBucketBits;
    const std::uint64_t slice = (value >> shift) - kSubBuckets;  // 0 .. kSubBuckets-1
    return static_cast<std::size_t>(2 * kSubBuckets + (shift - 1) * kSubBuckets + slice);
  }
  static std::uint64_t lowest_of(std::size_t index);
  static std::uint64_t highest_of(std::size_t index);
  static std::size_t bucket_count();

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0};
  std::uint64_t max_ = 0;
};

}  // namespace mr::bench
