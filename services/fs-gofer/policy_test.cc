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
                 SYS_mount, SYS_unshare, SYS_pwrite64, SYS_unlinkat, SYS_renameat2, SYS_setns, SYS_kill, SYS_process_vm_writev, SYS_bpf}) {
    EXPECT_FALSE(Allows(p, nr)) << harden::SyscallName(nr);
  }
  EXPECT_TRUE(Allows(p, SYS_futex));
}

}  // namespace
}  // namespace bulkhead::gofer
