#include "services/fs-gofer/policy.h"

namespace bulkhead::gofer {

// fs-gofer owns files: it is the only process that touches host files, and
// only below the sandbox root's directory descriptor (the sandbox's mount
// tree). Every call that takes a path is given a descriptor resolved with
// openat2(RESOLVE_IN_ROOT) plus one name, or "" with AT_EMPTY_PATH.
// What every service needs (glibc, spdlog, threads, its rings and its
// bootstrap socket), plus one line per call its file work needs.
harden::SyscallPolicy FsGoferPolicy() {
  harden::SyscallPolicy p = harden::BaseServicePolicy();
  p.name = "fs-gofer";
  p.Allow(SYS_openat2);     // path resolution, always RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
  p.Allow(SYS_pread64);     // file reads at the router's offset
  p.Allow(SYS_pwrite64);    // file writes at the router's offset (appends at the size fstat gave)
  p.Allow(SYS_getdents64);  // directory listings
  p.Allow(SYS_readlinkat);  // readlink on an O_PATH descriptor of the link
  p.Allow(SYS_ftruncate).Allow(SYS_fallocate).Allow(SYS_fsync).Allow(SYS_fdatasync);
  p.Allow(SYS_mkdirat).Allow(SYS_mknodat).Allow(SYS_unlinkat).Allow(SYS_renameat2);
  p.Allow(SYS_linkat).Allow(SYS_symlinkat);
  p.Allow(452);             // fchmodat2 (AT_EMPTY_PATH on the object's descriptor)
  p.Allow(SYS_fchmod);      // the same before Linux 6.6
  p.Allow(SYS_fchownat).Allow(SYS_utimensat).Allow(SYS_fstatfs).Allow(SYS_faccessat2);
  p.Allow(463).Allow(464).Allow(465).Allow(466);  // setxattrat, getxattrat, listxattrat, removexattrat
  p.Allow(SYS_umask);
  return p;
}

}  // namespace bulkhead::gofer
