#include "latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace mr::bench {

std::size_t LatencyHistogram::bucket_count() {
  // Exact buckets for [0, 2*kSubBuckets), then kSubBuckets per power of two up to 2^64.
  return index_of(~std::uint64_t{0}) + 1;
}

std::uint64_t LatencyHistogram::lowest_of(std::size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const std::size_t above = index - 2 * kSubBuckets;
  const unsigned shift = static_cast<unsigned>(above / kSubBuckets) + 1;
  const std::uint64_t slice = above % kSubBuckets;
  return (kSubBuckets + slice) << shift;
}

std::uint64_t LatencyHistogram::highest_of(std::size_t index) {
  if (index < 2 * kSubBuckets) return index;
  const unsigned shift = static_cast<unsigned>((index - 2 * kSubBuckets) / kSubBuckets) + 1;
  return lowest_of(index) + ((std::uint64_t{1} << shift) - 1);
}

LatencyHistogram::LatencyHistogram() : counts_(bucket_count(), 0) {}

LatencyHistogram LatencyHistogram::from_counts(std::vector<std::uint64_t> counts) {
  LatencyHistogram h;
  counts.resize(h.counts_.size(), 0);
  h.counts_ = std::move(counts);
  for (std::size_t i = 0; i < h.counts_.size(); ++i) {
    const std::uint64_t n = h.counts_[i];
    if (n == 0) continue;
    h.count_ += n;
    const std::uint64_t lo = lowest_of(i);
    h.sum_ += n * (lo + (highest_of(i) - lo) / 2);
    h.min_ = std::min(h.min_, lo);
    h.max_ = std::max(h.max_, highest_of(i));
  }
  return h;
}

void LatencyHistogram::set_exact_summary(std::uint64_t min, std::uint64_t max, std::uint64_t sum) {
  if (count_ == 0) return;
  min_ = min;
  max_ = max;
  sum_ = sum;
}

void LatencyHistogram::add(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0;
  min_ = ~std::uint64_t{0};
  max_ = 0;
}

std::uint64_t LatencyHistogram::percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::uint64_t lo = lowest_of(i);
      const std::uint64_t middle = lo + (highest_of(i) - lo) / 2;
      return std::clamp(middle, min(), max_);
    }
  }
  return max_;
}

}  // namespace mr::bench
