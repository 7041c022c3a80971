// A timing wheel that finds idle connections in O(1) per connection per timeout period.
//
// Contract: the wheel does not see traffic. Each connection records the wheel's current tick
// (now()) whenever it moves bytes — a single store, no list operation on the data path. The
// wheel files each connection's key in the bucket of the tick at which it would be idle long
// enough; when that tick comes, advance() asks for the connection's last-active tick and either
// reports it expired or files it again further on. Keys of closed connections are dropped lazily
// (last_active_of returns nullopt). A connection is reported after at least `timeout_ms` and at
// most timeout_ms * (1 + 2 / kTicksPerTimeout) of idleness. Single-threaded.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace mr {

class IdleWheel {
 public:
  static constexpr std::uint32_t kTicksPerTimeout = 8;

  explicit IdleWheel(std::uint64_t timeout_ms)
      : tick_ms_(timeout_ms == 0 ? 0 : (timeout_ms + kTicksPerTimeout - 1) / kTicksPerTimeout),
        buckets_(timeout_ms == 0 ? 0 : kTicksPerTimeout + 2) {}

  bool enabled() const { return tick_ms_ != 0; }
  std::uint64_t tick_ms() const { return tick_ms_; }
  std::uint32_t now() const { return tick_; }

  // Starts watching `key`, last active now.
  void track(std::uint64_t key) { file(key, tick_); }

  // Moves the wheel one tick. last_active_of(key) -> std::optional<std::uint32_t>;
  // on_expired(key) is called for each key idle for the whole timeout.
  template <typename LastActiveOf, typename OnExpired>
  void advance(LastActiveOf&& last_active_of, OnExpired&& on_expired) {
    ++tick_;
    due_.swap(buckets_[tick_ % buckets_.size()]);
    for (std::uint64_t key : due_) {
      std::optional<std::uint32_t> last = last_active_of(key);
      if (!last) continue;
      if (tick_ - *last > kTicksPerTimeout) {
        on_expired(key);
      } else {
        file(key, *last);
      }
    }
    due_.clear();
  }

 private:
  void file(std::uint64_t key, std::uint32_t last_active) {
    buckets_[(last_active + kTicksPerTimeout + 1) % buckets_.size()].push_back(key);
  }

  std::uint64_t tick_ms_;
  std::uint32_t tick_ = 0;
  std::vector<std::vector<std::uint64_t>> buckets_;
  std::vector<std::uint64_t> due_;
};

}  // namespace mr
