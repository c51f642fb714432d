#include "services/syscall-router/platform/trap_platform.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <asm/prctl.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "base/error.h"
#include "base/fd.h"
#include "services/syscall-router/platform/ptrace_platform.h"  // kPreferredStubAddress, kTaskSizeMax
#include "services/syscall-router/platform/stub_common.h"
#include "services/syscall-router/platform/trap_abi.h"

extern "C" {
extern const char bh_trap_stub_begin[];
extern const char bh_trap_stub_end[];
extern const char bh_trap_syscall[];
extern const char bh_trap_restorer[];
extern const char bh_trap_handler[];
extern const char bh_trap_boot[];
extern const char bh_trap_fast[];
}

namespace bulkhead::router::platform {
namespace {

using harden::ArgCondition;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kArea = BH_TRAP_AREA_SIZE;
constexpr size_t kMaxFiles = 64;
constexpr int kSiCodeSeccomp = 1;
// CLONE_PARENT: a forked stub is the router's child too, so the router
// reaps it and learns of its death by SIGCHLD, whoever forked it.
constexpr uint64_t kForkCloneFlags = CLONE_PARENT | SIGCHLD;
constexpr uint64_t kThreadCloneFlags =
    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
// Signals whose handler is the stub's: every one that can be caught, so a
// host signal from outside is reported (kSignal), never acted on.
constexpr int kHandledSignals[] = {SIGHUP,  SIGINT,    SIGQUIT, SIGILL,  SIGTRAP, SIGABRT, SIGBUS,
                                   SIGFPE,  SIGUSR1,   SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM,
                                   SIGSTKFLT, SIGCHLD, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG,
                                   SIGXCPU, SIGXFSZ,   SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR,
                                   SIGSYS};
// The first event of a new stub thread (bh_trap_child_entry's int3).
constexpr int kBirthSignal = SIGTRAP;
constexpr int kInterrupt = SIGCHLD;
constexpr uint64_t kSaRestorer = 0x04000000;  // SA_RESTORER, not exported by glibc

std::string Ctx(pid_t pid, std::string_view what = {}) {
  std::string s = "trap stub " + std::to_string(pid);
  if (!what.empty()) {
    s += ", ";
    s += what;
  }
  return s;
}

int64_t NowNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline void CpuRelax() { __builtin_ia32_pause(); }

uint32_t& U32(uint64_t addr) { return *reinterpret_cast<uint32_t*>(addr); }
uint64_t& U64(uint64_t addr) { return *reinterpret_cast<uint64_t*>(addr); }
uint32_t LoadState(uint64_t slot) {
  return std::atomic_ref<uint32_t>(U32(slot + BH_SLOT_STATE)).load(std::memory_order_acquire);
}
// Stores a state with a full barrier, then wakes the handler if it sleeps.
void PostState(uint64_t slot, uint32_t state) {
  std::atomic_ref<uint32_t>(U32(slot + BH_SLOT_STATE)).exchange(state, std::memory_order_seq_cst);
  if (std::atomic_ref<uint32_t>(U32(slot + BH_SLOT_HANDLER_SLEEPING)).load(std::memory_order_seq_cst) != 0) {
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(slot + BH_SLOT_STATE), FUTEX_WAKE, 1, nullptr,
              nullptr, 0);
    // The woken thread is often queued on this CPU (wake-affine): let it
    // run now rather than after the router's next spin.
    ::sched_yield();
  }
}

// Iterations of `pause` that take about `us` microseconds here.
uint32_t PauseIterations(uint32_t us) {
  if (us == 0) return 1;
  static const double per_us = [] {
    const int n = 20000;
    const int64_t t0 = NowNs();
    for (int i = 0; i < n; ++i) CpuRelax();
    const int64_t dt = std::max<int64_t>(1, NowNs() - t0);
    return n * 1000.0 / static_cast<double>(dt);
  }();
  return static_cast<uint32_t>(std::clamp(per_us * us, 1.0, 1e8));
}

// gregs (REG_R8 ...) <-> user_regs_struct.
void GregsToRegs(const uint64_t* g, user_regs_struct& r) {
  r.r8 = g[REG_R8];
  r.r9 = g[REG_R9];
  r.r10 = g[REG_R10];
  r.r11 = g[REG_R11];
  r.r12 = g[REG_R12];
  r.r13 = g[REG_R13];
  r.r14 = g[REG_R14];
  r.r15 = g[REG_R15];
  r.rdi = g[REG_RDI];
  r.rsi = g[REG_RSI];
  r.rbp = g[REG_RBP];
  r.rbx = g[REG_RBX];
  r.rdx = g[REG_RDX];
  r.rax = g[REG_RAX];
  r.rcx = g[REG_RCX];
  r.rsp = g[REG_RSP];
  r.rip = g[REG_RIP];
  r.eflags = g[REG_EFL];
  r.cs = kUserCs;
  r.ss = kUserDs;
  r.ds = r.es = r.fs = r.gs = 0;
  r.orig_rax = ~0ULL;
}

void RegsToGregs(const user_regs_struct& r, uint64_t* g) {
  g[REG_R8] = r.r8;
  g[REG_R9] = r.r9;
  g[REG_R10] = r.r10;
  g[REG_R11] = r.r11;
  g[REG_R12] = r.r12;
  g[REG_R13] = r.r13;
  g[REG_R14] = r.r14;
  g[REG_R15] = r.r15;
  g[REG_RDI] = r.rdi;
  g[REG_RSI] = r.rsi;
  g[REG_RBP] = r.rbp;
  g[REG_RBX] = r.rbx;
  g[REG_RDX] = r.rdx;
  g[REG_RAX] = r.rax;
  g[REG_RCX] = r.rcx;
  g[REG_RSP] = r.rsp;
  g[REG_RIP] = r.rip;
  g[REG_EFL] = r.eflags;
}

// ---------------------------------------------------------------------------
// The stub's seccomp filter.

std::vector<sock_filter> BuildTrapFilter(uint64_t syscall_return_ip, uint64_t eventfd_nr) {
  std::vector<sock_filter> f;
  auto stmt = [&](uint16_t code, uint32_t k) { f.push_back(BPF_STMT(code, k)); };
  auto jump = [&](uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
    f.push_back(BPF_JUMP(code, k, jt, jf));
  };
  const uint32_t kTrap = SECCOMP_RET_TRAP | BH_TRAP_SYSCALL_TAG;
  // Another ABI (i386 `int $0x80`): the application's call, trapped; the
  // router sees its arch. (Never from the stub, which has no such call.)
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  stmt(BPF_RET | BPF_K, kTrap);
  // Any instruction but the stub's: the application's call, trapped.
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer) + 4);
  jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(syscall_return_ip >> 32), 1, 0);
  stmt(BPF_RET | BPF_K, kTrap);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, instruction_pointer));
  jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(syscall_return_ip), 1, 0);
  stmt(BPF_RET | BPF_K, kTrap);
  // From the stub's instruction.
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
  for (int nr : {SYS_rt_sigreturn, SYS_futex, SYS_mmap, SYS_munmap, SYS_mprotect, SYS_madvise,
                 SYS_mremap, SYS_sigaltstack, SYS_rt_sigprocmask}) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  }
  // Calls allowed with one argument fixed (low 32 bits; the high half of a
  // small constant must be 0 too): {nr, arg index, value}.
  struct Fixed {
    int nr;
    int arg;
    uint64_t value;
  };
  const Fixed fixed[] = {
      {SYS_write, 0, eventfd_nr},
      {SYS_prctl, 0, PR_SET_PDEATHSIG},
      {SYS_arch_prctl, 0, ARCH_SET_FS},
      {SYS_arch_prctl, 0, ARCH_SET_GS},
      {SYS_clone, 0, kThreadCloneFlags},
      {SYS_clone, 0, kForkCloneFlags},
      {SYS_seccomp, 0, SECCOMP_SET_MODE_FILTER},
  };
  for (const Fixed& x : fixed) {
    // if (nr == x.nr && hi(arg) == 0 && lo(arg) == value) allow; reload nr.
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(x.nr), 0, 6);
    stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]) + 8 * x.arg + 4);
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(x.value >> 32), 0, 3);
    stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]) + 8 * x.arg);
    jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(x.value), 0, 1);
    stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
  }
  // Anything else from the stub's instruction: the application jumped there
  // with a call of its own. Trapped (tagged), reported as a kFault SIGSYS;
  // the router's default action for it kills the process. Not
  // SECCOMP_RET_KILL_PROCESS: that would dump core, and a core holds
  // application memory (a piped core_pattern ignores RLIMIT_CORE).
  stmt(BPF_RET | BPF_K, SECCOMP_RET_TRAP | BH_TRAP_REFUSED_TAG);
  return f;
}

// The host's [vvar], [vvar_vclock] and [vdso] mappings in the router (from
// /proc/self/maps), in address order; empty if /proc cannot be read or they
// are not one contiguous block.
std::vector<AddressRange> FindVdsoBlock() {
  std::vector<AddressRange> r;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("[vdso]") == std::string::npos && line.find("[vvar") == std::string::npos) continue;
    unsigned long long s = 0, e = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx", &s, &e) != 2 || e <= s) return {};
    r.push_back({s, e});
  }
  std::sort(r.begin(), r.end(), [](const AddressRange& a, const AddressRange& b) { return a.start < b.start; });
  for (size_t i = 1; i < r.size(); ++i) {
    if (r[i].start != r[i - 1].end) return {};
  }
  if (r.size() > 4) return {};
  return r;
}

// ---------------------------------------------------------------------------
// The forked child's set-up (the first thread of a new stub), in router code
// before it jumps into the region. Raw system calls only.

struct ChildPlan {
  pid_t parent = -1;
  int report_fd = -1;
  int keep[kMaxFiles + 2] = {};
  int nkeep = 0;
  bool dumpable = true;
  stubs::RseqRegistration rseq;
  uint64_t handler = 0;
  uint64_t restorer = 0;
  uint64_t boot = 0;
  uint64_t stack_top = 0;
  // The vDSO block's mappings, each moved to `to` (MREMAP_FIXED).
  struct Move {
    uint64_t from, len, to;
  } moves[4] = {};
  int nmoves = 0;
};

[[noreturn]] void ChildFail(const ChildPlan& plan, int step) { stubs::ChildFail(plan.report_fd, step); }

const char* TrapChildStep(int step) {
  static const char* const kNames[] = {"?",
                                       "rt_sigprocmask",
                                       "prctl(PR_SET_PDEATHSIG)",
                                       "getppid (the router died)",
                                       "setsid",
                                       "prlimit64(RLIMIT_CORE)",
                                       "prctl(PR_SET_NO_NEW_PRIVS)",
                                       "prctl(PR_SET_DUMPABLE)",
                                       "prctl(PR_SET_NAME)",
                                       "rseq(RSEQ_FLAG_UNREGISTER)",
                                       "sigaltstack(SS_DISABLE)",
                                       "rt_sigaction (stub handlers)",
                                       "close_range",
                                       "mremap (the vDSO block)"};
  return step > 0 && step < static_cast<int>(std::size(kNames)) ? kNames[step] : "?";
}

[[noreturn]] void TrapStubChild(const ChildPlan& plan) {
  // Everything blocked until the handler's frame exists (child entry
  // unblocks SIGCHLD only; RUN unblocks all for application code).
  uint64_t all = ~0ULL;
  if (::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, nullptr, sizeof all) != 0) ChildFail(plan, 1);
  if (::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) ChildFail(plan, 2);
  if (::syscall(SYS_getppid) != plan.parent) {
    errno = ESRCH;
    ChildFail(plan, 3);
  }
  if (::syscall(SYS_setsid) < 0) ChildFail(plan, 4);
  struct rlimit no_core {
    0, 0
  };
  if (::syscall(SYS_prlimit64, 0, RLIMIT_CORE, &no_core, nullptr) != 0) ChildFail(plan, 5);
  if (::syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFail(plan, 6);
  if (plan.dumpable && ::syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) ChildFail(plan, 7);
  if (::syscall(SYS_prctl, PR_SET_NAME, "bulkhead-trap", 0, 0, 0) != 0) ChildFail(plan, 8);
  if (!plan.rseq.Unregister()) ChildFail(plan, 9);
  stack_t no_altstack{};
  no_altstack.ss_flags = SS_DISABLE;
  if (::syscall(SYS_sigaltstack, &no_altstack, nullptr) != 0) ChildFail(plan, 10);
  struct {
    uint64_t handler, flags, restorer, mask;
  } act{plan.handler, SA_SIGINFO | SA_ONSTACK | kSaRestorer, plan.restorer, ~0ULL};
  for (int sig : kHandledSignals) {
    if (::syscall(SYS_rt_sigaction, sig, &act, nullptr, sizeof(uint64_t)) != 0) ChildFail(plan, 11);
  }
  if (!stubs::CloseAllBut(plan.keep, plan.nkeep)) ChildFail(plan, 12);
  for (int i = 0; i < plan.nmoves; ++i) {
    const auto& m = plan.moves[i];
    if (::syscall(SYS_mremap, m.from, m.len, m.len, MREMAP_MAYMOVE | MREMAP_FIXED, m.to) !=
        static_cast<long>(m.to)) {
      ChildFail(plan, 13);
    }
  }
  ::syscall(SYS_close, plan.report_fd);
  // Into the region, on the thread's own stack; router code is unmapped next.
  asm volatile("mov %0, %%rsp\n\tjmp *%1" ::"r"(plan.stack_top), "r"(plan.boot) : "memory");
  __builtin_unreachable();
}

// ---------------------------------------------------------------------------

class TrapContext;
class TrapAddressSpace;
class TrapPlatform;

struct TrapThread {
  pid_t tid = -1;
  uint32_t area = 0;
  TrapContext* owner = nullptr;
  TrapAddressSpace* as = nullptr;
  bool running = false;   // resumed; its event not yet taken
  bool draining = false;  // unbound while running: free after its next event
  Registers* target = nullptr;
  int avoided_cpu = -1;   // the CPU its affinity leaves out (AvoidRouterCpu), or -1
  // Parked in the fast entry (a patched call), not in a signal frame: its
  // FP state is live in the CPU, not in a frame (Convert).
  bool fast = false;
};

class TrapContext final : public Context {
 public:
  explicit TrapContext(TrapPlatform& p) : platform_(p) {}
  ~TrapContext() override;

  Event Switch(AddressSpace& as, Registers& regs) override;
  void Resume(AddressSpace& as, Registers* regs) override;
  void Interrupt() override;
  bool GetFpRegs(user_fpregs_struct* out) override;
  bool SetFpRegs(const user_fpregs_struct& in) override;

  bool TakeInterrupt() { return interrupt_pending_.exchange(false); }

  TrapThread* thread = nullptr;
  std::weak_ptr<int> life;
  std::atomic<uint64_t> running_key{0};  // pid << 32 | tid while running

 private:
  uint64_t FpArea(size_t need) const;
  TrapPlatform& platform_;
  std::atomic<bool> interrupt_pending_{false};
};

class TrapPlatform final : public Platform {
 public:
  explicit TrapPlatform(TrapPlatformOptions options);
  ~TrapPlatform() override;

  std::string_view name() const override { return "trap"; }
  std::unique_ptr<AddressSpace> NewAddressSpace() override;
  std::unique_ptr<Context> NewContext() override { return std::make_unique<TrapContext>(*this); }
  size_t WaitEvents(std::vector<Ready>* out, std::span<pollfd> fds, int timeout_ms) override;
  void Wake() override;
  void Busy(bool busy) override {
    std::atomic_ref<uint32_t>(U32(Globals() + BH_GLOBAL_ROUTER_BUSY)).store(busy ? 1 : 0, std::memory_order_relaxed);
  }
  // The region and, after it, the stubs' vDSO block.
  AddressRange stub_range() const override { return {start_, stub_end_}; }
  uint64_t min_user_address() const override { return 0x10000; }
  uint64_t max_user_address() const override { return kTaskSizeMax; }

  uint64_t Slot(uint32_t area) const { return shared_ + static_cast<uint64_t>(area) * kArea; }
  uint64_t AreaTop(uint32_t area) const { return Slot(area) + kArea; }
  uint64_t Globals() const { return shared_; }
  uint64_t vdso() const { return vdso_ehdr_; }
  uint64_t fast_entry() const override { return start_ + static_cast<uint64_t>(bh_trap_fast - bh_trap_stub_begin); }
  pid_t router_pid() const { return router_pid_; }

  uint32_t AllocArea();
  void FreeArea(uint32_t area);

  // Waits until `slot` reaches `want` (and, for a new thread, its birth
  // signal), or `as` dies. False if it died.
  bool WaitSlot(uint64_t slot, uint32_t want, TrapAddressSpace* as, pid_t pid);
  // Reaps every dead stub; running threads of dead stubs get kExited.
  void Reap(std::vector<Ready>* out);
  // Takes the events of running threads.
  void Scan(std::vector<Ready>* out);

  void Register(pid_t pid, TrapAddressSpace* as) { by_pid_[pid] = as; }
  void Unregister(pid_t pid) { by_pid_.erase(pid); }
  void SetRunning(TrapThread& t, bool on);
  // The event in a slot whose state is EVENT, for a thread that ran `ctx`.
  // nullopt: not for the router (a stale interrupt): run on.
  std::optional<Event> Decode(TrapThread& t, Registers& regs, TrapContext* ctx);
  void Run(TrapThread& t, const Registers& regs);
  // Moves a thread parked in the fast entry into a real signal frame (it
  // traps itself, CONVERT): its FP state is then in the frame. False if its
  // stub died.
  bool Convert(TrapThread& t);
  void AvoidRouterCpu(TrapThread& t);
  uint32_t handler_spin() const { return handler_spin_; }

  std::vector<Ready> pending_;
  TrapPlatformOptions options_;

 private:
  void EnsureSigfd();
  uint64_t start_ = 0, end_ = 0, shared_ = 0;
  uint64_t stub_end_ = 0;   // end_, plus the vDSO block in stubs
  uint64_t vdso_ehdr_ = 0;  // AT_SYSINFO_EHDR in stubs, or 0
  std::vector<ChildPlan::Move> vdso_moves_;
  UniqueFd shm_fd_;
  UniqueFd event_fd_;  // handlers -> router (kept at the same number in stubs)
  UniqueFd wake_fd_;   // Wake()
  UniqueFd sigfd_;
  const pid_t router_pid_;
  std::vector<uint32_t> free_areas_;
  std::unordered_map<pid_t, TrapAddressSpace*> by_pid_;
  std::vector<TrapThread*> running_;
  std::vector<pollfd> pfds_;  // WaitEvents' poll set
  cpu_set_t all_cpus_{};  // the router's affinity at start: where stubs may run
  uint32_t handler_spin_ = 1;
  int64_t router_spin_ns_ = 0;  // the ceiling (options)
  // The current spin budget: grows when an event came while spinning or soon
  // after the spin gave up (within the ceiling), halves when the event came
  // later than the ceiling (the application computes between its calls:
  // spinning only burns a CPU it or another service could use). Floor 1 µs.
  int64_t spin_budget_ns_ = 0;
};

class TrapAddressSpace final : public AddressSpace {
 public:
  TrapAddressSpace(TrapPlatform& p, pid_t pid, uint32_t area) : p_(p), pid_(pid) {
    p_.Register(pid, this);
    AddThread(pid, area);
  }
  ~TrapAddressSpace() override {
    KillAndReap();
    for (auto& t : threads_) {
      if (t->running) p_.SetRunning(*t, false);
      if (t->owner != nullptr) {
        t->owner->thread = nullptr;
        t->owner->running_key.store(0);
      }
      p_.FreeArea(t->area);
    }
    p_.Unregister(pid_);
  }

  long Syscall(long nr, const SyscallArgs& args) override {
    if (TouchesRegion(nr, args)) return -EINVAL;
    return Command(nr, args);
  }
  long MapFile(uint64_t addr, uint64_t len, int prot, int file_fd, uint64_t offset) override {
    const auto& f = p_.options_.files;
    if (std::find(f.begin(), f.end(), file_fd) == f.end()) return -EBADF;
    return Mmap(addr, len, prot, MAP_SHARED | MAP_FIXED, file_fd, offset);
  }
  ssize_t ReadMemory(uint64_t addr, void* dst, size_t len) override {
    return alive() ? stubs::ReadProcessMemory(pid_, addr, dst, len) : -ESRCH;
  }
  ssize_t WriteMemory(uint64_t addr, const void* src, size_t len) override {
    return alive() ? stubs::WriteProcessMemory(pid_, addr, src, len) : -ESRCH;
  }
  std::unique_ptr<AddressSpace> Fork() override;
  bool alive() const override { return !dead_; }
  size_t stub_threads() const override { return threads_.size(); }
  pid_t stub_pid() const override { return pid_; }

  Event ExitedEvent() const {
    Event ev;
    ev.kind = EventKind::kExited;
    ev.wait_status = exit_status_;
    return ev;
  }
  void MarkDead(int status) {
    if (!dead_) exit_status_ = status;
    dead_ = true;
    reaped_ = true;
  }
  void MarkDying() { dead_ = true; }
  std::vector<std::unique_ptr<TrapThread>>& threads() { return threads_; }

  // The thread that runs `ctx`: its own, else a free one, else a new one.
  TrapThread& Bind(TrapContext& ctx);
  static void Unbind(TrapContext& ctx);
  const std::shared_ptr<int>& life() const { return life_; }

  // Runs one system call in a parked thread. Throws SysError if the stub dies.
  long Command(long nr, const SyscallArgs& a);

 private:
  TrapThread& AddThread(pid_t tid, uint32_t area) {
    auto t = std::make_unique<TrapThread>();
    t->tid = tid;
    t->area = area;
    t->as = this;
    threads_.push_back(std::move(t));
    return *threads_.back();
  }
  TrapThread* Parked() {
    for (auto& t : threads_) {
      if (!t->running && !t->draining) return t.get();
    }
    return nullptr;
  }
  bool TouchesRegion(long nr, const SyscallArgs& a) const {
    const AddressRange r = p_.stub_range();
    auto over = [&](uint64_t s, uint64_t l) { return s + l < s || r.Overlaps(s, s + l) || s + l > kTaskSizeMax; };
    switch (nr) {
      case SYS_mmap:
        return (a[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0 && over(a[0], a[1]);
      case SYS_munmap:
      case SYS_mprotect:
      case SYS_madvise:
        return over(a[0], a[1]);
      case SYS_mremap:
        return over(a[0], a[1]) || ((a[3] & MREMAP_FIXED) != 0 && over(a[4], a[2]));
      default:
        return true;  // only the memory calls above may be run in a stub
    }
  }
  void KillAndReap() noexcept {
    if (reaped_) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
    }
    MarkDead(status);
  }
  TrapThread& NewThread();
  // Commands a clone (thread or fork) whose child starts on `area`'s stack;
  // the child's id. The area is freed if that fails (and it throws).
  pid_t CloneInto(uint64_t flags, uint32_t area, const char* what);

  TrapPlatform& p_;
  const pid_t pid_;
  std::vector<std::unique_ptr<TrapThread>> threads_;
  bool dead_ = false;
  bool reaped_ = false;
  int exit_status_ = 0;
  std::shared_ptr<int> life_ = std::make_shared<int>(0);
};

// ---------------------------------------------------------------------------
// TrapPlatform.

TrapPlatform::TrapPlatform(TrapPlatformOptions options)
    : options_(std::move(options)), router_pid_(::getpid()) {
  auto& files = options_.files;
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  if (files.size() > kMaxFiles) throw std::invalid_argument("trap platform: more than 64 files");
  for (int fd : files) CheckSys(::fcntl(fd, F_GETFD), "fcntl(F_GETFD)", "platform file " + std::to_string(fd));
  const size_t code_size = static_cast<size_t>(bh_trap_stub_end - bh_trap_stub_begin);
  if (code_size > kPage) throw std::logic_error("trap stub code exceeds its page");
  if (options_.max_threads == 0 || options_.max_threads > 65536) {
    throw std::invalid_argument("trap platform: max_threads must be 1..65536");
  }
  const uint64_t shared_size = (static_cast<uint64_t>(options_.max_threads) + 1) * kArea;
  const uint64_t size = BH_TRAP_HEADER_SIZE + shared_size;

  // The region: the same address in every stub, below the host vDSO.
  for (int i = 0; i < kStubSearchTries && start_ == 0; ++i) {
    const uint64_t want = kPreferredStubAddress - static_cast<uint64_t>(i) * (1ULL << 30);
    void* p = ::mmap(reinterpret_cast<void*>(want), size, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED) {
      if (errno == EEXIST) continue;
      throw SysError(errno, "mmap", "trap platform region");
    }
    if (reinterpret_cast<uint64_t>(p) != want) {
      ::munmap(p, size);
      continue;
    }
    start_ = want;
  }
  if (start_ == 0) {
    throw SysError(ENOMEM, "mmap", "no free trap platform region in the 4 TiB below kPreferredStubAddress");
  }
  end_ = start_ + size;
  shared_ = start_ + BH_TRAP_SHARED_OFFSET;

  event_fd_.Reset(CheckSys(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd", "trap platform doorbell"));
  wake_fd_.Reset(CheckSys(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd", "trap platform wake-up"));

  // Code and filter: private pages (each stub gets its copy at fork).
  void* hdr = ::mmap(reinterpret_cast<void*>(start_), 2 * kPage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (hdr == MAP_FAILED) throw SysError(errno, "mmap", "trap platform code page");
  std::memset(hdr, 0xcc, kPage);
  std::memcpy(hdr, bh_trap_stub_begin, code_size);
  const uint64_t syscall_ret_ip = start_ + static_cast<uint64_t>(bh_trap_syscall - bh_trap_stub_begin) + 2;
  const std::vector<sock_filter> filter = BuildTrapFilter(syscall_ret_ip, static_cast<uint64_t>(event_fd_.get()));
  if (64 + filter.size() * sizeof(sock_filter) > kPage) throw std::logic_error("trap filter exceeds its page");
  auto* fpage = static_cast<char*>(hdr) + BH_TRAP_FILTER_OFFSET;
  std::memcpy(fpage + 64, filter.data(), filter.size() * sizeof(sock_filter));
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(filter.size());
  prog.filter = reinterpret_cast<sock_filter*>(start_ + BH_TRAP_FILTER_OFFSET + 64);
  std::memcpy(fpage, &prog, sizeof prog);
  CheckSys(::mprotect(hdr, kPage, PROT_READ | PROT_EXEC), "mprotect", "trap code page");
  CheckSys(::mprotect(fpage, kPage, PROT_READ), "mprotect", "trap filter page");

  // Slots and signal stacks: one memfd, shared by the router and every stub.
  shm_fd_.Reset(CheckSys(static_cast<int>(::syscall(SYS_memfd_create, "bulkhead-trap-slots",
                                                    MFD_CLOEXEC | MFD_ALLOW_SEALING)),
                         "memfd_create", "trap slots"));
  CheckSys(::ftruncate(shm_fd_.get(), static_cast<off_t>(shared_size)), "ftruncate", "trap slots");
  CheckSys(::fcntl(shm_fd_.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), "fcntl(F_ADD_SEALS)",
           "trap slots");
  void* sh = ::mmap(reinterpret_cast<void*>(shared_), shared_size, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_FIXED, shm_fd_.get(), 0);
  if (sh == MAP_FAILED) throw SysError(errno, "mmap", "trap slots");

  const uint64_t g = Globals();
  U64(g + BH_GLOBAL_EVENTFD) = static_cast<uint64_t>(event_fd_.get());
  U64(g + BH_GLOBAL_ONE) = 1;
  stub_end_ = end_;
  // The host vDSO block goes right after the region in every stub (kept in
  // the same relative layout: the vDSO's code finds its data pages by
  // offset). Reserved here too, so nothing of the router is there.
  const std::vector<AddressRange> vdso = options_.keep_vdso ? FindVdsoBlock() : std::vector<AddressRange>{};
  const uint64_t ehdr = ::getauxval(AT_SYSINFO_EHDR);
  if (!vdso.empty() && ehdr >= vdso.front().start && ehdr < vdso.back().end) {
    const uint64_t size = vdso.back().end - vdso.front().start;
    void* p = ::mmap(reinterpret_cast<void*>(end_), size, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == reinterpret_cast<void*>(end_) && end_ + size <= kTaskSizeMax) {
      for (const AddressRange& m : vdso) vdso_moves_.push_back({m.start, m.size(), end_ + (m.start - vdso.front().start)});
      vdso_ehdr_ = end_ + (ehdr - vdso.front().start);
      stub_end_ = end_ + size;
    } else if (p != MAP_FAILED) {
      ::munmap(p, size);
    }
  }
  U64(g + BH_GLOBAL_REGION_END) = stub_end_;
  for (uint32_t a = options_.max_threads; a >= 1; --a) free_areas_.push_back(a);
  handler_spin_ = PauseIterations(options_.handler_spin_us);
  if (::sched_getaffinity(0, sizeof all_cpus_, &all_cpus_) != 0) CPU_ZERO(&all_cpus_);
  router_spin_ns_ = static_cast<int64_t>(options_.router_spin_us) * 1000;
  spin_budget_ns_ = router_spin_ns_;
}

TrapPlatform::~TrapPlatform() {
  if (start_ != 0) ::munmap(reinterpret_cast<void*>(start_), stub_end_ - start_);
}

uint32_t TrapPlatform::AllocArea() {
  if (free_areas_.empty()) throw SysError(EAGAIN, "trap platform", "every thread slot is in use");
  const uint32_t a = free_areas_.back();
  free_areas_.pop_back();
  const uint64_t s = Slot(a);
  std::memset(reinterpret_cast<void*>(s), 0, 512);
  U64(s + BH_SLOT_SELF) = s;
  U32(s + BH_SLOT_SPIN) = handler_spin_;
  U64(s + BH_SLOT_CUR_FS) = ~0ULL;  // unknown: the first RUN sets it
  U64(s + BH_SLOT_CUR_GS) = ~0ULL;
  return a;
}

void TrapPlatform::FreeArea(uint32_t area) {
  // Give the stack pages back; the slot is cleared at the next AllocArea.
  ::madvise(reinterpret_cast<void*>(Slot(area)), kArea, MADV_REMOVE);
  free_areas_.push_back(area);
}

void TrapPlatform::SetRunning(TrapThread& t, bool on) {
  if (t.running == on) return;
  t.running = on;
  if (on) {
    running_.push_back(&t);
  } else {
    auto it = std::find(running_.begin(), running_.end(), &t);
    if (it != running_.end()) {
      *it = running_.back();
      running_.pop_back();
    }
  }
}

void TrapPlatform::EnsureSigfd() {
  if (sigfd_) return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  CheckSys(::pthread_sigmask(SIG_BLOCK, &set, nullptr) == 0 ? 0 : -1, "pthread_sigmask", "blocking SIGCHLD");
  sigfd_.Reset(CheckSys(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC), "signalfd", "SIGCHLD"));
}

void TrapPlatform::Reap(std::vector<Ready>* out) {
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(-1, &status, __WALL | WNOHANG);
    if (r <= 0) return;
    if (!WIFEXITED(status) && !WIFSIGNALED(status)) continue;
    auto it = by_pid_.find(r);
    if (it == by_pid_.end()) continue;
    TrapAddressSpace* as = it->second;
    as->MarkDead(status);
    for (auto& t : as->threads()) {
      if (!t->running) continue;
      TrapContext* ctx = t->owner;
      SetRunning(*t, false);
      t->target = nullptr;
      t->draining = false;
      if (ctx != nullptr && out != nullptr) {
        ctx->running_key.store(0);
        out->push_back({ctx, as->ExitedEvent()});
      }
    }
  }
}

std::optional<Event> TrapPlatform::Decode(TrapThread& t, Registers& regs, TrapContext* ctx) {
  const uint64_t s = Slot(t.area);
  uint64_t gregs[23];
  std::memcpy(gregs, reinterpret_cast<const void*>(s + BH_SLOT_GREGS), sizeof gregs);
  siginfo_t si;
  std::memcpy(&si, reinterpret_cast<const void*>(s + BH_SLOT_SIGINFO), sizeof si);
  const int sig = static_cast<int>(U32(s + BH_SLOT_SIGNO));
  Event ev;
  t.fast = U32(s + BH_SLOT_FAST) != 0;
  if (t.fast) {
    // A patched call (bh_trap_fast): rax holds the number, rip and rcx the
    // address after the site, r11 the flags, as the syscall instruction
    // leaves them.
    ev.kind = EventKind::kSyscall;
    ev.syscall_arch = AUDIT_ARCH_X86_64;
    si.si_syscall = static_cast<int>(gregs[REG_RAX]);
    if (gregs[REG_RAX] > 0x7fffffff) si.si_syscall = -1;
  } else if (sig == kInterrupt) {
    if (ctx == nullptr || !ctx->TakeInterrupt()) return std::nullopt;
    ev.kind = EventKind::kInterrupted;
  } else if (sig == SIGSYS && si.si_code == kSiCodeSeccomp && si.si_errno == BH_TRAP_SYSCALL_TAG) {
    ev.kind = EventKind::kSyscall;
    ev.syscall_arch = si.si_arch;
  } else {
    ev = stubs::FaultOrSignal(sig, si);
  }
  GregsToRegs(gregs, regs.gp);
  regs.gp.fs_base = U64(s + BH_SLOT_CUR_FS);
  // The application's gs_base: 0 while the thread has its slot there (what
  // the fast entry needs), else what the application set.
  const uint64_t gs = U64(s + BH_SLOT_CUR_GS);
  regs.gp.gs_base = gs == s ? 0 : gs;
  if (ev.kind == EventKind::kSyscall) {
    // As at a ptrace system-call entry: orig_rax = the number, rax = -ENOSYS.
    regs.gp.orig_rax = static_cast<uint64_t>(static_cast<int64_t>(si.si_syscall));
    regs.gp.rax = static_cast<uint64_t>(-ENOSYS);
  }
  return ev;
}

// A thread that runs alone is kept off the router's CPU: the hand-off is two
// spinning sides, and on one CPU a spinner only delays the other (the
// opposite of the ptrace platform, where sharing the CPU is what is cheap).
// Several running threads float freely. Re-pinned when the router moved; a
// refusal only costs speed.
void TrapPlatform::AvoidRouterCpu(TrapThread& t) {
  if (CPU_COUNT(&all_cpus_) < 2) return;
  int want = -1;
  if (running_.size() <= 1) {
    want = ::sched_getcpu();  // vDSO
    if (want < 0 || !CPU_ISSET(want, &all_cpus_)) want = -1;
  }
  if (want == t.avoided_cpu) return;
  cpu_set_t set = all_cpus_;
  if (want >= 0) CPU_CLR(want, &set);
  if (::sched_setaffinity(t.tid, sizeof set, &set) == 0) t.avoided_cpu = want;
}

void TrapPlatform::Run(TrapThread& t, const Registers& regs) {
  if (options_.avoid_router_cpu) AvoidRouterCpu(t);
  const uint64_t s = Slot(t.area);
  // The fast return loads gs-relative: a thread whose application wants
  // its own gs_base goes back through a signal frame instead.
  if (t.fast && regs.gp.gs_base != 0) Convert(t);
  uint64_t gregs[18];
  RegsToGregs(regs.gp, gregs);
  if (t.fast) {
    // popfq in user mode: keep to the flags an application may set
    // (CF PF AF ZF SF TF DF OF AC ID), bit 1 set, as rt_sigreturn would.
    constexpr uint64_t kUserFlags = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x40000 | 0x200000;
    gregs[REG_EFL] = (gregs[REG_EFL] & kUserFlags) | 0x202;
  }
  std::memcpy(reinterpret_cast<void*>(s + BH_SLOT_GREGS), gregs, sizeof gregs);
  U64(s + BH_SLOT_WANT_FS) = regs.gp.fs_base;
  U64(s + BH_SLOT_WANT_GS) = regs.gp.gs_base != 0 ? regs.gp.gs_base : s;
  U32(s + BH_SLOT_FAST) = t.fast ? 1 : 0;
  t.fast = false;
  PostState(s, BH_STATE_RUN);
}

bool TrapPlatform::Convert(TrapThread& t) {
  if (!t.fast) return true;
  const uint64_t s = Slot(t.area);
  PostState(s, BH_STATE_CONVERT);
  if (!WaitSlot(s, BH_STATE_EVENT, t.as, t.as->stub_pid())) return false;
  t.fast = false;
  return true;
}

void TrapPlatform::Scan(std::vector<Ready>* out) {
  for (size_t i = 0; i < running_.size();) {
    TrapThread& t = *running_[i];
    if (LoadState(Slot(t.area)) != BH_STATE_EVENT) {
      ++i;
      continue;
    }
    if (t.draining || t.owner == nullptr || t.target == nullptr) {
      SetRunning(t, false);  // a thread whose context went: parked now, free
      t.draining = false;
      t.target = nullptr;
      continue;
    }
    TrapContext* ctx = t.owner;
    std::optional<Event> ev = Decode(t, *t.target, ctx);
    if (!ev) {
      PostState(Slot(t.area), BH_STATE_RUN);  // stale interrupt: same registers
      ++i;
      continue;
    }
    SetRunning(t, false);
    t.target = nullptr;
    ctx->running_key.store(0);
    out->push_back({ctx, *ev});
  }
}

bool TrapPlatform::WaitSlot(uint64_t slot, uint32_t want, TrapAddressSpace* as, pid_t pid) {
  auto done = [&] {
    if (LoadState(slot) != want) return false;
    return want != BH_STATE_EVENT || U32(slot + BH_SLOT_SIGNO) == kBirthSignal;
  };
  const int64_t spin_until = NowNs() + std::max<int64_t>(router_spin_ns_, 200000);
  while (NowNs() < spin_until) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      CpuRelax();
    }
  }
  EnsureSigfd();
  const uint64_t g = Globals();
  const int64_t give_up = NowNs() + static_cast<int64_t>(options_.command_timeout_ms) * 1000000;
  bool killed = false;
  for (;;) {
    std::atomic_ref<uint32_t>(U32(g + BH_GLOBAL_ROUTER_SLEEPING)).store(1, std::memory_order_seq_cst);
    if (done()) break;
    pollfd pf[2] = {{event_fd_.get(), POLLIN, 0}, {sigfd_.get(), POLLIN, 0}};
    ::poll(pf, 2, 20);
    uint64_t v;
    while (::read(event_fd_.get(), &v, sizeof v) > 0) {
    }
    if (done()) break;
    if (!killed && NowNs() > give_up) {
      ::kill(pid, SIGKILL);  // its death is collected below
      killed = true;
    }
    // Died? (A new stub before it has an address space: look at its pid.)
    if (as != nullptr) {
      Reap(&pending_);
      if (!as->alive()) {
        std::atomic_ref<uint32_t>(U32(g + BH_GLOBAL_ROUTER_SLEEPING)).store(0);
        return false;
      }
    } else {
      int status = 0;
      if (::waitpid(pid, &status, __WALL | WNOHANG) == pid && (WIFEXITED(status) || WIFSIGNALED(status))) {
        std::atomic_ref<uint32_t>(U32(g + BH_GLOBAL_ROUTER_SLEEPING)).store(0);
        return false;
      }
    }
  }
  std::atomic_ref<uint32_t>(U32(g + BH_GLOBAL_ROUTER_SLEEPING)).store(0);
  return true;
}

std::unique_ptr<AddressSpace> TrapPlatform::NewAddressSpace() {
  EnsureSigfd();
  int p[2];
  CheckSys(::pipe2(p, O_CLOEXEC), "pipe2", "trap stub set-up report");
  UniqueFd report_read(p[0]);
  UniqueFd report_write(p[1]);
  const uint32_t area = AllocArea();
  struct AreaGuard {
    TrapPlatform* p;
    uint32_t area;
    ~AreaGuard() {
      if (p) p->FreeArea(area);
    }
  } area_guard{this, area};

  ChildPlan plan;
  plan.parent = router_pid_;
  plan.report_fd = report_write.get();
  plan.dumpable = options_.dumpable_stubs;
  for (int fd : options_.files) plan.keep[plan.nkeep++] = fd;
  plan.keep[plan.nkeep++] = event_fd_.get();
  plan.keep[plan.nkeep++] = report_write.get();
  std::sort(plan.keep, plan.keep + plan.nkeep);
  plan.rseq = stubs::RseqRegistration::OfThisThread();
  plan.handler = start_ + static_cast<uint64_t>(bh_trap_handler - bh_trap_stub_begin);
  plan.restorer = start_ + static_cast<uint64_t>(bh_trap_restorer - bh_trap_stub_begin);
  plan.boot = start_ + static_cast<uint64_t>(bh_trap_boot - bh_trap_stub_begin);
  plan.stack_top = AreaTop(area);
  for (const auto& m : vdso_moves_) plan.moves[plan.nmoves++] = m;

  const long pid = ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) throw SysError(errno, "clone", "trap stub process");
  if (pid == 0) TrapStubChild(plan);
  stubs::ChildGuard guard(static_cast<pid_t>(pid));
  report_write.Reset();
  if (!WaitSlot(Slot(area), BH_STATE_EVENT, nullptr, guard.pid())) {
    guard.Disarm();
    stubs::ChildReport report{};
    ssize_t n = RetryEintr([&] { return ::read(report_read.get(), &report, sizeof report); });
    if (n == static_cast<ssize_t>(sizeof report)) {
      throw SysError(report.err, TrapChildStep(report.step), Ctx(guard.pid(), "set-up in the forked child"));
    }
    throw SysError(ECHILD, "trap stub set-up",
                   Ctx(guard.pid(), "died before its first event (region boot, seccomp filter, or a call "
                                  "the router's policy lacks: see TrapPlatformRouterRules())"));
  }
  guard.Disarm();
  area_guard.p = nullptr;
  return std::make_unique<TrapAddressSpace>(*this, guard.pid(), area);
}

void TrapPlatform::Wake() {
  const uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof one);
}

size_t TrapPlatform::WaitEvents(std::vector<Ready>* out, std::span<pollfd> fds, int timeout_ms) {
  EnsureSigfd();
  const size_t before = out->size();
  for (auto& r : pending_) out->push_back(r);
  pending_.clear();
  const int64_t deadline = timeout_ms < 0 ? -1 : NowNs() + static_cast<int64_t>(timeout_ms) * 1000000;
  const uint64_t g = Globals();
  std::atomic_ref<uint32_t> sleeping(U32(g + BH_GLOBAL_ROUTER_SLEEPING));
  std::vector<pollfd>& pfds = pfds_;  // kept: no allocation per event
  pfds.resize(fds.size() + 3);
  for (auto& f : fds) f.revents = 0;
  // Spin while threads run: most events come within microseconds.
  Scan(out);
  const bool spun = out->size() == before && !running_.empty() && router_spin_ns_ > 0;
  const int64_t spin_start = spun ? NowNs() : 0;
  if (spun) {
    // The running threads' state words, read directly: each stays in this
    // CPU's cache until its handler writes it.
    const int64_t spin_until = spin_start + spin_budget_ns_;
    for (uint32_t i = 0; out->size() == before; ++i) {
      Scan(out);
      CpuRelax();
      if ((i & 15) == 15 && NowNs() >= spin_until) break;
    }
    if (out->size() > before) {
      spin_budget_ns_ = std::min(router_spin_ns_, spin_budget_ns_ * 2);
      return out->size() - before;
    }
  }
  for (;;) {
    bool blocking = out->size() == before;
    if (blocking) {
      sleeping.store(1, std::memory_order_seq_cst);
      Scan(out);
      blocking = out->size() == before;
    }
    pfds[0] = {sigfd_.get(), POLLIN, 0};
    pfds[1] = {event_fd_.get(), POLLIN, 0};
    pfds[2] = {wake_fd_.get(), POLLIN, 0};
    for (size_t i = 0; i < fds.size(); ++i) pfds[i + 3] = {fds[i].fd, fds[i].events, 0};
    int wait = 0;
    if (blocking) wait = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, (deadline - NowNs() + 999999) / 1000000));
    // Nothing to poll for when events are due and no descriptor was asked about.
    int n = 0;
    if (blocking || !fds.empty()) n = ::poll(pfds.data(), pfds.size(), wait);
    sleeping.store(0, std::memory_order_relaxed);
    if (n < 0 && errno != EINTR) throw SysError(errno, "poll", "trap WaitEvents");
    bool fd_ready = false;
    for (size_t i = 0; i < fds.size(); ++i) {
      fds[i].revents = n > 0 ? pfds[i + 3].revents : 0;
      fd_ready = fd_ready || fds[i].revents != 0;
    }
    bool woken = false;
    if (n > 0) {
      uint64_t v;
      if (pfds[1].revents & POLLIN) {
        while (::read(event_fd_.get(), &v, sizeof v) > 0) {
        }
      }
      if (pfds[2].revents & POLLIN) {
        while (::read(wake_fd_.get(), &v, sizeof v) > 0) {
        }
        woken = true;
      }
      if (pfds[0].revents & POLLIN) {
        signalfd_siginfo si[16];
        while (::read(sigfd_.get(), si, sizeof si) > 0) {
        }
        Reap(out);
      }
    }
    Scan(out);
    if (out->size() > before || fd_ready || woken) break;
    if (deadline >= 0 && NowNs() >= deadline) break;
  }
  if (spun && out->size() > before) {
    // Slept after a spin that found nothing. Had spinning up to the ceiling
    // caught the event, spin longer next time (this sleep cost a wake-up
    // through the eventfd); if the event came later than that, spinning is
    // wasted CPU for this workload: spin less. Floor 1 µs.
    const int64_t waited = NowNs() - spin_start;
    spin_budget_ns_ = waited < router_spin_ns_ ? std::min(router_spin_ns_, std::max(spin_budget_ns_, waited) * 2)
                                               : std::max<int64_t>(1000, spin_budget_ns_ / 2);
  }
  return out->size() - before;
}

// ---------------------------------------------------------------------------
// Address spaces.

long TrapAddressSpace::Command(long nr, const SyscallArgs& a) {
  if (!alive()) throw SysError(ESRCH, "trap command " + harden::SyscallName(static_cast<int>(nr)), Ctx(pid_, "the stub is dead"));
  TrapThread* t = Parked();
  if (t == nullptr) {
    throw std::logic_error("trap platform: " + harden::SyscallName(static_cast<int>(nr)) + " on " + Ctx(pid_) +
                           " while every stub thread runs application code");
  }
  const uint64_t s = p_.Slot(t->area);
  U64(s + BH_SLOT_CMD_NR) = static_cast<uint64_t>(nr);
  for (int i = 0; i < 6; ++i) U64(s + BH_SLOT_CMD_ARGS + 8 * i) = a[i];
  PostState(s, BH_STATE_CMD);
  if (!p_.WaitSlot(s, BH_STATE_CMD_DONE, this, pid_)) {
    throw SysError(ESRCH, "trap command " + harden::SyscallName(static_cast<int>(nr)),
                   Ctx(pid_, "the stub died: " + DescribeWaitStatus(exit_status_)));
  }
  return static_cast<long>(U64(s + BH_SLOT_CMD_RET));
}

pid_t TrapAddressSpace::CloneInto(uint64_t flags, uint32_t area, const char* what) {
  long rc;
  try {
    rc = Command(SYS_clone, {flags, p_.AreaTop(area), 0, 0, 0, 0});
  } catch (...) {
    p_.FreeArea(area);
    throw;
  }
  if (rc <= 0) {
    p_.FreeArea(area);
    throw SysError(rc < 0 ? static_cast<int>(-rc) : EIO, "clone", Ctx(pid_, what));
  }
  return static_cast<pid_t>(rc);
}

TrapThread& TrapAddressSpace::NewThread() {
  const uint32_t area = p_.AllocArea();
  TrapThread& t = AddThread(CloneInto(kThreadCloneFlags, area, "a stub thread"), area);
  if (!p_.WaitSlot(p_.Slot(area), BH_STATE_EVENT, this, pid_)) {
    throw SysError(ESRCH, "new stub thread", Ctx(pid_, "the stub died"));
  }
  return t;
}

std::unique_ptr<AddressSpace> TrapAddressSpace::Fork() {
  const uint32_t area = p_.AllocArea();
  const pid_t pid = CloneInto(kForkCloneFlags, area, "forking the address space");
  auto child = std::make_unique<TrapAddressSpace>(p_, pid, area);
  if (!p_.WaitSlot(p_.Slot(area), BH_STATE_EVENT, child.get(), pid)) {
    throw SysError(ESRCH, "forked stub", Ctx(pid, "died before its first event"));
  }
  return child;
}

TrapThread& TrapAddressSpace::Bind(TrapContext& ctx) {
  if (ctx.thread != nullptr && ctx.thread->as == this && !ctx.life.expired()) return *ctx.thread;
  Unbind(ctx);
  TrapThread* t = nullptr;
  for (auto& th : threads_) {
    if (th->owner == nullptr && !th->running && !th->draining) {
      t = th.get();
      break;
    }
  }
  if (t == nullptr) t = &NewThread();
  t->owner = &ctx;
  ctx.thread = t;
  ctx.life = life_;
  return *t;
}

void TrapAddressSpace::Unbind(TrapContext& ctx) {
  if (ctx.thread != nullptr && !ctx.life.expired()) {
    TrapThread& t = *ctx.thread;
    t.owner = nullptr;
    t.target = nullptr;
    if (t.running && t.as->alive()) {
      t.draining = true;  // free once its next event arrives (Scan)
      ::syscall(SYS_tgkill, t.as->stub_pid(), t.tid, kInterrupt);
    }
  }
  ctx.thread = nullptr;
  ctx.life.reset();
  ctx.running_key.store(0);
}

// ---------------------------------------------------------------------------
// Contexts.

TrapContext::~TrapContext() { TrapAddressSpace::Unbind(*this); }

void TrapContext::Resume(AddressSpace& as, Registers* regs) {
  auto* tas = dynamic_cast<TrapAddressSpace*>(&as);
  if (tas == nullptr) throw std::invalid_argument("trap platform: Resume into another platform's address space");
  if (!tas->alive()) {
    platform_.pending_.push_back({this, tas->ExitedEvent()});
    return;
  }
  TrapThread& t = tas->Bind(*this);
  if (t.running) throw std::logic_error("trap platform: Resume of a context that runs");
  running_key.store((static_cast<uint64_t>(tas->stub_pid()) << 32) | static_cast<uint32_t>(t.tid));
  t.target = regs;
  platform_.SetRunning(t, true);
  platform_.Run(t, *regs);
}

Event TrapContext::Switch(AddressSpace& as, Registers& regs) {
  auto* tas = dynamic_cast<TrapAddressSpace*>(&as);
  if (tas != nullptr && !tas->alive()) return tas->ExitedEvent();
  if (TakeInterrupt()) {
    Event ev;
    ev.kind = EventKind::kInterrupted;
    return ev;
  }
  Resume(as, &regs);
  std::vector<Platform::Ready> got;
  for (;;) {
    got.clear();
    platform_.WaitEvents(&got, {}, -1);
    for (auto& r : got) {
      if (r.ctx == this) return r.event;
      platform_.pending_.push_back(r);  // another context's: keep it
    }
  }
}

void TrapContext::Interrupt() {
  interrupt_pending_.store(true);
  const uint64_t key = running_key.load();
  if (key != 0) {
    ::syscall(SYS_tgkill, static_cast<pid_t>(key >> 32), static_cast<pid_t>(key & 0xffffffffu), kInterrupt);
  }
}

// The parked thread's frame's FP area (fxsave layout first), checked to lie
// inside the thread's own area; 0 if not.
uint64_t TrapContext::FpArea(size_t need) const {
  if (thread == nullptr || life.expired() || thread->running) return 0;
  if (thread->fast && !platform_.Convert(*thread)) return 0;
  const uint64_t area = platform_.Slot(thread->area);
  const uint64_t lo = area + BH_TRAP_SLOT_PAGE, hi = area + kArea;
  const uint64_t uc = U64(area + BH_SLOT_UC);
  if (uc < lo || uc > hi - 512) return 0;
  const uint64_t fp = U64(uc + BH_UC_FPREGS_PTR);
  if (fp < lo || fp > hi - need || fp % 16 != 0) return 0;
  return fp;
}

bool TrapContext::GetFpRegs(user_fpregs_struct* out) {
  const uint64_t fp = FpArea(sizeof *out);
  if (fp == 0) return false;
  std::memcpy(out, reinterpret_cast<const void*>(fp), sizeof *out);
  return true;
}

bool TrapContext::SetFpRegs(const user_fpregs_struct& in) {
  const uint64_t fp = FpArea(sizeof in + 64);
  if (fp == 0) return false;
  // Keep the software-reserved bytes (464..511): they say whether an xsave
  // area follows, which the kernel reads at rt_sigreturn.
  std::memcpy(reinterpret_cast<void*>(fp), &in, 464);
  constexpr uint32_t kFpXstateMagic1 = 0x46505853;
  if (U32(fp + 464) == kFpXstateMagic1) {
    // xsave: mark x87 and SSE state present, or xrstor would load their init state.
    U64(fp + 512) |= 3;
  }
  return true;
}

}  // namespace

std::unique_ptr<Platform> NewTrapPlatform(TrapPlatformOptions options) {
  return std::make_unique<TrapPlatform>(std::move(options));
}

uint64_t TrapPlatformVdso(const Platform& platform) {
  auto* p = dynamic_cast<const TrapPlatform*>(&platform);
  return p == nullptr ? 0 : p->vdso();
}

const std::vector<int>& TrapStubAllowedSyscalls() {
  static const std::vector<int> kAllowed = {
      SYS_rt_sigreturn, SYS_futex, SYS_mmap,  SYS_munmap, SYS_mprotect,   SYS_madvise, SYS_mremap,
      SYS_sigaltstack,  SYS_rt_sigprocmask,   SYS_write, SYS_prctl,  SYS_arch_prctl, SYS_clone,   SYS_seccomp};
  return kAllowed;
}

harden::SyscallPolicy TrapPlatformRouterRules(const TrapPlatformOptions& options) {
  harden::SyscallPolicy p;
  p.name = "trap-platform";
  // Stubs inherit this filter: an application's `int $0x80` must reach the
  // stub's handler as a trap, not kill the stub.
  p.trap_foreign_arch = true;
  // --- The router: forking a stub, reaping stubs, waking handlers.
  p.Allow(SYS_clone, {ArgCondition::Equal(0, SIGCHLD)});
  p.Allow(SYS_wait4);
  p.Allow(SYS_signalfd4).Allow(SYS_poll).Allow(SYS_ppoll).Allow(SYS_eventfd2);
  p.Allow(SYS_kill, {ArgCondition::Equal(1, SIGKILL)});
  p.Allow(SYS_tgkill, {ArgCondition::Equal(2, kInterrupt)});
  p.Allow(SYS_pipe2);
  if (options.avoid_router_cpu) {
    // Keeping a lone stub thread off the router's CPU (sched_getcpu falls
    // back to getcpu without a vDSO).
    p.Allow(SYS_sched_setaffinity).Allow(SYS_getcpu).Allow(SYS_sched_getaffinity);
  }
  // --- The forked child's set-up, and copies of application memory.
  stubs::AllowChildSetUp(p, options.dumpable_stubs);
  for (int sig : kHandledSignals) p.Allow(SYS_rt_sigaction, {ArgCondition::Equal(0, static_cast<uint64_t>(sig))});
  // --- Made by the stubs (they run under the router's filter too).
  p.Allow(SYS_seccomp, {ArgCondition::Equal(0, SECCOMP_SET_MODE_FILTER), ArgCondition::Equal(1, 0)});
  p.Allow(SYS_clone, {ArgCondition::Equal(0, kThreadCloneFlags)});
  p.Allow(SYS_clone, {ArgCondition::Equal(0, kForkCloneFlags)});
  p.Allow(SYS_arch_prctl, {ArgCondition::Equal(0, ARCH_SET_FS)});
  p.Allow(SYS_arch_prctl, {ArgCondition::Equal(0, ARCH_SET_GS)});
  return p;
}

}  // namespace bulkhead::router::platform
