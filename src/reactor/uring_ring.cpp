#include "multireactor/detail/uring_ring.hpp"

#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#ifdef MR_HAVE_LIBURING
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <liburing.h>
#endif

namespace mr::detail {

#ifdef MR_HAVE_LIBURING

namespace {
constexpr unsigned kSubmissionEntries = 512;
constexpr unsigned kMinCompletionEntries = 4096;
constexpr unsigned kSmallGroup = 0;
constexpr unsigned kLargeGroup = 1;
static_assert(IOSQE_FIXED_FILE == 1U << 0, "uring_ring.hpp's file_flag()");
// The table is kernel memory charged to the container (8 bytes an entry, per worker): at a
// runtime's usual nofile limit of 2^20 it would be 8 MiB for each worker. Descriptors past the
// bound are named by number, as without a table.
constexpr rlim_t kMaxRegisteredFiles = 1U << 16;

std::string failure(const char* call, int error) {
  return std::string(call) + ": " + std::generic_category().message(error);
}

unsigned round_up_to_power_of_two(unsigned n) {
  unsigned p = 1;
  while (p < n && p < 32768)
    p <<= 1;
  return p;
}

// Creates a ring with SINGLE_ISSUER (kernel 6.0, the release that also brought multishot
// receives) and, when asked and available, DEFER_TASKRUN (6.1). Returns 0 or -errno.
int setup_ring(io_uring* ring, unsigned cq_entries, bool defer_taskrun, std::string* setup) {
  // Disabled until the worker thread enables it: SINGLE_ISSUER makes the enabling thread the
  // only one that may submit, while the ring (and its descriptor) exists before the threads do.
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED;
  p.cq_entries = cq_entries;
  if (defer_taskrun) {
    p.flags |= IORING_SETUP_DEFER_TASKRUN;
    const int r = io_uring_queue_init_params(kSubmissionEntries, ring, &p);
    if (r == 0) {
      *setup = "SINGLE_ISSUER|DEFER_TASKRUN";
      return 0;
    }
    if (r != -EINVAL) return r;
    p = io_uring_params{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED;
    p.cq_entries = cq_entries;
  }
  const int r = io_uring_queue_init_params(kSubmissionEntries, ring, &p);
  if (r != 0) return r;
  if ((p.features & IORING_FEAT_EXT_ARG) == 0) {
    io_uring_queue_exit(ring);
    return -ENOTSUP;
  }
  *setup = "SINGLE_ISSUER";
  return 0;
}
}  // namespace

struct UringRing::Impl {
  io_uring ring{};
  bool ring_ready = false;
  // The small buffers' ring (group 0) and the large ones' (group 1, maybe empty).
  struct Group {
    io_uring_buf_ring* entries = nullptr;
    std::size_t entries_bytes = 0;  // the mapping of the ring's entries
    int mask = 0;
    unsigned recycled = 0;  // added to the ring since the last advance
  };
  Group groups[2];
  void* memory = nullptr;  // the buffers themselves
  std::size_t memory_bytes = 0;
  // What the SENDMSGs prepared since the last submit point at: the kernel reads them within that
  // submit. Reserved at init and never grown, so no pointer into them moves.
  std::vector<iovec> parts;
  std::vector<msghdr> messages;

  io_uring_sqe* sqe() {
    io_uring_sqe* e = io_uring_get_sqe(&ring);
    if (e != nullptr) [[likely]]
      return e;
    io_uring_submit(&ring);  // the queue is full: safe, see the contract
    return io_uring_get_sqe(&ring);
  }
  // Gives the recycled buffers of each ring to the kernel (before a submit).
  void advance() {
    for (Group& g : groups) {
      if (g.recycled == 0) continue;
      io_uring_buf_ring_advance(g.entries, static_cast<int>(g.recycled));
      g.recycled = 0;
    }
  }
  // After a submit: what the kernel was given is read, so the storage is free again (unless the
  // kernel left entries in the queue, as it may when its completion queue overflows).
  void submitted() {
    if (io_uring_sq_ready(&ring) != 0) return;
    parts.clear();
    messages.clear();
  }
};

UringRing::UringRing() : impl_(std::make_unique<Impl>()) {}

UringRing::~UringRing() {
  if (impl_->ring_ready) io_uring_queue_exit(&impl_->ring);
  for (const Impl::Group& g : impl_->groups) {
    if (g.entries != nullptr) munmap(g.entries, g.entries_bytes);
  }
  if (impl_->memory != nullptr) munmap(impl_->memory, impl_->memory_bytes);
}

bool UringRing::probe(bool defer_taskrun, std::string* why) {
  io_uring ring{};
  std::string setup;
  int r = setup_ring(&ring, kMinCompletionEntries, defer_taskrun, &setup);
  if (r == -ENOTSUP) {
    *why = "io_uring lacks IORING_FEAT_EXT_ARG (kernel before 5.11)";
    return false;
  }
  if (r == -EINVAL) {
    *why =
        "io_uring_setup rejects IORING_SETUP_SINGLE_ISSUER (kernel before 6.0, which also "
        "lacks multishot receives)";
    return false;
  }
  if (r < 0) {
    *why = failure("io_uring_setup", -r);
    return false;
  }
  bool ok = true;
  io_uring_probe* ops = io_uring_get_probe_ring(&ring);
  if (ops == nullptr) {
    *why = "io_uring cannot list its operations (IORING_REGISTER_PROBE)";
    ok = false;
  } else {
    for (const int op : {IORING_OP_RECV, IORING_OP_SEND, IORING_OP_SENDMSG, IORING_OP_POLL_ADD,
                         IORING_OP_ASYNC_CANCEL}) {
      if (io_uring_opcode_supported(ops, op) == 0) {
        *why = "io_uring lacks operation " + std::to_string(op);
        ok = false;
        break;
      }
    }
    io_uring_free_probe(ops);
  }
  if (ok) {
    // A one-entry provided buffer ring (kernel 5.19) proves registration works.
    const std::size_t bytes = 4096;
    void* entries =
        mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (entries == MAP_FAILED) {
      *why = failure("mmap", errno);
      ok = false;
    } else {
      io_uring_buf_reg reg{};
      reg.ring_addr = reinterpret_cast<std::uintptr_t>(entries);
      reg.ring_entries = 1;
      reg.bgid = kSmallGroup;
      r = io_uring_register_buf_ring(&ring, &reg, 0);
      if (r < 0) {
        *why = failure("io_uring_register_buf_ring", -r);
        ok = false;
      }
      munmap(entries, bytes);
    }
  }
  io_uring_queue_exit(&ring);
  if (ok) *why = "io_uring with " + setup + ", multishot receives and a provided buffer ring";
  return ok;
}

bool UringRing::init(const UringParams& params, std::string* why) {
  count_ = round_up_to_power_of_two(params.buffers < 2 ? 2 : params.buffers);
  buffer_bytes_ = params.buffer_bytes;
  if (params.large_buffer_bytes > params.buffer_bytes) {
    // As many bytes as the small ones, in buffers of large_buffer_bytes; ids go on after theirs.
    const std::size_t bytes = std::size_t{count_} * buffer_bytes_;
    const auto wanted = static_cast<unsigned>(bytes / params.large_buffer_bytes);
    large_count_ = std::min(round_up_to_power_of_two(wanted < 2 ? 2 : wanted), 32768 - count_);
    large_bytes_ = params.large_buffer_bytes;
  }
  const unsigned all = count_ + large_count_;
  const unsigned cq = all * 4 > kMinCompletionEntries ? all * 4 : kMinCompletionEntries;
  const int r = setup_ring(&impl_->ring, cq, params.defer_taskrun, &setup_);
  if (r < 0) {
    *why = failure("io_uring_setup", -r);
    return false;
  }
  impl_->ring_ready = true;
  impl_->parts.reserve(all);
  impl_->messages.reserve(all);
  // The buffers are a mapping of their own: a page becomes resident only when a receive
  // reaches it, so small messages touch one page of each buffer.
  impl_->memory_bytes =
      std::size_t{count_} * buffer_bytes_ + std::size_t{large_count_} * large_bytes_;
  impl_->memory = mmap(nullptr, impl_->memory_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (impl_->memory == MAP_FAILED) {
    impl_->memory = nullptr;
    *why = failure("mmap", errno);
    return false;
  }
  base_ = static_cast<char*>(impl_->memory);
  large_base_ = base_ + std::size_t{count_} * buffer_bytes_;
  for (const unsigned group : {kSmallGroup, kLargeGroup}) {
    const unsigned first = group == kSmallGroup ? 0 : count_;
    const unsigned n = group == kSmallGroup ? count_ : large_count_;
    if (n == 0) continue;
    Impl::Group& g = impl_->groups[group];
    // liburing 2.3 has no io_uring_setup_buf_ring (2.4): map the entries and register them.
    g.entries_bytes = std::size_t{n} * sizeof(io_uring_buf);
    void* entries =
        mmap(nullptr, g.entries_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (entries == MAP_FAILED) {
      *why = failure("mmap", errno);
      return false;
    }
    g.entries = static_cast<io_uring_buf_ring*>(entries);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(entries);
    reg.ring_entries = n;
    reg.bgid = static_cast<std::uint16_t>(group);
    const int rr = io_uring_register_buf_ring(&impl_->ring, &reg, 0);
    if (rr < 0) {
      *why = failure("io_uring_register_buf_ring", -rr);
      return false;
    }
    g.mask = io_uring_buf_ring_mask(n);
    io_uring_buf_ring_init(g.entries);
    for (unsigned i = 0; i < n; ++i) {
      const auto id = static_cast<std::uint16_t>(first + i);
      io_uring_buf_ring_add(g.entries, buffer(id), buffer_bytes(id), id, g.mask,
                            static_cast<int>(i));
    }
    io_uring_buf_ring_advance(g.entries, static_cast<int>(n));
  }
  return true;
}

bool UringRing::enable(std::string* why) {
  // liburing 2.3 declares io_uring_enable_rings() but its library does not export it.
  if (syscall(__NR_io_uring_register, impl_->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr,
              0) < 0) {
    *why = failure("io_uring_register(IORING_REGISTER_ENABLE_RINGS)", errno);
    return false;
  }
  // A table of registered files, one entry per descriptor number the process may have, up to
  // kMaxRegisteredFiles: an operation on a registered socket skips the fget/fput pair on the
  // process's file table, which is shared by all the workers (2.1% + 0.7% of the server's CPU at
  // 1,000 x 64 B x pipeline 8 in `perf record`, 0.1% registered). Should the kernel refuse the
  // table, every operation names the descriptor itself.
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    const auto n = static_cast<unsigned>(std::min<rlim_t>(limit.rlim_cur, kMaxRegisteredFiles));
    if (io_uring_register_files_sparse(&impl_->ring, n) == 0) {
      registered_.assign(n, false);
      setup_ += ", registered files";
    }
  }
  return true;
}

void UringRing::add_file(int fd) {
  // Its entry is the descriptor's own number, so a connection needs no index of its own.
  if (fd < 0 || static_cast<std::size_t>(fd) >= registered_.size()) return;
  if (io_uring_register_files_update(&impl_->ring, static_cast<unsigned>(fd), &fd, 1) == 1) {
    registered_[static_cast<std::size_t>(fd)] = true;
  }
}

void UringRing::remove_file(int fd) {
  if (!registered(fd)) return;
  // The table holds a reference to the socket: until it is dropped, close() would not close it.
  int none = -1;
  (void)io_uring_register_files_update(&impl_->ring, static_cast<unsigned>(fd), &none, 1);
  registered_[static_cast<std::size_t>(fd)] = false;
}

void UringRing::prep_recv_multishot(int fd, bool large, std::uint64_t data) {
  io_uring_sqe* e = impl_->sqe();
  io_uring_prep_recv_multishot(e, fd, nullptr, 0, 0);
  e->flags |= IOSQE_BUFFER_SELECT | file_flag(fd);
  e->buf_group = large && large_count_ != 0 ? kLargeGroup : kSmallGroup;
  io_uring_sqe_set_data64(e, data);
}

void UringRing::prep_send(int fd, const char* bytes, std::size_t n, std::uint64_t data) {
  io_uring_sqe* e = impl_->sqe();
  // MSG_DONTWAIT: a full socket completes with EAGAIN at once instead of the kernel keeping the
  // send (and a pointer into our memory) until there is room; we poll for POLLOUT instead.
  io_uring_prep_send(e, fd, bytes, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  e->flags |= file_flag(fd);
  io_uring_sqe_set_data64(e, data);
  ++inline_ops_;
}

void UringRing::prep_send_parts(int fd, std::span<const iovec> parts, std::uint64_t data) {
  Impl& m = *impl_;
  if (m.parts.size() + parts.size() > m.parts.capacity() ||
      m.messages.size() == m.messages.capacity()) {
    submit();  // safe, as for a full submission queue: every send is MSG_DONTWAIT
  }
  const std::size_t first = m.parts.size();
  m.parts.insert(m.parts.end(), parts.begin(), parts.end());
  msghdr& message = m.messages.emplace_back();
  message.msg_iov = &m.parts[first];
  message.msg_iovlen = parts.size();
  io_uring_sqe* e = m.sqe();
  io_uring_prep_sendmsg(e, fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  e->flags |= file_flag(fd);
  io_uring_sqe_set_data64(e, data);
  ++inline_ops_;
}

void UringRing::prep_poll(int fd, unsigned events, std::uint64_t data) {
  io_uring_sqe* e = impl_->sqe();
  io_uring_prep_poll_add(e, fd, events);
  e->flags |= file_flag(fd);
  io_uring_sqe_set_data64(e, data);
}

void UringRing::prep_cancel(std::uint64_t target) {
  io_uring_sqe* e = impl_->sqe();
  io_uring_prep_cancel64(e, target, 0);
  io_uring_sqe_set_data64(e, uring_data(UringOp::kCancel, 0));
  ++inline_ops_;
}

void UringRing::recycle(std::uint16_t id) {
  const bool large = is_large(id);
  Impl::Group& g = impl_->groups[large ? kLargeGroup : kSmallGroup];
  io_uring_buf_ring_add(g.entries, buffer(id), buffer_bytes(id), id, g.mask,
                        static_cast<int>(g.recycled));
  ++g.recycled;
  --out_[large ? 1 : 0];  // the kernel sees it at the next submit, before any receive armed with it
}

void UringRing::submit() {
  impl_->advance();
  io_uring_submit(&impl_->ring);
  impl_->submitted();
  inline_ops_ = 0;
}

bool UringRing::submit_and_wait(unsigned wait_nr, unsigned timeout_us,
                                std::vector<Completion>& out) {
  impl_->advance();
  inline_ops_ = 0;
  io_uring_cqe* first = nullptr;
  int r = 0;
  if (timeout_us == 0) {
    r = io_uring_submit_and_wait(&impl_->ring, wait_nr);
  } else {
    __kernel_timespec ts{};
    ts.tv_sec = static_cast<long long>(timeout_us / 1'000'000);
    ts.tv_nsec = static_cast<long long>(timeout_us % 1'000'000) * 1000;
    r = io_uring_submit_and_wait_timeout(&impl_->ring, &first, wait_nr, &ts, nullptr);
  }
  impl_->submitted();
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) {
    errno = -r;
    return false;
  }
  unsigned head = 0;
  unsigned seen = 0;
  io_uring_cqe* cqe = nullptr;
  io_uring_for_each_cqe(&impl_->ring, head, cqe) {
    ++seen;
    if (cqe->user_data == LIBURING_UDATA_TIMEOUT) continue;
    if ((cqe->flags & IORING_CQE_F_BUFFER) != 0) {
      ++out_[is_large(static_cast<std::uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT)) ? 1 : 0];
    }
    out.push_back(Completion{cqe->user_data, cqe->res, cqe->flags});
  }
  io_uring_cq_advance(&impl_->ring, seen);
  return true;
}

#else  // no liburing

struct UringRing::Impl {};
UringRing::UringRing() : impl_(std::make_unique<Impl>()) {}
UringRing::~UringRing() = default;
bool UringRing::probe(bool /*defer_taskrun*/, std::string* why) {
  *why = "built without liburing";
  return false;
}
bool UringRing::init(const UringParams& /*params*/, std::string* why) {
  *why = "built without liburing";
  return false;
}
bool UringRing::enable(std::string* why) {
  *why = "built without liburing";
  return false;
}
void UringRing::add_file(int /*fd*/) {}
void UringRing::remove_file(int /*fd*/) {}
void UringRing::prep_recv_multishot(int /*fd*/, bool /*large*/, std::uint64_t /*data*/) {}
void UringRing::prep_send(int /*fd*/, const char* /*bytes*/, std::size_t /*n*/,
                          std::uint64_t /*data*/) {}
void UringRing::prep_send_parts(int /*fd*/, std::span<const iovec> /*parts*/,
                                std::uint64_t /*data*/) {}
void UringRing::prep_poll(int /*fd*/, unsigned /*events*/, std::uint64_t /*data*/) {}
void UringRing::prep_cancel(std::uint64_t /*target*/) {}
void UringRing::recycle(std::uint16_t /*id*/) {}
void UringRing::submit() {}
bool UringRing::submit_and_wait(unsigned /*wait_nr*/, unsigned /*timeout_us*/,
                                std::vector<Completion>& /*out*/) {
  return false;
}

#endif

}  // namespace mr::detail
