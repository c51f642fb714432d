#include "services/mem-broker/policy.h"

#include <sys/syscall.h>

namespace bulkhead::mem {

// mem-broker owns the allocation of the memory file. It starts from what
// every service needs (glibc, spdlog, threads, its rings and its bootstrap
// socket) and adds, one line each, with the reason:
harden::SyscallPolicy MemBrokerPolicy() {
  harden::SyscallPolicy p = harden::BaseServicePolicy();
  p.name = "mem-broker";
  p.Allow(SYS_fallocate);  // released chunks go back to the host (PUNCH_HOLE)
  p.Allow(SYS_fstat);      // the memory file's size at start
  return p;
}

}  // namespace bulkhead::mem
