#include "services/syscall-router/platform/ptrace_platform.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include "base/error.h"
#include "base/fd.h"
#include "base/mapping.h"

namespace bulkhead::router::platform {
namespace {

using harden::ArgCondition;

constexpr uint64_t kPage = 4096;

// The stub region: two pages at the same address in the router and in every
// stub.
//   page 0 (r-x): offset 0: `syscall` (0f 05), offset 2: `int3` (cc), the
//                 rest int3.
//   page 1 (r--): offset 0: struct sock_fprog, offset 64: the filter.
constexpr uint64_t kStubSize = 2 * kPage;
constexpr uint64_t kSyscallInsnOffset = 0;
constexpr uint64_t kAfterTrapOffset = 3;  // rip after the int3 that ends an injected call
constexpr uint64_t kFprogOffset = kPage;
constexpr uint64_t kFilterOffset = kPage + 64;
constexpr uint64_t kStubSearchStep = 1ULL << 30;
constexpr int kStubSearchTries = 64;
constexpr size_t kMaxFiles = 64;

// si_code of a seccomp SIGSYS (SYS_SECCOMP, not exported by glibc).
constexpr int kSiCodeSeccomp = 1;
// PTRACE_O_TRACESYSGOOD marks syscall stops with this bit in the stop signal.
constexpr int kSyscallStopSignal = SIGTRAP | 0x80;

std::string Ctx(pid_t tid, std::string_view what = {}) {
  std::string s = "stub " + std::to_string(tid);
  if (!what.empty()) {
    s += ", ";
    s += what;
  }
  return s;
}

std::string SyscallLabel(long nr) { return harden::SyscallName(static_cast<int>(nr)); }

// Not cached in a thread_local: a forked copy of a thread would inherit the
// cache. The call costs tens of nanoseconds against microseconds per Switch.
pid_t CurrentTid() { return static_cast<pid_t>(::gettid()); }

bool Overlaps(const AddressRange& r, uint64_t start, uint64_t len) {
  const uint64_t end = start + len;
  if (end < start) return true;  // wraps: refuse
  return r.Overlaps(start, end);
}

// ---------------------------------------------------------------------------
// Seccomp wall.

std::vector<sock_filter> BuildStubFilter(uint64_t syscall_return_ip) {
  std::vector<sock_filter> f;
  auto stmt = [&](uint16_t code, uint32_t k) { f.push_back(BPF_STMT(code, k)); };
  auto jump = [&](uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
    f.push_back(BPF_JUMP(code, k, jt, jf));
  };
  // i386 (int 0x80) and unknown architectures: trap, as foreign. The stub
  // page holds no int 0x80, and under PTRACE_SYSEMU int 0x80 stops like any
  // system call; this only matters off SYSEMU.
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_TRAP | kStubWallForeignTag);
  // Not from the stub's own `syscall` instruction: trap (SIGSYS, seen by the
  // router as a kFault). seccomp_data.instruction_pointer is the address
  // after the instruction; little-endian halves.
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer) + 4);
  jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(syscall_return_ip >> 32), 1, 0);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_TRAP | kStubWallForeignTag);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer));
  jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(syscall_return_ip), 1, 0);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_TRAP | kStubWallForeignTag);
  // From the stub instruction: only the address-space calls the router
  // injects. The number is compared as 32 bits, so x32 numbers (bit 30) never
  // match. Anything else traps too (tagged), and the platform then kills the
  // stub: a trap rather than SECCOMP_RET_KILL_PROCESS so that no core dump
  // of application memory is ever written, even by a piped core_pattern.
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
  for (int nr : StubAllowedSyscalls()) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  }
  stmt(BPF_RET | BPF_K, SECCOMP_RET_TRAP | kStubWallRefusedTag);
  return f;
}

// The stub region, reserved in the router for the platform's lifetime.
class StubRegion {
 public:
  static StubRegion Reserve() {
    StubRegion region;
    for (int i = 0; i < kStubSearchTries; ++i) {
      const uint64_t want = kPreferredStubAddress - static_cast<uint64_t>(i) * kStubSearchStep;
      void* p = ::mmap(reinterpret_cast<void*>(want), kStubSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p == MAP_FAILED) {
        if (errno == EEXIST) continue;
        throw SysError(errno, "mmap", "stub region at " + std::to_string(want));
      }
      if (reinterpret_cast<uint64_t>(p) != want) {  // a kernel that ignored NOREPLACE
        ::munmap(p, kStubSize);
        continue;
      }
      region.mapping_ = Mapping(p, kStubSize);
      region.Fill();
      return region;
    }
    throw SysError(ENOMEM, "mmap", "no free stub region below kPreferredStubAddress");
  }

  uint64_t start() const { return reinterpret_cast<uint64_t>(mapping_.data()); }
  AddressRange range() const { return {start(), start() + kStubSize}; }

 private:
  void Fill() {
    uint8_t* base = mapping_.data();
    std::memset(base, 0xcc, kPage);   // int3 everywhere
    base[kSyscallInsnOffset] = 0x0f;  // syscall
    base[kSyscallInsnOffset + 1] = 0x05;
    base[kSyscallInsnOffset + 2] = 0xcc;  // int3: ends every injected call

    const std::vector<sock_filter> filter = BuildStubFilter(start() + kSyscallInsnOffset + 2);
    if (kFilterOffset + filter.size() * sizeof(sock_filter) > kStubSize) {
      throw std::logic_error("stub seccomp filter does not fit its page");
    }
    std::memcpy(base + kFilterOffset, filter.data(), filter.size() * sizeof(sock_filter));
    sock_fprog prog{};
    prog.len = static_cast<unsigned short>(filter.size());
    prog.filter = reinterpret_cast<sock_filter*>(start() + kFilterOffset);
    std::memcpy(base + kFprogOffset, &prog, sizeof prog);

    CheckSys(::mprotect(base, kPage, PROT_READ | PROT_EXEC), "mprotect", "stub code page");
    CheckSys(::mprotect(base + kPage, kPage, PROT_READ), "mprotect", "stub filter page");
  }

  Mapping mapping_;
};

// ---------------------------------------------------------------------------
// The forked child, up to its first stop.

enum ChildStep : int {
  kStepSigmask = 1,
  kStepPdeathsig,
  kStepParent,
  kStepTraceme,
  kStepSetsid,
  kStepNoCore,
  kStepNoNewPrivs,
  kStepDumpable,
  kStepName,
  kStepCloseRange,
  kStepRseq,
  kStepAltstack,
};

const char* ChildStepName(int step) {
  switch (step) {
    case kStepSigmask:
      return "rt_sigprocmask(SIG_SETMASK, {})";
    case kStepPdeathsig:
      return "prctl(PR_SET_PDEATHSIG, SIGKILL)";
    case kStepParent:
      return "getppid() (the router died)";
    case kStepTraceme:
      return "ptrace(PTRACE_TRACEME)";
    case kStepSetsid:
      return "setsid()";
    case kStepNoCore:
      return "prlimit64(RLIMIT_CORE, 0)";
    case kStepNoNewPrivs:
      return "prctl(PR_SET_NO_NEW_PRIVS)";
    case kStepDumpable:
      return "prctl(PR_SET_DUMPABLE, 1)";
    case kStepName:
      return "prctl(PR_SET_NAME)";
    case kStepCloseRange:
      return "close_range()";
    case kStepRseq:
      return "rseq(RSEQ_FLAG_UNREGISTER)";
    case kStepAltstack:
      return "sigaltstack(SS_DISABLE)";
  }
  return "?";
}

struct ChildReport {
  int step;
  int err;
};

// Everything the child needs, computed before clone: the child allocates
// nothing and calls no library function but syscall().
struct ChildPlan {
  pid_t parent = -1;
  int report_fd = -1;
  int keep[kMaxFiles + 1] = {};  // ascending; includes report_fd
  int nkeep = 0;
  bool dumpable = true;
  // The forking thread's rseq area (glibc registers one per thread; the
  // child inherits the registration), or null.
  void* rseq_area = nullptr;
  uint32_t rseq_lens[3] = {};  // registration lengths to try when unregistering
};

[[noreturn]] void ChildFail(const ChildPlan& plan, int step) {
  ChildReport r{step, errno};
  ::syscall(SYS_write, plan.report_fd, &r, sizeof r);
  ::syscall(SYS_exit_group, 127);
  __builtin_unreachable();
}

// Runs in the child of clone(SIGCHLD): only raw system calls, because the
// router may be multi-threaded (locks held by other threads at the fork stay
// held forever here). Every call here passes the router's own seccomp filter,
// which the child inherits; see PtracePlatformRouterRules.
[[noreturn]] void StubChild(const ChildPlan& plan) {
  // The router thread may block signals; Interrupt() needs SIGCHLD to reach
  // the stub. (Handlers are not reset: a traced stub never runs one, every
  // signal stops at the tracer first, which suppresses it.)
  uint64_t empty_mask = 0;
  if (::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty_mask, nullptr, sizeof empty_mask) != 0) {
    ChildFail(plan, kStepSigmask);
  }
  // Until PTRACE_O_EXITKILL is set, the parent's death must still kill us.
  if (::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
    ChildFail(plan, kStepPdeathsig);
  if (::syscall(SYS_getppid) != plan.parent) {
    errno = ESRCH;
    ChildFail(plan, kStepParent);
  }
  if (::syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0) != 0) ChildFail(plan, kStepTraceme);
  // Own session and process group: no terminal signals (^C) reach the stub.
  if (::syscall(SYS_setsid) < 0) ChildFail(plan, kStepSetsid);
  struct rlimit no_core {
    0, 0
  };
  if (::syscall(SYS_prlimit64, 0, RLIMIT_CORE, &no_core, nullptr) != 0)
    ChildFail(plan, kStepNoCore);
  // Needed to load the stub's seccomp filter without CAP_SYS_ADMIN.
  if (::syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFail(plan, kStepNoNewPrivs);
  if (plan.dumpable && ::syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
    ChildFail(plan, kStepDumpable);
  }
  if (::syscall(SYS_prctl, PR_SET_NAME, "bulkhead-stub", 0, 0, 0) != 0) ChildFail(plan, kStepName);
  // Per-thread kernel state that points into the router's memory, which is
  // about to be unmapped. rseq matters: on the way back to user mode after a
  // preemption or a signal stop the kernel writes the rseq area, and a fault
  // there is a forced SIGSEGV. (clear_child_tid is unset by clone(SIGCHLD);
  // the robust-futex list is only read at exit, and a fault there is benign.)
  if (plan.rseq_area != nullptr) {
    long rc = -1;
    for (uint32_t len : plan.rseq_lens) {
      if (len == 0) continue;
      rc = ::syscall(SYS_rseq, plan.rseq_area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
      if (rc == 0 || errno != EINVAL) break;
    }
    if (rc != 0) ChildFail(plan, kStepRseq);
  }
  stack_t no_altstack{};
  no_altstack.ss_flags = SS_DISABLE;
  if (::syscall(SYS_sigaltstack, &no_altstack, nullptr) != 0) ChildFail(plan, kStepAltstack);
  // Close every descriptor but the platform's files (and the report pipe).
  unsigned lo = 0;
  for (int i = 0; i < plan.nkeep; ++i) {
    const unsigned k = static_cast<unsigned>(plan.keep[i]);
    if (k > lo && ::syscall(SYS_close_range, lo, k - 1, 0) != 0) ChildFail(plan, kStepCloseRange);
    lo = k + 1;
  }
  if (::syscall(SYS_close_range, lo, ~0U, 0) != 0) ChildFail(plan, kStepCloseRange);
  ::syscall(SYS_close, plan.report_fd);
  // Stop. The tracer takes over here and never lets this code run again: it
  // points the registers at the stub page and unmaps this code.
  ::syscall(SYS_kill, ::syscall(SYS_getpid), SIGSTOP);
  ::syscall(SYS_exit_group, 126);
  __builtin_unreachable();
}

// ---------------------------------------------------------------------------
// The stub process: killed and reaped when its owner goes, whatever happened.

class StubProcess {
 public:
  explicit StubProcess(pid_t pid) : pid_(pid) {}
  StubProcess(const StubProcess&) = delete;
  StubProcess& operator=(const StubProcess&) = delete;
  StubProcess(StubProcess&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), reaped_(o.reaped_), status_(o.status_) {}
  ~StubProcess() { KillAndReap(); }

  pid_t pid() const { return pid_; }
  bool reaped() const { return reaped_; }
  int status() const { return status_; }
  void MarkReaped(int status) {
    reaped_ = true;
    status_ = status;
  }

  // SIGKILL, then waitpid until the exit is collected. Any thread of the
  // router may do this (waitpid without __WNOTHREAD sees the children and
  // tracees of every thread of the process).
  void KillAndReap() noexcept {
    if (pid_ <= 0 || reaped_) return;
    ::kill(pid_, SIGKILL);  // ESRCH: already a zombie; reap it below.
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, __WALL);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) break;  // ECHILD: someone else reaped it (a router bug); nothing left to do.
      if (WIFEXITED(status) || WIFSIGNALED(status)) {
        MarkReaped(status);
        return;
      }
    }
    reaped_ = true;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

class PtraceContext;

class PtraceAddressSpace final : public AddressSpace {
 public:
  PtraceAddressSpace(StubProcess proc, AddressRange stub, std::vector<int> files, pid_t router_pid,
                     const user_regs_struct& templ, bool follow_tracer_cpu)
      : follow_tracer_cpu_(follow_tracer_cpu),
        proc_(std::move(proc)),
        stub_(stub),
        files_(std::move(files)),
        router_pid_(router_pid),
        tracer_tid_(CurrentTid()),
        template_(templ) {
    // Injected calls need valid selectors and flags, nothing else.
    template_.fs_base = 0;
    template_.gs_base = 0;
    template_.rsp = 0;  // the stub code never touches a stack
  }

  ~PtraceAddressSpace() override { proc_.KillAndReap(); }

  long Syscall(long nr, const SyscallArgs& args) override {
    CheckTracer("Syscall");
    if (TouchesStub(nr, args)) return -EINVAL;
    return Inject(nr, args);
  }

  long MapFile(uint64_t addr, uint64_t len, int prot, int file_fd, uint64_t offset) override {
    if (std::find(files_.begin(), files_.end(), file_fd) == files_.end()) return -EBADF;
    return Mmap(addr, len, prot, MAP_SHARED | MAP_FIXED, file_fd, offset);
  }

  // A reaped stub's pid may be reused: never copy once the death was seen.
  // (A copy racing with the reap on the tracer thread can still reach a
  // reused pid; the memory-file path that replaces this has no such race.)
  ssize_t ReadMemory(uint64_t addr, void* dst, size_t len) override {
    if (!alive()) return -ESRCH;
    if (len == 0) return 0;
    iovec local{dst, len};
    iovec remote{reinterpret_cast<void*>(addr), len};
    ssize_t n = ::process_vm_readv(proc_.pid(), &local, 1, &remote, 1, 0);
    return n < 0 ? -errno : n;
  }

  ssize_t WriteMemory(uint64_t addr, const void* src, size_t len) override {
    if (!alive()) return -ESRCH;
    if (len == 0) return 0;
    iovec local{const_cast<void*>(src), len};
    iovec remote{reinterpret_cast<void*>(addr), len};
    ssize_t n = ::process_vm_writev(proc_.pid(), &local, 1, &remote, 1, 0);
    return n < 0 ? -errno : n;
  }

  bool alive() const override { return !dead_.load(std::memory_order_acquire); }
  pid_t stub_pid() const override { return proc_.pid(); }

  // Unmaps everything but the stub region and loads the seccomp wall.
  void Bootstrap() {
    long rc = Inject(SYS_munmap, {0, stub_.start, 0, 0, 0, 0});
    if (rc != 0)
      throw SysError(static_cast<int>(-rc), "munmap", Ctx(stub_pid(), "below the stub region"));
    rc = Inject(SYS_munmap, {stub_.end, kTaskSizeMax - stub_.end, 0, 0, 0, 0});
    if (rc != 0)
      throw SysError(static_cast<int>(-rc), "munmap", Ctx(stub_pid(), "above the stub region"));
    rc = Inject(SYS_seccomp, {SECCOMP_SET_MODE_FILTER, 0, stub_.start + kFprogOffset, 0, 0, 0});
    if (rc != 0)
      throw SysError(static_cast<int>(-rc), "seccomp",
                     Ctx(stub_pid(), "loading the stub's filter"));
  }

  void CheckTracer(const char* what) const {
    const pid_t me = CurrentTid();
    if (me != tracer_tid_) {
      throw std::logic_error(std::string("ptrace platform: ") + what + " on " + Ctx(stub_pid()) +
                             " from host thread " + std::to_string(me) +
                             "; only its tracer, thread " + std::to_string(tracer_tid_) +
                             " (the one that created the address space), may do this");
    }
  }

  void Bind(uint64_t context_id) {
    if (bound_context_ == 0) bound_context_ = context_id;
    if (bound_context_ != context_id) {
      throw SysError(ENOSYS, "Switch",
                     Ctx(stub_pid(),
                         "a second task in one address space (CLONE_VM): not implemented "
                         "by the ptrace platform yet"));
    }
  }

  // (tgid << 32) | tid of the stub thread, for tgkill from other threads.
  uint64_t thread_key() const {
    return (static_cast<uint64_t>(proc_.pid()) << 32) | static_cast<uint32_t>(proc_.pid());
  }

  Event ExitedEvent() const {
    Event ev;
    ev.kind = EventKind::kExited;
    ev.wait_status = proc_.status();
    return ev;
  }

  Event Run(Registers& regs, PtraceContext& ctx);

 private:
  pid_t tid() const { return proc_.pid(); }

  // Waits for the next stop or the exit of the stub thread. An exit is
  // recorded (the stub is then reaped).
  int Wait() {
    int status = 0;
    pid_t r = RetryEintr([&] { return ::waitpid(tid(), &status, __WALL); });
    if (r < 0) throw SysError(errno, "waitpid", Ctx(tid()));
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      proc_.MarkReaped(status);
      dead_.store(true, std::memory_order_release);
    }
    return status;
  }

  // After a ptrace request failed with ESRCH: the stub was killed while
  // stopped and is exiting. Collects the exit.
  Event CollectExit() {
    for (;;) {
      int status = Wait();
      if (WIFEXITED(status) || WIFSIGNALED(status)) return ExitedEvent();
      throw std::logic_error("ptrace platform: " + Ctx(tid()) +
                             " refused a request with ESRCH but then " +
                             DescribeWaitStatus(status));
    }
  }

  void GetRegs(user_regs_struct& out, const char* why) {
    if (::ptrace(PTRACE_GETREGS, tid(), nullptr, &out) < 0) {
      throw SysError(errno, "ptrace(PTRACE_GETREGS)", Ctx(tid(), why));
    }
  }

  uint32_t SyscallArch() {
    __ptrace_syscall_info info{};
    if (::ptrace(PTRACE_GET_SYSCALL_INFO, tid(), sizeof info, &info) < 0) {
      throw SysError(errno, "ptrace(PTRACE_GET_SYSCALL_INFO)", Ctx(tid()));
    }
    return info.arch;
  }

  // True if an injected address-space call would touch the stub region.
  bool TouchesStub(long nr, const SyscallArgs& a) const {
    switch (nr) {
      case SYS_mmap:
        return (a[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0 && Overlaps(stub_, a[0], a[1]);
      case SYS_munmap:
      case SYS_mprotect:
      case SYS_madvise:
        return Overlaps(stub_, a[0], a[1]);
      case SYS_mremap:
        return Overlaps(stub_, a[0], a[1]) ||
               ((a[3] & MREMAP_FIXED) != 0 && Overlaps(stub_, a[4], a[2]));
      default:
        return false;
    }
  }

  long Inject(long nr, const SyscallArgs& a);

  // Pins the stub thread to the CPU the tracer runs on now. A system call
  // round trip is two wake-ups between tracer and stub; on one CPU they are
  // plain context switches, across CPUs each needs an inter-processor
  // interrupt (costly in a VM). Re-pinned when the tracer has migrated; a
  // refusal (e.g. a cpuset that excludes the CPU) only costs speed.
  void FollowTracerCpu() {
    if (!follow_tracer_cpu_) return;
    const int cpu = ::sched_getcpu();  // vDSO, no system call
    if (cpu < 0 || cpu == stub_cpu_) return;
    stub_cpu_ = cpu;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(tid(), sizeof set, &set);
  }

  const bool follow_tracer_cpu_;
  int stub_cpu_ = -1;
  StubProcess proc_;
  const AddressRange stub_;
  const std::vector<int> files_;
  const pid_t router_pid_;
  const pid_t tracer_tid_;
  user_regs_struct template_;
  uint64_t bound_context_ = 0;
  std::atomic<bool> dead_{false};
};

long PtraceAddressSpace::Inject(long nr, const SyscallArgs& a) {
  if (!alive()) {
    throw SysError(ESRCH, "injected " + SyscallLabel(nr),
                   Ctx(tid(), "the stub is dead: " + DescribeWaitStatus(proc_.status())));
  }
  user_regs_struct r = template_;
  r.rip = stub_.start + kSyscallInsnOffset;
  r.rax = static_cast<uint64_t>(nr);
  // orig_rax -1: whatever stop the thread is in, the host applies no
  // system-call restart logic on the way back to user mode.
  r.orig_rax = ~0ULL;
  r.rdi = a[0];
  r.rsi = a[1];
  r.rdx = a[2];
  r.r10 = a[3];
  r.r8 = a[4];
  r.r9 = a[5];
  if (::ptrace(PTRACE_SETREGS, tid(), nullptr, &r) < 0) {
    if (errno == ESRCH)
      CollectExit();
    else
      throw SysError(errno, "ptrace(PTRACE_SETREGS)", Ctx(tid(), "injecting " + SyscallLabel(nr)));
  }
  // PTRACE_CONT, not SYSEMU: the call must run. If the thread sat in a
  // SYSEMU syscall-entry stop, that (application) call stays skipped: the
  // kernel decided so before the stop.
  long rc = alive() ? ::ptrace(PTRACE_CONT, tid(), nullptr, nullptr) : 0;
  if (rc < 0) {
    if (errno == ESRCH)
      CollectExit();
    else
      throw SysError(errno, "ptrace(PTRACE_CONT)", Ctx(tid(), "injecting " + SyscallLabel(nr)));
  }
  int trapped_by_router = -1;  // si_syscall of a SIGSYS from the router's inherited filter
  bool refused_by_wall = false;
  while (alive()) {
    const int status = Wait();
    if (!WIFSTOPPED(status)) continue;  // exit: the loop ends
    const int sig = WSTOPSIG(status);
    if (sig == SIGTRAP && (status >> 16) == 0) {
      user_regs_struct out{};
      GetRegs(out, "after an injected call");
      if (out.rip == stub_.start + kAfterTrapOffset) {
        if (refused_by_wall) {
          // Fail closed: the router asked for something the stub must never
          // do. The address space is gone.
          proc_.KillAndReap();
          dead_.store(true, std::memory_order_release);
          throw SysError(EPERM, "injected " + SyscallLabel(nr),
                         Ctx(tid(),
                             "refused by the stub's seccomp wall (only StubAllowedSyscalls() "
                             "may be injected); the stub was killed"));
        }
        if (trapped_by_router >= 0) {
          throw SysError(
              ENOSYS, "injected " + SyscallLabel(nr),
              Ctx(tid(),
                  "refused by a seccomp filter the stub inherited from the router "
                  "(si_syscall " +
                      SyscallLabel(trapped_by_router) + "); see PtracePlatformRouterRules()"));
        }
        return static_cast<long>(out.rax);
      }
      // A SIGTRAP sent from outside: discard.
    } else if (sig == SIGSYS) {
      siginfo_t si{};
      if (::ptrace(PTRACE_GETSIGINFO, tid(), nullptr, &si) == 0 && si.si_code == kSiCodeSeccomp) {
        if (si.si_errno == kStubWallRefusedTag) {
          refused_by_wall = true;
        } else {
          trapped_by_router = si.si_syscall;
        }
      }
    }
    // Anything else (a stale interrupt, a signal from outside) is discarded:
    // host signals carry nothing for the application.
    if (::ptrace(PTRACE_CONT, tid(), nullptr, nullptr) < 0) {
      if (errno == ESRCH) {
        CollectExit();
        break;
      }
      throw SysError(errno, "ptrace(PTRACE_CONT)", Ctx(tid(), "injecting " + SyscallLabel(nr)));
    }
  }
  throw SysError(ESRCH, "injected " + SyscallLabel(nr),
                 Ctx(tid(), "the stub died: " + DescribeWaitStatus(proc_.status())));
}

class PtraceContext final : public Context {
 public:
  explicit PtraceContext(uint64_t id) : id_(id) {}

  Event Switch(AddressSpace& as, Registers& regs) override {
    auto* pas = dynamic_cast<PtraceAddressSpace*>(&as);
    if (pas == nullptr) {
      throw std::invalid_argument(
          "ptrace platform: Switch into an address space of another platform");
    }
    pas->CheckTracer("Switch");
    pas->Bind(id_);
    if (!pas->alive()) return pas->ExitedEvent();
    // Publish the running thread, then look for an interrupt: with Interrupt()
    // storing the flag before reading running_ (both seq_cst) at least one side
    // sees the other, so no interrupt is lost.
    running_.store(pas->thread_key());
    struct ClearRunning {
      std::atomic<uint64_t>& r;
      ~ClearRunning() { r.store(0); }
    } clear{running_};
    if (TakeInterrupt()) {
      Event ev;
      ev.kind = EventKind::kInterrupted;
      return ev;
    }
    return pas->Run(regs, *this);
  }

  void Interrupt() override {
    interrupt_pending_.store(true);
    const uint64_t key = running_.load();
    if (key != 0) {
      // ESRCH: the stub died or the Switch ended; the flag covers the rest.
      ::syscall(SYS_tgkill, static_cast<pid_t>(key >> 32), static_cast<pid_t>(key & 0xffffffffu),
                kInterruptSignal);
    }
  }

  bool TakeInterrupt() { return interrupt_pending_.exchange(false); }

 private:
  const uint64_t id_;
  std::atomic<bool> interrupt_pending_{false};
  std::atomic<uint64_t> running_{0};
};

Event PtraceAddressSpace::Run(Registers& regs, PtraceContext& ctx) {
  user_regs_struct w = regs.gp;
  // No host syscall-restart logic on an emulated call: restarts are the
  // router's business (it rewinds rip itself).
  w.orig_rax = ~0ULL;
  if (::ptrace(PTRACE_SETREGS, tid(), nullptr, &w) < 0) {
    if (errno == ESRCH) return CollectExit();
    throw SysError(
        errno, "ptrace(PTRACE_SETREGS)",
        Ctx(tid(), "task registers (selectors, rip, fs_base must be valid user values)"));
  }
  FollowTracerCpu();
  for (;;) {
    if (::ptrace(PTRACE_SYSEMU, tid(), nullptr, nullptr) < 0) {
      if (errno == ESRCH) return CollectExit();
      throw SysError(errno, "ptrace(PTRACE_SYSEMU)", Ctx(tid()));
    }
    const int status = Wait();
    if (WIFEXITED(status) || WIFSIGNALED(status)) return ExitedEvent();
    if (!WIFSTOPPED(status)) continue;
    const int sig = WSTOPSIG(status);
    if (sig == kSyscallStopSignal) {
      Event ev;
      ev.kind = EventKind::kSyscall;
      GetRegs(regs.gp, "at a system call");
      // The `syscall` instruction leaves rcx = return address and r11 =
      // rflags, and the kernel saves them as rip and flags: when both match
      // it is a 64-bit call, no extra request needed. Otherwise (int $0x80,
      // or a coincidence) ask the kernel. An application that forges the
      // match around int $0x80 only gets its own call read with x86-64
      // numbers: every call is served by the router either way.
      if (regs.gp.rcx == regs.gp.rip && regs.gp.r11 == regs.gp.eflags) {
        ev.syscall_arch = AUDIT_ARCH_X86_64;
      } else {
        ev.syscall_arch = SyscallArch();
      }
      return ev;
    }
    if ((status >> 16) != 0) continue;  // a PTRACE_EVENT stop: none is enabled
    siginfo_t si{};
    if (::ptrace(PTRACE_GETSIGINFO, tid(), nullptr, &si) < 0) {
      if (errno == ESRCH) return CollectExit();
      // EINVAL: a group-stop, not a signal. Cannot happen (stop signals are
      // suppressed at delivery, so no group-stop starts); resume.
      if (errno == EINVAL) continue;
      throw SysError(errno, "ptrace(PTRACE_GETSIGINFO)", Ctx(tid()));
    }
    if (sig == kInterruptSignal && si.si_code == SI_TKILL && si.si_pid == router_pid_) {
      if (!ctx.TakeInterrupt()) continue;  // stale: its interrupt was already reported
      Event ev;
      ev.kind = EventKind::kInterrupted;
      GetRegs(regs.gp, "at an interrupt");
      return ev;
    }
    Event ev;
    ev.signo = sig;
    ev.info = si;
    GetRegs(regs.gp, "at a signal");
    const bool from_kernel = si.si_code > 0;
    if (from_kernel &&
        (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP)) {
      ev.kind = EventKind::kFault;
      ev.fault_addr = reinterpret_cast<uint64_t>(si.si_addr);
    } else if (sig == SIGSYS && si.si_code == kSiCodeSeccomp) {
      ev.kind = EventKind::kFault;
      ev.fault_addr = reinterpret_cast<uint64_t>(si.si_call_addr);
    } else {
      ev.kind = EventKind::kSignal;
    }
    // The host signal is dropped: the next resume passes signal 0.
    return ev;
  }
}

class PtracePlatform final : public Platform {
 public:
  explicit PtracePlatform(PtracePlatformOptions options)
      : options_(std::move(options)), region_(StubRegion::Reserve()), router_pid_(::getpid()) {
    std::vector<int>& f = options_.files;
    std::sort(f.begin(), f.end());
    f.erase(std::unique(f.begin(), f.end()), f.end());
    if (f.size() > kMaxFiles) throw std::invalid_argument("ptrace platform: more than 64 files");
    for (int fd : f)
      CheckSys(::fcntl(fd, F_GETFD), "fcntl(F_GETFD)", "platform file " + std::to_string(fd));
  }

  std::string_view name() const override { return "ptrace"; }

  std::unique_ptr<AddressSpace> NewAddressSpace() override {
    int p[2];
    CheckSys(::pipe2(p, O_CLOEXEC), "pipe2", "stub set-up report");
    UniqueFd report_read(p[0]);
    UniqueFd report_write(p[1]);

    ChildPlan plan;
    plan.parent = router_pid_;
    plan.report_fd = report_write.get();
    plan.dumpable = options_.dumpable_stubs;
    for (int fd : options_.files) plan.keep[plan.nkeep++] = fd;
    plan.keep[plan.nkeep++] = report_write.get();
    std::sort(plan.keep, plan.keep + plan.nkeep);
    if (__rseq_size > 0) {
      plan.rseq_area = static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
      // glibc registers 32 bytes (the original struct rseq); newer glibc may
      // register more and report the feature size in __rseq_size.
      plan.rseq_lens[0] = 32;
      plan.rseq_lens[1] = __rseq_size;
      plan.rseq_lens[2] = (__rseq_size + 31) & ~31u;
    }

    // clone(SIGCHLD) is fork without glibc's atfork handlers: the child only
    // makes raw system calls (StubChild).
    const long pid = ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) throw SysError(errno, "clone", "stub process");
    if (pid == 0) StubChild(plan);

    StubProcess proc(static_cast<pid_t>(pid));  // from here, any throw kills and reaps it
    report_write.Reset();
    int status = 0;
    if (RetryEintr([&] { return ::waitpid(proc.pid(), &status, __WALL); }) < 0) {
      throw SysError(errno, "waitpid", Ctx(proc.pid(), "set-up"));
    }
    if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP) {
      if (WIFEXITED(status) || WIFSIGNALED(status)) proc.MarkReaped(status);
      ChildReport report{};
      ssize_t n = RetryEintr([&] { return ::read(report_read.get(), &report, sizeof report); });
      if (n == static_cast<ssize_t>(sizeof report)) {
        throw SysError(report.err, ChildStepName(report.step),
                       Ctx(proc.pid(), "set-up in the forked child"));
      }
      std::string why = DescribeWaitStatus(status);
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
        why +=
            " (a set-up call the router's seccomp policy lacks? see PtracePlatformRouterRules())";
      }
      throw SysError(ECHILD, "stub set-up", Ctx(proc.pid(), why));
    }
    // From now on the stub dies with its tracer thread, and system-call stops
    // are told apart from SIGTRAPs.
    if (::ptrace(PTRACE_SETOPTIONS, proc.pid(), nullptr,
                 reinterpret_cast<void*>(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD)) < 0) {
      throw SysError(errno, "ptrace(PTRACE_SETOPTIONS)", Ctx(proc.pid()));
    }
    user_regs_struct templ{};
    if (::ptrace(PTRACE_GETREGS, proc.pid(), nullptr, &templ) < 0) {
      throw SysError(errno, "ptrace(PTRACE_GETREGS)", Ctx(proc.pid(), "set-up"));
    }
    auto as = std::make_unique<PtraceAddressSpace>(std::move(proc), region_.range(), options_.files,
                                                   router_pid_, templ, options_.follow_tracer_cpu);
    as->Bootstrap();
    return as;
  }

  std::unique_ptr<Context> NewContext() override {
    return std::make_unique<PtraceContext>(next_context_id_.fetch_add(1) + 1);
  }

  AddressRange stub_range() const override { return region_.range(); }
  // Linux's usual vm.mmap_min_addr; the host's own value may be lower.
  uint64_t min_user_address() const override { return 0x10000; }
  uint64_t max_user_address() const override { return kTaskSizeMax; }

 private:
  PtracePlatformOptions options_;
  StubRegion region_;
  const pid_t router_pid_;
  std::atomic<uint64_t> next_context_id_{0};
};

}  // namespace

const std::vector<int>& StubAllowedSyscalls() {
  static const std::vector<int> kAllowed = {SYS_mmap, SYS_munmap, SYS_mprotect, SYS_madvise,
                                            SYS_mremap};
  return kAllowed;
}

std::unique_ptr<Platform> NewPtracePlatform(PtracePlatformOptions options) {
  return std::make_unique<PtracePlatform>(std::move(options));
}

harden::SyscallPolicy PtracePlatformRouterRules(const PtracePlatformOptions& options) {
  harden::SyscallPolicy p;
  p.name = "ptrace-platform";
  // --- The router itself.
  // Fork a stub: exactly clone(SIGCHLD, 0, ...), no namespace or thread flags.
  p.Allow(SYS_clone, {ArgCondition::Equal(0, SIGCHLD)});
  // Only the requests the platform makes. Not PTRACE_ATTACH / SEIZE / PEEK /
  // POKE: a compromised router cannot attach to anything it did not fork.
  // PTRACE_TRACEME is made by the child.
  for (long req : {PTRACE_TRACEME, PTRACE_SETOPTIONS, PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_CONT,
                   PTRACE_SYSEMU, PTRACE_GETSIGINFO, PTRACE_GET_SYSCALL_INFO}) {
    p.Allow(SYS_ptrace, {ArgCondition::Equal(0, static_cast<uint64_t>(req))});
  }
  p.Allow(SYS_wait4);
  // Application memory (interim, until the memory-file mapping replaces it).
  p.Allow(SYS_process_vm_readv).Allow(SYS_process_vm_writev);
  // Destroying a stub; the child's SIGSTOP to itself.
  p.Allow(SYS_kill, {ArgCondition::Equal(1, SIGKILL)});
  p.Allow(SYS_kill, {ArgCondition::Equal(1, SIGSTOP)});
  // Context::Interrupt().
  p.Allow(SYS_tgkill, {ArgCondition::Equal(2, kInterruptSignal)});
  if (options.follow_tracer_cpu) {
    // Pinning stubs next to their tracer (sched_getcpu falls back to getcpu
    // without a vDSO).
    p.Allow(SYS_sched_setaffinity).Allow(SYS_getcpu);
  }
  // The child's set-up report pipe.
  p.Allow(SYS_pipe2);
  // --- The forked child's set-up (it runs under the router's filter).
  p.Allow(SYS_getppid).Allow(SYS_setsid).Allow(SYS_close_range);
  p.Allow(SYS_prctl, {ArgCondition::Equal(0, PR_SET_PDEATHSIG), ArgCondition::Equal(1, SIGKILL)});
  p.Allow(SYS_prctl, {ArgCondition::Equal(0, PR_SET_NO_NEW_PRIVS), ArgCondition::Equal(1, 1)});
  if (options.dumpable_stubs) {
    // Lets a hardened router make itself dumpable again too: the price of
    // process_vm_readv without CAP_SYS_PTRACE. Goes with dumpable_stubs.
    p.Allow(SYS_prctl, {ArgCondition::Equal(0, PR_SET_DUMPABLE), ArgCondition::Equal(1, 1)});
  }
  p.Allow(SYS_prlimit64, {ArgCondition::Equal(0, 0), ArgCondition::Equal(1, RLIMIT_CORE)});
  // --- Injected into the stub (they pass the router's filter there too).
  // mmap/munmap/mprotect/madvise/mremap are in BaseServicePolicy already.
  p.Allow(SYS_seccomp,
          {ArgCondition::Equal(0, SECCOMP_SET_MODE_FILTER), ArgCondition::Equal(1, 0)});
  return p;
}

}  // namespace bulkhead::router::platform
