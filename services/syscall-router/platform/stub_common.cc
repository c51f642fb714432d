#include "services/syscall-router/platform/stub_common.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace bulkhead::router::platform::stubs {

using harden::ArgCondition;

ssize_t ReadProcessMemory(pid_t pid, uint64_t addr, void* dst, size_t len) {
  if (len == 0) return 0;
  iovec local{dst, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  const ssize_t n = ::process_vm_readv(pid, &local, 1, &remote, 1, 0);
  return n < 0 ? -errno : n;
}

ssize_t WriteProcessMemory(pid_t pid, uint64_t addr, const void* src, size_t len) {
  if (len == 0) return 0;
  iovec local{const_cast<void*>(src), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  const ssize_t n = ::process_vm_writev(pid, &local, 1, &remote, 1, 0);
  return n < 0 ? -errno : n;
}

ChildGuard::~ChildGuard() {
  if (!armed_) return;
  ::kill(pid_, SIGKILL);
  int st;
  while (::waitpid(pid_, &st, __WALL) < 0 && errno == EINTR) {
  }
}

void ChildFail(int report_fd, int step) {
  ChildReport r{step, errno};
  ::syscall(SYS_write, report_fd, &r, sizeof r);
  ::syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

RseqRegistration RseqRegistration::OfThisThread() {
  RseqRegistration r;
  if (__rseq_size > 0) {
    r.area = static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
    // glibc registers 32 bytes (the original struct rseq); newer glibc may
    // register more and report the feature size in __rseq_size.
    r.lens[0] = 32;
    r.lens[1] = __rseq_size;
    r.lens[2] = (__rseq_size + 31) & ~31u;
  }
  return r;
}

bool RseqRegistration::Unregister() const {
  if (area == nullptr) return true;
  long rc = -1;
  for (uint32_t len : lens) {
    if (len == 0) continue;
    rc = ::syscall(SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
    if (rc == 0 || errno != EINVAL) break;
  }
  return rc == 0;
}

bool CloseAllBut(const int* keep, int nkeep) {
  unsigned lo = 0;
  for (int i = 0; i < nkeep; ++i) {
    const unsigned k = static_cast<unsigned>(keep[i]);
    if (k > lo && ::syscall(SYS_close_range, lo, k - 1, 0) != 0) return false;
    lo = k + 1;
  }
  return ::syscall(SYS_close_range, lo, ~0U, 0) == 0;
}

Event FaultOrSignal(int sig, const siginfo_t& si) {
  constexpr int kSiCodeSeccomp = 1;  // SYS_SECCOMP
  Event ev;
  ev.signo = sig;
  ev.info = si;
  const bool from_kernel = si.si_code > 0;
  if (from_kernel && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP)) {
    ev.kind = EventKind::kFault;
    ev.fault_addr = reinterpret_cast<uint64_t>(si.si_addr);
  } else if (sig == SIGSYS && si.si_code == kSiCodeSeccomp) {
    ev.kind = EventKind::kFault;
    ev.fault_addr = reinterpret_cast<uint64_t>(si.si_call_addr);
  } else {
    ev.kind = EventKind::kSignal;
  }
  return ev;
}

void AllowChildSetUp(harden::SyscallPolicy& p, bool dumpable) {
  // Application memory (interim, until the memory-file mapping replaces it).
  p.Allow(SYS_process_vm_readv).Allow(SYS_process_vm_writev);
  p.Allow(SYS_getppid).Allow(SYS_setsid).Allow(SYS_close_range);
  p.Allow(SYS_prctl, {ArgCondition::Equal(0, PR_SET_PDEATHSIG), ArgCondition::Equal(1, SIGKILL)});
  p.Allow(SYS_prctl, {ArgCondition::Equal(0, PR_SET_NO_NEW_PRIVS), ArgCondition::Equal(1, 1)});
  if (dumpable) {
    // Lets a hardened router make itself dumpable again too: the price of
    // process_vm_readv without CAP_SYS_PTRACE. Goes with dumpable stubs.
    p.Allow(SYS_prctl, {ArgCondition::Equal(0, PR_SET_DUMPABLE), ArgCondition::Equal(1, 1)});
  }
  p.Allow(SYS_prlimit64, {ArgCondition::Equal(0, 0), ArgCondition::Equal(1, RLIMIT_CORE)});
}

}  // namespace bulkhead::router::platform::stubs
