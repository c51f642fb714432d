#include "services/net-stack/policy.h"

namespace bulkhead::net {

// net-stack owns the user-space TCP/IP stack. Later it will also need read/write on its TAP descriptor.
// It starts from what every service needs (glibc, spdlog, threads, its rings
// and its bootstrap socket) and adds nothing yet: each subsystem adds the
// calls its own work needs, one line each, with the reason.
harden::SyscallPolicy NetStackPolicy() {
  harden::SyscallPolicy p = harden::BaseServicePolicy();
  p.name = "net-stack";
  return p;
}

}  // namespace bulkhead::net
