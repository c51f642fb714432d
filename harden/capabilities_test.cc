#include "harden/capabilities.h"

#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "harden/namespaces.h"
#include "harden/procfs.h"
#include "harden/test_util.h"

namespace bulkhead::harden {
namespace {

using testing::ChildSync;
using testing::DescribeWaitStatus;
using testing::RunInChild;

bool ExitedOk(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

constexpr char kNoCaps[] = "0000000000000000";

// All five capability sets of the calling process are empty.
int CheckNoCapabilities() {
  std::string st = ReadSmallFile("/proc/self/status");
  for (const char* key : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    if (StatusField(st, key) != kNoCaps) return testing::ChildFailure(__FILE__, __LINE__, key);
  }
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    CHILD_CHECK(::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 0);
  }
  return 0;
}

// Privileged operations fail with EPERM.
int CheckPrivilegeGone() {
  // A private mount namespace was entered before the drop, so even a wrong
  // success here could not touch the host's mounts.
  CHILD_CHECK(::mount("none", "/tmp", "tmpfs", 0, nullptr) < 0 && errno == EPERM);
  CHILD_CHECK(::unshare(CLONE_NEWNS) < 0 && errno == EPERM);
  // No way back: raising a capability again is refused.
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  d[0].effective = d[0].permitted = 1u << CAP_SYS_ADMIN;
  CHILD_CHECK(::syscall(SYS_capset, &h, d) < 0 && errno == EPERM);
  CHILD_CHECK(::prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) < 0 && errno == EPERM);
  return 0;
}

TEST(Capabilities, DropAllAsHostRoot) {
  int status = RunInChild([&](ChildSync&) {
    CHILD_CHECK(::unshare(CLONE_NEWNS) == 0);
    CHILD_CHECK(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
    DropAllCapabilities();
    if (int rc = CheckNoCapabilities(); rc != 0) return rc;
    // Still uid 0, but powerless.
    CHILD_CHECK(::getuid() == 0);
    return CheckPrivilegeGone();
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(Capabilities, DropAllInUserNamespace) {
  int status = RunInChild([&](ChildSync&) {
    CHILD_CHECK(EnterUserNamespace(65534, 65534));
    CHILD_CHECK(::unshare(CLONE_NEWNS) == 0);
    DropAllCapabilities();
    if (int rc = CheckNoCapabilities(); rc != 0) return rc;
    return CheckPrivilegeGone();
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(Capabilities, DropWorksWithoutProc) {
  // After the empty root there is no /proc/sys/kernel/cap_last_cap: the last
  // capability is found by probing.
  int status = RunInChild([&](ChildSync&) {
    CHILD_CHECK(EnterUserNamespace(65534, 65534));
    EnterEmptyMountRoot();
    DropAllCapabilities();
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
      CHILD_CHECK(::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 0);
    }
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(Capabilities, SplitStepsAllowAnIdChangeBetween) {
  // What HardenProcess does without a user namespace: bounding/ambient while
  // root, then leave uid 0, then clear the rest.
  int status = RunInChild([&](ChildSync&) {
    DropBoundingAndAmbientCapabilities();
    CHILD_CHECK(::setresgid(65534, 65534, 65534) == 0);
    CHILD_CHECK(::setresuid(65534, 65534, 65534) == 0);
    ClearCapabilitySets();
    return CheckNoCapabilities();
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(Capabilities, NoNewPrivs) {
  int status = RunInChild([&](ChildSync&) {
    CHILD_CHECK(::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0);
    SetNoNewPrivs();
    CHILD_CHECK(::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
    CHILD_CHECK(StatusField(ReadSmallFile("/proc/self/status"), "NoNewPrivs") == "1");
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

}  // namespace
}  // namespace bulkhead::harden
