#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "multireactor/detail/buffer_budget.hpp"
#include "multireactor/reactor.hpp"
#include "reactor/acceptor.hpp"
#include "system/memory_limit.hpp"
#include "system/system.hpp"

namespace mr {
namespace {

// The most a worker holds of the budget without using it is two chunks; a chunk covers at least
// one full read, so the shared counter is not touched per message.
std::uint64_t budget_chunk_bytes(std::uint64_t budget, std::uint64_t read_bytes, unsigned workers) {
  const std::uint64_t one_read = read_bytes + OutputBuffer::kMaxGrowthSlackBytes;
  std::uint64_t chunk = std::max<std::uint64_t>(256 * 1024, one_read);
  const std::uint64_t fair = budget / (2 * std::max(1U, workers));
  return std::max<std::uint64_t>(OutputBuffer::kPageBytes, std::min(chunk, fair));
}

}  // namespace

ReactorCore::ReactorCore(ReactorOptions options, WorkerFactory make_worker)
    : options_(std::move(options)), make_worker_(std::move(make_worker)) {
  if (options_.workers == 0) options_.workers = usable_cpu_count();
  // spdlog creates its default logger lazily; doing it here, before any loop thread exists,
  // keeps the first log calls of two workers from racing on that set-up.
  spdlog::default_logger_raw();
}

ReactorCore::~ReactorCore() {
  stop();
}

std::uint64_t ReactorCore::buffer_budget_bytes() const {
  return budget_ ? budget_->limit() : 0;
}

void ReactorCore::start(const std::function<void(EventLoop&)>& before_threads) {
  if (running_) return;
  const SocketAddress address = make_address(options_.bind, options_.port);
  const bool reuseport = options_.accept_mode == AcceptMode::kReuseport;
  int listen_fd = listen_tcp(address, options_.backlog, reuseport);
  port_ = local_port(listen_fd);

  if (options_.max_buffered_bytes != 0) {
    budget_ = std::make_unique<BufferBudget>(options_.max_buffered_bytes);
    budget_source_ = "max_buffered_bytes";
  } else {
    const MemoryLimit memory = tightest_memory_limit();
    budget_ = std::make_unique<BufferBudget>(std::max<std::uint64_t>(memory.bytes / 2, 1 << 20));
    budget_source_ =
        fmt::format("automatic: half of {}, {} MiB", memory.source, memory.bytes / (1024 * 1024));
  }
  spdlog::info("buffer budget {} MiB for all output buffers ({})", budget_->limit() / (1024 * 1024),
               budget_source_);

  WorkerOptions worker_options = options_.worker;
  worker_options.budget = budget_.get();
  worker_options.budget_chunk_bytes =
      budget_chunk_bytes(budget_->limit(), worker_options.scratch_bytes, options_.workers);
  if (!worker_options.on_thread_start) worker_options.on_thread_start = options_.on_thread_start;
  std::vector<detail::WorkerCore*> raw;
  for (unsigned i = 0; i < options_.workers; ++i) {
    workers_.push_back(make_worker_(i, worker_options));
    raw.push_back(workers_.back().get());
  }
  if (reuseport) {
    // Every worker gets its own socket on the same port; the kernel hashes connections to them.
    const SocketAddress bound = make_address(options_.bind, port_);
    auto open_connections = [this] {
      std::uint64_t open = 0;
      for (const auto& w : workers_)
        open += w->connections_active();
      return open;
    };
    for (unsigned i = 0; i < options_.workers; ++i) {
      int fd = i == 0 ? listen_fd : listen_tcp(bound, options_.backlog, true);
      workers_[i]->listen_on(fd, open_connections, options_.max_connections,
                             options_.accepted_socket);
    }
    listen_fd = -1;  // the acceptor thread then serves only the attached handlers
  }
  AcceptorOptions acceptor_options;
  acceptor_options.max_connections = options_.max_connections;
  acceptor_options.accepted_socket = options_.accepted_socket;
  acceptor_options.least_connections = options_.dispatch == Dispatch::kLeastConnections;
  acceptor_options.on_thread_start = options_.on_thread_start;
  acceptor_ = std::make_unique<Acceptor>(listen_fd, std::move(raw), acceptor_options);
  if (before_threads) before_threads(acceptor_->loop());

  const std::vector<int> cpus =
      options_.pin_workers ? pinning_cpus(options_.workers) : std::vector<int>{};
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->start(cpus.empty() ? -1 : cpus[i]);
  }
  acceptor_->start();
  running_ = true;
}

void ReactorCore::begin_drain(std::uint64_t timeout_ms) {
  if (!running_ || draining_) return;
  draining_ = true;
  // The listening socket closes at once; the acceptor's loop keeps running so the handlers
  // attached to it (the admin endpoint) can still say so until stop().
  shutting_down_.store(true, std::memory_order_release);
  acceptor_->stop_listening();
  for (auto& w : workers_)
    w->begin_drain(timeout_ms);
}

bool ReactorCore::drained() const {
  return std::all_of(workers_.begin(), workers_.end(), [](const auto& w) { return w->drained(); });
}

void ReactorCore::stop() {
  if (!running_) return;
  running_ = false;
  shutting_down_.store(true, std::memory_order_release);
  acceptor_->stop();
  acceptor_->join();
  for (auto& w : workers_)
    w->stop();
  for (auto& w : workers_)
    w->join();
}

std::vector<WorkerStatsSnapshot> ReactorCore::worker_stats() const {
  std::vector<WorkerStatsSnapshot> out;
  out.reserve(workers_.size());
  for (const auto& w : workers_)
    out.push_back(w->stats());
  return out;
}

AcceptorStatsSnapshot ReactorCore::acceptor_stats() const {
  AcceptorStatsSnapshot s = acceptor_ ? acceptor_->stats() : AcceptorStatsSnapshot{};
  for (const auto& w : workers_) {
    const AcceptorStatsSnapshot own = w->listener_stats();  // reuseport mode
    s.accept_errors += own.accept_errors;
    s.connections_rejected += own.connections_rejected;
  }
  return s;
}

}  // namespace mr
