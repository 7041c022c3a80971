// io_uring_probe: makes each io_uring system call once and prints how it ended, one line each:
//   io_uring_setup 0
//   io_uring_enter EBADF
//   io_uring_register EBADF
// (0 = succeeded, else the errno's name, or its number when it has none here), and on x86_64 an
// io_uring_setup_x32 line. The tests run it
// with and without deny_io_uring. io_uring_enter and io_uring_register get a descriptor that is
// not open: where they are allowed the kernel answers EBADF, where a filter denies them the
// filter's errno comes first. (Not -1: recent kernels take io_uring_register(-1, ...) as a
// "blind" registration and answer EINVAL for other opcodes.) Exits 0 whatever the answers,
// nonzero only if it could not print them.
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

namespace {

std::string errno_name(int error) {
  switch (error) {
    case 0:
      return "0";
    case ENOSYS:
      return "ENOSYS";
    case EPERM:
      return "EPERM";
    case EBADF:
      return "EBADF";
    case EINVAL:
      return "EINVAL";
    case ENOMEM:
      return "ENOMEM";
    default:
      return std::to_string(error);
  }
}

// The errno of a raw system call that returned `result`, 0 when it succeeded.
int outcome(long result) {
  return result < 0 ? errno : 0;
}

}  // namespace

int main() {
  io_uring_params params{};
  const long ring = ::syscall(__NR_io_uring_setup, 1, &params);
  const int setup = outcome(ring);
  if (ring >= 0) ::close(static_cast<int>(ring));
  const int closed_fd = ::dup(STDERR_FILENO);  // a number that is free once closed
  if (closed_fd < 0 || ::close(closed_fd) != 0) return 1;
  const int enter = outcome(::syscall(__NR_io_uring_enter, closed_fd, 0, 0, 0, nullptr, 0));
  const int reg = outcome(::syscall(__NR_io_uring_register, closed_fd, 0, nullptr, 0));
  bool printed = std::printf("io_uring_setup %s\nio_uring_enter %s\nio_uring_register %s\n",
                             errno_name(setup).c_str(), errno_name(enter).c_str(),
                             errno_name(reg).c_str()) > 0;
#if defined(__x86_64__)
  // The same call through the x32 ABI (the number with bit 30 set), which a filter must catch
  // too. Kernels without x32 support answer ENOSYS; with it, the null parameters make sure no
  // ring is created.
  const int x32 = outcome(::syscall(0x40000000 | __NR_io_uring_setup, 1, nullptr));
  printed = printed && std::printf("io_uring_setup_x32 %s\n", errno_name(x32).c_str()) > 0;
#endif
  return printed && std::fflush(stdout) == 0 ? 0 : 1;
}
