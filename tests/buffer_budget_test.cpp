// The process buffer budget: the shared counter, a worker's share of it, the output buffer's
// bounded growth it relies on, where the automatic budget comes from, and a server that keeps
// every output buffer within it while slow readers flood it.
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "multireactor/detail/buffer_budget.hpp"
#include "multireactor/detail/output_buffer.hpp"
#include "server/server.hpp"
#include "system/memory_limit.hpp"
#include "system/memory_trimmer.hpp"
#include "test_client.hpp"
#include "test_server.hpp"

namespace mr {
namespace {

using namespace std::chrono_literals;
using test::Deadline;
using test::TestClient;

TEST(BufferBudget, GrantsFromManyThreadsNeverAddUpToMoreThanTheLimit) {
  constexpr std::uint64_t kLimit = 1 << 20;
  BufferBudget budget(kLimit);
  std::atomic<bool> over{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t));
      std::vector<std::uint64_t> held;
      for (int i = 0; i < 20000; ++i) {
        if (held.empty() || random() % 2 == 0) {
          const std::uint64_t got = budget.take(1 + random() % 100000);
          if (got > 0) held.push_back(got);
        } else {
          budget.give_back(held.back());
          held.pop_back();
        }
        if (budget.granted() > kLimit) over = true;
      }
      for (std::uint64_t n : held)
        budget.give_back(n);
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_FALSE(over.load());
  EXPECT_EQ(budget.granted(), 0u) << "every grant was given back";
}

TEST(BufferBudget, TakeGrantsWhatIsLeftAndThenNothing) {
  BufferBudget budget(1000);
  EXPECT_EQ(budget.take(600), 600u);
  EXPECT_EQ(budget.take(600), 400u);
  EXPECT_EQ(budget.take(1), 0u);
  budget.give_back(100);
  EXPECT_EQ(budget.take(1000), 100u);
}

TEST(BudgetShare, TakesWholeChunksAndGivesBackAllButOneWhenMoreThanTwoAreSpare) {
  constexpr std::uint64_t kChunk = 4096;
  BufferBudget budget(1 << 20);
  {
    BudgetShare share(budget, kChunk);
    ASSERT_TRUE(share.reserve(100));
    EXPECT_EQ(budget.granted(), kChunk) << "a whole chunk, not the 100 bytes asked for";
    share.charge(100);
    ASSERT_TRUE(share.reserve(3 * kChunk));
    EXPECT_EQ(budget.granted(), 4 * kChunk);
    share.charge(3 * kChunk);
    share.refund(3 * kChunk + 100);
    EXPECT_EQ(share.used(), 0u);
    EXPECT_EQ(share.spare(), kChunk) << "one chunk kept, so a steady echo does not ask again";
    EXPECT_EQ(budget.granted(), kChunk);
  }
  EXPECT_EQ(budget.granted(), 0u) << "a share gives everything back when it goes";
}

TEST(BudgetShare, ReserveFallsShortWhenTheBudgetIsSpentAndHoldsWhatWasLeft) {
  BufferBudget budget(10000);
  BudgetShare first(budget, 8192);
  BudgetShare second(budget, 8192);
  ASSERT_TRUE(first.reserve(8000));
  EXPECT_FALSE(second.reserve(8000));
  EXPECT_EQ(second.spare(), 10000u - 8192u);
  EXPECT_LE(budget.granted(), 10000u);
}

TEST(BufferBudget, ReadinessTurnsFalseAtThreeQuarters) {
  EXPECT_FALSE(budget_nearly_spent(0, 800));
  EXPECT_FALSE(budget_nearly_spent(599, 800));
  EXPECT_TRUE(budget_nearly_spent(600, 800));
  EXPECT_FALSE(budget_nearly_spent(1 << 30, 0)) << "no budget reported, never overloaded";
}

TEST(OutputBuffer, OneAppendGrowsCapacityByAtMostTheBytesPlusItsGrowthSlack) {
  // The budget bounds a read by this promise, so it must hold for every size and history.
  std::mt19937 random(7);
  OutputBuffer buffer;
  std::string expected;
  for (int i = 0; i < 3000; ++i) {
    if (random() % 3 != 0) {
      const std::size_t n = 1 + random() % (96 * 1024);
      const std::string bytes(n, static_cast<char>('a' + i % 26));
      const std::size_t before = buffer.capacity();
      const std::size_t slack = buffer.growth_slack();
      ASSERT_LE(slack, OutputBuffer::kMaxGrowthSlackBytes);
      buffer.append(bytes.data(), n);
      expected += bytes;
      ASSERT_LE(buffer.capacity(), before + n + slack) << "append " << i << " of " << n;
    } else {
      const std::size_t n = random() % (buffer.size() + 1);
      buffer.consume(n);
      expected.erase(0, n);
    }
    ASSERT_EQ(buffer.size(), expected.size());
    if (buffer.size() > 8 * 1024 * 1024) {
      ASSERT_EQ(std::string(buffer.data(), buffer.size()), expected);
      buffer.consume(buffer.size());
      expected.clear();
      buffer.release();
    }
  }
  EXPECT_EQ(std::string(buffer.data(), buffer.size()), expected);
}

TEST(OutputBuffer, ALargeBufferIsItsOwnMappingAndReleaseGivesItBackToTheKernel) {
  OutputBuffer buffer;
  const std::string bytes = test::random_bytes(1 << 20, 3);
  buffer.append(bytes.data(), 200 * 1024);
  buffer.append(bytes.data() + 200 * 1024, bytes.size() - 200 * 1024);  // grown by mremap
  ASSERT_EQ(std::string(buffer.data(), buffer.size()), bytes);
  ASSERT_GE(buffer.capacity(), OutputBuffer::kMappedBytes);
  void* start = const_cast<char*>(buffer.data());
  const std::size_t capacity = buffer.capacity();
  unsigned char resident[1];
  ASSERT_EQ(mincore(start, OutputBuffer::kPageBytes, resident), 0) << "mapped while held";
  buffer.consume(buffer.size());
  buffer.release();
  // mincore fails with ENOMEM on an address that is no longer mapped: the pages went back at
  // once, not into malloc's free lists where they stay resident.
  errno = 0;
  EXPECT_EQ(mincore(start, capacity, resident), -1);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(MemoryTrimmer, TrimsOnceBufferedMemoryFellFarFromItsPeakAndNotBefore) {
  MemoryTrimmer trimmer;
  constexpr std::uint64_t kStep = MemoryTrimmer::kTrimAfterBytes;
  EXPECT_FALSE(trimmer.observe(0));
  EXPECT_FALSE(trimmer.observe(3 * kStep));
  EXPECT_FALSE(trimmer.observe(2 * kStep + 1)) << "fallen by less than the step";
  EXPECT_TRUE(trimmer.observe(2 * kStep));
  EXPECT_FALSE(trimmer.observe(kStep + 1)) << "the peak starts again from the trim";
  EXPECT_TRUE(trimmer.observe(0));
  EXPECT_EQ(trimmer.trims(), 2u);
}

TEST(MemoryTrimmer, FreedQueuesStayInTheHeapForTheNextOnesUntilTheTrimmerReturnsThem) {
  if (test::sanitizer_build()) {
    GTEST_SKIP() << "sanitizer allocators replace malloc: mallopt and mallinfo2 mean nothing";
  }
  MemoryTrimmer::keep_freed_memory_for_reuse();
  // 4 MiB of queue-sized blocks from the heap, freed last first so each joins the top of it:
  // glibc's default trims everything above 128 KiB there back to the kernel on free().
  constexpr std::size_t kBlocks = 256;
  constexpr std::size_t kBlockBytes = 16 * 1024;
  std::vector<char*> blocks;
  blocks.reserve(kBlocks);
  for (std::size_t i = 0; i < kBlocks; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc(kBlockBytes)));
    ASSERT_NE(blocks.back(), nullptr);
    blocks.back()[0] = static_cast<char>(i);
  }
  for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
    std::free(*it);
  // keepcost: the free memory at the top of the heap that a trim would give back.
  EXPECT_GE(mallinfo2().keepcost, kBlocks * kBlockBytes / 2);
  malloc_trim(0);
  EXPECT_LT(mallinfo2().keepcost, kBlocks * kBlockBytes / 2) << "the trimmer still returns it";
}

class MemoryLimitTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("mr-memory-limit-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(root_);
    paths_.proc_self_cgroup = (root_ / "cgroup").string();
    paths_.cgroup_root = (root_ / "sys").string();
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& relative, const std::string& text) {
    const auto path = root_ / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  std::filesystem::path root_;
  MemoryLimitPaths paths_;
};

TEST_F(MemoryLimitTree, CgroupV2TakesTheTightestOfTheGroupAndItsAncestors) {
  write("cgroup", "0::/kubepods/pod1/ctr\n");
  write("sys/kubepods/memory.max", "536870912\n");
  write("sys/kubepods/pod1/memory.max", "max\n");
  write("sys/kubepods/pod1/ctr/memory.max", "1073741824\n");
  const MemoryLimit limit = tightest_memory_limit(paths_);
  EXPECT_EQ(limit.bytes, 536870912u);
  EXPECT_NE(limit.source.find("cgroup v2 memory.max"), std::string::npos) << limit.source;
  EXPECT_NE(limit.source.find("kubepods/memory.max"), std::string::npos) << limit.source;
}

TEST_F(MemoryLimitTree, CgroupV1ReadsTheMemoryControllersLimitAndIgnoresItsNoLimitValue) {
  write("cgroup", "9:name=systemd:/\n4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n");
  write("sys/memory/docker/abc/memory.limit_in_bytes", "268435456\n");
  write("sys/memory/docker/memory.limit_in_bytes", "9223372036854771712\n");
  const MemoryLimit limit = tightest_memory_limit(paths_);
  EXPECT_EQ(limit.bytes, 268435456u);
  EXPECT_NE(limit.source.find("cgroup v1 memory.limit_in_bytes"), std::string::npos)
      << limit.source;
}

TEST_F(MemoryLimitTree, WithoutACgroupLimitTheRlimitsOrPhysicalMemoryDecide) {
  write("cgroup", "0::/\n");
  write("sys/memory.max", "max\n");
  const MemoryLimit limit = tightest_memory_limit(paths_);
  const auto physical = static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) *
                        static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  EXPECT_GT(limit.bytes, 0u);
  EXPECT_LE(limit.bytes, physical);
  EXPECT_EQ(limit.source.find("cgroup"), std::string::npos) << limit.source;
}

// The largest socket send buffer the kernel may autotune to: payloads beyond a few of them
// cannot all hide in kernel buffers.
std::size_t max_socket_send_buffer() {
  std::ifstream in("/proc/sys/net/ipv4/tcp_wmem");
  std::size_t min = 0, def = 0, max = 0;
  in >> min >> def >> max;
  return max > 0 ? max : 4 * 1024 * 1024;
}

TEST(BudgetedServer, SlowReadersStayWithinTheBudgetWhileABystanderIsServedAndEveryByteComesBack) {
  // Eight clients send without reading; the budget (4 MiB) is far below what they send and what
  // their high-water marks (1 MiB each) would allow. Output buffers together must never hold more
  // than the budget, a ping-pong bystander must still be answered, and once the flooders read,
  // every byte comes back in order.
  constexpr std::uint64_t kBudget = 4 * 1024 * 1024;
  constexpr int kFlooders = 8;
  ServerConfig config = test::loopback_config(2);
  config.max_buffered_bytes = kBudget;
  config.high_water_mark = 1024 * 1024;
  Server server(config);
  server.start();
  ASSERT_EQ(server.buffer_budget_bytes(), kBudget);

  const std::size_t payload_bytes = 2 * max_socket_send_buffer() + 4 * 1024 * 1024;
  const Deadline deadline(120s);  // a bound against hangs, not an expectation
  std::vector<TestClient> flooders;
  std::vector<std::string> payloads;
  for (int i = 0; i < kFlooders; ++i) {
    flooders.push_back(TestClient::connect(server.port(), Deadline(5s)));
    ASSERT_TRUE(flooders.back().valid()) << flooders.back().connect_error();
    ASSERT_TRUE(flooders.back().set_receive_buffer(32 * 1024));
    payloads.push_back(test::random_bytes(payload_bytes, 100 + static_cast<std::uint64_t>(i)));
  }
  // Each flooder pushes what the server takes, without reading, until the server stops reading.
  std::vector<std::size_t> offered(kFlooders, 0);
  std::uint64_t most_buffered = 0;
  auto sample = [&] {
    const auto total = test::total_stats(server);
    most_buffered = std::max(most_buffered, total.buffered_bytes);
    return total;
  };
  auto push = [&] {
    bool moved = false;
    for (int i = 0; i < kFlooders; ++i) {
      const std::string_view rest = std::string_view(payloads[i]).substr(offered[i]);
      if (rest.empty()) continue;
      const std::ptrdiff_t n = flooders[i].send_now(rest.substr(0, 256 * 1024));
      if (n > 0) {
        offered[i] += static_cast<std::size_t>(n);
        moved = true;
      }
    }
    return moved;
  };
  // Push until nothing moves for a while: every flooder's path is then full.
  for (int idle_rounds = 0; idle_rounds < 50 && !deadline.expired();) {
    idle_rounds = push() ? 0 : idle_rounds + 1;
    sample();
    std::this_thread::sleep_for(10ms);
  }
  const auto flooded = sample();
  EXPECT_GT(flooded.overload_pauses, 0u) << "the budget never paused a reader";
  EXPECT_GT(flooded.buffered_bytes, 0u);

  // The bystander is answered while every flooder is held.
  TestClient bystander = TestClient::connect(server.port(), Deadline(5s));
  ASSERT_TRUE(bystander.valid()) << bystander.connect_error();
  for (int round = 0; round < 50; ++round) {
    const std::string message = "ping " + std::to_string(round) + "\n";
    std::string echoed;
    ASSERT_TRUE(bystander.exchange(message, echoed, Deadline(10s)))
        << "round " << round << ": " << bystander.receive_error();
    ASSERT_EQ(echoed, message);
    sample();
  }

  // Now the flooders read: everything comes back, in order, while they send the rest.
  std::vector<std::string> echoed(kFlooders);
  for (bool done = false; !done && !deadline.expired();) {
    done = true;
    push();
    for (int i = 0; i < kFlooders; ++i) {
      if (echoed[i].size() == payload_bytes) continue;
      done = false;
      flooders[i].read_some(256 * 1024, echoed[i], Deadline(20ms));
    }
    sample();
  }
  for (int i = 0; i < kFlooders; ++i) {
    ASSERT_EQ(echoed[i].size(), payload_bytes) << "flooder " << i;
    EXPECT_TRUE(echoed[i] == payloads[i]) << "flooder " << i << ": echo differs";
  }
  EXPECT_LE(most_buffered, kBudget) << "output buffers held more than the budget";
  ASSERT_TRUE(test::wait_for_stats(
      server, [](const auto& total, const auto&) { return total.buffered_bytes == 0; },
      Deadline(5s)));
  const auto total = test::total_stats(server);
  EXPECT_EQ(total.errors, 0u);
  EXPECT_EQ(total.connections_closed, 0u) << "no connection was closed for the budget";
}

}  // namespace
}  // namespace mr
