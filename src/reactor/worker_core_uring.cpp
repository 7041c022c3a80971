// The io_uring backend of WorkerCore: everything the worker does differently when its socket
// I/O goes through a ring instead of epoll (see worker.hpp for the shape of a message's trip).
//
// Why the rules below: a send is prepared when the protocol calls send() but reaches the kernel
// only at the next submit, so (1) a descriptor is closed only after that submit, or a number
// reused by a new connection would get the old connection's send; (2) one send per connection
// is in flight at a time, with whatever comes meanwhile queued behind it in `pending`, or bytes
// could reorder; (3) a send from `pending` is prepared only just before the submit, because
// appending to `pending` may move its memory. Every send is MSG_DONTWAIT, so the kernel is done
// with its memory when the submit returns; a full socket answers EAGAIN and the connection polls
// for POLLOUT. A receive buffer stays with the send that echoes it until that send completes;
// the buffers a connection receives in one batch are echoed by one send (a SENDMSG of them all),
// gathered while the batch is delivered, so a pipelining client's bytes are not copied into its
// queue because the send of its first buffer is still waiting for the submit.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "multireactor/detail/raw_syscall.hpp"
#include "multireactor/detail/worker_core.hpp"

namespace mr::detail {
namespace {
// The user data of the receive a connection has armed (what a cancel names).
std::uint64_t receive_data(const ConnectionState& c) {
  return uring_data(c.recv_multishot ? UringOp::kRecv : UringOp::kPollIn, c.key());
}
}  // namespace

bool WorkerCore::start_uring() {
  std::string why;
  if (!uring_->enable(&why)) {
    spdlog::warn("worker {}: io_uring ring not enabled ({}); this worker runs on epoll", id_, why);
    return false;
  }
  loop_.take_thread();
  held_.assign(uring_->buffer_count(), HeldBuffer{});
  gathered_.reserve(uring_->buffer_count());
  send_parts_.reserve(uring_->buffer_count());
  ring_bytes_ = uring_->ring_bytes();
  completions_.reserve(4096);
  batch_receivers_.reserve(4096);
  flush_list_.reserve(256);
  starved_.reserve(256);
  closing_fds_.reserve(256);
  // The loop's own descriptors (eventfd, timers, a reuseport listener) stay on its epoll set,
  // which the ring watches as one more descriptor.
  uring_->prep_poll(loop_.fd(), POLLIN, uring_data(UringOp::kLoopPoll, 0));
  backend_.store(IoBackend::kIoUring, std::memory_order_release);
  SPDLOG_DEBUG("worker {}: io_uring ring with {}", id_, uring_->setup());
  return true;
}

bool WorkerCore::uring_wait() {
  if (loop_.stopping()) return false;
  uring_flush();
  uring_rearm_starved();
  // The sends just prepared complete within the submit. Batching waits, beyond those, for about
  // as many receives as recent batches had receiving connections (a decaying peak: those with a
  // message in flight send again), up to `batch`; a send's completion may call for more work (a
  // partial send, bytes queued behind it), so such a wait is always bounded by the timeout. With a
  // peak of one (a lone connection) there is nothing to batch: the wait returns with the sends'
  // completions, or blocks for the next one. Measured at 1 connection x 16 B ping-pong: waiting
  // for the send and the next message in one timed wait cost 1.4-1.6x epoll's CPU per message;
  // two untimed waits cost 0.89x.
  // Connections, not completions: a lone connection whose message took several buffers, or
  // came pipelined, has nothing to batch with (its client waits for the answer).
  const auto receivers = static_cast<unsigned>(batch_receivers_.size());
  for (const std::uint64_t key : batch_receivers_) {
    if (ConnectionState* c = connections_.find(key)) c->batch_receiver = false;
  }
  batch_receivers_.clear();
  receive_peak_ = std::max(receivers, receive_peak_ - (receive_peak_ + 7) / 8);
  // The closes cannot wait for the wait: the peer's FIN would.
  if (!closing_fds_.empty()) uring_close_held();
  const unsigned sends = uring_->prepared_inline();
  unsigned wait_nr = 1;
  unsigned timeout_us = 0;
  if (options_.uring.batch <= 1 || receive_peak_ <= 1) {
    // No batching, or a lone connection: every completion is handled at once.
    wait_nr = sends > 0 ? sends : 1;
  } else {
    wait_nr = sends + std::clamp(receive_peak_, 1U, options_.uring.batch);
    timeout_us = options_.uring.batch_timeout_us;
  }
  completions_.clear();
  const bool ok = uring_->submit_and_wait(wait_nr, timeout_us, completions_);
  if (!ok) {
    std::perror("multireactor: io_uring_enter");
    std::abort();  // as for a failing epoll_wait: the loop cannot go on
  }
  uring_iterations_.add(1);
  return true;
}

ConnectionState* WorkerCore::uring_received(const Completion& e) {
  ConnectionState* c = connections_.find(e.key());
  if (c == nullptr) {
    // The connection closed while its receive was ending: the buffer still goes back.
    if (e.has_buffer()) uring_->recycle(e.buffer());
    return nullptr;
  }
  if (!e.more()) {
    c->recv_live = false;
    c->recv_cancelling = false;
  }
  if (e.res > 0) {
    if (c->lingering) {
      // Our FIN is out: the peer's bytes are dropped until its own FIN.
      uring_->recycle(e.buffer());
      c->linger_heard = true;
      if (!c->recv_live && (c->interest & kReadable) != 0) uring_arm_receive(*c);
      return nullptr;
    }
    // A drain that began after the kernel received these bytes into our buffer still delivers
    // them (their echo is flushed before the end): they left the socket, so they were read, as
    // a read() epoll made before the drain would have delivered them.
    stats_.reads.add(1);
    stats_.bytes_received.add(static_cast<std::uint64_t>(e.res));
    c->last_active_tick = idle_wheel_.now();
    c->recv_was_starved = false;
    count_batch_receiver(*c);
    current_buffer_ = e.buffer();
    current_length_ = static_cast<std::uint32_t>(e.res);
    current_held_ = false;
    delivering_ = true;
    return c;
  }
  if (e.has_buffer()) uring_->recycle(e.buffer());
  if (e.res == 0) {
    on_read_end(*c, 0);
    return nullptr;
  }
  if (e.res == -ENOBUFS) {
    // Every buffer of its size is out: re-armed at once, the receive would only fail again (a
    // busy spin). On the small buffers the connection first waits for one to come back (within
    // a wait or two: the sends that hold them complete within the submit); the bytes stay in
    // the socket meanwhile. On the large ones, or when the small ones run out again before it
    // received anything, it polls for POLLIN and reads into the worker's own buffer, as on
    // epoll, until a read finds little (uring_after_poll_read): the rings cannot hold the
    // bursts of many connections streaming, and waiting cost, at 1,000 x 16 KiB x pipeline 16,
    // one failed receive per receive (1.21x epoll's CPU per message, 1.05x polling), while
    // polling at once for small messages cost 1.07-1.18x at 1,000 x 64 B (0.86-1.02x waiting).
    stats_.receive_buffer_shortages.add(1);
    if (c->recv_large || c->recv_was_starved) {
      c->recv_was_starved = false;
      c->recv_by_poll = true;
      if (!c->recv_live && (c->interest & kReadable) != 0) uring_arm_receive(*c);
    } else {
      c->recv_starved = true;
      starved_.push_back(c->key());
    }
    return nullptr;
  }
  if (e.res == -ECANCELED || e.res == -EAGAIN || e.res == -EINTR) {
    if (!c->recv_live && (c->interest & kReadable) != 0) uring_arm_receive(*c);
    return nullptr;
  }
  errno = -e.res;
  on_read_end(*c, -1);
  return nullptr;
}

void WorkerCore::uring_after_delivery(ConnectionState& c) {
  delivering_ = false;
  if (!current_held_) uring_->recycle(current_buffer_);
  if (!c.open()) return;
  // The kernel read before asking us, so the budget is checked after the fact: when it is spent
  // this parks the connection (its receive is cancelled) as the epoll backend's read would.
  (void)read_budget(c);
  if (!c.open()) return;
  if (c.recv_live) {
    if (c.recv_multishot && !c.recv_cancelling &&
        (!multishot_allowed(c) || switch_buffer_size(c))) {
      // Re-armed once it has ended: as a POLLIN poll, or into the other size of buffers.
      c.recv_cancelling = true;
      uring_->prep_cancel(uring_data(UringOp::kRecv, c.key()));
    }
  } else if (!c.recv_starved && (c.interest & kReadable) != 0) {
    uring_arm_receive(c);
  }
}

bool WorkerCore::switch_buffer_size(ConnectionState& c) {
  // A small buffer holds a 16-64 B message many times over, and there are four times as many of
  // them: 1,000 connections x 64 B ping-pong on 16 KiB buffers alone cost 1.3x epoll's CPU per
  // message. Messages that fill one take four receives (and four completions) where a large
  // buffer takes one: 100 x 16 KiB x pipeline 16 cost 1.5x epoll's CPU on 4 KiB buffers alone,
  // 1.0x on 16 KiB ones. So a connection moves to the large buffers when a receive filled a small
  // one, and back after three receives in a row that would have fitted half a small one.
  // A receive that fills a large buffer too takes the connection off the rings altogether.
  if (!uring_->has_large()) return false;
  if (!c.recv_large) {
    if (uring_->is_large(current_buffer_) || current_length_ < uring_->buffer_bytes()) {
      return false;
    }
    c.recv_large = true;
    c.small_receives = 0;
    return true;
  }
  if (!uring_->is_large(current_buffer_)) return false;
  if (current_length_ == uring_->buffer_bytes(current_buffer_)) {
    // A stream fills even a large one: it polls and reads as on epoll (a whole read_buffer_bytes
    // at once, sent at once) until a read finds less than a small buffer. Receiving it 16 KiB at
    // a time, each echoed by its own send, cost 1.2-1.3x epoll's CPU per message at
    // 1 x 16 KiB x pipeline 16 and 1 x 16 KiB ping-pong (a message in two receives); polling,
    // 1.0-1.03x (cmp side by side, 2026-12-02).
    c.recv_by_poll = true;
    return true;
  }
  if (current_length_ > uring_->buffer_bytes() / 2) {
    c.small_receives = 0;
    return false;
  }
  if (c.small_receives < 2) {
    ++c.small_receives;
    return false;
  }
  c.recv_large = false;
  c.small_receives = 0;
  return true;
}

void WorkerCore::uring_completion(const Completion& e) {
  switch (e.op()) {
    case UringOp::kSendBuffer:
      uring_buffer_send_done(e);
      return;
    case UringOp::kSendPending:
      uring_send_done(e);
      return;
    case UringOp::kPollOut: {
      ConnectionState* c = connections_.find(e.key());
      if (c == nullptr) return;
      c->pollout_armed = false;
      if (e.res != -ECANCELED) uring_queue_flush(*c);  // room, or an error the send will report
      return;
    }
    case UringOp::kLoopPoll:
      loop_.run_once(0);
      uring_->prep_poll(loop_.fd(), POLLIN, uring_data(UringOp::kLoopPoll, 0));
      return;
    case UringOp::kRecv:
    case UringOp::kPollIn:
    case UringOp::kCancel:
      return;
  }
}

void WorkerCore::uring_send(ConnectionState& c, const char* bytes, std::size_t n) {
  if (n == 0) return;
  const auto at = reinterpret_cast<std::uintptr_t>(bytes);
  const auto buffer = reinterpret_cast<std::uintptr_t>(uring_->buffer(current_buffer_));
  if (delivering_ && !current_held_ && c.pending.empty() && at >= buffer &&
      at + n <= buffer + current_length_ &&
      uring_gather(c, static_cast<std::uint32_t>(at - buffer), static_cast<std::uint32_t>(n))) {
    return;  // bytes of the buffer being delivered: sent from it, no copy (the echo's path)
  }
  if (c.lingering) return;  // its FIN is out: what the protocol sends now is dropped
  std::size_t sent = 0;
  bool full = false;
  if (!c.send_in_flight && !c.pollout_armed && c.pending.empty()) {
    // Bytes of the worker's own buffer (a bounded read, see uring_arm_receive) or of the
    // protocol's: sent at once, as on epoll. Queued for the next submit they would be copied,
    // and a queue of a read's 64 KiB is a mapping of its own, made and unmade for each read
    // (measured at 100 x 16 KiB x pipeline 16: page faults and TLB shootdowns).
    const ssize_t w = raw::send(c.fd, bytes, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    stats_.writes.add(1);
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
      close_connection(c, CloseReason::kError);
      return;
    }
    if (w > 0) {
      sent = static_cast<std::size_t>(w);
      stats_.bytes_sent.add(sent);
      c.last_active_tick = idle_wheel_.now();
      if (sent == n) return;
    }
    full = true;
  }
  queue_output(c, bytes + sent, n - sent);
  // From now on reads are bounded (see uring_arm_receive): the multishot receive ends.
  if (c.recv_live && c.recv_multishot && !c.recv_cancelling) {
    c.recv_cancelling = true;
    uring_->prep_cancel(receive_data(c));
  }
  if (full && c.open()) {
    c.pollout_armed = true;  // the rest waits for room
    uring_->prep_poll(c.fd, POLLOUT, uring_data(UringOp::kPollOut, c.key()));
    return;
  }
  uring_queue_flush(c);
}

bool WorkerCore::uring_gather(ConnectionState& c, std::uint32_t offset, std::uint32_t length) {
  // A send from several buffers is one SENDMSG; 64 pieces are 256 KiB of 4 KiB buffers.
  constexpr std::uint16_t kMaxParts = 64;
  // A connection's receive completions come in a row (the kernel fills buffer after buffer for
  // one socket), so its send, if still being gathered, is among the last few of the batch.
  constexpr std::size_t kLookBack = 4;
  const std::uint16_t id = current_buffer_;
  if (!c.send_in_flight) {
    c.send_in_flight = true;
    gathered_.push_back(GatheredSend{c.key(), id, id, 1});
  } else {
    // Otherwise its send is in the kernel already, and the bytes wait in the queue behind it.
    GatheredSend* send = nullptr;
    const std::size_t n = gathered_.size();
    for (std::size_t i = n; i > 0 && n - i < kLookBack; --i) {
      if (gathered_[i - 1].key == c.key()) {
        send = &gathered_[i - 1];
        break;
      }
    }
    if (send == nullptr || send->parts == kMaxParts) return false;
    held_[send->last].next = id;
    send->last = id;
    ++send->parts;
  }
  held_[id] = HeldBuffer{c.key(), offset, length, kNoBuffer};
  current_held_ = true;
  return true;
}

void WorkerCore::uring_prepare_gathered() {
  for (const GatheredSend& send : gathered_) {
    const ConnectionState* c = connections_.find(send.key);
    if (c == nullptr) {
      recycle_from(send.first);  // closed meanwhile
      continue;
    }
    const std::uint64_t data = uring_data(UringOp::kSendBuffer, send.first);
    if (send.parts == 1) {
      const HeldBuffer& h = held_[send.first];
      uring_->prep_send(c->fd, uring_->buffer(send.first) + h.offset, h.length, data);
      continue;
    }
    send_parts_.clear();
    for (std::uint16_t id = send.first; id != kNoBuffer; id = held_[id].next) {
      send_parts_.push_back(iovec{uring_->buffer(id) + held_[id].offset, held_[id].length});
    }
    uring_->prep_send_parts(c->fd, send_parts_, data);
  }
  gathered_.clear();
}

void WorkerCore::recycle_from(std::uint16_t id) {
  while (id != kNoBuffer) {
    const std::uint16_t next = held_[id].next;
    uring_->recycle(id);
    id = next;
  }
}

void WorkerCore::uring_interest(ConnectionState& c, std::uint32_t interest) {
  // Writability needs no interest here: pending output is always either in flight, queued for
  // the next submit, or waiting on a POLLOUT poll.
  if ((interest & kReadable) != 0) {
    if (!c.recv_live && !c.recv_starved) uring_arm_receive(c);
  } else if (c.recv_live && !c.recv_cancelling) {
    // Receives already completed are still delivered: a pause overshoots by at most the
    // buffers in flight.
    c.recv_cancelling = true;
    uring_->prep_cancel(receive_data(c));
  }
}

void WorkerCore::uring_arm_receive(ConnectionState& c) {
  c.recv_live = true;
  c.recv_cancelling = false;
  // A lingering connection's bytes are dropped as they arrive: no queue or budget to bound.
  if (c.lingering || (!c.recv_by_poll && multishot_allowed(c))) {
    c.recv_multishot = true;
    uring_->prep_recv_multishot(c.fd, c.recv_large, uring_data(UringOp::kRecv, c.key()));
    return;
  }
  // Otherwise the connection reads as on epoll once it is readable: one read of at most
  // read_budget() bytes, checked when the read is made, into the worker's own buffer. (A
  // receive from the ring would be checked only after the kernel filled a buffer, and a buffer
  // is 4 KiB: a slow reader's connection would take in 4 KiB per wait instead of a whole read.)
  c.recv_multishot = false;
  uring_->prep_poll(c.fd, POLLIN, uring_data(UringOp::kPollIn, c.key()));
}

ConnectionState* WorkerCore::uring_readable(const Completion& e) {
  ConnectionState* c = connections_.find(e.key());
  if (c == nullptr) return nullptr;
  c->recv_live = false;
  c->recv_cancelling = false;
  if (e.res < 0) {
    // Cancelled by a pause (or by a pause that has ended meanwhile: armed again then).
    if (e.res == -ECANCELED) {
      uring_after_read(*c);
      return nullptr;
    }
    errno = -e.res;
    on_read_end(*c, -1);
    return nullptr;
  }
  if (c->lingering) {
    linger_read(*c);
    uring_after_read(*c);
    return nullptr;
  }
  // Draining, or paused by a change whose cancel is still on its way.
  if (c->ending || (c->interest & kReadable) == 0) return nullptr;
  count_batch_receiver(*c);
  return c;
}

void WorkerCore::count_batch_receiver(ConnectionState& c) {
  if (c.batch_receiver) return;
  c.batch_receiver = true;
  batch_receivers_.push_back(c.key());
}

void WorkerCore::uring_after_poll_read(ConnectionState& c, std::uint64_t bytes) {
  // Less than a small buffer: the stream, or the burst that ran the ring dry, is over.
  if (bytes < uring_->buffer_bytes()) c.recv_by_poll = false;
  uring_after_read(c);
}

void WorkerCore::uring_after_read(ConnectionState& c) {
  if (c.open() && !c.recv_live && !c.recv_starved && (c.interest & kReadable) != 0) {
    uring_arm_receive(c);
  }
}

bool WorkerCore::multishot_allowed(ConnectionState& c) {
  // A multishot receive fills buffer after buffer within one wait, before we can look at the
  // connection's queue: it may bring as much as the whole buffer ring at once. So it is used
  // only while that much could be queued within both the high-water mark and the budget share;
  // otherwise the connection polls for POLLIN and makes the epoll backend's bounded read.
  if (!c.pending.empty() || ring_bytes_ > options_.high_water_mark) return false;
  // Twice the ring: the bytes, and the growth of the queues they may land in (a queue grows by a
  // quarter of what it holds; a page at least for each connection).
  const std::size_t need = 2 * ring_bytes_ + OutputBuffer::kMaxGrowthSlackBytes;
  return budget_.spare() >= need || budget_.reserve(need);
}

void WorkerCore::uring_queue_flush(ConnectionState& c) {
  if (c.send_in_flight || c.pollout_armed || c.flush_queued || !c.open()) return;
  c.flush_queued = true;
  flush_list_.push_back(c.key());
}

void WorkerCore::uring_flush() {
  uring_prepare_gathered();
  for (const std::uint64_t key : flush_list_) {
    ConnectionState* c = connections_.find(key);
    if (c == nullptr) continue;
    c->flush_queued = false;
    if (c->send_in_flight || c->pollout_armed || c->pending.empty()) continue;
    c->send_in_flight = true;
    uring_->prep_send(c->fd, c->pending.data(), c->pending.size(),
                      uring_data(UringOp::kSendPending, key));
  }
  flush_list_.clear();
}

void WorkerCore::uring_rearm_starved() {
  if (starved_.empty()) return;
  // As many as there are small buffers to receive into, oldest first; the rest wait for more.
  const std::size_t n = std::min<std::size_t>(uring_->buffers_free(false), starved_.size());
  for (std::size_t i = 0; i < n; ++i) {
    ConnectionState* c = connections_.find(starved_[i]);
    if (c == nullptr) continue;
    c->recv_starved = false;
    c->recv_was_starved = true;
    if (!c->recv_live && (c->interest & kReadable) != 0) uring_arm_receive(*c);
  }
  starved_.erase(starved_.begin(), starved_.begin() + static_cast<std::ptrdiff_t>(n));
}

void WorkerCore::uring_buffer_send_done(const Completion& e) {
  auto id = static_cast<std::uint16_t>(e.key());
  ConnectionState* c = connections_.find(held_[id].key);
  if (c == nullptr) {
    recycle_from(id);
    return;
  }
  c->send_in_flight = false;
  stats_.writes.add(1);
  if (e.res < 0 && e.res != -EAGAIN) {
    recycle_from(id);
    if (!c->lingering) close_connection(*c, CloseReason::kError);  // lingering: EPIPE, dropped
    return;
  }
  auto sent = static_cast<std::uint32_t>(e.res < 0 ? 0 : e.res);
  stats_.bytes_sent.add(sent);
  if (sent > 0) c->last_active_tick = idle_wheel_.now();
  while (id != kNoBuffer && sent >= held_[id].length) {
    sent -= held_[id].length;
    const std::uint16_t next = held_[id].next;
    uring_->recycle(id);
    id = next;
  }
  if (id != kNoBuffer) {
    // The socket is full. The rest goes ahead of anything queued behind this send, into the
    // connection's own buffer (so no receive buffer stays pinned by a slow reader), and the
    // connection waits for room.
    OutputBuffer later;
    if (!c->pending.empty()) {
      later = std::move(c->pending);
      stats_.pending_output_bytes.sub(later.size());
      budget_.refund(later.capacity());
    }
    for (std::uint32_t skip = sent; id != kNoBuffer; skip = 0) {
      const HeldBuffer& held = held_[id];
      queue_output(*c, uring_->buffer(id) + held.offset + skip, held.length - skip);
      const std::uint16_t next = held.next;
      uring_->recycle(id);
      id = next;
    }
    if (!later.empty()) queue_output(*c, later.data(), later.size());
    c->pollout_armed = true;
    uring_->prep_poll(c->fd, POLLOUT, uring_data(UringOp::kPollOut, c->key()));
    return;
  }
  if (!c->pending.empty()) {
    uring_queue_flush(*c);
    return;
  }
  if (c->write_shut || c->peer_closed_write || c->ending) after_output_idle(*c);
}

void WorkerCore::uring_send_done(const Completion& e) {
  ConnectionState* c = connections_.find(e.key());
  if (c == nullptr) return;
  c->send_in_flight = false;
  stats_.writes.add(1);
  if (e.res == -EAGAIN || e.res == -EINTR) {
    c->pollout_armed = true;
    uring_->prep_poll(c->fd, POLLOUT, uring_data(UringOp::kPollOut, c->key()));
    return;
  }
  if (e.res < 0) {
    if (!c->lingering) close_connection(*c, CloseReason::kError);  // lingering: EPIPE, dropped
    return;
  }
  after_pending_sent(*c, static_cast<std::size_t>(e.res));
  if (c->open() && c->pending.empty() && c->recv_live && !c->recv_multishot &&
      !c->recv_cancelling && (c->interest & kReadable) != 0 &&
      static_cast<std::size_t>(e.res) <= uring_->buffer_bytes() && multishot_allowed(*c)) {
    // The queue is gone, and it held no more than one receive buffer: back from polling to the
    // multishot receive (armed once the poll's cancellation completes). A connection whose
    // messages span several buffers stays on the poll and the read, which take a whole
    // message at once (measured at 100 x 16 KiB: 2.4x epoll's CPU per message switching back
    // each time, 1.4x staying).
    c->recv_cancelling = true;
    uring_->prep_cancel(receive_data(*c));
  }
  // What is left was cut short by a full socket or queued meanwhile: a POLLOUT poll tells when
  // there is room (at once, within the next submit, if there is some already).
  if (c->open() && !c->pending.empty() && !c->pollout_armed) {
    c->pollout_armed = true;
    uring_->prep_poll(c->fd, POLLOUT, uring_data(UringOp::kPollOut, c->key()));
  }
}

void WorkerCore::uring_release(ConnectionState& c) {
  // An operation the kernel holds (or is about to be given) names the descriptor: cancel it (at
  // the next submit), and close the number only after that submit (see the top of this file).
  // Otherwise close now, as epoll does: a graceful end has just read the socket empty, and every
  // microsecond the close waits lets more of the peer's bytes in, which turn its FIN into a reset
  // that destroys echoes the peer has not read yet.
  const bool held = c.recv_live || c.pollout_armed || c.send_in_flight;
  if (c.recv_live && !c.recv_cancelling) uring_->prep_cancel(receive_data(c));
  if (c.pollout_armed) uring_->prep_cancel(uring_data(UringOp::kPollOut, c.key()));
  c.forget_uring_operations();
  if (held) {
    closing_fds_.push_back(c.fd);
  } else {
    uring_close(c.fd);
  }
}

void WorkerCore::uring_close_held() {
  // Submitting first runs every operation that still names these descriptors, and the cancels
  // that release them.
  uring_->submit();
  for (const int fd : closing_fds_)
    uring_close(fd);
  closing_fds_.clear();
}

void WorkerCore::uring_close(int fd) {
  uring_->remove_file(fd);  // or the ring's table would keep the socket open
  close(fd);
}

void WorkerCore::uring_finish() {
  uring_close_held();
  uring_.reset();  // ends whatever the kernel still holds for us
}

}  // namespace mr::detail
