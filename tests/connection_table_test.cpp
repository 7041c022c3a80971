#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "multireactor/detail/connection_table.hpp"

namespace mr {
namespace {

TEST(ConnectionTable, EmptyTableFindsNothing) {
  detail::ConnectionTable table;
  EXPECT_EQ(table.active(), 0u);
  EXPECT_EQ(table.find(0), nullptr);
  EXPECT_EQ(table.find((std::uint64_t{1} << 32) | 0), nullptr);
  EXPECT_EQ(table.find(12345), nullptr);
}

TEST(ConnectionTable, AcquiredConnectionIsOpenAndFoundByItsKey) {
  detail::ConnectionTable table;
  detail::ConnectionState* c = table.acquire(7);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->open());
  EXPECT_EQ(c->fd, 7);
  EXPECT_EQ(c->key(), (std::uint64_t{c->generation} << 32) | c->slot);
  EXPECT_EQ(table.find(c->key()), c);
  EXPECT_EQ(table.active(), 1u);
}

TEST(ConnectionTable, EachOpenConnectionHasItsOwnSlot) {
  detail::ConnectionTable table;
  std::set<std::uint32_t> slots;
  for (int fd = 10; fd < 110; ++fd)
    slots.insert(table.acquire(fd)->slot);
  EXPECT_EQ(slots.size(), 100u);
  EXPECT_EQ(table.active(), 100u);
}

TEST(ConnectionTable, ReleasedKeyMissesAtOnce) {
  detail::ConnectionTable table;
  detail::ConnectionState* c = table.acquire(7);
  const std::uint64_t key = c->key();
  table.release(c);
  EXPECT_EQ(table.find(key), nullptr);
  EXPECT_FALSE(c->open());
  EXPECT_EQ(table.active(), 0u);
}

TEST(ConnectionTable, ReusedSlotGetsANewGenerationSoTheStaleKeyMisses) {
  detail::ConnectionTable table;
  detail::ConnectionState* first = table.acquire(7);
  const std::uint64_t stale_key = first->key();
  const std::uint32_t slot = first->slot;
  const std::uint32_t generation = first->generation;
  table.release(first);

  detail::ConnectionState* second = table.acquire(8);
  EXPECT_EQ(second->slot, slot) << "a freed slot is reused before the table grows";
  EXPECT_NE(second->generation, generation);
  EXPECT_NE(second->key(), stale_key);
  EXPECT_EQ(table.find(stale_key), nullptr) << "an event queued for the old connection is stale";
  EXPECT_EQ(table.find(second->key()), second);
  EXPECT_EQ(second->fd, 8);
}

TEST(ConnectionTable, MostRecentlyFreedSlotIsReusedFirst) {
  detail::ConnectionTable table;
  detail::ConnectionState* a = table.acquire(1);
  detail::ConnectionState* b = table.acquire(2);
  detail::ConnectionState* c = table.acquire(3);
  const std::uint32_t slot_a = a->slot;
  const std::uint32_t slot_c = c->slot;
  table.release(a);
  table.release(c);
  EXPECT_EQ(table.acquire(4)->slot, slot_c);
  EXPECT_EQ(table.acquire(5)->slot, slot_a);
  EXPECT_EQ(table.find(b->key()), b);
  EXPECT_EQ(table.active(), 3u);
}

TEST(ConnectionTable, ManyReusesOfOneSlotNeverRepeatAKey) {
  detail::ConnectionTable table;
  std::set<std::uint64_t> keys;
  for (int i = 0; i < 1000; ++i) {
    detail::ConnectionState* c = table.acquire(i);
    EXPECT_TRUE(keys.insert(c->key()).second) << "key repeated at reuse " << i;
    table.release(c);
  }
  for (std::uint64_t key : keys)
    EXPECT_EQ(table.find(key), nullptr);
}

TEST(ConnectionTable, AcquireStartsFromAFreshConnectionState) {
  detail::ConnectionTable table;
  detail::ConnectionState* c = table.acquire(7);
  c->interest = 5;
  c->reading_paused = true;
  c->peer_closed_write = true;
  c->pending.append("leftover", 8);
  table.release(c);
  EXPECT_TRUE(c->pending.empty());
  EXPECT_EQ(c->pending.capacity(), 0u) << "release gives the buffer memory back";

  detail::ConnectionState* reused = table.acquire(9);
  ASSERT_EQ(reused, c);
  EXPECT_EQ(reused->interest, 0u);
  EXPECT_FALSE(reused->reading_paused);
  EXPECT_FALSE(reused->peer_closed_write);
  EXPECT_TRUE(reused->pending.empty());
}

TEST(ConnectionTable, PointersStayValidWhileTheTableGrows) {
  detail::ConnectionTable table;
  detail::ConnectionState* first = table.acquire(1000);
  first->pending.append("kept", 4);
  const std::uint64_t first_key = first->key();
  std::vector<detail::ConnectionState*> all{first};
  std::vector<std::uint64_t> keys{first_key};
  const int count = static_cast<int>(3 * detail::ConnectionTable::kPageSlots + 17);
  for (int fd = 1001; fd < 1000 + count; ++fd) {
    all.push_back(table.acquire(fd));
    keys.push_back(all.back()->key());
  }
  EXPECT_EQ(table.active(), static_cast<std::size_t>(count));
  // Every connection, including the ones from the first page, is where it was.
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(table.find(keys[i]), all[i]) << "connection " << i;
    ASSERT_EQ(all[i]->fd, 1000 + static_cast<int>(i));
  }
  EXPECT_EQ(std::string(first->pending.data(), first->pending.size()), "kept");
}

TEST(ConnectionTable, ForEachOpenVisitsOnlyOpenConnectionsAndMayReleaseThem) {
  detail::ConnectionTable table;
  std::vector<detail::ConnectionState*> all;
  for (int fd = 0; fd < 10; ++fd)
    all.push_back(table.acquire(100 + fd));
  table.release(all[3]);
  table.release(all[7]);

  std::set<int> visited;
  table.for_each_open([&](detail::ConnectionState& c) {
    visited.insert(c.fd);
    table.release(&c);
  });
  EXPECT_EQ(visited, (std::set<int>{100, 101, 102, 104, 105, 106, 108, 109}));
  EXPECT_EQ(table.active(), 0u);
  int left = 0;
  table.for_each_open([&](detail::ConnectionState&) { ++left; });
  EXPECT_EQ(left, 0);
}

TEST(ConnectionTable, KeyWithASlotBeyondTheTableMisses) {
  detail::ConnectionTable table;
  detail::ConnectionState* c = table.acquire(1);
  const std::uint64_t beyond = (std::uint64_t{c->generation} << 32) | (c->slot + 5000);
  EXPECT_EQ(table.find(beyond), nullptr);
}

}  // namespace
}  // namespace mr
