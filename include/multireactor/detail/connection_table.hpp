// A worker's connections: a slab of slots with generation numbers.
//
// Contract: slots are stable (pages never move), so a ConnectionState* stays valid until release().
// acquire() reuses the most recently freed slot first and bumps its generation; find() returns
// nullptr for a key whose generation is old. Memory grows by one page of slots at a time (only
// when the table is full, never on the data path) and is kept for reuse. Single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "multireactor/detail/connection_state.hpp"

namespace mr::detail {

class ConnectionTable {
 public:
  static constexpr std::size_t kPageSlots = 1024;

  ConnectionState* acquire(int fd);
  void release(ConnectionState* connection);
  ConnectionState* find(std::uint64_t key) {
    const auto slot = static_cast<std::uint32_t>(key);
    if (slot >= slot_count_) return nullptr;
    ConnectionState& c = at(slot);
    return (c.open() && c.generation == static_cast<std::uint32_t>(key >> 32)) ? &c : nullptr;
  }
  std::size_t active() const { return active_; }

  // Calls f(ConnectionState&) for every open connection; f may release() the one it is given.
  template <typename F>
  void for_each_open(F&& f) {
    for (std::uint32_t slot = 0; slot < slot_count_; ++slot) {
      ConnectionState& c = at(slot);
      if (c.open()) f(c);
    }
  }

 private:
  ConnectionState& at(std::uint32_t slot) { return pages_[slot / kPageSlots][slot % kPageSlots]; }

  std::vector<std::unique_ptr<ConnectionState[]>> pages_;
  std::vector<std::uint32_t> free_slots_;
  std::uint32_t slot_count_ = 0;
  std::size_t active_ = 0;
};

}  // namespace mr::detail
