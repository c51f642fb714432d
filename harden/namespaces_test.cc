#include "harden/namespaces.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
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

bool ExitedOk(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string NsLink(const std::string& pid, const char* ns) {
  char buf[128];
  std::string path = "/proc/" + pid + "/ns/" + ns;
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  if (n < 0) throw SysError(errno, "readlink", path);
  return std::string(buf, static_cast<size_t>(n));
}

// Number of entries in `path` other than "." and "..", or -1.
int CountEntries(const char* path) {
  DIR* d = ::opendir(path);
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++n;
  }
  ::closedir(d);
  return n;
}

TEST(UserNamespace, RootMapsToOutsideIds) {
  const std::string self_userns = NsLink("self", "user");
  int status = RunInChild(
      [&](ChildSync& sync) {
        CHILD_CHECK(EnterUserNamespace(65534, 65534));
        // Inside: root, with all capabilities of the new namespace (what the
        // mount steps need) and no supplementary groups.
        CHILD_CHECK(::getuid() == 0 && ::geteuid() == 0);
        CHILD_CHECK(::getgid() == 0 && ::getegid() == 0);
        CHILD_CHECK(::getgroups(0, nullptr) == 0);
        std::string st = ReadSmallFile("/proc/self/status");
        CHILD_CHECK(StatusField(st, "CapEff") != "0000000000000000");
        CHILD_CHECK(ReadSmallFile("/proc/self/uid_map").find("65534") != std::string::npos);
        CHILD_CHECK(ReadSmallFile("/proc/self/setgroups") == "deny\n");
        // Non-dumpable again after the map writes.
        CHILD_CHECK(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
        // Setgroups is denied in here.
        CHILD_CHECK(::setgroups(0, nullptr) < 0 && errno == EPERM);
        CHILD_CHECK(sync.ReadyAndWait());
        return 0;
      },
      [&](pid_t pid) {
        // From the host: every id is 65534, and the child is in another user
        // namespace.
        const std::string p = std::to_string(pid);
        std::string st = ReadSmallFile("/proc/" + p + "/status");
        EXPECT_EQ(StatusField(st, "Uid"), "65534\t65534\t65534\t65534");
        EXPECT_EQ(StatusField(st, "Gid"), "65534\t65534\t65534\t65534");
        EXPECT_EQ(StatusField(st, "Groups"), "");
        // Capabilities exist only inside the new namespace: CapEff shows them,
        // but they are relative to that namespace (checked via the map).
        std::string map = ReadSmallFile("/proc/" + p + "/uid_map");
        EXPECT_NE(map.find("0      65534          1"), std::string::npos) << map;
        std::string gmap = ReadSmallFile("/proc/" + p + "/gid_map");
        EXPECT_NE(gmap.find("0      65534          1"), std::string::npos) << gmap;
        EXPECT_NE(NsLink(p, "user"), self_userns);
      });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(UserNamespace, OwnIdsNeedNoPrivilege) {
  // A caller mapping its own ids: here root maps 0 -> 0; the same path an
  // unprivileged caller takes with its own uid.
  int status = RunInChild([&](ChildSync&) {
    const uid_t uid = ::geteuid();
    CHILD_CHECK(EnterUserNamespace(uid, ::getegid()));
    CHILD_CHECK(::getuid() == 0);
    std::string map = ReadSmallFile("/proc/self/uid_map");
    CHILD_CHECK(map.find("0          " + std::to_string(uid) + "          1") != std::string::npos);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(UserNamespace, ForbiddenReturnsFalseWithErrno) {
  // Make the machine "forbid" user namespaces for this child only: inside a
  // first user namespace we own its user.max_user_namespaces and set it to 0.
  int status = RunInChild([&](ChildSync&) {
    CHILD_CHECK(EnterUserNamespace(::geteuid(), ::getegid()));
    WriteProcFile("/proc/sys/user/max_user_namespaces", "0");
    errno = 0;
    CHILD_CHECK(!EnterUserNamespace(::geteuid(), ::getegid()));
    CHILD_CHECK(errno == ENOSPC);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

// Runs `body` in a grandchild inside a first user namespace whose maps the
// (root) child writes from outside: ids 0 and 12345 are mapped to themselves,
// so the grandchild is root there with all capabilities and may switch to
// 12345. Returns the grandchild's exit code (or 100 + signal).
int InTwoIdUserNamespace(const std::function<int()>& body) {
  int up[2], down[2];
  CHILD_CHECK(::pipe2(up, O_CLOEXEC) == 0 && ::pipe2(down, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  CHILD_CHECK(pid >= 0);
  if (pid == 0) {
    char c = 0;
    if (::unshare(CLONE_NEWUSER) != 0 || ::write(up[1], &c, 1) != 1 || ::read(down[0], &c, 1) != 1 ||
        ::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) {
      ::_exit(testing::ChildFailure(__FILE__, __LINE__, "first user namespace"));
    }
    int rc = 97;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "grandchild threw: %s\n", e.what());
      rc = 98;
    }
    ::_exit(rc);
  }
  char c = 0;
  CHILD_CHECK(::read(up[0], &c, 1) == 1);
  const std::string proc = "/proc/" + std::to_string(pid);
  WriteProcFile(proc + "/uid_map", "0 0 1\n12345 12345 1\n");
  WriteProcFile(proc + "/gid_map", "0 0 1\n12345 12345 1\n");
  CHILD_CHECK(::write(down[1], &c, 1) == 1);
  int status = 0;
  CHILD_CHECK(::waitpid(pid, &status, 0) == pid);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 100 + WTERMSIG(status);
}

TEST(UserNamespace, RefusedSwitchIsUndone) {
  // Privileged caller, outside ids differ from its own, and the machine
  // refuses: EnterUserNamespace must return false and give back the
  // effective ids (and with them the capabilities) for the fallback path.
  int status = RunInChild([&](ChildSync&) {
    return InTwoIdUserNamespace([] {
      WriteProcFile("/proc/sys/user/max_user_namespaces", "0");
      errno = 0;
      CHILD_CHECK(!EnterUserNamespace(12345, 12345));
      CHILD_CHECK(errno == ENOSPC);
      uid_t r, e, s;
      gid_t rg, eg, sg;
      CHILD_CHECK(::getresuid(&r, &e, &s) == 0 && r == 0 && e == 0 && s == 0);
      CHILD_CHECK(::getresgid(&rg, &eg, &sg) == 0 && rg == 0 && eg == 0 && sg == 0);
      std::string st = ReadSmallFile("/proc/self/status");
      CHILD_CHECK(StatusField(st, "CapEff") == StatusField(st, "CapPrm"));
      CHILD_CHECK(StatusField(st, "CapEff") != "0000000000000000");
      return 0;
    });
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(UserNamespace, SwitchInsideANamespaceMapsTheOutsideId) {
  // The same switch one level down: 12345 in the first namespace becomes 0 in
  // the second.
  int status = RunInChild([&](ChildSync&) {
    return InTwoIdUserNamespace([] {
      CHILD_CHECK(EnterUserNamespace(12345, 12345));
      CHILD_CHECK(::getuid() == 0 && ::getgid() == 0);
      std::string map = ReadSmallFile("/proc/self/uid_map");
      CHILD_CHECK(map.find("12345") != std::string::npos);
      return 0;
    });
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(UserNamespace, MultiThreadedCallerIsALogicError) {
  int status = RunInChild([&](ChildSync&) {
    std::atomic<bool> stop{false};
    std::thread t([&] {
      while (!stop.load()) ::usleep(1000);
    });
    bool threw = false;
    try {
      EnterUserNamespace(65534, 65534);
    } catch (const std::logic_error&) {
      threw = true;
    }
    stop.store(true);
    t.join();
    CHILD_CHECK(threw);
    // Nothing changed.
    CHILD_CHECK(::geteuid() == 0 || ::geteuid() == ::getuid());
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

// The empty root, checked from inside. Shared by the host-root and userns
// variants.
int CheckEmptyRoot() {
  CHILD_CHECK(::open("/etc/passwd", O_RDONLY | O_CLOEXEC) < 0 && errno == ENOENT);
  CHILD_CHECK(::open("/proc/self/status", O_RDONLY | O_CLOEXEC) < 0 && errno == ENOENT);
  CHILD_CHECK(CountEntries("/") == 0);
  CHILD_CHECK(::access("/old-root", F_OK) < 0 && errno == ENOENT);
  // ".." of the root is the root: no way up to the old tree.
  struct stat root, up;
  CHILD_CHECK(::stat("/", &root) == 0 && ::stat("/..", &up) == 0);
  CHILD_CHECK(root.st_ino == up.st_ino && root.st_dev == up.st_dev);
  CHILD_CHECK((root.st_mode & 07777) == 0555);
  // Read-only: even with capabilities, nothing can be created.
  CHILD_CHECK(::mkdir("/x", 0700) < 0 && errno == EROFS);
  CHILD_CHECK(::open("/f", O_CREAT | O_WRONLY | O_CLOEXEC, 0600) < 0 && errno == EROFS);
  char cwd[64];
  CHILD_CHECK(::getcwd(cwd, sizeof(cwd)) != nullptr && std::strcmp(cwd, "/") == 0);
  return 0;
}

TEST(EmptyMountRoot, HostRootSeesNothing) {
  struct stat tmp_before;
  ASSERT_EQ(::stat("/tmp", &tmp_before), 0);
  const std::string self_mntns = NsLink("self", "mnt");
  int status = RunInChild(
      [&](ChildSync& sync) {
        EnterEmptyMountRoot();
        if (int rc = CheckEmptyRoot(); rc != 0) return rc;
        CHILD_CHECK(sync.ReadyAndWait());
        return 0;
      },
      [&](pid_t pid) {
        EXPECT_NE(NsLink(std::to_string(pid), "mnt"), self_mntns);
        std::string mounts = ReadSmallFile("/proc/" + std::to_string(pid) + "/mountinfo");
        // Exactly one mount: the read-only tmpfs root.
        EXPECT_EQ(std::count(mounts.begin(), mounts.end(), '\n'), 1) << mounts;
        EXPECT_NE(mounts.find(" / / ro,"), std::string::npos) << mounts;
      });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
  // The host's /tmp is untouched.
  struct stat tmp_after;
  ASSERT_EQ(::stat("/tmp", &tmp_after), 0);
  EXPECT_EQ(tmp_before.st_dev, tmp_after.st_dev);
  EXPECT_EQ(tmp_before.st_ino, tmp_after.st_ino);
}

TEST(EmptyMountRoot, InsideUserNamespace) {
  int status = RunInChild([&](ChildSync&) {
    CHILD_CHECK(EnterUserNamespace(65534, 65534));
    EnterEmptyMountRoot();
    return CheckEmptyRoot();
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(EmptyMountRoot, DescriptorsOpenedBeforeStayUsable) {
  int status = RunInChild([&](ChildSync&) {
    int dirfd = ::open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHILD_CHECK(dirfd >= 0);
    EnterEmptyMountRoot();
    int fd = ::openat(dirfd, "status", O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(fd >= 0);
    ::close(fd);
    ::close(dirfd);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(PrivateNamespaces, UnsharesRequested) {
  const std::string net = NsLink("self", "net"), uts = NsLink("self", "uts"),
                    ipc = NsLink("self", "ipc");
  utsname host;
  ASSERT_EQ(::uname(&host), 0);
  int status = RunInChild(
      [&](ChildSync& sync) {
        CHILD_CHECK(EnterUserNamespace(65534, 65534));
        EnterPrivateNamespaces(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC);
        const char name[] = "bulkhead-test";
        CHILD_CHECK(::sethostname(name, sizeof(name) - 1) == 0);
        CHILD_CHECK(sync.ReadyAndWait());
        return 0;
      },
      [&](pid_t pid) {
        const std::string p = std::to_string(pid);
        EXPECT_NE(NsLink(p, "net"), net);
        EXPECT_NE(NsLink(p, "uts"), uts);
        EXPECT_NE(NsLink(p, "ipc"), ipc);
      });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
  utsname after;
  ASSERT_EQ(::uname(&after), 0);
  EXPECT_STREQ(host.nodename, after.nodename);
}

TEST(PrivateNamespaces, OnlyNetUtsIpc) {
  EXPECT_THROW(EnterPrivateNamespaces(CLONE_NEWPID), std::invalid_argument);
  EXPECT_THROW(EnterPrivateNamespaces(CLONE_NEWNS | CLONE_NEWNET), std::invalid_argument);
  EXPECT_NO_THROW(EnterPrivateNamespaces(0));
}

}  // namespace
}  // namespace bulkhead::harden
