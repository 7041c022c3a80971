#include "multireactor/detail/uring_ring.hpp"

#include <sys/mman.h>

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
constexpr unsigned kBufferGroup = 0;

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
  io_uring_buf_ring* buffers = nullptr;
  std::size_t buffers_bytes = 0;  // the mapping of the buffer ring's entries
  void* memory = nullptr;         // the buffers themselves
  std::size_t memory_bytes = 0;
  int mask = 0;
  unsigned recycled = 0;  // added to the ring since the last advance

  io_uring_sqe* sqe() {
    io_uring_sqe* e = io_uring_get_sqe(&ring);
    if (e != nullptr) [[likely]]
      return e;
    io_uring_submit(&ring);  // the queue is full: safe, see the contract
    return io_uring_get_sqe(&ring);
  }
};

UringRing::UringRing() : impl_(std::make_unique<Impl>()) {}

UringRing::~UringRing() {
  if (impl_->ring_ready) io_uring_queue_exit(&impl_->ring);
  if (impl_->buffers != nullptr) munmap(impl_->buffers, impl_->buffers_bytes);
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
    for (const int op :
         {IORING_OP_RECV, IORING_OP_SEND, IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL}) {
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
      reg.bgid = kBufferGroup;
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
  const unsigned cq = count_ * 4 > kMinCompletionEntries ? count_ * 4 : kMinCompletionEntries;
  const int r = setup_ring(&impl_->ring, cq, params.defer_taskrun, &setup_);
  if (r < 0) {
    *why = failure("io_uring_setup", -r);
    return false;
  }
  impl_->ring_ready = true;
  // liburing 2.3 has no io_uring_setup_buf_ring (2.4): map the entries and register them.
  impl_->buffers_bytes = std::size_t{count_} * sizeof(io_uring_buf);
  void* entries = mmap(nullptr, impl_->buffers_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (entries == MAP_FAILED) {
    *why = failure("mmap", errno);
    return false;
  }
  impl_->buffers = static_cast<io_uring_buf_ring*>(entries);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(entries);
  reg.ring_entries = count_;
  reg.bgid = kBufferGroup;
  const int rr = io_uring_register_buf_ring(&impl_->ring, &reg, 0);
  if (rr < 0) {
    *why = failure("io_uring_register_buf_ring", -rr);
    return false;
  }
  // The buffers are a mapping of their own: a page becomes resident only when a receive
  // reaches it, so small messages touch one page of each buffer.
  impl_->memory_bytes = std::size_t{count_} * buffer_bytes_;
  impl_->memory = mmap(nullptr, impl_->memory_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (impl_->memory == MAP_FAILED) {
    impl_->memory = nullptr;
    *why = failure("mmap", errno);
    return false;
  }
  base_ = static_cast<char*>(impl_->memory);
  impl_->mask = io_uring_buf_ring_mask(count_);
  io_uring_buf_ring_init(impl_->buffers);
  for (unsigned id = 0; id < count_; ++id) {
    io_uring_buf_ring_add(impl_->buffers, buffer(static_cast<std::uint16_t>(id)), buffer_bytes_,
                          static_cast<unsigned short>(id), impl_->mask, static_cast<int>(id));
  }
  io_uring_buf_ring_advance(impl_->buffers, static_cast<int>(count_));
  return true;
}

bool UringRing::enable(std::string* why) {
  // liburing 2.3 declares io_uring_enable_rings() but its library does not export it.
  if (syscall(__NR_io_uring_register, impl_->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr,
              0) < 0) {
    *why = failure("io_uring_register(IORING_REGISTER_ENABLE_RINGS)", errno);
    return false;
  }
  return true;
}

void UringRing::prep_recv_multishot(int fd, std::uint64_t data) {
  io_uring_sqe* e = impl_->sqe();
  io_uring_prep_recv_multishot(e, fd, nullptr, 0, 0);
  e->flags |= IOSQE_BUFFER_SELECT;
  e->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(e, data);
}

void UringRing::prep_send(int fd, const char* bytes, std::size_t n, std::uint64_t data) {
  io_uring_sqe* e = impl_->sqe();
  // MSG_DONTWAIT: a full socket completes with EAGAIN at once instead of the kernel keeping the
  // send (and a pointer into our memory) until there is room; we poll for POLLOUT instead.
  io_uring_prep_send(e, fd, bytes, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  io_uring_sqe_set_data64(e, data);
  ++inline_ops_;
}

void UringRing::prep_poll(int fd, unsigned events, std::uint64_t data) {
  io_uring_sqe* e = impl_->sqe();
  io_uring_prep_poll_add(e, fd, events);
  io_uring_sqe_set_data64(e, data);
}

void UringRing::prep_cancel(std::uint64_t target) {
  io_uring_sqe* e = impl_->sqe();
  io_uring_prep_cancel64(e, target, 0);
  io_uring_sqe_set_data64(e, uring_data(UringOp::kCancel, 0));
  ++inline_ops_;
}

void UringRing::recycle(std::uint16_t id) {
  io_uring_buf_ring_add(impl_->buffers, buffer(id), buffer_bytes_, id, impl_->mask,
                        static_cast<int>(impl_->recycled));
  ++impl_->recycled;
  --out_;  // the kernel sees it at the next submit, before any receive armed with it
}

void UringRing::submit() {
  if (impl_->recycled != 0) {
    io_uring_buf_ring_advance(impl_->buffers, static_cast<int>(impl_->recycled));
    impl_->recycled = 0;
  }
  io_uring_submit(&impl_->ring);
  inline_ops_ = 0;
}

bool UringRing::submit_and_wait(unsigned wait_nr, unsigned timeout_us,
                                std::vector<Completion>& out) {
  if (impl_->recycled != 0) {
    io_uring_buf_ring_advance(impl_->buffers, static_cast<int>(impl_->recycled));
    impl_->recycled = 0;
  }
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
    if ((cqe->flags & IORING_CQE_F_BUFFER) != 0) ++out_;
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
void UringRing::prep_recv_multishot(int /*fd*/, std::uint64_t /*data*/) {}
void UringRing::prep_send(int /*fd*/, const char* /*bytes*/, std::size_t /*n*/,
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
