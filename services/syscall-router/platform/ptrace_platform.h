// The ptrace platform: application code runs in stub processes traced with
// PTRACE_SYSEMU, so every system call stops before the host runs it.
//
// Stub life (details and the threat analysis in README.md):
//   1. At construction the platform reserves two pages in the router at a
//      fixed high address (the stub region): a code page holding
//      `syscall; int3` and a read-only page holding the stub's seccomp
//      filter. Every stub inherits them at the same address.
//   2. NewAddressSpace() forks (clone(SIGCHLD)) a child that runs a few raw
//      system calls: unblock signals, PR_SET_PDEATHSIG, PTRACE_TRACEME, new
//      session, RLIMIT_CORE 0, no_new_privs, dumpable, name, unregister
//      glibc's rseq area, no sigaltstack, close every descriptor but the
//      platform's files, then SIGSTOP itself.
//   3. The router (now its tracer) sets PTRACE_O_EXITKILL |
//      PTRACE_O_TRACESYSGOOD and injects, through the code page:
//      munmap of everything below and above the stub region (router code,
//      heap, stacks, rings, vDSO), then seccomp(SET_MODE_FILTER) with the
//      filter page. The application never runs before both succeeded.
//   4. Injection: registers := {rip = syscall insn, rax = nr, args},
//      PTRACE_CONT, wait for the int3's SIGTRAP, result in rax.
//   5. Switch: PTRACE_SETREGS, PTRACE_SYSEMU, waitpid, PTRACE_GETREGS.
//
// Threads: ptrace binds a tracee to the host THREAD that traces it. All
// calls on an AddressSpace (Syscall, MapFile, Switch in it) must come from
// the thread that created it; anything else throws std::logic_error.
// ReadMemory / WriteMemory / Context::Interrupt / destruction work from any
// thread. One Context per AddressSpace today (a second throws SysError with
// ENOSYS): multi-threaded applications need one stub thread per task, see
// README.md.
#pragma once

#include <signal.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "harden/seccomp_policy.h"
#include "services/syscall-router/platform/platform.h"

namespace bulkhead::router::platform {

struct PtracePlatformOptions {
  // Host descriptors every stub keeps, at the same numbers (the memory
  // file). MapFile() accepts exactly these. At most 64.
  std::vector<int> files;
  // Make stubs dumpable so that a router without CAP_SYS_PTRACE may use
  // process_vm_readv/writev on them (non-dumpable processes refuse it). No
  // core dumps all the same: RLIMIT_CORE 0, and the platform only ever kills
  // a stub with SIGKILL. Turn off once application memory is reached through
  // the memory file only; see README.md, "Threats".
  bool dumpable_stubs = true;
  // Before each Switch, pin the stub thread to the CPU its tracer runs on
  // (as gVisor's ptrace platform does): a system call round trip then costs
  // two same-CPU context switches instead of two cross-CPU wake-ups. See
  // README.md for the measured difference.
  bool follow_tracer_cpu = true;
};

// Throws SysError if the stub region cannot be reserved.
std::unique_ptr<Platform> NewPtracePlatform(PtracePlatformOptions options = {});

// The host signal Context::Interrupt() sends to a running stub: SIGCHLD,
// whose default action is to ignore, so a stray one is harmless.
inline constexpr int kInterruptSignal = SIGCHLD;

// Preferred start of the stub region; the platform walks down 1 GiB at a
// time, up to kStubSearchTries times (4 TiB), if it is taken in the router.
// (The router maps the sandbox's 64 GiB memory file before it makes its
// platform: that mapping alone can cover 64 of the steps.) 64 GiB below the top of the 47-bit user
// address space: clear of the router's main stack and its growth room.
inline constexpr uint64_t kPreferredStubAddress = 0x7ff000000000;
inline constexpr int kStubSearchTries = 4096;
// The top of the x86-64 4-level-paging user address space (TASK_SIZE_MAX).
inline constexpr uint64_t kTaskSizeMax = 0x7ffffffff000;

// The system calls the stub's seccomp wall lets through, and only from the
// stub's own `syscall` instruction: what the router injects to change an
// address space. Everything else raises SIGSYS (SECCOMP_RET_TRAP, never
// executed), with si_errno telling which rule refused it:
//   kStubWallForeignTag  a system call from any other address, i.e. one that
//                        bypassed PTRACE_SYSEMU (a legacy vsyscall), or
//                        any i386 call. The router sees it as a kFault
//                        SIGSYS.
//   kStubWallRefusedTag  an injected call outside the list. The platform
//                        kills the stub and AddressSpace::Syscall throws.
const std::vector<int>& StubAllowedSyscalls();
inline constexpr int kStubWallForeignTag = 0xb1;
inline constexpr int kStubWallRefusedTag = 0xb2;

// The rules a hardened router (services/syscall-router/policy.cc) must add
// on top of harden::BaseServicePolicy() (which already has mmap, munmap,
// mprotect, madvise, mremap, rseq, sigaltstack, rt_sigprocmask, getpid,
// gettid, read, write, close, exit_group) to run this platform after
// InstallPolicy(): the router's
// own ptrace/wait/copy calls, the forked child's set-up calls (a forked stub
// inherits the router's filter), and the injected calls, which pass through
// the router's filter too. Each rule is commented in the source.
harden::SyscallPolicy PtracePlatformRouterRules(const PtracePlatformOptions& options);

}  // namespace bulkhead::router::platform
