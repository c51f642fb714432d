// The trap platform: application system calls reach the router through a
// seccomp trap and shared memory, with no ptrace stop and no context switch
// through a tracer.
//
// How a system call travels (trap_abi.h has the memory layout):
//   1. Every stub process runs under a seccomp filter that returns
//      SECCOMP_RET_TRAP for every system call except those made from the
//      stub code's one `syscall` instruction (bh_trap_syscall, trap_stub.S),
//      and there only a short list, restricted by argument where BPF can.
//   2. The kernel raises SIGSYS; the stub's handler runs on the thread's own
//      signal stack, inside the thread's 64 KiB area of a memfd that the
//      router maps at the same address. It copies the signal information and
//      the registers from its frame into the slot at the area's base, sets
//      the slot's state to EVENT and rings the router's doorbell (an eventfd
//      write only when the router sleeps).
//   3. The router (WaitEvents) sees the state change, serves the call, writes
//      the registers back into the slot (rax = result), sets RUN and wakes
//      the handler if it sleeps on the state word (FUTEX_WAKE).
//   4. The handler copies the registers into its frame and returns; the
//      kernel's rt_sigreturn resumes the application with them.
//   Both sides spin briefly before they sleep, so a round trip on an idle
//   machine is two cache-line transfers plus the signal delivery and return.
//
// Faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP) take the same path as
// kFault events; the router's interrupt (tgkill SIGCHLD) as kInterrupted.
// Address-space changes (mmap, munmap, ..., clone for a new thread or a
// fork) are commands: the router writes CMD with a system call into the
// slot of a parked thread of that address space, the handler makes it from
// the allowed instruction and answers CMD_DONE. New threads and forked
// processes start in bh_trap_child_entry, which traps itself (int3, SIGTRAP)
// so that every parked thread sits inside a real signal frame that a RUN can
// fill.
//
// Threats (the application shares its address space with the handler):
//   - It can write any slot and any signal stack in the region, and forge
//     events: the router copies slot fields once, validates them (state
//     values, frame pointers inside the thread's own area) and never follows
//     a pointer it did not check. The worst outcome is a wrong answer or a
//     dead process in the tampering sandbox.
//   - It can jump to the allowed `syscall` instruction with its own
//     registers. The allowed calls give nothing beyond what it has: memory
//     mapping calls on its own address space (its memory-file descriptor is
//     the sandbox's own memory), futex, write (to the router's eventfd only:
//     a spurious wake-up), sigaltstack, rt_sigprocmask, rt_sigreturn,
//     arch_prctl(SET_FS/SET_GS), prctl(PR_SET_PDEATHSIG), clone with
//     exactly the stub's thread
//     flags or CLONE_PARENT|SIGCHLD, seccomp (only the filter load at boot,
//     and another filter can only restrict). Any other call from that
//     instruction is trapped with its own tag and reported as a kFault
//     SIGSYS, which kills the process (no core dump: a trap, not
//     SECCOMP_RET_KILL_PROCESS). The router's own filter, inherited by every
//     stub, still applies on top.
//   - The handler's code page is read-execute: a store there faults (the
//     router sees kFault). An mprotect made from the allowed instruction
//     would only change the stub's own private copy, never the router's or
//     another stub's, and the handlers cannot be replaced (rt_sigaction is
//     not allowed). A forged slot or frame therefore only hurts the forger.
//   - It can jump to the fast entry (bh_trap_fast) itself, with any
//     registers and, through wrgsbase, any gs_base. With its own slot that is
//     just a system call; with gs pointing at its own memory the entry
//     writes and waits there, using only calls the stub instruction allows
//     anyway: the thread hangs, which only hurts itself. Everything a fast
//     event carries (registers, the FAST flag) is read once and validated
//     like a trapped one; FP state is only taken from a real signal frame
//     (Convert), never from the slot.
//   - Host file descriptors in a stub: the memory file and the router's
//     eventfd, nothing else.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "harden/seccomp_policy.h"
#include "services/syscall-router/platform/platform.h"

namespace bulkhead::router::platform {

struct TrapPlatformOptions {
  // Host descriptors every stub keeps (the memory file); MapFile() accepts
  // exactly these. At most 64.
  std::vector<int> files;
  // See PtracePlatformOptions::dumpable_stubs (process_vm_readv).
  bool dumpable_stubs = true;
  // How long each side spins on the slot before it sleeps, in microseconds.
  // 0: no spinning (one CPU, or many more threads than CPUs).
  uint32_t router_spin_us = 40;
  uint32_t handler_spin_us = 5;
  // A stub thread that runs alone is kept off the CPU the router runs on
  // (both sides spin during a hand-off; on one CPU they would take turns).
  bool avoid_router_cpu = false;
  // A stub thread that does not answer a command (a new thread's birth, an
  // address-space call) within this time is taken for hostile or stuck:
  // its process is killed, and the command fails as if it had died. Its
  // slot is the application's to scribble on, so waiting forever would let
  // it hang the router.
  uint32_t command_timeout_ms = 10000;
  // Threads (all stubs together) the region has room for.
  uint32_t max_threads = 8192;
  // Keep the host's [vvar]/[vdso] in every stub, so that the loader can pass
  // AT_SYSINFO_EHDR and clock_gettime/gettimeofday/time/getcpu never trap.
  bool keep_vdso = true;
};

// Throws SysError if the region cannot be made.
std::unique_ptr<Platform> NewTrapPlatform(TrapPlatformOptions options = {});

// What the stub's filter allows from the stub's own instruction.
const std::vector<int>& TrapStubAllowedSyscalls();

// Rules a hardened router needs on top of harden::BaseServicePolicy() to run
// this platform (the stubs inherit the router's filter too).
harden::SyscallPolicy TrapPlatformRouterRules(const TrapPlatformOptions& options);

// The host vDSO block ([vvar] ... [vdso]) kept in trap stubs: the vDSO's ELF
// header address, or 0.
uint64_t TrapPlatformVdso(const Platform& platform);

}  // namespace bulkhead::router::platform
