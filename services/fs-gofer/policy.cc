#include "services/fs-gofer/policy.h"

namespace bulkhead::gofer {

// fs-gofer owns files: it is the only process that touches host files, and
// only below the sandbox root's directory descriptor.
// What every service needs (glibc, spdlog, threads, its rings and its
// bootstrap socket), plus one line per call its file work needs.
harden::SyscallPolicy FsGoferPolicy() {
  harden::SyscallPolicy p = harden::BaseServicePolicy();
  p.name = "fs-gofer";
  p.Allow(SYS_openat2);     // path resolution, always RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
  p.Allow(SYS_pread64);     // file reads at the router's offset
  p.Allow(SYS_getdents64);  // directory listings
  p.Allow(SYS_readlinkat);  // readlink on an O_PATH descriptor of the link
  return p;
}

}  // namespace bulkhead::gofer
