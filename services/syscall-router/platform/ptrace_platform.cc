#include "services/syscall-router/platform/ptrace_platform.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>

#include "base/error.h"
#include "base/fd.h"
#include "base/mapping.h"
#include "services/syscall-router/platform/stub_common.h"

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

int64_t MonotonicMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool Overlaps(const AddressRange& r, uint64_t start, uint64_t len) {
  const uint64_t end = start + len;
  if (end < start) return true;  // wraps: refuse
  return r.Overlaps(start, end);
}

// The clone flags of an injected stub thread: a bare thread, no TLS, no tid
// pointers (the stub thread never runs code of its own).
constexpr uint64_t kStubThreadCloneFlags =
    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;

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
  // clone: only a fork (flags exactly SIGCHLD, for AddressSpace::Fork) or a
  // bare stub thread (kStubThreadCloneFlags, for a second context). Both
  // 32-bit halves of the flags are compared.
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 6);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]) + 4);
  jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 4);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]));
  jump(BPF_JMP | BPF_JEQ | BPF_K, SIGCHLD, 1, 0);
  jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(kStubThreadCloneFlags), 0, 1);
  stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
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
    throw SysError(ENOMEM, "mmap",
                   "no free stub region in the 4 TiB below kPreferredStubAddress (1 GiB steps)");
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
  kStepSigchld,
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
    case kStepSigchld:
      return "rt_sigaction(SIGCHLD, SIG_IGN)";
  }
  return "?";
}

// Everything the child needs, computed before clone: the child allocates
// nothing and calls no library function but syscall().
struct ChildPlan {
  pid_t parent = -1;
  int report_fd = -1;
  int keep[kMaxFiles + 1] = {};  // ascending; includes report_fd
  int nkeep = 0;
  bool dumpable = true;
  // The forking thread's rseq registration (glibc registers one per thread;
  // the child inherits it).
  stubs::RseqRegistration rseq;
};

[[noreturn]] void ChildFail(const ChildPlan& plan, int step) { stubs::ChildFail(plan.report_fd, step); }

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
  if (!plan.rseq.Unregister()) ChildFail(plan, kStepRseq);
  stack_t no_altstack{};
  no_altstack.ss_flags = SS_DISABLE;
  if (::syscall(SYS_sigaltstack, &no_altstack, nullptr) != 0) ChildFail(plan, kStepAltstack);
  // Stubs forked from this one (AddressSpace::Fork) are reaped by the host
  // as soon as their tracer has seen the exit: no zombies pile up under a
  // shell's stub, and no SIGCHLD stops it. (Traced, it still reports the
  // router's interrupt signal, SIGCHLD too: ignored signals reach a tracer.)
  struct {
    uint64_t handler, flags, restorer, mask;
  } ign{1 /* SIG_IGN */, 0, 0, 0};
  if (::syscall(SYS_rt_sigaction, SIGCHLD, &ign, nullptr, sizeof(uint64_t)) != 0) {
    ChildFail(plan, kStepSigchld);
  }
  // Close every descriptor but the platform's files (and the report pipe).
  if (!stubs::CloseAllBut(plan.keep, plan.nkeep)) ChildFail(plan, kStepCloseRange);
  ::syscall(SYS_close, plan.report_fd);
  // Stop. The tracer takes over here and never lets this code run again: it
  // points the registers at the stub page and unmaps this code.
  ::syscall(SYS_kill, ::syscall(SYS_getpid), SIGSTOP);
  ::syscall(SYS_exit_group, 126);
  __builtin_unreachable();
}

// ---------------------------------------------------------------------------
// Stub threads and address spaces.

class PtraceContext;
class PtraceAddressSpace;

// One host thread of a stub. The first is the stub process itself; more are
// made by an injected clone(CLONE_THREAD) when several contexts share one
// address space, and are kept (pooled) when their context goes.
struct StubThread {
  pid_t tid = -1;
  PtraceContext* owner = nullptr;  // the context bound to it, or null
  bool exited = false;             // its exit was collected
  bool running = false;            // resumed asynchronously, its event not yet taken
  bool draining = false;           // unbound while running: not free until its next stop
  Registers* target = nullptr;     // asynchronous run: where the event's registers go
  int stub_cpu = -1;
};

// What the platform's address spaces share: host thread id -> stub thread,
// for the events WaitEvents() collects, and how many threads run now.
struct Registry {
  std::unordered_map<pid_t, std::pair<PtraceAddressSpace*, StubThread*>> threads;
  int running = 0;
  cpu_set_t all_cpus{};  // the router's own affinity: where unpinned stubs may run
};

class PtraceContext final : public Context {
 public:
  PtraceContext(uint64_t id, std::vector<Platform::Ready>* pending_sink)
      : pending_sink(pending_sink), id_(id) {}
  ~PtraceContext() override;

  Event Switch(AddressSpace& as, Registers& regs) override;
  void Resume(AddressSpace& as, Registers* regs) override;
  bool GetFpRegs(user_fpregs_struct* out) override;
  bool SetFpRegs(const user_fpregs_struct& in) override;

  void Interrupt() override {
    interrupt_pending_.store(true);
    const uint64_t key = running_.load();
    if (key != 0) {
      // ESRCH: the stub died or the run ended; the flag covers the rest.
      ::syscall(SYS_tgkill, static_cast<pid_t>(key >> 32), static_cast<pid_t>(key & 0xffffffffu),
                kInterruptSignal);
    }
  }

  bool TakeInterrupt() { return interrupt_pending_.exchange(false); }
  void SetRunning(uint64_t key) { running_.store(key); }

  // The binding: set by PtraceAddressSpace::Bind, cleared by Unbind.
  PtraceAddressSpace* bound_as = nullptr;
  StubThread* bound_thread = nullptr;
  std::weak_ptr<int> bound_life;
  std::vector<Platform::Ready>* const pending_sink;

 private:
  StubThread& BindTo(AddressSpace& as, const char* what);

  const uint64_t id_;
  std::atomic<bool> interrupt_pending_{false};
  std::atomic<uint64_t> running_{0};
};

class PtraceAddressSpace final : public AddressSpace {
 public:
  PtraceAddressSpace(pid_t pid, Registry& registry, AddressRange stub, std::vector<int> files,
                     pid_t router_pid, const user_regs_struct& templ, bool follow_tracer_cpu)
      : registry_(registry),
        follow_tracer_cpu_(follow_tracer_cpu),
        pid_(pid),
        stub_(stub),
        files_(std::move(files)),
        router_pid_(router_pid),
        tracer_tid_(CurrentTid()),
        template_(templ) {
    // Injected calls need valid selectors and flags, nothing else.
    template_.fs_base = 0;
    template_.gs_base = 0;
    template_.rsp = 0;  // the stub code never touches a stack
    AddThread(pid);
  }

  ~PtraceAddressSpace() override {
    KillAndReap();
    for (auto& t : threads_) {
      registry_.threads.erase(t->tid);
      if (t->running) --registry_.running;
      if (t->owner != nullptr) {
        t->owner->bound_as = nullptr;
        t->owner->bound_thread = nullptr;
      }
    }
  }

  long Syscall(long nr, const SyscallArgs& args) override {
    CheckTracer("Syscall");
    if (TouchesStub(nr, args)) return -EINVAL;
    return Inject(nr, args);
  }

  long MapFile(uint64_t addr, uint64_t len, int prot, int file_fd, uint64_t offset) override {
    if (std::find(files_.begin(), files_.end(), file_fd) == files_.end()) return -EBADF;
    return Mmap(addr, len, prot, MAP_SHARED | MAP_FIXED, file_fd, offset);
  }

  std::unique_ptr<AddressSpace> Fork() override;

  // A reaped stub's pid may be reused: never copy once the death was seen.
  // (A copy racing with the reap on the tracer thread can still reach a
  // reused pid; the memory-file path that replaces this has no such race.)
  ssize_t ReadMemory(uint64_t addr, void* dst, size_t len) override {
    return alive() ? stubs::ReadProcessMemory(pid_, addr, dst, len) : -ESRCH;
  }

  ssize_t WriteMemory(uint64_t addr, const void* src, size_t len) override {
    return alive() ? stubs::WriteProcessMemory(pid_, addr, src, len) : -ESRCH;
  }

  bool alive() const override { return !dead_.load(std::memory_order_acquire); }
  pid_t stub_pid() const override { return pid_; }
  size_t stub_threads() const override { return threads_.size(); }

  // Unmaps everything but the stub region and loads the seccomp wall.
  void Bootstrap() {
    long rc = Inject(SYS_munmap, {0, stub_.start, 0, 0, 0, 0});
    if (rc != 0)
      throw SysError(static_cast<int>(-rc), "munmap", Ctx(pid_, "below the stub region"));
    rc = Inject(SYS_munmap, {stub_.end, kTaskSizeMax - stub_.end, 0, 0, 0, 0});
    if (rc != 0)
      throw SysError(static_cast<int>(-rc), "munmap", Ctx(pid_, "above the stub region"));
    rc = Inject(SYS_seccomp, {SECCOMP_SET_MODE_FILTER, 0, stub_.start + kFprogOffset, 0, 0, 0});
    if (rc != 0)
      throw SysError(static_cast<int>(-rc), "seccomp", Ctx(pid_, "loading the stub's filter"));
  }

  void CheckTracer(const char* what) const {
    const pid_t me = CurrentTid();
    if (me != tracer_tid_) {
      throw std::logic_error(std::string("ptrace platform: ") + what + " on " + Ctx(pid_) +
                             " from host thread " + std::to_string(me) +
                             "; only its tracer, thread " + std::to_string(tracer_tid_) +
                             " (the one that created the address space), may do this");
    }
  }

  // The stub thread that runs `ctx`: the one it is bound to, else a free one,
  // else a new one (an injected clone).
  StubThread& Bind(PtraceContext& ctx) {
    if (ctx.bound_as == this && ctx.bound_thread != nullptr) return *ctx.bound_thread;
    Unbind(ctx);
    StubThread* t = nullptr;
    for (auto& th : threads_) {
      if (th->owner == nullptr && !th->exited && !th->draining) {
        t = th.get();
        break;
      }
    }
    if (t == nullptr) t = NewThread();
    t->owner = &ctx;
    ctx.bound_as = this;
    ctx.bound_thread = t;
    ctx.bound_life = life_;
    return *t;
  }

  static void Unbind(PtraceContext& ctx) {
    if (ctx.bound_as != nullptr && !ctx.bound_life.expired() && ctx.bound_thread != nullptr) {
      StubThread& t = *ctx.bound_thread;
      t.owner = nullptr;
      if (t.running && !t.exited) {
        // Still running application code (its task went while it ran, in an
        // address space that lives on): stop it; it is free again once that
        // stop is collected (Collect), never before.
        t.draining = true;
        ::syscall(SYS_tgkill, ctx.bound_as->stub_pid(), t.tid, kInterruptSignal);
      }
      ctx.bound_as->SetRunning(t, false);
      t.target = nullptr;
    }
    ctx.bound_as = nullptr;
    ctx.bound_thread = nullptr;
    ctx.bound_life.reset();
  }

  static uint64_t ThreadKey(pid_t pid, const StubThread& t) {
    return (static_cast<uint64_t>(pid) << 32) | static_cast<uint32_t>(t.tid);
  }
  uint64_t thread_key(const StubThread& t) const { return ThreadKey(pid_, t); }

  Event ExitedEvent() const {
    Event ev;
    ev.kind = EventKind::kExited;
    ev.wait_status = exit_status_;
    return ev;
  }

  // Synchronous run of one thread until its next event.
  Event Run(StubThread& t, Registers& regs, PtraceContext& ctx);
  // Asynchronous: sets the registers and resumes; false if the stub is gone
  // (the exit event is then due at once).
  bool Start(StubThread& t, Registers* regs);
  // What a wait status of a stopped (or exited) thread means. nullopt: not
  // for the router (a stale interrupt, a fork event): resume with SYSEMU.
  std::optional<Event> HandleStatus(StubThread& t, int status, Registers& regs,
                                    PtraceContext* ctx);
  bool ResumeSysemu(StubThread& t) {
    if (::ptrace(PTRACE_SYSEMU, t.tid, nullptr, nullptr) == 0) return true;
    if (errno == ESRCH) return false;
    throw SysError(errno, "ptrace(PTRACE_SYSEMU)", Ctx(t.tid));
  }

  void SetRunning(StubThread& t, bool on) {
    if (t.running == on) return;
    t.running = on;
    registry_.running += on ? 1 : -1;
  }

  void MarkExit(StubThread& t, int status) {
    if (!dead_.load(std::memory_order_relaxed)) exit_status_ = status;
    t.exited = true;
    dead_.store(true, std::memory_order_release);
  }

  // SIGKILL, then collect the exit of every thread (the others before the
  // leader, whose exit the host reports last).
  void KillAndReap() noexcept {
    bool all = true;
    for (auto& t : threads_) all = all && t->exited;
    if (all) return;
    ::kill(pid_, SIGKILL);  // ESRCH: already a zombie; reap it below.
    for (size_t i = threads_.size(); i-- > 0;) {
      StubThread& t = *threads_[i];
      while (!t.exited) {
        int status = 0;
        pid_t r = ::waitpid(t.tid, &status, __WALL);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {  // ECHILD: collected elsewhere
          MarkExit(t, exit_status_);
          break;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) MarkExit(t, status);
      }
    }
  }

 private:
  void AddThread(pid_t tid) {
    auto t = std::make_unique<StubThread>();
    t->tid = tid;
    registry_.threads[tid] = {this, t.get()};
    threads_.push_back(std::move(t));
  }

  StubThread* NewThread() {
    long rc = Inject(SYS_clone, {kStubThreadCloneFlags, 0, 0, 0, 0, 0});
    if (rc <= 0) {
      throw SysError(rc < 0 ? static_cast<int>(-rc) : EIO, "injected clone(CLONE_THREAD)",
                     Ctx(pid_, "a stub thread for another context"));
    }
    WaitInitialStop(static_cast<pid_t>(rc), "new stub thread");
    AddThread(static_cast<pid_t>(rc));
    return threads_.back().get();
  }

  // A host thread or process the stub made with an injected clone starts
  // traced (PTRACE_O_TRACEFORK / TRACECLONE) with a SIGSTOP.
  void WaitInitialStop(pid_t tid, const char* what) {
    int status = 0;
    if (RetryEintr([&] { return ::waitpid(tid, &status, __WALL); }) < 0) {
      throw SysError(errno, "waitpid", Ctx(tid, what));
    }
    if (!WIFSTOPPED(status)) {
      throw SysError(ECHILD, "waitpid", Ctx(tid, std::string(what) + ": " + DescribeWaitStatus(status)));
    }
  }

  // Waits for the next stop or the exit of one thread.
  int Wait(StubThread& t) {
    int status = 0;
    pid_t r = RetryEintr([&] { return ::waitpid(t.tid, &status, __WALL); });
    if (r < 0) throw SysError(errno, "waitpid", Ctx(t.tid));
    if (WIFEXITED(status) || WIFSIGNALED(status)) MarkExit(t, status);
    return status;
  }

  // After a ptrace request failed with ESRCH: the thread was killed while
  // stopped and is exiting. Collects the exit.
  Event CollectExit(StubThread& t) {
    while (!t.exited) {
      int status = Wait(t);
      if (WIFEXITED(status) || WIFSIGNALED(status)) break;
    }
    return ExitedEvent();
  }

  void GetRegs(pid_t tid, user_regs_struct& out, const char* why) {
    if (::ptrace(PTRACE_GETREGS, tid, nullptr, &out) < 0) {
      throw SysError(errno, "ptrace(PTRACE_GETREGS)", Ctx(tid, why));
    }
  }

  uint32_t SyscallArch(pid_t tid) {
    __ptrace_syscall_info info{};
    if (::ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof info, &info) < 0) {
      throw SysError(errno, "ptrace(PTRACE_GET_SYSCALL_INFO)", Ctx(tid));
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
      case SYS_clone:
        return true;  // only Fork() and Bind() inject clone
      default:
        return false;
    }
  }

  long Inject(long nr, const SyscallArgs& a);

  // Pins the stub thread to the CPU the tracer runs on now (synchronous
  // runs only). A system call round trip is two wake-ups between tracer and
  // stub; on one CPU they are plain context switches, across CPUs each needs
  // an inter-processor interrupt (costly in a VM). Re-pinned when the tracer
  // has migrated; a refusal (e.g. a cpuset that excludes the CPU) only costs
  // speed. Asynchronous runs are pinned only while they run alone (Start).
  void FollowTracerCpu(StubThread& t) {
    if (!follow_tracer_cpu_) return;
    const int cpu = ::sched_getcpu();  // vDSO, no system call
    if (cpu < 0 || cpu == t.stub_cpu) return;
    t.stub_cpu = cpu;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::sched_setaffinity(t.tid, sizeof set, &set);
  }

  Registry& registry_;
  const bool follow_tracer_cpu_;
  const pid_t pid_;
  std::vector<std::unique_ptr<StubThread>> threads_;
  const AddressRange stub_;
  const std::vector<int> files_;
  const pid_t router_pid_;
  const pid_t tracer_tid_;
  user_regs_struct template_;
  int exit_status_ = 0;
  std::atomic<bool> dead_{false};
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

long PtraceAddressSpace::Inject(long nr, const SyscallArgs& a) {
  if (!alive()) {
    throw SysError(ESRCH, "injected " + SyscallLabel(nr),
                   Ctx(pid_, "the stub is dead: " + DescribeWaitStatus(exit_status_)));
  }
  // Any stopped thread will do: the address space is shared.
  StubThread* tp = nullptr;
  for (auto& th : threads_) {
    if (!th->running && !th->exited && !th->draining) {
      tp = th.get();
      break;
    }
  }
  if (tp == nullptr) {
    throw std::logic_error("ptrace platform: injected " + SyscallLabel(nr) + " on " + Ctx(pid_) +
                           " while every stub thread runs application code");
  }
  StubThread& t = *tp;
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
  if (::ptrace(PTRACE_SETREGS, t.tid, nullptr, &r) < 0) {
    if (errno == ESRCH)
      CollectExit(t);
    else
      throw SysError(errno, "ptrace(PTRACE_SETREGS)", Ctx(t.tid, "injecting " + SyscallLabel(nr)));
  }
  // PTRACE_CONT, not SYSEMU: the call must run. If the thread sat in a
  // SYSEMU syscall-entry stop, that (application) call stays skipped: the
  // kernel decided so before the stop.
  long rc = alive() ? ::ptrace(PTRACE_CONT, t.tid, nullptr, nullptr) : 0;
  if (rc < 0) {
    if (errno == ESRCH)
      CollectExit(t);
    else
      throw SysError(errno, "ptrace(PTRACE_CONT)", Ctx(t.tid, "injecting " + SyscallLabel(nr)));
  }
  int trapped_by_router = -1;  // si_syscall of a SIGSYS from the router's inherited filter
  bool refused_by_wall = false;
  while (alive()) {
    const int status = Wait(t);
    if (!WIFSTOPPED(status)) continue;  // exit: the loop ends
    const int sig = WSTOPSIG(status);
    if (sig == SIGTRAP && (status >> 16) == 0) {
      user_regs_struct out{};
      GetRegs(t.tid, out, "after an injected call");
      if (out.rip == stub_.start + kAfterTrapOffset) {
        if (refused_by_wall) {
          // Fail closed: the router asked for something the stub must never
          // do. The address space is gone.
          KillAndReap();
          throw SysError(EPERM, "injected " + SyscallLabel(nr),
                         Ctx(pid_,
                             "refused by the stub's seccomp wall (only StubAllowedSyscalls() "
                             "may be injected); the stub was killed"));
        }
        if (trapped_by_router >= 0) {
          throw SysError(
              ENOSYS, "injected " + SyscallLabel(nr),
              Ctx(pid_,
                  "refused by a seccomp filter the stub inherited from the router "
                  "(si_syscall " +
                      SyscallLabel(trapped_by_router) + "); see PtracePlatformRouterRules()"));
        }
        return static_cast<long>(out.rax);
      }
      // A SIGTRAP sent from outside: discard.
    } else if (sig == SIGSYS) {
      siginfo_t si{};
      if (::ptrace(PTRACE_GETSIGINFO, t.tid, nullptr, &si) == 0 && si.si_code == kSiCodeSeccomp) {
        if (si.si_errno == kStubWallRefusedTag) {
          refused_by_wall = true;
        } else {
          trapped_by_router = si.si_syscall;
        }
      }
    }
    // Anything else (a PTRACE_EVENT_FORK / CLONE stop of an injected clone,
    // a stale interrupt, a signal from outside) is discarded: host signals
    // carry nothing for the application.
    if (::ptrace(PTRACE_CONT, t.tid, nullptr, nullptr) < 0) {
      if (errno == ESRCH) {
        CollectExit(t);
        break;
      }
      throw SysError(errno, "ptrace(PTRACE_CONT)", Ctx(t.tid, "injecting " + SyscallLabel(nr)));
    }
  }
  throw SysError(ESRCH, "injected " + SyscallLabel(nr),
                 Ctx(pid_, "the stub died: " + DescribeWaitStatus(exit_status_)));
}

std::unique_ptr<AddressSpace> PtraceAddressSpace::Fork() {
  CheckTracer("Fork");
  // A host fork of the stub: the child has the same mappings, private pages
  // copy-on-write, shared ones shared. It starts traced by this thread
  // (PTRACE_O_TRACEFORK, options inherited: EXITKILL too) and stopped.
  long rc = Inject(SYS_clone, {SIGCHLD, 0, 0, 0, 0, 0});
  if (rc <= 0) {
    throw SysError(rc < 0 ? static_cast<int>(-rc) : EIO, "injected clone(SIGCHLD)",
                   Ctx(pid_, "forking the address space"));
  }
  const pid_t child = static_cast<pid_t>(rc);
  try {
    WaitInitialStop(child, "forked stub");
  } catch (...) {
    ::kill(child, SIGKILL);
    int st;
    ::waitpid(child, &st, __WALL);
    throw;
  }
  return std::make_unique<PtraceAddressSpace>(child, registry_, stub_, files_, router_pid_,
                                              template_, follow_tracer_cpu_);
}

std::optional<Event> PtraceAddressSpace::HandleStatus(StubThread& t, int status, Registers& regs,
                                                      PtraceContext* ctx) {
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    MarkExit(t, status);
    return ExitedEvent();
  }
  if (!WIFSTOPPED(status)) return std::nullopt;
  const int sig = WSTOPSIG(status);
  if (sig == kSyscallStopSignal) {
    Event ev;
    ev.kind = EventKind::kSyscall;
    GetRegs(t.tid, regs.gp, "at a system call");
    // The `syscall` instruction leaves rcx = return address and r11 =
    // rflags, and the kernel saves them as rip and flags: when both match
    // it is a 64-bit call, no extra request needed. Otherwise (int $0x80,
    // or a coincidence) ask the kernel. An application that forges the
    // match around int $0x80 only gets its own call read with x86-64
    // numbers: every call is served by the router either way.
    if (regs.gp.rcx == regs.gp.rip && regs.gp.r11 == regs.gp.eflags) {
      ev.syscall_arch = AUDIT_ARCH_X86_64;
    } else {
      ev.syscall_arch = SyscallArch(t.tid);
    }
    return ev;
  }
  if ((status >> 16) != 0) return std::nullopt;  // a PTRACE_EVENT stop
  siginfo_t si{};
  if (::ptrace(PTRACE_GETSIGINFO, t.tid, nullptr, &si) < 0) {
    if (errno == ESRCH) return std::nullopt;  // killed: the exit comes next
    // EINVAL: a group-stop, not a signal. Cannot happen (stop signals are
    // suppressed at delivery, so no group-stop starts); resume.
    if (errno == EINVAL) return std::nullopt;
    throw SysError(errno, "ptrace(PTRACE_GETSIGINFO)", Ctx(t.tid));
  }
  if (sig == kInterruptSignal && si.si_code == SI_TKILL && si.si_pid == router_pid_) {
    if (ctx == nullptr || !ctx->TakeInterrupt()) return std::nullopt;  // stale
    Event ev;
    ev.kind = EventKind::kInterrupted;
    GetRegs(t.tid, regs.gp, "at an interrupt");
    return ev;
  }
  GetRegs(t.tid, regs.gp, "at a signal");
  Event ev = stubs::FaultOrSignal(sig, si);
  // The host signal is dropped: the next resume passes signal 0.
  return ev;
}

Event PtraceAddressSpace::Run(StubThread& t, Registers& regs, PtraceContext& ctx) {
  user_regs_struct w = regs.gp;
  // No host syscall-restart logic on an emulated call: restarts are the
  // router's business (it rewinds rip itself).
  w.orig_rax = ~0ULL;
  if (::ptrace(PTRACE_SETREGS, t.tid, nullptr, &w) < 0) {
    if (errno == ESRCH) return CollectExit(t);
    throw SysError(
        errno, "ptrace(PTRACE_SETREGS)",
        Ctx(t.tid, "task registers (selectors, rip, fs_base must be valid user values)"));
  }
  FollowTracerCpu(t);
  for (;;) {
    if (!ResumeSysemu(t)) return CollectExit(t);
    const int status = Wait(t);
    if (auto ev = HandleStatus(t, status, regs, &ctx)) return *ev;
  }
}

bool PtraceAddressSpace::Start(StubThread& t, Registers* regs) {
  if (t.exited || !alive()) return false;
  // The only task running: pinned next to the router, so that its system
  // calls cost same-CPU switches. Several: free to spread over the CPUs.
  if (registry_.running == 0) {
    FollowTracerCpu(t);
  } else if (t.stub_cpu >= 0) {
    t.stub_cpu = -1;
    ::sched_setaffinity(t.tid, sizeof registry_.all_cpus, &registry_.all_cpus);
  }
  user_regs_struct w = regs->gp;
  w.orig_rax = ~0ULL;
  if (::ptrace(PTRACE_SETREGS, t.tid, nullptr, &w) < 0) {
    if (errno != ESRCH) {
      throw SysError(
          errno, "ptrace(PTRACE_SETREGS)",
          Ctx(t.tid, "task registers (selectors, rip, fs_base must be valid user values)"));
    }
    // Killed while stopped: its exit arrives through waitpid like any event.
  } else if (!ResumeSysemu(t)) {
    // Same.
  }
  SetRunning(t, true);
  t.target = regs;
  return true;
}

PtraceContext::~PtraceContext() { PtraceAddressSpace::Unbind(*this); }

StubThread& PtraceContext::BindTo(AddressSpace& as, const char* what) {
  auto* pas = dynamic_cast<PtraceAddressSpace*>(&as);
  if (pas == nullptr) {
    throw std::invalid_argument(std::string("ptrace platform: ") + what +
                                " into an address space of another platform");
  }
  pas->CheckTracer(what);
  return pas->Bind(*this);
}

Event PtraceContext::Switch(AddressSpace& as, Registers& regs) {
  if (!as.alive()) {
    auto* dead = dynamic_cast<PtraceAddressSpace*>(&as);
    if (dead != nullptr) return dead->ExitedEvent();
  }
  StubThread& t = BindTo(as, "Switch");
  auto* pas = static_cast<PtraceAddressSpace*>(&as);
  // Publish the running thread, then look for an interrupt: with Interrupt()
  // storing the flag before reading running_ (both seq_cst) at least one side
  // sees the other, so no interrupt is lost.
  running_.store(pas->thread_key(t));
  struct ClearRunning {
    std::atomic<uint64_t>& r;
    ~ClearRunning() { r.store(0); }
  } clear{running_};
  if (TakeInterrupt()) {
    Event ev;
    ev.kind = EventKind::kInterrupted;
    return ev;
  }
  return pas->Run(t, regs, *this);
}

bool PtraceContext::GetFpRegs(user_fpregs_struct* out) {
  if (bound_thread == nullptr || bound_life.expired()) return false;
  return ::ptrace(PTRACE_GETFPREGS, bound_thread->tid, nullptr, out) == 0;
}

bool PtraceContext::SetFpRegs(const user_fpregs_struct& in) {
  if (bound_thread == nullptr || bound_life.expired()) return false;
  return ::ptrace(PTRACE_SETFPREGS, bound_thread->tid, nullptr, &in) == 0;
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
    // A forked stub's parent is another stub; when that one goes first, the
    // orphan is re-parented here (not to the host's init) and reaped by
    // WaitEvents. Best effort: only costs a zombie until the router exits.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    wake_fd_.Reset(CheckSys(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd", "platform wake-up"));
    if (::sched_getaffinity(0, sizeof registry_.all_cpus, &registry_.all_cpus) != 0) {
      CPU_ZERO(&registry_.all_cpus);
      for (int i = 0; i < CPU_SETSIZE; ++i) CPU_SET(i, &registry_.all_cpus);
    }
  }

  std::string_view name() const override { return "ptrace"; }

  std::unique_ptr<AddressSpace> NewAddressSpace() override;

  std::unique_ptr<Context> NewContext() override {
    return std::make_unique<PtraceContext>(next_context_id_.fetch_add(1) + 1, &pending_);
  }

  size_t WaitEvents(std::vector<Ready>* out, std::span<pollfd> fds, int timeout_ms) override;
  void Wake() override;

  AddressRange stub_range() const override { return region_.range(); }
  // Linux's usual vm.mmap_min_addr; the host's own value may be lower.
  uint64_t min_user_address() const override { return 0x10000; }
  uint64_t max_user_address() const override { return kTaskSizeMax; }

  std::vector<Ready> pending_;  // events due without a wait (Resume of a dead stub)

 private:
  // Collects every wait status there is, without blocking.
  void Drain(std::vector<Ready>* out);
  // One wait status: an event for its context, or handled here.
  void Collect(pid_t tid, int status, std::vector<Ready>* out);

  PtracePlatformOptions options_;
  StubRegion region_;
  const pid_t router_pid_;
  std::atomic<uint64_t> next_context_id_{0};
  Registry registry_;
  UniqueFd sigfd_;
  UniqueFd wake_fd_;  // eventfd: Wake() -> WaitEvents' poll
  // (pid << 32 | tid) of the stub thread a fast-path WaitEvents blocks in
  // waitpid on, else 0: Wake() interrupts it (a stale interrupt is dropped).
  std::atomic<uint64_t> fast_wait_key_{0};
};

void PtraceContext::Resume(AddressSpace& as, Registers* regs) {
  if (!as.alive()) {
    if (auto* dead = dynamic_cast<PtraceAddressSpace*>(&as)) {
      pending_sink->push_back({this, dead->ExitedEvent()});
      return;
    }
  }
  StubThread& t = BindTo(as, "Resume");
  auto* pas = static_cast<PtraceAddressSpace*>(&as);
  if (t.running) throw std::logic_error("ptrace platform: Resume of a context that runs");
  running_.store(pas->thread_key(t));
  if (!pas->Start(t, regs)) {
    running_.store(0);
    // PtracePlatform is the only kind that makes PtraceAddressSpaces; its
    // pending list takes the exit event.
    pending_sink->push_back({this, pas->ExitedEvent()});
  }
}

std::unique_ptr<AddressSpace> PtracePlatform::NewAddressSpace() {
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
  plan.rseq = stubs::RseqRegistration::OfThisThread();

  // clone(SIGCHLD) is fork without glibc's atfork handlers: the child only
  // makes raw system calls (StubChild).
  const long pid = ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) throw SysError(errno, "clone", "stub process");
  if (pid == 0) StubChild(plan);

  // From here, any throw kills and reaps the child.
  stubs::ChildGuard guard(static_cast<pid_t>(pid));
  report_write.Reset();
  int status = 0;
  if (RetryEintr([&] { return ::waitpid(guard.pid(), &status, __WALL); }) < 0) {
    throw SysError(errno, "waitpid", Ctx(guard.pid(), "set-up"));
  }
  if (!WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP) {
    if (WIFEXITED(status) || WIFSIGNALED(status)) guard.Disarm();
    stubs::ChildReport report{};
    ssize_t n = RetryEintr([&] { return ::read(report_read.get(), &report, sizeof report); });
    if (n == static_cast<ssize_t>(sizeof report)) {
      throw SysError(report.err, ChildStepName(report.step),
                     Ctx(guard.pid(), "set-up in the forked child"));
    }
    std::string why = DescribeWaitStatus(status);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
      why += " (a set-up call the router's seccomp policy lacks? see PtracePlatformRouterRules())";
    }
    throw SysError(ECHILD, "stub set-up", Ctx(guard.pid(), why));
  }
  // From now on the stub dies with its tracer thread, system-call stops are
  // told apart from SIGTRAPs, and the stub's own injected forks and threads
  // (Fork(), more contexts) start traced.
  if (::ptrace(PTRACE_SETOPTIONS, guard.pid(), nullptr,
               reinterpret_cast<void*>(PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD |
                                       PTRACE_O_TRACEFORK | PTRACE_O_TRACECLONE)) < 0) {
    throw SysError(errno, "ptrace(PTRACE_SETOPTIONS)", Ctx(guard.pid()));
  }
  user_regs_struct templ{};
  if (::ptrace(PTRACE_GETREGS, guard.pid(), nullptr, &templ) < 0) {
    throw SysError(errno, "ptrace(PTRACE_GETREGS)", Ctx(guard.pid(), "set-up"));
  }
  guard.Disarm();  // the address space owns the stub now
  auto as = std::make_unique<PtraceAddressSpace>(guard.pid(), registry_, region_.range(),
                                                 options_.files, router_pid_, templ,
                                                 options_.follow_tracer_cpu);
  as->Bootstrap();
  return as;
}

void PtracePlatform::Wake() {
  const uint64_t one = 1;
  if (::write(wake_fd_.get(), &one, sizeof one) < 0 && errno != EAGAIN) return;
  const uint64_t key = fast_wait_key_.load();
  if (key != 0) {
    ::syscall(SYS_tgkill, static_cast<pid_t>(key >> 32), static_cast<pid_t>(key & 0xffffffffu),
              kInterruptSignal);
  }
}

void PtracePlatform::Collect(pid_t r, int status, std::vector<Ready>* out) {
  auto it = registry_.threads.find(r);
  if (it == registry_.threads.end()) return;  // an orphaned stub's zombie, already accounted for
  PtraceAddressSpace* as = it->second.first;
  StubThread& t = *it->second.second;
  const bool exit = WIFEXITED(status) || WIFSIGNALED(status);
  if (!t.running || t.target == nullptr || t.owner == nullptr) {
    if (exit) as->MarkExit(t, status);
    if (WIFSTOPPED(status)) t.draining = false;  // stopped now: free for another context
    return;  // not running for anyone: nothing to report
  }
  PtraceContext* ctx = t.owner;
  std::optional<Event> ev = as->HandleStatus(t, status, *t.target, ctx);
  if (!ev) {
    as->ResumeSysemu(t);  // false: killed, its exit follows
    return;
  }
  as->SetRunning(t, false);
  t.target = nullptr;
  ctx->SetRunning(0);
  out->push_back({ctx, *ev});
}

void PtracePlatform::Drain(std::vector<Ready>* out) {
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(-1, &status, __WALL | WNOHANG);
    if (r <= 0) return;  // 0: nothing more; ECHILD: no children at all
    Collect(r, status, out);
  }
}

size_t PtracePlatform::WaitEvents(std::vector<Ready>* out, std::span<pollfd> fds, int timeout_ms) {
  if (!sigfd_) {
    // SIGCHLD tells of every stop and exit of a tracee. It is blocked here
    // and read through a signalfd; the router blocks it in every thread
    // (a thread that did not would swallow it: the default action ignores).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    CheckSys(::pthread_sigmask(SIG_BLOCK, &set, nullptr) == 0 ? 0 : -1, "pthread_sigmask",
             "blocking SIGCHLD for WaitEvents");
    sigfd_.Reset(CheckSys(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC), "signalfd",
                          "SIGCHLD for WaitEvents"));
  }
  const size_t before = out->size();
  for (auto& r : pending_) out->push_back(r);
  pending_.clear();
  Drain(out);
  // Fast path: one task runs and nothing else can happen (no descriptor, no
  // deadline): wait for that thread alone, no signalfd or poll round.
  while (out->size() == before && fds.empty() && timeout_ms < 0 && registry_.running == 1) {
    StubThread* only = nullptr;
    PtraceAddressSpace* only_as = nullptr;
    for (auto& [tid, entry] : registry_.threads) {
      if (entry.second->running) {
        only = entry.second;
        only_as = entry.first;
      }
    }
    if (only == nullptr) break;
    // Publish the wait, then look for a Wake(): with Wake() writing the
    // eventfd before reading the key (both seq_cst), one side sees the other.
    fast_wait_key_.store(PtraceAddressSpace::ThreadKey(only_as->stub_pid(), *only));
    pollfd w{wake_fd_.get(), POLLIN, 0};
    if (::poll(&w, 1, 0) > 0) {
      fast_wait_key_.store(0);
      break;
    }
    int status = 0;
    const pid_t r = RetryEintr([&] { return ::waitpid(only->tid, &status, __WALL); });
    fast_wait_key_.store(0);
    if (r < 0) break;
    Collect(r, status, out);
  }
  const int64_t deadline = timeout_ms < 0 ? -1 : MonotonicMs() + timeout_ms;
  std::vector<pollfd> pfds(fds.size() + 2);
  for (;;) {
    pfds[0] = {sigfd_.get(), POLLIN, 0};
    for (size_t i = 0; i < fds.size(); ++i) pfds[i + 1] = {fds[i].fd, fds[i].events, 0};
    pfds[fds.size() + 1] = {wake_fd_.get(), POLLIN, 0};
    int wait = -1;
    if (out->size() > before) {
      wait = 0;
    } else if (deadline >= 0) {
      wait = static_cast<int>(std::max<int64_t>(0, deadline - MonotonicMs()));
    }
    int n = ::poll(pfds.data(), pfds.size(), wait);
    if (n < 0 && errno != EINTR) throw SysError(errno, "poll", "WaitEvents");
    bool fd_ready = false;
    for (size_t i = 0; i < fds.size(); ++i) {
      fds[i].revents = n > 0 ? pfds[i + 1].revents : 0;
      fd_ready = fd_ready || fds[i].revents != 0;
    }
    if (n > 0 && (pfds[0].revents & POLLIN)) {
      signalfd_siginfo si[16];
      while (::read(sigfd_.get(), si, sizeof si) > 0) {
      }
    }
    bool woken = false;
    if (n > 0 && (pfds[fds.size() + 1].revents & POLLIN)) {
      uint64_t v;
      while (::read(wake_fd_.get(), &v, sizeof v) > 0) {
      }
      woken = true;
    }
    Drain(out);
    if (out->size() > before || fd_ready || woken) break;
    if (deadline >= 0 && MonotonicMs() >= deadline) break;
  }
  return out->size() - before;
}

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
  // Injected into a stub: a bare stub thread for a second context.
  p.Allow(SYS_clone, {ArgCondition::Equal(0, kStubThreadCloneFlags)});
  // Only the requests the platform makes. Not PTRACE_ATTACH / SEIZE / PEEK /
  // POKE: a compromised router cannot attach to anything it did not fork.
  // PTRACE_TRACEME is made by the child.
  for (long req : {PTRACE_TRACEME, PTRACE_SETOPTIONS, PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_CONT,
                   PTRACE_SYSEMU, PTRACE_GETSIGINFO, PTRACE_GET_SYSCALL_INFO, PTRACE_GETFPREGS,
                   PTRACE_SETFPREGS}) {
    p.Allow(SYS_ptrace, {ArgCondition::Equal(0, static_cast<uint64_t>(req))});
  }
  p.Allow(SYS_wait4);
  // WaitEvents(): SIGCHLD through a signalfd, polled with the kernel's fds;
  // orphaned stubs re-parented to the router.
  p.Allow(SYS_signalfd4).Allow(SYS_poll).Allow(SYS_ppoll).Allow(SYS_eventfd2);
  p.Allow(SYS_prctl, {ArgCondition::Equal(0, PR_SET_CHILD_SUBREAPER), ArgCondition::Equal(1, 1)});
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
  // --- The forked child's set-up (it runs under the router's filter), and
  // copies of application memory.
  stubs::AllowChildSetUp(p, options.dumpable_stubs);
  p.Allow(SYS_rt_sigaction, {ArgCondition::Equal(0, SIGCHLD)});
  // --- Injected into the stub (they pass the router's filter there too).
  // mmap/munmap/mprotect/madvise/mremap are in BaseServicePolicy already.
  p.Allow(SYS_seccomp,
          {ArgCondition::Equal(0, SECCOMP_SET_MODE_FILTER), ArgCondition::Equal(1, 0)});
  return p;
}

}  // namespace bulkhead::router::platform
