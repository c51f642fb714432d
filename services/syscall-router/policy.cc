#include "services/syscall-router/policy.h"

namespace bulkhead::router {

// syscall-router owns the only peer of the application (tasks, signals, fds, address spaces). Today it serves its control channel and is the client of the other three services' data rings.
// It starts from what every service needs (glibc, spdlog, threads, its rings
// and its bootstrap socket) and adds nothing yet: each subsystem adds the
// calls its own work needs, one line each, with the reason.
harden::SyscallPolicy RouterPolicy() {
  harden::SyscallPolicy p = harden::BaseServicePolicy();
  p.name = "syscall-router";
  return p;
}

}  // namespace bulkhead::router
