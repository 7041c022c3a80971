// deny_io_uring ENOSYS|EPERM -- PROGRAM [ARGS...]
//
// Runs PROGRAM with the io_uring system calls (io_uring_setup, io_uring_enter,
// io_uring_register) failing with the errno given, and every other system call allowed: the two
// ways a host takes io_uring away. ENOSYS is what the container runtimes' default seccomp
// profiles answer (podman's, measured in our image); EPERM is what kernel.io_uring_disabled = 2
// answers. The tests start echo-server under it to check that `io_backend = auto` falls back to
// epoll and `io_backend = io_uring` refuses to start.
//
// How: PR_SET_NO_NEW_PRIVS (so an unprivileged process may install a filter), a seccomp BPF
// filter, then execvp. The filter survives exec and is inherited by every child and thread.
// Our own BPF, no libseccomp: the program is eleven instructions.
//
// Exit status: PROGRAM's own once it runs; 125 for a usage error or a filter that cannot be
// installed, 126 when PROGRAM cannot be executed, 127 when it is not found (as env(1) does).
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace {

constexpr int kUsageError = 125;
constexpr int kCannotExecute = 126;
constexpr int kNotFound = 127;

// The architectures whose system calls this build can make: its own and the 32-bit compat ABI
// the kernel also accepts from the same process. Any other value in seccomp_data.arch means a
// system call numbered differently from what the filter compares, so the filter kills instead of
// guessing.
#if defined(__x86_64__)
constexpr __u32 kNativeArch = AUDIT_ARCH_X86_64;
constexpr __u32 kCompatArch = AUDIT_ARCH_I386;
// x32 system calls arrive as AUDIT_ARCH_X86_64 with this bit set in the number.
constexpr __u32 kSyscallNumberMask = ~__u32{0x40000000};
#elif defined(__aarch64__)
constexpr __u32 kNativeArch = AUDIT_ARCH_AARCH64;
constexpr __u32 kCompatArch = AUDIT_ARCH_ARM;
constexpr __u32 kSyscallNumberMask = ~__u32{0};
#else
#error "deny_io_uring: add this architecture's AUDIT_ARCH values"
#endif

// System calls added since Linux 4.18 share one number on every architecture (the kernel's
// "unified" numbering from 403 on), so the compat ABI's io_uring calls are these numbers too.
static_assert(__NR_io_uring_setup == 425 && __NR_io_uring_enter == 426 &&
              __NR_io_uring_register == 427);

bool parse_errno(std::string_view name, int& out) {
  if (name == "ENOSYS") {
    out = ENOSYS;
  } else if (name == "EPERM") {
    out = EPERM;
  } else {
    return false;
  }
  return true;
}

int install_filter(int denied_errno) {
  const __u32 deny = SECCOMP_RET_ERRNO | (static_cast<__u32>(denied_errno) & SECCOMP_RET_DATA);
  // A jump's offsets count the instructions skipped after it: from 5 by 3 lands on 9.
  sock_filter program[] = {
      /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kNativeArch, 1, 0),
      /* 2 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kCompatArch, 0, 7),  // else to 10
      /* 3 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      /* 4 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, kSyscallNumberMask),
      /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
      /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
      /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
      /* 8 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      /* 9 */ BPF_STMT(BPF_RET | BPF_K, deny),
      /* 10 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  };
  sock_fprog fprog{};
  fprog.len = sizeof program / sizeof program[0];
  fprog.filter = program;
  // strerrordesc_np here and below: glibc's thread-safe strerror.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    std::fprintf(stderr, "deny_io_uring: PR_SET_NO_NEW_PRIVS: %s\n", strerrordesc_np(errno));
    return kUsageError;
  }
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
    std::fprintf(stderr, "deny_io_uring: seccomp: %s\n", strerrordesc_np(errno));
    return kUsageError;
  }
  return 0;
}

int usage() {
  std::fputs("usage: deny_io_uring ENOSYS|EPERM -- PROGRAM [ARGS...]\n", stderr);
  return kUsageError;
}

}  // namespace

int main(int argc, char** argv) {
  int denied_errno = 0;
  if (argc < 4 || !parse_errno(argv[1], denied_errno) || std::string_view(argv[2]) != "--") {
    return usage();
  }
  if (const int status = install_filter(denied_errno); status != 0) return status;
  ::execvp(argv[3], argv + 3);
  const int error = errno;
  std::fprintf(stderr, "deny_io_uring: %s: %s\n", argv[3], strerrordesc_np(error));
  return error == ENOENT ? kNotFound : kCannotExecute;
}
