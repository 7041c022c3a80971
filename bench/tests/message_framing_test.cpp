#include "message_framing.hpp"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <vector>

namespace mr::bench {
namespace {

std::vector<unsigned char> stream_of(const MessagePattern& pattern, std::uint32_t id,
                                     std::uint64_t first, std::uint64_t count) {
  const std::size_t size = pattern.message_size();
  std::vector<unsigned char> out(size * count);
  for (std::uint64_t s = 0; s < count; ++s) {
    pattern.write(id, first + s, 0, size, out.data() + s * size);
  }
  return out;
}

// Feeds `bytes` to a verifier in random pieces; returns completed messages, or -1 on mismatch.
long long feed(EchoVerifier& verifier, const std::vector<unsigned char>& bytes, unsigned seed,
               bool verify = true) {
  std::mt19937 random(seed);
  long long completed = 0;
  std::size_t at = 0;
  while (at < bytes.size()) {
    const std::size_t piece = std::min<std::size_t>(bytes.size() - at, 1 + random() % 3000);
    const auto r = verifier.consume(bytes.data() + at, piece, verify);
    if (r.mismatch) return -1;
    completed += static_cast<long long>(r.messages_completed);
    at += piece;
  }
  return completed;
}

TEST(MessageFraming, HeaderCarriesConnectionIdSizeAndSequenceLittleEndian) {
  MessagePattern pattern(64);
  unsigned char m[64];
  pattern.write(0x01020304, 0x1122334455667788ULL, 0, 64, m);
  EXPECT_EQ(m[0], 0x04);
  EXPECT_EQ(m[3], 0x01);
  EXPECT_EQ(m[4], 64);
  EXPECT_EQ(m[5], 0);
  EXPECT_EQ(m[8], 0x88);
  EXPECT_EQ(m[15], 0x11);
}

TEST(MessageFraming, WritingInPiecesGivesTheSameBytesAsWritingWhole) {
  MessagePattern pattern(1000);
  std::vector<unsigned char> whole(1000);
  std::vector<unsigned char> pieces(1000);
  pattern.write(9, 77, 0, 1000, whole.data());
  for (std::size_t at = 0; at < 1000; at += 7) {
    pattern.write(9, 77, at, std::min<std::size_t>(7, 1000 - at), pieces.data() + at);
  }
  EXPECT_EQ(whole, pieces);
}

TEST(MessageFraming, AnExactEchoVerifiesWhateverPiecesTheKernelHandsOver) {
  for (std::size_t size : {16U, 17U, 100U, 1024U, 16384U}) {
    MessagePattern pattern(size);
    EchoVerifier verifier(&pattern, 42);
    const auto bytes = stream_of(pattern, 42, 0, 300);
    EXPECT_EQ(feed(verifier, bytes, static_cast<unsigned>(size)), 300) << size;
    EXPECT_EQ(verifier.next_sequence(), 300U);
    EXPECT_EQ(verifier.offset(), 0U);
  }
}

TEST(MessageFraming, OneChangedByteAnywhereIsAMismatch) {
  MessagePattern pattern(256);
  const auto good = stream_of(pattern, 3, 0, 4);
  for (std::size_t at : {0U, 5U, 12U, 15U, 16U, 100U, 255U, 256U + 200U, 4U * 256U - 1U}) {
    auto bad = good;
    bad[at] ^= 0x01;
    EchoVerifier verifier(&pattern, 3);
    EXPECT_EQ(feed(verifier, bad, 1), -1) << "byte " << at;
  }
}

TEST(MessageFraming, AnotherConnectionsBytesAreAMismatch) {
  MessagePattern pattern(128);
  EchoVerifier verifier(&pattern, 1);
  EXPECT_EQ(feed(verifier, stream_of(pattern, 2, 0, 5), 3), -1);
}

TEST(MessageFraming, SkippedDuplicatedOrReorderedMessagesAreAMismatch) {
  MessagePattern pattern(64);
  {
    EchoVerifier verifier(&pattern, 8);
    EXPECT_EQ(feed(verifier, stream_of(pattern, 8, 1, 3), 4), -1);  // message 0 missing
  }
  {
    auto twice = stream_of(pattern, 8, 0, 2);
    const auto again = stream_of(pattern, 8, 1, 1);
    twice.insert(twice.end(), again.begin(), again.end());
    EchoVerifier verifier(&pattern, 8);
    EXPECT_EQ(feed(verifier, twice, 5), -1);  // message 1 echoed twice
  }
  {
    auto swapped = stream_of(pattern, 8, 1, 1);
    const auto first = stream_of(pattern, 8, 0, 1);
    swapped.insert(swapped.end(), first.begin(), first.end());
    EchoVerifier verifier(&pattern, 8);
    EXPECT_EQ(feed(verifier, swapped, 6), -1);
  }
}

TEST(MessageFraming, PayloadsDifferBetweenSequenceNumbers) {
  MessagePattern pattern(64);
  unsigned char a[64];
  unsigned char b[64];
  pattern.write(1, 10, 0, 64, a);
  pattern.write(1, 11, 0, 64, b);
  EXPECT_NE(std::vector<unsigned char>(a + 16, a + 64), std::vector<unsigned char>(b + 16, b + 64));
}

TEST(MessageFraming, WithoutVerificationOnlyPositionsAreTracked) {
  MessagePattern pattern(50);
  std::vector<unsigned char> junk(50 * 7 + 20, 0xAB);
  EchoVerifier verifier(&pattern, 1);
  EXPECT_EQ(feed(verifier, junk, 9, /*verify=*/false), 7);
  EXPECT_EQ(verifier.offset(), 20U);
}

TEST(MessageFraming, MessagesShorterThanTheHeaderAreRejected) {
  EXPECT_THROW(MessagePattern(15), std::invalid_argument);
  EXPECT_NO_THROW(MessagePattern(16));
}

}  // namespace
}  // namespace mr::bench
