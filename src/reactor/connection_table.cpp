#include "multireactor/detail/connection_table.hpp"

namespace mr::detail {

ConnectionState* ConnectionTable::acquire(int fd) {
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    if (slot_count_ % kPageSlots == 0) {
      pages_.push_back(std::make_unique<ConnectionState[]>(kPageSlots));
      free_slots_.reserve(pages_.size() * kPageSlots);
    }
    slot = slot_count_++;
  }
  ConnectionState& c = at(slot);
  c.fd = fd;
  c.slot = slot;
  c.next_generation();
  c.interest = 0;
  c.reading_paused = false;
  c.overload_paused = false;
  c.waiting_for_budget = false;
  c.peer_closed_write = false;
  c.ending = false;
  c.protocol_paused = false;
  c.write_shut = false;
  c.lingering = false;
  c.linger_heard = false;
  c.linger_sweeps = 0;
  c.forget_uring_operations();
  ++active_;
  return &c;
}

void ConnectionTable::release(ConnectionState* connection) {
  connection->pending.release();
  connection->fd = -1;
  // Bumped here too, so an event already queued for this slot is stale even before reuse.
  connection->next_generation();
  free_slots_.push_back(connection->slot);
  --active_;
}

}  // namespace mr::detail
