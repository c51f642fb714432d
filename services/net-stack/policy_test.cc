#include "services/net-stack/policy.h"

#include <sys/syscall.h>

#include <algorithm>

#include <gtest/gtest.h>

namespace bulkhead::net {
namespace {

bool Allows(const harden::SyscallPolicy& p, int nr) {
  return std::any_of(p.rules.begin(), p.rules.end(), [&](const auto& r) { return r.nr == nr; });
}

// The calls that would let a compromised service reach beyond its
// compartment are never on its list.
TEST(NetStackPolicy, RefusesEscapeRoutes) {
  auto p = NetStackPolicy();
  for (int nr : {SYS_execve, SYS_execveat, SYS_ptrace, SYS_socket, SYS_connect, SYS_open, SYS_openat,
                 SYS_mount, SYS_unshare, SYS_setns, SYS_kill, SYS_process_vm_writev, SYS_bpf}) {
    EXPECT_FALSE(Allows(p, nr)) << harden::SyscallName(nr);
  }
  EXPECT_TRUE(Allows(p, SYS_futex));
}

}  // namespace
}  // namespace bulkhead::net
