#include "services/mem-broker/policy.h"

namespace bulkhead::mem {

// mem-broker owns the memory file. Later it will also need fallocate(PUNCH_HOLE) on the memory file.
// It starts from what every service needs (glibc, spdlog, threads, its rings
// and its bootstrap socket) and adds nothing yet: each subsystem adds the
// calls its own work needs, one line each, with the reason.
harden::SyscallPolicy MemBrokerPolicy() {
  harden::SyscallPolicy p = harden::BaseServicePolicy();
  p.name = "mem-broker";
  return p;
}

}  // namespace bulkhead::mem
