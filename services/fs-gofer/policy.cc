#include "services/fs-gofer/policy.h"

namespace bulkhead::gofer {

// fs-gofer owns files. Later it will also need openat2/getdents64/fstat... on the rootfs dirfds.
// It starts from what every service needs (glibc, spdlog, threads, its rings
// and its bootstrap socket) and adds nothing yet: each subsystem adds the
// calls its own work needs, one line each, with the reason.
harden::SyscallPolicy FsGoferPolicy() {
  harden::SyscallPolicy p = harden::BaseServicePolicy();
  p.name = "fs-gofer";
  return p;
}

}  // namespace bulkhead::gofer
