// echo-bench's message format and the check that every echoed byte is the byte that was sent.
//
// Contract: a message of `size` bytes (size >= kHeaderBytes) is a 16-byte header — connection id
// (u32), size (u32), sequence number (u64), little-endian — followed by payload bytes taken from
// one shared pseudo-random pattern at an offset that depends on the connection id and the
// sequence number. Messages can therefore be regenerated from (connection, sequence, offset), so
// a client connection keeps no copy of what it sent, and an echo that is reordered, duplicated,
// truncated or crossed with another connection's stream fails the comparison. EchoVerifier walks
// one connection's incoming byte stream in whatever pieces the kernel hands it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mr::bench {

inline constexpr std::size_t kHeaderBytes = 16;

// The payload pattern all messages draw from; immutable after construction, shared by threads.
class MessagePattern {
 public:
  explicit MessagePattern(std::size_t message_size);
  std::size_t message_size() const { return message_size_; }
  // Bytes [offset, offset + n) of message `sequence` of connection `connection_id`.
  void write(std::uint32_t connection_id, std::uint64_t sequence, std::size_t offset, std::size_t n,
             unsigned char* out) const;
  // True when `bytes` equals bytes [offset, offset + n) of that message.
  bool matches(std::uint32_t connection_id, std::uint64_t sequence, std::size_t offset,
               std::size_t n, const unsigned char* bytes) const;

  static constexpr std::size_t kShifts = 251;  // distinct payload offsets (a prime)

 private:
  void header(std::uint32_t connection_id, std::uint64_t sequence, unsigned char* out) const;
  static std::size_t shift_of(std::uint32_t connection_id, std::uint64_t sequence) {
    return static_cast<std::size_t>((sequence * 7 + connection_id) % kShifts);
  }

  std::size_t message_size_;
  std::vector<unsigned char> pattern_;  // message_size + kShifts bytes
};

// Follows one connection's echoed stream: which message and offset the next byte belongs to.
class EchoVerifier {
 public:
  EchoVerifier() = default;
  EchoVerifier(const MessagePattern* pattern, std::uint32_t connection_id)
      : pattern_(pattern), connection_id_(connection_id) {}

  struct Result {
    std::uint64_t messages_completed = 0;  // messages whose last byte was in this piece
    bool mismatch = false;                 // a byte differed; the stream is no longer trusted
  };
  // Consumes `n` received bytes. With `verify` false only the positions are tracked.
  Result consume(const unsigned char* bytes, std::size_t n, bool verify);

  std::uint64_t next_sequence() const { return sequence_; }
  std::size_t offset() const { return offset_; }

 private:
  const MessagePattern* pattern_ = nullptr;
  std::uint32_t connection_id_ = 0;
  std::uint64_t sequence_ = 0;
  std::size_t offset_ = 0;
};

}  // namespace mr::bench
