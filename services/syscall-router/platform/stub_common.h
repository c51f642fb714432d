// What the two platforms' stubs have in common: the forked child's raw
// set-up steps, memory copies into a stub, the classification of a host
// signal, and the router rules for the child. Internal to the platform
// library.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "harden/seccomp_policy.h"
#include "services/syscall-router/platform/platform.h"

namespace bulkhead::router::platform::stubs {

// process_vm_readv / writev of one range: bytes copied (short at the first
// inaccessible page), or -errno.
ssize_t ReadProcessMemory(pid_t pid, uint64_t addr, void* dst, size_t len);
ssize_t WriteProcessMemory(pid_t pid, uint64_t addr, const void* src, size_t len);

// Kills (SIGKILL) and reaps a forked stub child when it goes, unless
// disarmed first: any throw during a stub's set-up leaves nothing behind.
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  ~ChildGuard();
  pid_t pid() const { return pid_; }
  void Disarm() { armed_ = false; }

 private:
  pid_t pid_;
  bool armed_ = true;
};

// What a forked child that failed a set-up step writes to its report pipe.
struct ChildReport {
  int step;
  int err;
};
// Writes {step, errno} to `report_fd` and exits 127. Raw system calls only.
[[noreturn]] void ChildFail(int report_fd, int step);

// The calling thread's glibc rseq registration, captured before a fork so
// that the child (which only makes raw system calls) can undo it: the kernel
// writes the rseq area on the way back to user mode, and the child is about
// to unmap the router's memory.
struct RseqRegistration {
  void* area = nullptr;
  uint32_t lens[3] = {};  // registration lengths to try
  static RseqRegistration OfThisThread();
  // True when there was nothing to undo or the kernel accepted one length.
  bool Unregister() const;
};

// Closes every descriptor but `keep` (ascending). Raw system calls; false on
// a failure (errno set).
bool CloseAllBut(const int* keep, int nkeep);

// A host signal that stopped a stub thread, as the router sees it: a fault
// of the task's own instruction (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP
// from the kernel; SIGSYS from a seccomp filter) is kFault with its address,
// anything else kSignal.
Event FaultOrSignal(int sig, const siginfo_t& si);

// Router rules for a forked stub child's set-up: getppid, setsid,
// close_range, PR_SET_PDEATHSIG(SIGKILL), PR_SET_NO_NEW_PRIVS, optionally
// PR_SET_DUMPABLE(1), RLIMIT_CORE, and process_vm_readv/writev for copies.
void AllowChildSetUp(harden::SyscallPolicy& p, bool dumpable);

}  // namespace bulkhead::router::platform::stubs
