#include "harden/seccomp_policy.h"

#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>

#include "base/error.h"

#if !defined(__x86_64__)
#error "bulkhead's seccomp policies are written for x86-64 syscall numbers"
#endif

namespace bulkhead::harden {
namespace {

// ---------------------------------------------------------------------------
// SIGSYS handler state. Written once before the filter is loaded, read from
// the handler: only lock-free atomics and plain data.

std::atomic<std::atomic<int32_t>*> g_fatal_slot{nullptr};

// si_code of a seccomp SIGSYS (SYS_SECCOMP in <asm-generic/siginfo.h>, which
// glibc does not export and which clashes with <signal.h>).
constexpr int kSiCodeSeccomp = 1;
static_assert(std::atomic<std::atomic<int32_t>*>::is_always_lock_free);
static_assert(std::atomic<int32_t>::is_always_lock_free,
              "the slot may live in shared memory read by another process");

// Async-signal-safe: one atomic store and raw syscalls, nothing else.
extern "C" void OnSigsys(int /*sig*/, siginfo_t* info, void* /*ucontext*/) {
  // Only a seccomp trap carries a syscall number. A SIGSYS sent by another
  // process (kill) leaves the slot alone, so the supervisor never blames a
  // syscall that was not made.
  if (info->si_code == kSiCodeSeccomp) {
    if (std::atomic<int32_t>* slot = g_fatal_slot.load(std::memory_order_relaxed)) {
      slot->store(info->si_syscall, std::memory_order_release);
    }
  }
  // SIGSYS is blocked while we run (no SA_NODEFER). The filter traps this call
  // too; the kernel forces the new SIGSYS: since it is blocked, it resets the
  // disposition to SIG_DFL, unblocks it and the default action (terminate,
  // core suppressed by RLIMIT_CORE=0 / non-dumpable) kills the whole process.
  // This works for pid 1 of a pid namespace too: forced signals bypass the
  // init protection.
  ::syscall(kDeathSyscall, 0L, 0L, 0L, 0L);
  // Unreachable while our filter is loaded (it never allows the death call,
  // and an earlier filter can only make the outcome stricter). If it ever
  // returns, do not continue running the trapped code.
  ::syscall(SYS_exit_group, 128 + SIGSYS);
}

// Alternate signal stack for the SIGSYS handler, so that the handler runs
// even when the trapping thread's stack is exhausted or corrupted. mmap'd with
// a PROT_NONE guard page below it; kept for the life of the process (it stays
// registered with the kernel), so deliberately never unmapped. sigaltstack is
// per thread: this covers the thread that calls InstallPolicy (the service's
// main thread); threads created later run the handler on their own stack.
void InstallAltStack() {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const long min_size = ::sysconf(_SC_MINSIGSTKSZ);
  size_t size = std::max<size_t>(64 * 1024, min_size > 0 ? static_cast<size_t>(min_size) : 0);
  size = (size + page - 1) / page * page;
  void* p = ::mmap(nullptr, size + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) throw SysError(errno, "mmap", "SIGSYS alternate stack");
  CheckSys(::mprotect(p, page, PROT_NONE), "mprotect", "SIGSYS alternate stack guard");
  stack_t ss{};
  ss.ss_sp = static_cast<char*>(p) + page;
  ss.ss_size = size;
  ss.ss_flags = 0;
  CheckSys(::sigaltstack(&ss, nullptr), "sigaltstack");
}

void InstallSigsysHandler(std::atomic<int32_t>* slot) {
  g_fatal_slot.store(slot, std::memory_order_release);
  InstallAltStack();
  struct sigaction sa{};
  sa.sa_sigaction = OnSigsys;
  // SA_SIGINFO for si_syscall; SA_ONSTACK for the stack above. Deliberately no
  // SA_NODEFER: SIGSYS must stay blocked in the handler for the second trap to
  // be fatal. All other signals are blocked too so no other handler runs
  // between the trap and the death.
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  CheckSys(::sigfillset(&sa.sa_mask), "sigfillset");
  CheckSys(::sigaction(SIGSYS, &sa, nullptr), "sigaction", "SIGSYS");
  // If this thread had SIGSYS blocked, a trap would kill the process without
  // running the handler (slot not written). Make sure it is deliverable here.
  sigset_t set;
  CheckSys(::sigemptyset(&set), "sigemptyset");
  CheckSys(::sigaddset(&set, SIGSYS), "sigaddset");
  int rc = ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  if (rc != 0) throw SysError(rc, "pthread_sigmask", "unblock SIGSYS");
}

// libseccomp returns negative errno values instead of setting errno.
int CheckScmp(int rc, std::string_view call, std::string_view context = {}) {
  if (rc < 0) throw SysError(-rc, call, context);
  return rc;
}

struct ScmpRelease {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using ScmpCtx = std::unique_ptr<void, ScmpRelease>;

void Validate(const SyscallPolicy& policy) {
  for (const SyscallRule& r : policy.rules) {
    const std::string where = "policy '" + policy.name + "', syscall " + SyscallName(r.nr);
    if (r.nr < 0) throw std::invalid_argument(where + ": negative syscall number");
    // Allowing the death syscall would let the SIGSYS handler return into the
    // trapped code instead of dying.
    if (r.nr == kDeathSyscall) {
      throw std::invalid_argument(where + ": allows the SIGSYS handler's death syscall");
    }
    // clone3 passes its flags in memory, where seccomp cannot see them: it is
    // always answered ENOSYS so that glibc uses clone, whose flags we filter.
    if (r.nr == SYS_clone3) {
      throw std::invalid_argument(where + ": clone3 is always ENOSYS; filter clone instead");
    }
    for (const ArgCondition& c : r.conds) {
      if (c.arg > 5) throw std::invalid_argument(where + ": argument index > 5");
    }
  }
}

ScmpCtx BuildFilter(const SyscallPolicy& policy) {
  // Default: trap. Anything not listed raises SIGSYS (see OnSigsys).
  ScmpCtx ctx(seccomp_init(SCMP_ACT_TRAP));
  if (!ctx) throw SysError(ENOMEM, "seccomp_init", policy.name);
  // Syscalls through another ABI (i386 via int 0x80, x32) have other numbers
  // and would bypass a table written for x86-64: kill the process outright.
  CheckScmp(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH,
                             policy.trap_foreign_arch ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS),
            "seccomp_attr_set", "ACT_BADARCH");
  // Apply to every thread of the process, also those started before hardening
  // (e.g. a logging thread); loading fails instead of leaving one unfiltered.
  // A binary search over the syscall numbers instead of a linear list: the
  // filter runs on every system call of the service and of every trap-platform
  // stub it forks (twice per trapped application call: the trap and the
  // handler's rt_sigreturn).
  CheckScmp(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2), "seccomp_attr_set",
            "CTL_OPTIMIZE");
  CheckScmp(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1), "seccomp_attr_set",
            "CTL_TSYNC");
  CheckScmp(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0),
            "seccomp_rule_add", "clone3 -> ENOSYS");
  for (const SyscallRule& r : policy.rules) {
    std::vector<scmp_arg_cmp> cmps;
    cmps.reserve(r.conds.size());
    for (const ArgCondition& c : r.conds) {
      scmp_arg_cmp cmp{};
      cmp.arg = c.arg;
      if (c.op == ArgCondition::Op::kEqual) {
        cmp.op = SCMP_CMP_EQ;
        cmp.datum_a = c.value;
      } else {
        cmp.op = SCMP_CMP_MASKED_EQ;
        cmp.datum_a = c.mask;
        cmp.datum_b = c.value;
      }
      cmps.push_back(cmp);
    }
    // _exact: fail rather than let libseccomp rewrite a rule on this arch.
    CheckScmp(seccomp_rule_add_exact_array(ctx.get(), SCMP_ACT_ALLOW, r.nr,
                                           static_cast<unsigned>(cmps.size()), cmps.data()),
              "seccomp_rule_add", "policy '" + policy.name + "', " + SyscallName(r.nr));
  }
  return ctx;
}

}  // namespace

SyscallPolicy BaseServicePolicy() {
  SyscallPolicy p;
  p.name = "base";
  // I/O on descriptors the service already holds (rings, sockets passed by the
  // supervisor, the log fd). No open/openat: the root is empty anyway.
  p.Allow(SYS_read).Allow(SYS_write).Allow(SYS_readv).Allow(SYS_writev).Allow(SYS_close);
  p.Allow(SYS_lseek);
  // fstat/newfstatat: stdio buffering decisions; glibc 2.33+ implements fstat
  // with newfstatat(fd, "", AT_EMPTY_PATH). A path lookup in the empty root
  // finds nothing.
  p.Allow(SYS_fstat).Allow(SYS_newfstatat);
  // fcntl only to read/change status and descriptor flags (O_NONBLOCK,
  // FD_CLOEXEC). Not F_DUPFD (descriptor table games), F_SETOWN/F_SETSIG
  // (signal delivery to other processes), locks or leases.
  for (int cmd : {F_GETFL, F_SETFL, F_GETFD, F_SETFD}) {
    p.Allow(SYS_fcntl, {ArgCondition::Equal(1, static_cast<uint64_t>(cmd))});
  }
  // Messages on already-connected sockets (fd passing over the control
  // channel). No socket/connect/bind: a service cannot reach anything new.
  p.Allow(SYS_recvmsg).Allow(SYS_sendmsg);
  // Waiting: futex (mutexes, condition variables, the rings), poll/epoll on
  // descriptors the service holds, sleeps, restart after SIGSTOP/SIGCONT.
  p.Allow(SYS_futex);
  p.Allow(SYS_ppoll).Allow(SYS_poll);
  p.Allow(SYS_epoll_wait).Allow(SYS_epoll_pwait).Allow(SYS_epoll_ctl).Allow(SYS_epoll_create1);
  p.Allow(SYS_clock_gettime).Allow(SYS_clock_nanosleep).Allow(SYS_nanosleep);
  p.Allow(SYS_restart_syscall).Allow(SYS_sched_yield);
  // Memory: malloc, thread stacks, guard pages, freeing. mprotect/mmap are not
  // restricted by PROT_EXEC here; with no files to map and no exec, the only
  // source of new code would be a memory-corruption attacker who already runs
  // code.
  p.Allow(SYS_mmap).Allow(SYS_munmap).Allow(SYS_mprotect).Allow(SYS_madvise);
  p.Allow(SYS_brk).Allow(SYS_mremap);
  // Process and thread lifecycle.
  p.Allow(SYS_exit).Allow(SYS_exit_group);
  // clone only for threads: CLONE_THREAD must be set and no namespace flag may
  // be. fork-like clones (new processes) are trapped. This is stricter than
  // the kernel needs (it refuses CLONE_THREAD with CLONE_NEWUSER/NEWPID) and
  // costs nothing: pthread_create never passes namespace flags.
  constexpr uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                       CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
  p.Allow(SYS_clone, {ArgCondition::MaskedEqual(0, CLONE_THREAD | kNamespaceFlags, CLONE_THREAD)});
  // Per-thread set-up glibc does in pthread_create and at start: robust futex
  // list, restartable sequences, alternate signal stack (ASan too).
  p.Allow(SYS_set_robust_list).Allow(SYS_rseq).Allow(SYS_sigaltstack);
  // Signal masks (pthread_create blocks all signals around clone) and return
  // from handlers. Not rt_sigaction: handlers are fixed before the filter, so
  // a compromised service cannot change how SIGSYS is handled. (glibc's lazy
  // SIGSETXID set-up is done by InstallPolicy; pthread_cancel, which installs
  // SIGCANCEL lazily, and abort(), which needs tgkill, die by SIGSYS.)
  p.Allow(SYS_rt_sigprocmask).Allow(SYS_rt_sigreturn);
  // Identity for logs (spdlog prints pid and tid); CPU set for thread pools.
  p.Allow(SYS_gettid).Allow(SYS_getpid).Allow(SYS_sched_getaffinity);
  // std::random_device, hash seeds.
  p.Allow(SYS_getrandom);
  // Thread names for logs and debugging; no other prctl (no PR_SET_DUMPABLE,
  // PR_SET_PTRACER, PR_SET_SECCOMP, PR_CAP_AMBIENT, ...).
  p.Allow(SYS_prctl, {ArgCondition::Equal(0, PR_SET_NAME)});
  p.Allow(SYS_prctl, {ArgCondition::Equal(0, PR_GET_NAME)});
  return p;
}

void InstallPolicy(const SyscallPolicy& policy, std::atomic<int32_t>* fatal_syscall_slot) {
  Validate(policy);
  // Build completely before touching the process, so that a bad policy throws
  // without leaving the process half-configured.
  ScmpCtx ctx = BuildFilter(policy);

  // No core file from a killed service: memory holds sandbox data.
  struct rlimit no_core{0, 0};
  CheckSys(::setrlimit(RLIMIT_CORE, &no_core), "setrlimit", "RLIMIT_CORE=0");
  // Non-dumpable: no core either way, and processes of the same uid (other
  // sandboxes' services mapped to the same outside uid) cannot ptrace it or
  // open its /proc/<pid>/mem.
  CheckSys(::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl", "PR_SET_DUMPABLE=0");

  // Required for an unprivileged process to load a filter, and it stops
  // execve from gaining privileges (setuid binaries, file caps).
  int nnp = CheckSys(::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), "prctl", "PR_GET_NO_NEW_PRIVS");
  if (nnp != 1) CheckSys(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl", "PR_SET_NO_NEW_PRIVS");

  // glibc installs its SIGSETXID handler (rt_sigaction) lazily, in the first
  // pthread_create of the process. Do that first thread now, so that
  // std::thread works under a policy without rt_sigaction.
  if (__libc_single_threaded) std::thread([] {}).join();

  // The handler must be in place before the filter: rt_sigaction is not in any
  // allowlist.
  InstallSigsysHandler(fatal_syscall_slot);

  CheckScmp(seccomp_load(ctx.get()), "seccomp_load", policy.name);
  // From here on only allowed syscalls: ctx's destructor frees memory
  // (munmap/madvise/brk at most), which every policy built on
  // BaseServicePolicy allows.
}

std::string SyscallName(int nr) {
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  if (name == nullptr) return "syscall_" + std::to_string(nr);
  std::string out(name);
  std::free(name);  // Allocated by libseccomp with malloc.
  return out;
}

}  // namespace bulkhead::harden
