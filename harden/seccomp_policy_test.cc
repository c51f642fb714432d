#include "harden/seccomp_policy.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "harden/test_util.h"

namespace bulkhead::harden {
namespace {

using testing::ChildSync;
using testing::DescribeWaitStatus;
using testing::RunInChild;
using testing::SharedSlot;

// The base policy plus what the sanitizer runtimes do in a filtered child.
SyscallPolicy TestPolicy() {
  SyscallPolicy p = BaseServicePolicy();
  p.name = "test";
#if defined(__SANITIZE_ADDRESS__)
  // ASan's pthread_create interceptor checks memory readability with a pipe
  // (IsAccessibleMemoryRange). Tests only: production is not built with ASan.
  p.Allow(SYS_pipe2);
#endif
  return p;
}

bool KilledBySigsys(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }
bool ExitedOk(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

TEST(SeccompPolicy, AllowedCallsWork) {
  SharedSlot slot;
  int status = RunInChild([&](ChildSync&) {
    InstallPolicy(TestPolicy(), slot.get());
    CHILD_CHECK(::getpid() > 0);
    const char msg[] = "";
    CHILD_CHECK(::write(STDERR_FILENO, msg, 0) == 0);
    CHILD_CHECK(::fcntl(STDERR_FILENO, F_GETFL) >= 0);
    CHILD_CHECK(::gettid() > 0);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), 0);
}

TEST(SeccompPolicy, ForbiddenCallKillsWithSigsysAndRecordsNumber) {
  SharedSlot slot;
  int status = RunInChild([&](ChildSync&) {
    InstallPolicy(TestPolicy(), slot.get());
    ::socket(AF_INET, SOCK_STREAM, 0);
    return 50;  // Reaching this means the call was not trapped.
  });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
  EXPECT_FALSE(WCOREDUMP(status));
  EXPECT_EQ(slot.load(), SYS_socket) << SyscallName(slot.load());
}

TEST(SeccompPolicy, NullSlotStillKills) {
  int status = RunInChild([&](ChildSync&) {
    InstallPolicy(TestPolicy(), nullptr);
    ::socket(AF_INET, SOCK_STREAM, 0);
    return 50;
  });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
}

TEST(SeccompPolicy, Clone3IsEnosysAndThreadsStillWork) {
  SharedSlot slot;
  int status = RunInChild([&](ChildSync&) {
    InstallPolicy(TestPolicy(), slot.get());
    errno = 0;
    CHILD_CHECK(::syscall(SYS_clone3, nullptr, 0) == -1);
    CHILD_CHECK(errno == ENOSYS);
    // glibc's pthread_create tries clone3, gets ENOSYS, falls back to clone
    // with CLONE_THREAD, which the base policy allows.
    std::atomic<int> ran{0};
    std::thread t([&] { ran.store(1); });
    t.join();
    CHILD_CHECK(ran.load() == 1);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), 0) << SyscallName(slot.load());
}

TEST(SeccompPolicy, ForkLikeCloneIsKilled) {
  SharedSlot slot;
  int status = RunInChild([&](ChildSync&) {
    InstallPolicy(TestPolicy(), slot.get());
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);  // Must never happen.
    return 50;
  });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), SYS_clone) << SyscallName(slot.load());
}

TEST(SeccompPolicy, ArgumentConditions) {
  SharedSlot slot;
  int status = RunInChild([&](ChildSync&) {
    InstallPolicy(TestPolicy(), slot.get());
    CHILD_CHECK(::fcntl(STDERR_FILENO, F_GETFD) >= 0);
    ::fcntl(STDERR_FILENO, F_SETOWN, ::getpid());
    return 50;
  });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), SYS_fcntl) << SyscallName(slot.load());
}

TEST(SeccompPolicy, HighBitsDoNotMatchAnEqualRule) {
  // The kernel truncates fcntl's cmd to 32 bits; the filter compares 64 bits,
  // so F_GETFD with junk in the high half is refused, not let through.
  SharedSlot slot;
  int status = RunInChild([&](ChildSync&) {
    InstallPolicy(TestPolicy(), slot.get());
    ::syscall(SYS_fcntl, STDERR_FILENO, (1UL << 32) | F_GETFD);
    return 50;
  });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), SYS_fcntl);
}

TEST(SeccompPolicy, MaskedConditionAllowsOnlyMatchingFlags) {
  SharedSlot slot;
  SyscallPolicy p = TestPolicy();
  // madvise is in the base list; add a masked rule on another call to check
  // MASKED_EQ independently of clone: umask(mode) only if (mode & 0077) == 0077.
  p.Allow(SYS_umask, {ArgCondition::MaskedEqual(0, 0077, 0077)});
  int status = RunInChild([&](ChildSync&) {
    InstallPolicy(p, slot.get());
    ::umask(0777);
    ::umask(0177);
    ::umask(0022);  // (0022 & 0077) != 0077: trapped.
    return 50;
  });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), SYS_umask);
}

TEST(SeccompPolicy, OtherThreadsAreFilteredToo) {
  // A thread started before InstallPolicy is covered (TSYNC) and its
  // forbidden call kills the whole process.
  SharedSlot slot;
  int status = RunInChild([&](ChildSync&) {
    std::atomic<int> go{0};
    std::thread t([&] {
      while (go.load() == 0) ::sched_yield();
      ::socket(AF_UNIX, SOCK_STREAM, 0);
    });
    InstallPolicy(TestPolicy(), slot.get());
    go.store(1);
    t.join();
    return 50;
  });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), SYS_socket);
}

TEST(SeccompPolicy, PidOneOfAPidNamespaceDiesToo) {
  // The init of a pid namespace ignores signals it has no handler for, even
  // SIGKILL from inside; the forced SIGSYS of the second trap still kills it.
  SharedSlot slot;
  int status = RunInChild([&](ChildSync&) {
    CHILD_CHECK(::unshare(CLONE_NEWPID) == 0);
    pid_t pid = ::fork();
    CHILD_CHECK(pid >= 0);
    if (pid == 0) {
      if (::getpid() != 1) ::_exit(3);
      InstallPolicy(TestPolicy(), slot.get());
      ::socket(AF_INET, SOCK_DGRAM, 0);
      ::_exit(50);
    }
    int st = 0;
    CHILD_CHECK(::waitpid(pid, &st, 0) == pid);
    CHILD_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS);
    return 0;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), SYS_socket) << SyscallName(slot.load());
}

TEST(SeccompPolicy, SigsysFromKillDoesNotWriteSlot) {
  // Only seccomp traps carry a syscall number: a SIGSYS sent with kill()
  // still kills (the handler dies) but does not blame a syscall.
  SharedSlot slot;
  slot.get()->store(-1);
  int status = RunInChild(
      [&](ChildSync& sync) {
        InstallPolicy(TestPolicy(), slot.get());
        sync.ReadyAndWait();  // Interrupted by the parent's SIGSYS.
        return 50;
      },
      [&](pid_t pid) { ASSERT_EQ(::kill(pid, SIGSYS), 0); });
  EXPECT_TRUE(KilledBySigsys(status)) << DescribeWaitStatus(status);
  EXPECT_EQ(slot.load(), -1);
}

TEST(SeccompPolicy, RefusesPolicyAllowingTheDeathSyscall) {
  int status = RunInChild([&](ChildSync&) {
    SyscallPolicy p = TestPolicy();
    p.Allow(kDeathSyscall);
    try {
      InstallPolicy(p, nullptr);
    } catch (const std::invalid_argument&) {
      // No filter must have been loaded: socket() still works.
      int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      CHILD_CHECK(fd >= 0);
      ::close(fd);
      return 0;
    }
    return 2;
  });
  EXPECT_TRUE(ExitedOk(status)) << DescribeWaitStatus(status);
}

TEST(SeccompPolicy, RefusesMalformedPolicies) {
  SyscallPolicy clone3;
  clone3.Allow(SYS_clone3);
  EXPECT_THROW(InstallPolicy(clone3, nullptr), std::invalid_argument);
  SyscallPolicy bad_arg;
  bad_arg.Allow(SYS_read, {ArgCondition::Equal(6, 0)});
  EXPECT_THROW(InstallPolicy(bad_arg, nullptr), std::invalid_argument);
  SyscallPolicy negative;
  negative.Allow(-5);
  EXPECT_THROW(InstallPolicy(negative, nullptr), std::invalid_argument);
}

TEST(SeccompPolicy, SyscallNames) {
  EXPECT_EQ(SyscallName(SYS_openat), "openat");
  EXPECT_EQ(SyscallName(SYS_socket), "socket");
  EXPECT_EQ(SyscallName(100000), "syscall_100000");
}

TEST(SeccompPolicy, BasePolicyHasNoDangerousCalls) {
  SyscallPolicy p = BaseServicePolicy();
  for (const SyscallRule& r : p.rules) {
    for (int bad : {SYS_open, SYS_openat, SYS_socket, SYS_connect, SYS_execve, SYS_execveat,
                    SYS_ptrace, SYS_rt_sigaction, SYS_kill, SYS_tgkill, SYS_mount, SYS_unshare,
                    SYS_setns, SYS_seccomp, SYS_bpf, SYS_clone3, kDeathSyscall}) {
      EXPECT_NE(r.nr, bad) << SyscallName(r.nr);
    }
    if (r.nr == SYS_clone || r.nr == SYS_fcntl || r.nr == SYS_prctl) {
      EXPECT_FALSE(r.conds.empty()) << SyscallName(r.nr) << " must be conditional";
    }
  }
}

}  // namespace
}  // namespace bulkhead::harden
