// mr-microbench: what each piece costs per message (Google Benchmark; --benchmark_format=json).
//
// The pieces: the output buffer's append/consume, the latency histogram's record, a task handed
// across threads through EventLoop::post + eventfd (one-way throughput and round-trip latency),
// one echo round trip through a Worker on loopback, and a connection's accept-to-first-echo on
// a one-worker Server.
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "echo/echo_reactor.hpp"
#include "latency_histogram.hpp"
#include "message_framing.hpp"
#include "multireactor/detail/output_buffer.hpp"
#include "multireactor/event_loop.hpp"
#include "multireactor/socket.hpp"
#include "server/server.hpp"

namespace {

// A loop on its own thread that does nothing but run posted tasks.
class LoopThread final {
 public:
  LoopThread() : thread_([this] { loop_.run(); }) {}
  ~LoopThread() {
    loop_.stop();
    thread_.join();
  }
  mr::EventLoop& loop() { return loop_; }

 private:
  mr::EventLoop loop_;
  std::thread thread_;
};

// Blocking helpers for the loopback benchmarks (the client side is not what is measured).
void write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t k = send(fd, data, n, MSG_NOSIGNAL);
    if (k <= 0) throw std::runtime_error("send failed");
    data += k;
    n -= static_cast<std::size_t>(k);
  }
}

void read_all(int fd, char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t k = recv(fd, data, n, 0);
    if (k <= 0) throw std::runtime_error("recv failed");
    data += k;
    n -= static_cast<std::size_t>(k);
  }
}

int blocking_connect(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const mr::SocketAddress address = mr::make_address("127.0.0.1", port);
  if (connect(fd, address.get(), address.length) != 0) {
    close(fd);
    throw std::runtime_error("connect failed");
  }
  mr::set_tcp_nodelay(fd, true);
  return fd;
}

void BM_OutputBufferAppendConsume(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<char> bytes(n, 'x');
  mr::OutputBuffer buffer;
  for (auto _ : state) {
    buffer.append(bytes.data(), n);
    buffer.append(bytes.data(), n);
    buffer.consume(n);
    buffer.consume(n);
    benchmark::DoNotOptimize(buffer.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * n));
}
BENCHMARK(BM_OutputBufferAppendConsume)->Arg(16)->Arg(1024)->Arg(16384);

void BM_HistogramRecord(benchmark::State& state) {
  mr::bench::LatencyHistogram histogram;
  std::mt19937_64 random(42);
  std::lognormal_distribution<double> latency(11.5, 1.0);  // around 100 us, long tail
  std::vector<std::uint64_t> values(4096);
  for (auto& v : values)
    v = static_cast<std::uint64_t>(latency(random));
  std::size_t i = 0;
  for (auto _ : state) {
    histogram.record(values[i++ & 4095]);
  }
  benchmark::DoNotOptimize(histogram.count());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_HistogramRecord);

void BM_MessageGenerateAndVerify(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  mr::bench::MessagePattern pattern(size);
  std::vector<unsigned char> message(size);
  mr::bench::EchoVerifier verifier(&pattern, 7);
  std::uint64_t sequence = 0;
  for (auto _ : state) {
    pattern.write(7, sequence++, 0, size, message.data());
    auto r = verifier.consume(message.data(), size, true);
    if (r.mismatch) state.SkipWithError("mismatch");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_MessageGenerateAndVerify)->Arg(16)->Arg(1024)->Arg(16384);

// One-way: tasks posted from this thread, run on the loop's thread; the eventfd is written once
// per batch, so this is the throughput of the hand-off path.
void BM_CrossThreadPostThroughput(benchmark::State& state) {
  LoopThread target;
  std::atomic<std::uint64_t> done{0};
  std::uint64_t posted = 0;
  for (auto _ : state) {
    target.loop().post([&done] { done.fetch_add(1, std::memory_order_relaxed); });
    ++posted;
  }
  while (done.load(std::memory_order_acquire) != posted)
    std::this_thread::yield();
  state.SetItemsProcessed(static_cast<std::int64_t>(posted));
}
BENCHMARK(BM_CrossThreadPostThroughput)->UseRealTime();

// Round trip: post to the loop, which posts back to ours; each iteration waits for the answer,
// so this is twice the wake-up latency of an idle loop (eventfd write, epoll_wait return).
void BM_CrossThreadPostRoundTrip(benchmark::State& state) {
  LoopThread target;
  LoopThread home;
  for (auto _ : state) {
    std::atomic<bool> answered{false};
    target.loop().post([&home, &answered] {
      home.loop().post([&answered] { answered.store(true, std::memory_order_release); });
    });
    while (!answered.load(std::memory_order_acquire)) {
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_CrossThreadPostRoundTrip)->UseRealTime();

// One message echoed through one Worker: a connected loopback pair, one end handed to the worker.
void BM_LoopbackEchoRoundTrip(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const int listener = mr::listen_tcp(mr::make_address("127.0.0.1", 0), 16);
  const int client = blocking_connect(mr::local_port(listener));
  int served = -1;
  while (served < 0)
    served = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  close(listener);
  mr::set_tcp_nodelay(served, true);
  mr::EchoWorker worker(0, mr::WorkerOptions{});
  worker.start();
  worker.hand_off(std::span<const int>(&served, 1));
  std::vector<char> out(size, 'e');
  std::vector<char> in(size);
  for (auto _ : state) {
    write_all(client, out.data(), size);
    read_all(client, in.data(), size);
  }
  close(client);
  worker.stop();
  worker.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_LoopbackEchoRoundTrip)->Arg(16)->Arg(1024)->Arg(16384)->UseRealTime();

// A new connection's first echo: connect, the acceptor hands it to the worker, one byte echoed,
// close. Accept, hand-off and adoption are all on the path.
void BM_AcceptToFirstEcho(benchmark::State& state) {
  mr::ServerConfig config;
  config.bind = "127.0.0.1";
  config.port = 0;
  config.workers = 1;
  config.admin_port = 0;
  mr::Server server(config);
  server.start();
  char byte = 'a';
  for (auto _ : state) {
    const int fd = blocking_connect(server.port());
    write_all(fd, &byte, 1);
    read_all(fd, &byte, 1);
    state.PauseTiming();
    close(fd);
    state.ResumeTiming();
  }
  server.stop();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_AcceptToFirstEcho)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
