#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <utility>

#include "multireactor/detail/output_buffer.hpp"
#include "test_client.hpp"

namespace mr {
namespace {

std::string_view contents(const OutputBuffer& buffer) {
  return {buffer.data(), buffer.size()};
}

void append(OutputBuffer& buffer, std::string_view bytes) {
  buffer.append(bytes.data(), bytes.size());
}

TEST(OutputBuffer, NewBufferIsEmptyAndOwnsNoMemory) {
  OutputBuffer buffer;
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_EQ(buffer.capacity(), 0u);
}

TEST(OutputBuffer, AppendKeepsByteOrder) {
  OutputBuffer buffer;
  append(buffer, "This is the message. ");
  append(buffer, "It will be sent ");
  append(buffer, "in parts.");
  EXPECT_EQ(contents(buffer), "This is the message. It will be sent in parts.");
  EXPECT_FALSE(buffer.empty());
}

TEST(OutputBuffer, AppendOfNothingTakesNoMemory) {
  OutputBuffer buffer;
  buffer.append("x", 0);
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.capacity(), 0u);
}

TEST(OutputBuffer, ConsumeDropsBytesFromTheFront) {
  OutputBuffer buffer;
  append(buffer, "abcdefgh");
  buffer.consume(3);
  EXPECT_EQ(contents(buffer), "defgh");
  buffer.consume(4);
  EXPECT_EQ(contents(buffer), "h");
  append(buffer, "ij");
  EXPECT_EQ(contents(buffer), "hij");
}

TEST(OutputBuffer, ConsumingEverythingLeavesItEmptyAndReusesTheStorageFromTheStart) {
  OutputBuffer buffer;
  const std::string full = test::random_bytes(4096, 1);
  append(buffer, full);
  const std::size_t capacity = buffer.capacity();
  buffer.consume(full.size());
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.size(), 0u);
  // Storage is kept until release(), and a fresh append starts at its beginning: the same
  // amount fits again without growing.
  append(buffer, full);
  EXPECT_EQ(buffer.capacity(), capacity);
  EXPECT_EQ(contents(buffer), full);
}

TEST(OutputBuffer, ReleaseFreesTheStorage) {
  OutputBuffer buffer;
  append(buffer, test::random_bytes(10000, 2));
  ASSERT_GT(buffer.capacity(), 0u);
  buffer.consume(buffer.size());
  buffer.release();
  EXPECT_EQ(buffer.capacity(), 0u);
  EXPECT_TRUE(buffer.empty());
  // Usable again after release.
  append(buffer, "again");
  EXPECT_EQ(contents(buffer), "again");
}

TEST(OutputBuffer, ReleaseDropsContentThatWasNotSent) {
  OutputBuffer buffer;
  append(buffer, "unsent");
  buffer.release();
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.capacity(), 0u);
}

TEST(OutputBuffer, GrowsToHoldLargeAppendsIntact) {
  OutputBuffer buffer;
  const std::string first = test::random_bytes(3000, 3);
  const std::string second = test::random_bytes(200000, 4);
  append(buffer, first);
  const std::size_t small_capacity = buffer.capacity();
  EXPECT_GE(small_capacity, first.size());
  append(buffer, second);
  EXPECT_GE(buffer.capacity(), first.size() + second.size());
  EXPECT_GT(buffer.capacity(), small_capacity);
  EXPECT_EQ(contents(buffer), first + second);
}

TEST(OutputBuffer, GrowthKeepsOnlyTheUnsentBytes) {
  OutputBuffer buffer;
  const std::string a = test::random_bytes(4000, 5);
  const std::string b = test::random_bytes(50000, 6);
  append(buffer, a);
  buffer.consume(1000);
  append(buffer, b);
  EXPECT_EQ(contents(buffer), a.substr(1000) + b);
}

TEST(OutputBuffer, SlidesTheUnsentBytesDownInsteadOfGrowingWhenTheyFit) {
  OutputBuffer buffer;
  const std::string a = test::random_bytes(4096, 7);
  append(buffer, a);
  const std::size_t capacity = buffer.capacity();
  // Fill the storage to the end, so the next append has no room after the held bytes.
  if (buffer.size() < capacity) append(buffer, std::string(capacity - buffer.size(), 'f'));
  const std::string held_before = std::string(contents(buffer));
  buffer.consume(3000);
  const std::string b = test::random_bytes(2000, 8);
  append(buffer, b);
  EXPECT_EQ(buffer.capacity(), capacity) << "3000 sent bytes at the front had room for 2000";
  EXPECT_EQ(contents(buffer), held_before.substr(3000) + b);
}

TEST(OutputBuffer, MoveTransfersContentAndLeavesTheSourceEmpty) {
  OutputBuffer source;
  append(source, "moved bytes");
  OutputBuffer target(std::move(source));
  EXPECT_EQ(contents(target), "moved bytes");
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): the contract says so
  EXPECT_EQ(source.capacity(), 0u);

  OutputBuffer assigned;
  append(assigned, "old content");
  assigned = std::move(target);
  EXPECT_EQ(contents(assigned), "moved bytes");
  EXPECT_TRUE(target.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(target.capacity(), 0u);
}

TEST(OutputBuffer, MatchesAStringModelOverRandomAppendsAndConsumes) {
  // Partial writes of every size, with growth, slides and full drains mixed: the buffer must
  // always hold exactly the bytes appended and not yet consumed, in order.
  std::mt19937_64 rng(42);
  OutputBuffer buffer;
  std::string model;
  std::uint64_t seed = 100;
  for (int step = 0; step < 5000; ++step) {
    const auto choice = rng() % 10;
    if (choice < 5) {
      const std::size_t n = rng() % (choice == 0 ? 70000 : 3000);
      const std::string bytes = test::random_bytes(n, seed++);
      append(buffer, bytes);
      model += bytes;
    } else if (choice < 9) {
      const std::size_t n = model.empty() ? 0 : rng() % (model.size() + 1);
      buffer.consume(n);
      model.erase(0, n);
    } else {
      buffer.consume(buffer.size());
      model.clear();
      if (rng() % 2 == 0) buffer.release();
    }
    ASSERT_EQ(buffer.size(), model.size()) << "step " << step;
    ASSERT_EQ(buffer.empty(), model.empty()) << "step " << step;
    ASSERT_TRUE(contents(buffer) == model) << "content differs at step " << step;
    ASSERT_GE(buffer.capacity(), buffer.size());
  }
}

}  // namespace
}  // namespace mr
