#include "services/syscall-router/policy.h"

#include <sys/syscall.h>

#include <algorithm>

#include <gtest/gtest.h>

namespace bulkhead::router {
namespace {

bool Allows(const harden::SyscallPolicy& p, int nr) {
  return std::any_of(p.rules.begin(), p.rules.end(), [&](const auto& r) { return r.nr == nr; });
}

// The calls that would let a compromised router reach beyond its compartment
// are never on its list; the ones the ptrace platform needs are there only
// with argument conditions.
TEST(RouterPolicy, RefusesEscapeRoutes) {
  auto p = RouterPolicy();
  for (int nr : {SYS_execve, SYS_execveat, SYS_socket, SYS_connect, SYS_open, SYS_openat, SYS_openat2,
                 SYS_mount, SYS_unshare, SYS_setns, SYS_bpf, SYS_clone3}) {
    EXPECT_FALSE(Allows(p, nr)) << harden::SyscallName(nr);
  }
  for (const auto& r : p.rules) {
    if (r.nr == SYS_ptrace || r.nr == SYS_kill || r.nr == SYS_clone) {
      EXPECT_FALSE(r.conds.empty()) << harden::SyscallName(r.nr) << " allowed without conditions";
    }
  }
  EXPECT_TRUE(Allows(p, SYS_ptrace));
  EXPECT_TRUE(Allows(p, SYS_futex));
}

}  // namespace
}  // namespace bulkhead::router
