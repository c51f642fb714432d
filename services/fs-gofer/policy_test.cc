#include "services/fs-gofer/policy.h"

#include <sys/syscall.h>

#include <algorithm>

#include <gtest/gtest.h>

namespace bulkhead::gofer {
namespace {

bool Allows(const harden::SyscallPolicy& p, int nr) {
  return std::any_of(p.rules.begin(), p.rules.end(), [&](const auto& r) { return r.nr == nr; });
}

// The calls that would let a compromised service reach beyond its
// compartment are never on its list.
TEST(FsGoferPolicy, RefusesEscapeRoutes) {
  auto p = FsGoferPolicy();
  for (int nr : {SYS_execve, SYS_execveat, SYS_ptrace, SYS_socket, SYS_connect, SYS_open, SYS_openat,
                 SYS_mount, SYS_unshare, SYS_setns, SYS_kill, SYS_process_vm_writev, SYS_bpf,
                 // path calls that would walk from the host's cwd or root
                 SYS_chmod, SYS_fchmodat, SYS_chown, SYS_lchown, SYS_rename, SYS_renameat, SYS_link, SYS_unlink,
                 SYS_mkdir, SYS_rmdir, SYS_symlink, SYS_truncate, SYS_utimes, SYS_setxattr, SYS_lsetxattr,
                 SYS_name_to_handle_at, SYS_open_by_handle_at, SYS_chroot, SYS_pivot_root}) {
    EXPECT_FALSE(Allows(p, nr)) << harden::SyscallName(nr);
  }
  EXPECT_TRUE(Allows(p, SYS_futex));
}

// The write side works only on descriptors resolved inside the root.
TEST(FsGoferPolicy, WritesOnlyThroughDescriptors) {
  auto p = FsGoferPolicy();
  for (int nr : {SYS_pwrite64, SYS_mkdirat, SYS_unlinkat, SYS_renameat2, SYS_linkat, SYS_symlinkat, SYS_fchownat,
                 SYS_utimensat, SYS_ftruncate, SYS_fallocate}) {
    EXPECT_TRUE(Allows(p, nr)) << harden::SyscallName(nr);
  }
}

}  // namespace
}  // namespace bulkhead::gofer
