#include "latency_histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace mr::bench {
namespace {

std::uint64_t nearest_rank(const std::vector<std::uint64_t>& sorted, double p) {
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_percentiles_match(const std::vector<std::uint64_t>& values) {
  LatencyHistogram h;
  for (auto v : values)
    h.record(v);
  std::vector<std::uint64_t> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (double p : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const double expected = static_cast<double>(nearest_rank(sorted, p));
    const double got = static_cast<double>(h.percentile(p));
    EXPECT_LE(std::abs(got - expected), 0.01 * expected) << "p" << p;
  }
  EXPECT_EQ(h.min(), sorted.front());
  EXPECT_EQ(h.max(), sorted.back());
  EXPECT_EQ(h.count(), values.size());
}

TEST(LatencyHistogram, PercentilesMatchASortedReferenceWithinOnePercentOnLogNormalData) {
  std::mt19937_64 random(12345);
  std::lognormal_distribution<double> latency(11.0, 1.5);  // ~60 us median, long tail
  std::vector<std::uint64_t> values(200'000);
  for (auto& v : values)
    v = static_cast<std::uint64_t>(latency(random));
  expect_percentiles_match(values);
}

TEST(LatencyHistogram, PercentilesMatchASortedReferenceAcrossNineDecades) {
  std::mt19937_64 random(777);
  std::uniform_real_distribution<double> exponent(0.0, 9.0);
  std::vector<std::uint64_t> values(100'000);
  for (auto& v : values)
    v = static_cast<std::uint64_t>(std::pow(10.0, exponent(random)));
  expect_percentiles_match(values);
}

TEST(LatencyHistogram, PercentilesMatchOnAFewSamples) {
  expect_percentiles_match({5});
  expect_percentiles_match({1000, 3});
  expect_percentiles_match({70'000, 1, 250, 250, 9'999'999, 42});
}

TEST(LatencyHistogram, SmallValuesAreCountedExactly) {
  LatencyHistogram h;
  for (std::uint64_t v = 0; v < 2 * LatencyHistogram::kSubBuckets; ++v) {
    EXPECT_EQ(LatencyHistogram::index_of(v), v);
    EXPECT_EQ(LatencyHistogram::lowest_of(v), v);
    EXPECT_EQ(LatencyHistogram::highest_of(v), v);
  }
  h.record(7);
  h.record(7);
  h.record(200);
  EXPECT_EQ(h.percentile(50), 7U);
  EXPECT_EQ(h.percentile(100), 200U);
}

TEST(LatencyHistogram, EveryValueFallsInsideItsBucketAndBucketsAreNarrow) {
  std::mt19937_64 random(99);
  for (int i = 0; i < 100'000; ++i) {
    const unsigned bits = static_cast<unsigned>(random() % 64) + 1;
    const std::uint64_t v = bits == 64 ? random() : random() & ((std::uint64_t{1} << bits) - 1);
    const std::size_t index = LatencyHistogram::index_of(v);
    ASSERT_LT(index, LatencyHistogram::bucket_count());
    const std::uint64_t lo = LatencyHistogram::lowest_of(index);
    const std::uint64_t hi = LatencyHistogram::highest_of(index);
    ASSERT_LE(lo, v);
    ASSERT_GE(hi, v);
    ASSERT_LE(hi - lo, v / LatencyHistogram::kSubBuckets) << v;
  }
  EXPECT_EQ(LatencyHistogram::highest_of(LatencyHistogram::bucket_count() - 1), ~std::uint64_t{0});
}

TEST(LatencyHistogram, AddingTwoHistogramsEqualsRecordingEverythingInOne) {
  std::mt19937_64 random(5);
  LatencyHistogram a;
  LatencyHistogram b;
  LatencyHistogram both;
  for (int i = 0; i < 10'000; ++i) {
    const std::uint64_t v = random() % 5'000'000;
    (i % 3 == 0 ? a : b).record(v);
    both.record(v);
  }
  a.add(b);
  EXPECT_EQ(a.count(), both.count());
  EXPECT_EQ(a.min(), both.min());
  EXPECT_EQ(a.max(), both.max());
  EXPECT_DOUBLE_EQ(a.mean(), both.mean());
  for (double p : {50.0, 90.0, 99.0, 99.9})
    EXPECT_EQ(a.percentile(p), both.percentile(p));
}

TEST(LatencyHistogram, EmptyHistogramReportsZeroAndResetEmpties) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0U);
  EXPECT_EQ(h.percentile(99), 0U);
  EXPECT_EQ(h.min(), 0U);
  EXPECT_EQ(h.max(), 0U);
  h.record(123456);
  EXPECT_EQ(h.count(), 1U);
  EXPECT_DOUBLE_EQ(h.mean(), 123456.0);
  h.reset();
  EXPECT_EQ(h.count(), 0U);
  EXPECT_EQ(h.percentile(50), 0U);
}

}  // namespace
}  // namespace mr::bench
