// A listening socket plus what it takes to accept from it safely when descriptors run out.
//
// Contract: owns the listening descriptor and one reserved descriptor (/dev/null). accept()
// returns one new non-blocking, close-on-exec connection or says why not. On EMFILE/ENFILE it
// gives up the reserved descriptor to accept the waiting connection and close it at once (the
// peer sees a prompt close instead of hanging in the backlog, and a level-triggered loop does not
// spin on a listen socket that stays readable). Counts accept_errors and connections_rejected;
// warnings are rate-limited to one a second. Each Listener is used on one thread only; accept()
// calls of all listeners in the process are serialised (see listener.cpp), so one listener's
// freed reserve descriptor is not taken by another's accept4.
#pragma once

#include <chrono>

#include "multireactor/counter.hpp"
#include "multireactor/fd.hpp"

namespace mr {

class Listener {
 public:
  enum class Outcome {
    kAccepted,  // `fd` holds a new connection
    kEmpty,     // nothing waiting (EAGAIN)
    kShed,      // out of descriptors: one waiting connection was accepted and closed
    kFailed,    // another error: stop watching the socket for a while (back off)
  };

  explicit Listener(int listen_fd);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int fd() const { return fd_.get(); }
  Outcome accept(int& fd);
  // Closes the listening socket (stop accepting at once; the kernel refuses the backlog).
  void close_listener();

  // A connection accepted and refused by the caller (e.g. over max_connections).
  void count_rejected() { connections_rejected_.add(1); }
  std::uint64_t accept_errors() const { return accept_errors_.get(); }
  std::uint64_t connections_rejected() const { return connections_rejected_.get(); }

 private:
  void warn(const char* what, int err);

  Fd fd_;
  Fd spare_fd_;
  std::chrono::steady_clock::time_point last_warning_{};
  RelaxedCounter accept_errors_;
  RelaxedCounter connections_rejected_;
};

}  // namespace mr
