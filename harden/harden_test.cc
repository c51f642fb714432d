#include "harden/harden.h"

#include <linux/capability.h>

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "base/error.h"
#include "harden/procfs.h"
#include "harden/test_util.h"

namespace bulkhead::harden {
namespace {

using testing::ChildSync;
using testing::DescribeWaitStatus;
using testing::RunInChild;
using testing::SharedSlot;

constexpr char kNoCaps[] = "0000000000000000";

bool ExitedOk(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
bool KilledBySigsys(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }

// A small service policy: the base plus what the in-child checks below use.
SyscallPolicy TestPolicy() {
  SyscallPolicy p = BaseServicePolicy();
  p.name = "harden-test";
  p.Allow(SYS_getuid).Allow(SYS_geteuid).Allow(SYS_getgid).Allow(SYS_getegid);
  p.Allow(SYS_openat).Allow(SYS_getdents64).Allow(SYS_mkdir);
  return p;
}

// Checks, under the test policy, what the hardened process sees.
int CheckInside() {
  CHILD_CHECK(::getuid() == 0 && ::geteuid() == 0 && ::getgid() == 0);
  CHILD_CHECK(::open("/etc/passwd", O_RDONLY | O_CLOEXEC) < 0 && errno == ENOENT);
  DIR* d = ::opendir("/");
  CHILD_CHECK(d != nullptr);
  int entries = 0;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++entries;
  }
  ::closedir(d);
  CHILD_CHECK(entries == 0);
  CHILD_CHECK(::mkdir("/x", 0700) < 0 && errno == EROFS);
  return 0;
}

// Checks, from the test process, what the host sees of the hardened child.
void CheckFromHost(pid_t pid, const std::string& ids) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::string st = ReadSmallFile(proc + "/status");
  EXPECT_EQ(StatusField(st, "Uid"), ids);
  for (const char* key : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(StatusField(st, key), kNoCaps) << key;
  }
  EXPECT_EQ(StatusField(st, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(st, "Seccomp"), "2");  // SECCOMP_MODE_FILTER
  std::string mounts = ReadSmallFile(proc + "/mountinfo");
  EXPECT_EQ(std::count(mounts.begin(), mounts.end(), '\n'), 1) << mounts;
  EXPECT_NE(mounts.find(" / / ro,"), std::string::npos) << mounts;
}

TEST(HardenProcess, FullHardeningInUserNamespace) {
  SharedSlot slot;
  const SyscallPolicy policy = TestPolicy();
  int status = RunInChild(
      [&](ChildSync& sync) {
        HardenOptions o;
        o.extra_unshare_flags = CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
        o.policy = &policy;
        o.fatal_syscall_slot = slot.get();
        HardenReport r = HardenProcess(o);
        CHILD_CHECK(r.user_namespace && r.user_namespace_errno == 0 && !r.ids_switched_on_host);
        CHILD_CHECK(r.unshared_flags == o.extra_unshare_flags);
        CHILD_CHECK(r.empty_root && r.capabilities_dropped && r.no_new_privs && r.seccomp);
        if (int rc = CheckInside(); rc != 0) return rc;
        CHILD_CHECK(sync.ReadyAndWait());
        ::socket(AF_INET, SOCK_STREAM, 0);  // Not in the policy: fatal.
        return 50;
      },
      [&](pid_t pid) {
        CheckFromHost(pid, "65534\t65534\t65534\t65534");
        const std::string proc = "/proc/" + std::to_string(pid);
        std::string map = ReadSmallFile(proc + "/uid_map");
        EXPECT_NE(map.find("0      65534          1"), std::string::npos) << map;
      });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
  EXPECT_FALSE(WCOREDUMP(status));
  EXPECT_EQ(slot.load(), SYS_socket) << SyscallName(slot.load());
}

// fs-gofer's case: file-permission capabilities kept inside its own user
// namespace, nothing in the bounding set, nothing inheritable or ambient.
TEST(HardenProcess, KeepsOnlyTheRequestedCapabilitiesInsideTheUserNamespace) {
  const SyscallPolicy policy = TestPolicy();
  const uint64_t keep = (1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_FOWNER);
  int status = RunInChild(
      [&](ChildSync& sync) {
        HardenOptions o;
        o.outside_uid = 0;
        o.outside_gid = 0;
        o.keep_capabilities = keep;
        o.policy = &policy;
        HardenReport r = HardenProcess(o);
        CHILD_CHECK(r.user_namespace && r.capabilities_dropped && r.capabilities_kept == keep);
        CHILD_CHECK(sync.ReadyAndWait());
        return 0;
      },
      [&](pid_t pid) {
        std::string st = ReadSmallFile("/proc/" + std::to_string(pid) + "/status");
        char want[32];
        std::snprintf(want, sizeof want, "%016llx", static_cast<unsigned long long>(keep));
        EXPECT_EQ(StatusField(st, "CapEff"), want);
        EXPECT_EQ(StatusField(st, "CapPrm"), want);
        for (const char* key : {"CapInh", "CapBnd", "CapAmb"}) EXPECT_EQ(StatusField(st, key), kNoCaps) << key;
        EXPECT_EQ(StatusField(st, "NoNewPrivs"), "1");
      });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << DescribeWaitStatus(status);
}

TEST(HardenProcess, WithoutUserNamespaceSwitchesIdsOnHost) {
  SharedSlot slot;
  const SyscallPolicy policy = TestPolicy();
  int status = RunInChild(
      [&](ChildSync& sync) {
        HardenOptions o;
        o.user_namespace = false;
        o.policy = &policy;
        o.fatal_syscall_slot = slot.get();
        HardenReport r = HardenProcess(o);
        CHILD_CHECK(!r.user_namespace && r.user_namespace_errno == 0 && r.ids_switched_on_host);
        CHILD_CHECK(::getuid() == 65534 && ::geteuid() == 65534 && ::getegid() == 65534);
        CHILD_CHECK(sync.ReadyAndWait());
        ::syscall(SYS_setuid, 0);
        return 50;
      },
      [&](pid_t pid) { CheckFromHost(pid, "65534\t65534\t65534\t65534"); });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), SYS_setuid) << SyscallName(slot.load());
}

TEST(HardenProcess, FallsBackWhenUserNamespacesAreForbidden) {
  // Forbid user namespaces for this child only: in a first user namespace
  // (root -> root) set its user.max_user_namespaces to 0, then harden with the
  // ids we have there.
  SharedSlot slot;
  const SyscallPolicy policy = TestPolicy();
  int status = RunInChild([&](ChildSync&) {
    CHILD_CHECK(::unshare(CLONE_NEWUSER) == 0);
    WriteProcFile("/proc/self/setgroups", "deny");
    WriteProcFile("/proc/self/uid_map", "0 0 1\n");
    WriteProcFile("/proc/self/gid_map", "0 0 1\n");
    WriteProcFile("/proc/sys/user/max_user_namespaces", "0");
    HardenOptions o;
    o.outside_uid = 0;
    o.outside_gid = 0;
    o.policy = &policy;
    o.fatal_syscall_slot = slot.get();
    HardenReport r = HardenProcess(o);
    CHILD_CHECK(!r.user_namespace && r.user_namespace_errno == ENOSPC);
    CHILD_CHECK(!r.ids_switched_on_host);
    CHILD_CHECK(r.empty_root && r.capabilities_dropped && r.no_new_privs && r.seccomp);
    if (int rc = CheckInside(); rc != 0) return rc;
    ::syscall(SYS_ptrace, 0, 0, 0, 0);
    return 50;
  });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), SYS_ptrace) << SyscallName(slot.load());
}

TEST(HardenProcess, RefusesBadOptionsBeforeChangingAnything) {
  int status = RunInChild([&](ChildSync&) {
    HardenOptions o;  // No policy.
    bool threw = false;
    try {
      HardenProcess(o);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    CHILD_CHECK(threw);
    const SyscallPolicy policy = TestPolicy();
    o.policy = &policy;
    o.extra_unshare_flags = CLONE_NEWPID;
    threw = false;
    try {
      HardenProcess(o);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    CHILD_CHECK(threw);
    // Still root on the host with all capabilities, no filter.
    CHILD_CHECK(::geteuid() == 0);
    std::string st = ReadSmallFile("/proc/self/status");
    CHILD_CHECK(StatusField(st, "Seccomp") == "0");
    CHILD_CHECK(StatusField(st, "CapEff") != kNoCaps);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(HardenProcess, MultiThreadedCallerIsRefused) {
  int status = RunInChild([&](ChildSync&) {
    const SyscallPolicy policy = TestPolicy();
    HardenOptions o;
    o.policy = &policy;
    std::atomic<bool> stop{false};
    std::thread t([&] {
      while (!stop.load()) ::usleep(1000);
    });
    bool threw = false;
    try {
      HardenProcess(o);
    } catch (const std::logic_error&) {
      threw = true;
    }
    stop.store(true);
    t.join();
    CHILD_CHECK(threw);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(HardenReport, Summary) {
  HardenReport r;
  r.user_namespace = true;
  r.outside_uid = 65534;
  r.outside_gid = 65534;
  r.unshared_flags = CLONE_NEWIPC | CLONE_NEWNET;
  r.empty_root = r.capabilities_dropped = r.no_new_privs = r.seccomp = true;
  r.policy_name = "fs-gofer";
  EXPECT_EQ(r.Summary(),
            "userns=yes outside=65534:65534 ns=ipc,net root=empty caps=none nnp=yes seccomp=fs-gofer");
  HardenReport f;
  f.user_namespace_errno = EPERM;
  EXPECT_EQ(f.Summary(), "userns=refused(EPERM) ns=- root=host caps=kept nnp=no seccomp=off");
}

}  // namespace
}  // namespace bulkhead::harden
