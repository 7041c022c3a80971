#include "message_framing.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace mr::bench {
namespace {

void put_le(unsigned char* out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out[i] = static_cast<unsigned char>(value >> (8 * i));
}

}  // namespace

MessagePattern::MessagePattern(std::size_t message_size)
    : message_size_(message_size), pattern_(message_size + kShifts) {
  if (message_size < kHeaderBytes) {
    throw std::invalid_argument("message size must be at least 16 bytes (the header)");
  }
  // xorshift64: cheap, deterministic, and no byte value is favoured.
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  for (auto& b : pattern_) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    b = static_cast<unsigned char>(state >> 32);
  }
}

void MessagePattern::header(std::uint32_t connection_id, std::uint64_t sequence,
                            unsigned char* out) const {
  put_le(out, connection_id, 4);
  put_le(out + 4, message_size_, 4);
  put_le(out + 8, sequence, 8);
}

void MessagePattern::write(std::uint32_t connection_id, std::uint64_t sequence, std::size_t offset,
                           std::size_t n, unsigned char* out) const {
  if (offset < kHeaderBytes) {
    unsigned char head[kHeaderBytes];
    header(connection_id, sequence, head);
    const std::size_t take = std::min(n, kHeaderBytes - offset);
    std::memcpy(out, head + offset, take);
    out += take;
    offset += take;
    n -= take;
  }
  if (n > 0) {
    const std::size_t from = shift_of(connection_id, sequence) + offset - kHeaderBytes;
    std::memcpy(out, pattern_.data() + from, n);
  }
}

bool MessagePattern::matches(std::uint32_t connection_id, std::uint64_t sequence,
                             std::size_t offset, std::size_t n, const unsigned char* bytes) const {
  if (offset < kHeaderBytes) {
    unsigned char head[kHeaderBytes];
    header(connection_id, sequence, head);
    const std::size_t take = std::min(n, kHeaderBytes - offset);
    if (std::memcmp(bytes, head + offset, take) != 0) return false;
    bytes += take;
    offset += take;
    n -= take;
  }
  if (n == 0) return true;
  const std::size_t from = shift_of(connection_id, sequence) + offset - kHeaderBytes;
  return std::memcmp(bytes, pattern_.data() + from, n) == 0;
}

EchoVerifier::Result EchoVerifier::consume(const unsigned char* bytes, std::size_t n, bool verify) {
  Result result;
  const std::size_t size = pattern_->message_size();
  while (n > 0) {
    const std::size_t take = std::min(n, size - offset_);
    if (verify && !pattern_->matches(connection_id_, sequence_, offset_, take, bytes)) {
      result.mismatch = true;
      return result;
    }
    bytes += take;
    n -= take;
    offset_ += take;
    if (offset_ == size) {
      offset_ = 0;
      ++sequence_;
      ++result.messages_completed;
    }
  }
  return result;
}

}  // namespace mr::bench
