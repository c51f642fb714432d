#include "services/syscall-router/policy.h"

#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "services/syscall-router/platform/ptrace_platform.h"
#include "services/syscall-router/platform/trap_platform.h"

namespace bulkhead::router {

// syscall-router owns the application: tasks, signals, fds, address spaces.
// What every service needs (glibc, spdlog, threads, its rings and its
// bootstrap socket), plus what the ptrace platform needs to create, trace and
// reap the application's stub processes (each rule restricted by argument:
// see PtracePlatformRouterRules). It never opens a file or a socket.
harden::SyscallPolicy RouterPolicy() {
  harden::SyscallPolicy p = harden::BaseServicePolicy();
  p.name = "syscall-router";
  p.Append(platform::PtracePlatformRouterRules(platform::PtracePlatformOptions{}));
  // Either platform may run (--platform); the rules of both are small and
  // restricted by argument.
  p.Append(platform::TrapPlatformRouterRules(platform::TrapPlatformOptions{}));
  // The memory file (kernel/memory.cc): freed ranges go back to the host.
  p.Allow(SYS_fallocate, {harden::ArgCondition::Equal(1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)});
  // The terminal the sandbox was started on (kernel.cc, Ioctl): its settings
  // and window size pass through; nothing else reaches a host descriptor.
  for (unsigned long cmd : {TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, TIOCSWINSZ, FIONREAD}) {
    p.Allow(SYS_ioctl, {harden::ArgCondition::Equal(1, cmd)});
  }
  return p;
}

}  // namespace bulkhead::router
