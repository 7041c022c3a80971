// One io_uring ring of one worker, with its provided buffer ring: the io_uring backend's kernel
// interface, kept out of the templates (and of liburing's header) so a consumer of the installed
// headers needs neither.
//
// Contract: init() may run on any thread, enable() on the thread that will submit (the ring is
// SINGLE_ISSUER, and with DEFER_TASKRUN completions are only produced while that thread waits in
// submit_and_wait()).
// prep_*() queue operations for the next submit; a full submission queue is submitted early,
// which is harmless because every send is MSG_DONTWAIT: the kernel runs it (or fails it with
// EAGAIN) inside the submit, so its memory is no longer read once the submit returns, and its
// completion is already posted (the same holds for the copies of a prep_send_parts()' pieces,
// reused once the submit returns). Buffers handed out by receive completions belong to the caller
// until recycle(); recycled buffers return to the kernel at the next submit. Everything is used
// on one thread. Without liburing at build time, probe() says so and init() fails.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace mr::detail {

// What a completion was for: the low 4 bits of its user data (the rest is a connection key, or
// a buffer id for a send from a received buffer).
enum class UringOp : std::uint8_t {
  kRecv = 1,  // multishot
  kPollIn,    // readable: a connection with output queued reads as on epoll
  kSendBuffer,
  kSendPending,
  kPollOut,
  kLoopPoll,
  kCancel
};

inline std::uint64_t uring_data(UringOp op, std::uint64_t key) {
  return (key << 4) | static_cast<std::uint64_t>(op);
}

struct Completion {
  std::uint64_t user_data;
  std::int32_t res;
  std::uint32_t flags;

  UringOp op() const { return static_cast<UringOp>(user_data & 0xF); }
  std::uint64_t key() const { return user_data >> 4; }
  bool more() const { return (flags & kMore) != 0; }
  bool has_buffer() const { return (flags & kBuffer) != 0; }
  std::uint16_t buffer() const { return static_cast<std::uint16_t>(flags >> kBufferShift); }

  // IORING_CQE_F_BUFFER, IORING_CQE_F_MORE and IORING_CQE_BUFFER_SHIFT (kernel ABI).
  static constexpr std::uint32_t kBuffer = 1U << 0;
  static constexpr std::uint32_t kMore = 1U << 1;
  static constexpr unsigned kBufferShift = 16;
};

struct UringParams {
  unsigned buffers = 256;        // provided receive buffers (rounded up to a power of two)
  unsigned buffer_bytes = 4096;  // bytes of each
  // A second ring of buffers this large (as many bytes in all as the first) for connections
  // whose messages fill a small one; none unless larger than buffer_bytes.
  unsigned large_buffer_bytes = 0;
  unsigned batch = 32;              // most receive completions one wait asks for; 1 = no batching
  unsigned batch_timeout_us = 100;  // the longest a batched wait blocks for its batch
  bool defer_taskrun = true;        // IORING_SETUP_DEFER_TASKRUN when the kernel has it
};

class UringRing {
 public:
  UringRing();
  ~UringRing();
  UringRing(const UringRing&) = delete;
  UringRing& operator=(const UringRing&) = delete;

  // Can this kernel (and this process's seccomp filter) run the backend? Sets `why` to what is
  // missing, or to the setup flags the backend would use.
  static bool probe(bool defer_taskrun, std::string* why);

  // init() creates the ring disabled, on any thread; enable() is then called on the thread that
  // will submit (the ring is SINGLE_ISSUER).
  bool init(const UringParams& params, std::string* why);
  bool enable(std::string* why);
  // The setup flags in use, for the log.
  const std::string& setup() const { return setup_; }

  // A multishot receive into the provided buffers, small or (if there are) large: armed until
  // it ends or is cancelled.
  void prep_recv_multishot(int fd, bool large, std::uint64_t data);
  void prep_send(int fd, const char* bytes, std::size_t n, std::uint64_t data);
  // One send of several pieces in order (a SENDMSG): `parts` is copied, so it need not outlive
  // the call. At most buffer_count() pieces.
  void prep_send_parts(int fd, std::span<const iovec> parts, std::uint64_t data);
  void prep_poll(int fd, unsigned events, std::uint64_t data);
  void prep_cancel(std::uint64_t target);
  void recycle(std::uint16_t buffer);
  // A connection's socket in the ring's table of registered files (when the kernel gave one):
  // operations on it then name the entry, not the descriptor. remove_file() before close(), and
  // only after the submit that runs the last operation prepared for it.
  void add_file(int fd);
  void remove_file(int fd);
  bool registered(int fd) const {
    return fd >= 0 && static_cast<std::size_t>(fd) < registered_.size() &&
           registered_[static_cast<std::size_t>(fd)];
  }

  // Sends and cancels prepared since the last submit: each one's completion is posted within the
  // submit itself.
  unsigned prepared_inline() const { return inline_ops_; }
  // Submits what was prepared and the recycled buffers, then waits until `wait_nr` completions
  // are ready, for at most timeout_us (0 = no limit), and appends every ready completion to
  // `out`. Returns false (errno set) when the ring itself fails; a timeout or a signal is a
  // normal return.
  bool submit_and_wait(unsigned wait_nr, unsigned timeout_us, std::vector<Completion>& out);
  void submit();

  // Buffer ids: the small buffers' first, then the large ones'.
  bool is_large(std::uint16_t id) const { return id >= count_; }
  char* buffer(std::uint16_t id) const {
    return is_large(id) ? large_base_ + (std::size_t{id - count_} * large_bytes_)
                        : base_ + (std::size_t{id} * buffer_bytes_);
  }
  unsigned buffer_bytes(std::uint16_t id) const {
    return is_large(id) ? large_bytes_ : buffer_bytes_;
  }
  unsigned buffer_bytes() const { return buffer_bytes_; }  // a small one's
  bool has_large() const { return large_count_ != 0; }
  unsigned buffer_count() const { return count_ + large_count_; }
  // The most bytes one ring's buffers hold (the two hold about the same).
  std::size_t ring_bytes() const {
    const std::size_t small = std::size_t{count_} * buffer_bytes_;
    const std::size_t large = std::size_t{large_count_} * large_bytes_;
    return small > large ? small : large;
  }
  // Buffers of a ring the kernel may fill once the next submit gives back the recycled ones.
  unsigned buffers_free(bool large) const {
    return large ? large_count_ - out_[1] : count_ - out_[0];
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  char* base_ = nullptr;
  char* large_base_ = nullptr;
  unsigned buffer_bytes_ = 0;
  unsigned count_ = 0;
  unsigned large_bytes_ = 0;
  unsigned large_count_ = 0;
  unsigned out_[2] = {0, 0};      // buffers of each ring handed out and not yet given back
  unsigned inline_ops_ = 0;       // sends and cancels prepared: each completes within the submit
  std::vector<bool> registered_;  // by descriptor number: its entry in the files table is set
  // IOSQE_FIXED_FILE (kernel ABI) for an operation on `fd`.
  std::uint8_t file_flag(int fd) const { return registered(fd) ? 1U << 0 : 0U; }
  std::string setup_;
};

}  // namespace mr::detail
