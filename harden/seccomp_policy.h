// Seccomp allowlists for bulkhead services.
//
// A service describes what it may call as a SyscallPolicy (a table in its
// policy.cc, usually BaseServicePolicy() plus its own rules) and installs it
// with InstallPolicy() as the last hardening step. Anything not allowed traps:
// a SIGSYS handler records the syscall number in a slot the supervisor can
// read, then the process dies by SIGSYS.
#pragma once

#include <sys/syscall.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace bulkhead::harden {

// One condition on a syscall argument. Comparisons are on the full 64-bit
// register: a caller that passes extra high bits (e.g. fcntl(fd, (1UL<<32) |
// F_GETFD), which the kernel would truncate to F_GETFD) does NOT match an
// Equal() rule and is killed. That is the conservative direction.
struct ArgCondition {
  enum class Op { kEqual, kMaskedEqual };

  unsigned arg = 0;    // argument index, 0..5
  Op op = Op::kEqual;
  uint64_t mask = 0;   // kMaskedEqual only: (arg & mask) == value
  uint64_t value = 0;

  // arg == value (SCMP_CMP_EQ).
  static ArgCondition Equal(unsigned arg, uint64_t value) {
    return ArgCondition{arg, Op::kEqual, 0, value};
  }
  // (arg & mask) == value (SCMP_CMP_MASKED_EQ).
  static ArgCondition MaskedEqual(unsigned arg, uint64_t mask, uint64_t value) {
    return ArgCondition{arg, Op::kMaskedEqual, mask, value};
  }
};

// Allows syscall `nr` (native x86-64 number, SYS_xxx) when all `conds` hold
// (no conditions: always). Several rules for the same nr are OR'ed.
struct SyscallRule {
  int nr = -1;
  std::vector<ArgCondition> conds;
};

struct SyscallPolicy {
  std::string name;  // for messages: "fs-gofer", "base", ...
  std::vector<SyscallRule> rules;
  // System calls through a foreign ABI (i386 `int $0x80`, x32) trap (SIGSYS;
  // in the service itself the handler then kills it, as before) instead of
  // killing the process outright. For the syscall-router: trap-platform
  // stubs inherit its filter, and must see such a call as a SIGSYS of their
  // own (reported to the router as an i386 system call), not die of it.
  bool trap_foreign_arch = false;

  // Appends a rule; returns *this so tables read as a list.
  SyscallPolicy& Allow(int nr, std::vector<ArgCondition> conds = {}) {
    rules.push_back(SyscallRule{nr, std::move(conds)});
    return *this;
  }
  // Appends all rules of `other`.
  SyscallPolicy& Append(const SyscallPolicy& other) {
    rules.insert(rules.end(), other.rules.begin(), other.rules.end());
    trap_foreign_arch = trap_foreign_arch || other.trap_foreign_arch;
    return *this;
  }
};

// The syscall the SIGSYS handler issues to die (reboot(0, 0, 0, 0): never
// allowed by any policy, and harmless even if it were: the magic numbers are
// wrong, so the kernel would return EINVAL/EPERM without doing anything).
inline constexpr int kDeathSyscall = SYS_reboot;

// The rules every bulkhead service needs to run glibc, spdlog and std::thread
// after hardening, named "base". Services copy it, rename it and append their
// own rules.
SyscallPolicy BaseServicePolicy();

// Installs `policy` as a seccomp filter on every thread of the calling
// process (TSYNC). In order:
//   1. validates the policy (throws std::invalid_argument if it allows the
//      death syscall or clone3, names an invalid argument index or a negative
//      syscall number) and builds the filter, before any process state changes;
//   2. RLIMIT_CORE = 0 and PR_SET_DUMPABLE = 0: no core file and no ptrace
//      attach by same-uid processes;
//   3. no_new_privs (if not already set); in a process that never started a
//      thread, starts and joins one, because glibc's first pthread_create
//      calls rt_sigaction (its SIGSETXID handler) and must not do so later;
//   4. a SIGSYS handler on its own mmap'd alternate signal stack that stores
//      siginfo.si_syscall into *fatal_syscall_slot (may be null; may point into
//      shared memory) and then issues the death syscall, which is trapped
//      again while SIGSYS is blocked, so the kernel resets SIGSYS to its
//      default action and kills the process (also works for pid 1 of a pid
//      namespace, and needs neither rt_sigaction nor tgkill in the policy);
//   5. loads the filter: default SCMP_ACT_TRAP, clone3 -> ENOSYS (glibc then
//      falls back to clone, whose flags a policy can inspect), foreign
//      architectures (i386 int 0x80, x32) -> kill the process.
// Throws SysError for failing calls. Can be called once per process (a second
// filter would need seccomp/prctl in the first one's allowlist).
void InstallPolicy(const SyscallPolicy& policy, std::atomic<int32_t>* fatal_syscall_slot);

// "openat" for SYS_openat; "syscall_N" when libseccomp does not know N.
std::string SyscallName(int nr);

}  // namespace bulkhead::harden
