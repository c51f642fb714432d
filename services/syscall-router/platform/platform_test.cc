#include "services/syscall-router/platform/platform.h"

#include <gtest/gtest.h>
#include <linux/audit.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cstring>
#include <vector>

namespace bulkhead::router::platform {
namespace {

// An address space with no process behind it: one readable window of
// memory, and a log of the system calls it was asked to make. Shows the
// interface's helpers work for any platform.
class FakeAddressSpace : public AddressSpace {
 public:
  FakeAddressSpace(uint64_t base, size_t size) : base_(base), mem_(size, 0) {}

  long Syscall(long nr, const SyscallArgs& args) override {
    calls.push_back({nr, args});
    return 0;
  }
  long MapFile(uint64_t addr, uint64_t, int, int, uint64_t) override {
    return static_cast<long>(addr);
  }
  ssize_t ReadMemory(uint64_t addr, void* dst, size_t len) override {
    if (addr < base_ || addr >= base_ + mem_.size()) return -EFAULT;
    size_t n = std::min(len, static_cast<size_t>(base_ + mem_.size() - addr));
    std::memcpy(dst, mem_.data() + (addr - base_), n);
    return static_cast<ssize_t>(n);
  }
  ssize_t WriteMemory(uint64_t addr, const void* src, size_t len) override {
    if (addr < base_ || addr >= base_ + mem_.size()) return -EFAULT;
    size_t n = std::min(len, static_cast<size_t>(base_ + mem_.size() - addr));
    std::memcpy(mem_.data() + (addr - base_), src, n);
    return static_cast<ssize_t>(n);
  }
  std::unique_ptr<AddressSpace> Fork() override { return nullptr; }
  bool alive() const override { return true; }
  pid_t stub_pid() const override { return -1; }

  struct Call {
    long nr;
    SyscallArgs args;
  };
  std::vector<Call> calls;

 private:
  uint64_t base_;
  std::vector<uint8_t> mem_;
};

TEST(Registers, ForEntryIsAFreshUserTask) {
  Registers r = Registers::ForEntry(0x401000, 0x7ffd0000);
  EXPECT_EQ(r.gp.rip, 0x401000u);
  EXPECT_EQ(r.gp.rsp, 0x7ffd0000u);
  EXPECT_EQ(r.gp.cs, kUserCs);
  EXPECT_EQ(r.gp.ss, kUserDs);
  EXPECT_EQ(r.gp.eflags, kInitialRflags);
  EXPECT_EQ(r.gp.rax, 0u);
  EXPECT_EQ(r.gp.fs_base, 0u);
}

TEST(Registers, SyscallViewUsesTheLinuxConvention) {
  Registers r;
  r.gp.orig_rax = SYS_openat;
  r.gp.rdi = 1;
  r.gp.rsi = 2;
  r.gp.rdx = 3;
  r.gp.r10 = 4;
  r.gp.r8 = 5;
  r.gp.r9 = 6;
  r.gp.rcx = 99;  // clobbered by `syscall`, never an argument
  EXPECT_EQ(r.syscall_nr(), SYS_openat);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r.syscall_arg(i), static_cast<uint64_t>(i + 1));
  r.set_syscall_return(-ENOENT);
  EXPECT_EQ(static_cast<int64_t>(r.gp.rax), -ENOENT);
}

TEST(Describe, EventsAndWaitStatuses) {
  Event e;
  e.kind = EventKind::kFault;
  e.signo = SIGSEGV;
  e.info.si_code = SEGV_MAPERR;
  e.fault_addr = 0;
  Registers r;
  r.gp.rip = 0x401234;
  EXPECT_EQ(DescribeEvent(e, &r), "fault SIGSEGV code 1 at 0x0, rip 0x401234");
  e = Event{};
  e.kind = EventKind::kSyscall;
  e.syscall_arch = AUDIT_ARCH_I386;
  r.gp.orig_rax = 20;
  EXPECT_EQ(DescribeEvent(e, &r), "syscall 20 (i386), rip 0x401234");
  e = Event{};
  e.kind = EventKind::kExited;
  e.wait_status = SIGKILL;  // as waitpid reports a SIGKILL death
  EXPECT_EQ(DescribeEvent(e), "exited: killed by SIGKILL");
  EXPECT_EQ(DescribeWaitStatus(3 << 8), "exited 3");
  EXPECT_EQ(DescribeWaitStatus((SIGTRAP << 8) | 0x7f), "stopped by SIGTRAP");
  EXPECT_EQ(EventKindName(EventKind::kInterrupted), "interrupted");
}

TEST(AddressSpaceHelpers, MmapFamilyMarshalsArguments) {
  FakeAddressSpace as(0x1000, 4096);
  as.Mmap(0x10000, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  as.Mprotect(0x10000, 4096, PROT_NONE);
  as.Munmap(0x10000, 8192);
  ASSERT_EQ(as.calls.size(), 3u);
  EXPECT_EQ(as.calls[0].nr, SYS_mmap);
  EXPECT_EQ(as.calls[0].args[0], 0x10000u);
  EXPECT_EQ(as.calls[0].args[1], 8192u);
  EXPECT_EQ(as.calls[0].args[2], static_cast<uint64_t>(PROT_READ));
  EXPECT_EQ(as.calls[0].args[3], static_cast<uint64_t>(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED));
  EXPECT_EQ(as.calls[0].args[4], ~0ULL);  // fd -1, sign-extended as the kernel expects
  EXPECT_EQ(as.calls[1].nr, SYS_mprotect);
  EXPECT_EQ(as.calls[1].args[2], static_cast<uint64_t>(PROT_NONE));
  EXPECT_EQ(as.calls[2].nr, SYS_munmap);
}

TEST(AddressSpaceHelpers, CopyIsAllOrNothing) {
  FakeAddressSpace as(0x1000, 4096);
  const char msg[] = "abcdef";
  EXPECT_TRUE(as.CopyOut(0x1000, msg, sizeof msg));
  char back[sizeof msg] = {};
  EXPECT_TRUE(as.CopyIn(0x1000, back, sizeof back));
  EXPECT_STREQ(back, "abcdef");
  // Crosses the end of the window: a short copy is a failure.
  EXPECT_FALSE(as.CopyOut(0x1000 + 4096 - 2, msg, sizeof msg));
  EXPECT_FALSE(as.CopyIn(0x0, back, 1));
  EXPECT_TRUE(as.CopyIn(0x0, back, 0));
}

TEST(AddressSpaceHelpers, ReadCString) {
  FakeAddressSpace as(0x1000, 8192);
  const char path[] = "/etc/passwd";
  // Straddles the page boundary at 0x2000.
  ASSERT_TRUE(as.CopyOut(0x2000 - 4, path, sizeof path));
  EXPECT_EQ(as.ReadCString(0x2000 - 4, 4096), "/etc/passwd");
  EXPECT_EQ(as.ReadCString(0x2000 - 4, 11), "/etc/passwd");  // exactly max bytes
  EXPECT_EQ(as.ReadCString(0x2000 - 4, 10), std::nullopt);   // no NUL within max
  EXPECT_EQ(as.ReadCString(0x10, 100), std::nullopt);        // unmapped
  // Runs off the end of memory without a NUL.
  std::vector<char> fill(16, 'x');
  ASSERT_TRUE(as.CopyOut(0x1000 + 8192 - 16, fill.data(), fill.size()));
  EXPECT_EQ(as.ReadCString(0x1000 + 8192 - 16, 4096), std::nullopt);
}

TEST(AddressRange, Overlaps) {
  AddressRange r{0x1000, 0x3000};
  EXPECT_EQ(r.size(), 0x2000u);
  EXPECT_TRUE(r.Overlaps(0x2000, 0x2001));
  EXPECT_TRUE(r.Overlaps(0x0, 0x1001));
  EXPECT_FALSE(r.Overlaps(0x0, 0x1000));
  EXPECT_FALSE(r.Overlaps(0x3000, 0x4000));
}

}  // namespace
}  // namespace bulkhead::router::platform
