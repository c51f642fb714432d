#include "services/syscall-router/kernel/kernel.h"

#include <asm/prctl.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/xattr.h>
#include <sys/auxv.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/shm.h>
#include <sys/sysinfo.h>
#include <sys/times.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <queue>
#include <optional>

#include "harden/seccomp_policy.h"
#include "ipc/stats.h"
#include "services/syscall-router/kernel/inotify.h"
#include "services/syscall-router/kernel/locks.h"
#include "services/syscall-router/kernel/tmpfs.h"
#include "services/syscall-router/loader/exec.h"
#include "services/syscall-router/platform/ptrace_platform.h"
#include "services/syscall-router/platform/trap_platform.h"

namespace bulkhead::router {
namespace {

using platform::Registers;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kSaRestorer = 0x04000000;  // kSaRestorer (not exported by glibc)
constexpr int kSsAutodisarm = 1 << 31;        // kSsAutodisarm
constexpr size_t kDirBatch = 128 * 1024;        // directory records fetched per gofer round trip
constexpr size_t kChunk = 256 * 1024;          // bytes moved per gofer round trip / memory copy
constexpr uint64_t kMmapTop = 0x7e0000000000;  // non-fixed mmaps grow down from here
constexpr int kMaxFds = 1024;
constexpr size_t kPipeCapacity = 65536;
constexpr int kMaxPid = 4194304;
constexpr size_t kMaxArgBytes = 2 * 1024 * 1024;  // argv + envp of execve (Linux: stack/4)
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

constexpr int kFatalExec = -100000;  // Exec: the image is gone, the task dies by SIGSEGV

// Dispatch results that are not a return value.
constexpr int64_t kBlock = INT64_MIN;         // the call waits; it is re-tried later
constexpr int64_t kNoReturn = INT64_MIN + 1;  // registers already set (sigreturn, execve)
constexpr int64_t kGone = INT64_MIN + 2;      // the task is gone (exit, killed)

uint64_t PageUp(uint64_t v) { return (v + kPage - 1) & ~(kPage - 1); }
uint64_t Bit(int sig) { return 1ull << (sig - 1); }
constexpr uint64_t kUnblockable = (1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1));

// Read once, before the router is hardened (sysconf reads /sys and calls
// sysinfo, neither of which the router's policy allows later).
struct HostFacts {
  long cpus = 1;
  long phys_pages = 262144;
  long avail_pages = 131072;
};
HostFacts& Facts() {
  static HostFacts f;
  return f;
}

int64_t NowNs(clockid_t clock = CLOCK_MONOTONIC) {
  timespec ts;
  ::clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Seconds + nanoseconds as nanoseconds, saturated at ~146 years so that
// deadlines computed from hostile timeouts never overflow (a deadline is at
// most a clock reading plus this: below 2^63), while absolute CLOCK_REALTIME
// times (56 years since the epoch in 2026) stay exact. (It was 36 years:
// every absolute realtime timeout, pthread_cond_timedwait's, saturated to a
// time in the past of the epoch's clock and never expired.)
constexpr int64_t kFarNs = int64_t{1} << 62;
int64_t ToNs(int64_t sec, int64_t sub_ns) {
  if (sec < 0) return 0;
  if (sec >= kFarNs / 1000000000) return kFarNs;
  return sec * 1000000000 + sub_ns;
}
int64_t TsNs(const timespec& ts) { return ToNs(ts.tv_sec, ts.tv_nsec); }
bool ValidTs(const timespec& ts) { return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000; }

// Lexical normalization of an absolute path: no ".", "..", "//", trailing "/".
std::string Normalize(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string p = path.substr(i, j - i);
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!p.empty() && p != ".") {
      parts.push_back(std::move(p));
    }
    i = j + 1;
  }
  std::string out;
  for (auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

enum class DefaultAction { kTerm, kIgnore, kStop, kCont };
DefaultAction DefaultFor(int sig) {
  switch (sig) {
    case SIGCHLD: case SIGURG: case SIGWINCH: return DefaultAction::kIgnore;
    case SIGCONT: return DefaultAction::kCont;
    case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU: return DefaultAction::kStop;
    default: return sig >= SIGRTMIN && sig <= 64 ? DefaultAction::kTerm : DefaultAction::kTerm;
  }
}

// The kernel's struct sigaction on x86-64 (what rt_sigaction copies).
struct KSigaction {
  uint64_t handler = 0;  // SIG_DFL 0, SIG_IGN 1
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;
};

// The x86-64 signal frame (arch/x86/include/asm/sigframe.h): the handler
// returns into pretcode (sa_restorer), which calls rt_sigreturn with %rsp at uc.
struct KUcontext {
  uint64_t uc_flags;
  uint64_t uc_link;
  stack_t uc_stack;
  // struct sigcontext
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2, fpstate;
  uint64_t reserved1[8];
  uint64_t uc_sigmask;
};
static_assert(sizeof(KUcontext) == 304);
struct RtSigframe {
  uint64_t pretcode;
  KUcontext uc;
  siginfo_t info;
};

// The kernel's struct termios (TCGETS / TCSETS), not glibc's larger one.
struct KTermios {
  uint32_t c_iflag, c_oflag, c_cflag, c_lflag;
  uint8_t c_line;
  uint8_t c_cc[19];
};
static_assert(sizeof(KTermios) == 36);

struct Pipe {
  std::deque<uint8_t> buf;
  int readers = 0;
  int writers = 0;
};

}  // namespace

struct File {
  enum class Kind { kHost, kGofer, kNull, kZero, kFull, kRandom, kPipe, kEventfd, kEpoll, kMem, kDir, kTimerfd, kTmpfs, kInotify };
  Kind kind = Kind::kNull;
  uint32_t flags = 0;  // O_ACCMODE | O_APPEND | O_NONBLOCK ... as the application set them
  GoferClient* gofer = nullptr;
  int host_fd = -1;
  uint64_t handle = 0;
  int64_t offset = 0;
  std::string path;
  struct stat st {};
  std::shared_ptr<Pipe> pipe;
  bool pipe_write = false;
  bool pipe_rw = false;  // a FIFO opened O_RDWR: both ends in one
  uint64_t counter = 0;  // eventfd; timerfd: expirations not read yet
  bool semaphore = false;
  int64_t deadline = -1, interval = 0;  // timerfd: next expiry (monotonic ns), period
  clockid_t clock = CLOCK_MONOTONIC;    // timerfd
  std::string data;  // kMem: the contents; kDir, kTmpfs directories: dirents already encoded
  Tmpfs* tmpfs = nullptr;                  // kTmpfs
  std::shared_ptr<Tmpfs::Node> tnode;      // kTmpfs
  std::shared_ptr<Inotify> inotify;        // kInotify
  uint64_t generation = 0;                 // kGofer: the gofer client's generation when st was read
  size_t dir_pos = 0;                      // kGofer directories: records of `data` already returned
  bool dir_eof = false;                    // kGofer directories: the gofer's listing is at its end
  struct EpollItem {
    std::weak_ptr<File> file;
    uint32_t events = 0;
    uint64_t data = 0;
    bool disabled = false;
  };
  std::map<int, EpollItem> epoll;

  File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() {
    if (kind == Kind::kGofer && gofer) gofer->Close(handle);
    if (pipe) {
      if (pipe_rw || !pipe_write) pipe->readers--;
      if (pipe_rw || pipe_write) pipe->writers--;
    }
  }
};

struct FdEntry {
  std::shared_ptr<File> file;
  bool cloexec = false;
};
using FdTable = std::map<int, FdEntry>;

struct Task;

// What a futex word is: a page of the memory file for shared memory (so that
// processes sharing it meet), else an address in one address space.
struct FutexKey {
  const void* space = nullptr;
  uint64_t addr = 0;
  bool operator==(const FutexKey&) const = default;
};

// What a process starts with (Linux's defaults for a root shell, with the
// router's own bounds for descriptors and processes).
inline std::array<struct rlimit64, RLIM_NLIMITS> DefaultRlimits() {
  std::array<struct rlimit64, RLIM_NLIMITS> r;
  r.fill({RLIM64_INFINITY, RLIM64_INFINITY});
  r[RLIMIT_STACK] = {8 << 20, RLIM64_INFINITY};
  r[RLIMIT_NOFILE] = {kMaxFds, kMaxFds};
  r[RLIMIT_CORE] = {0, RLIM64_INFINITY};
  r[RLIMIT_NPROC] = {kMaxPid, kMaxPid};
  r[RLIMIT_MEMLOCK] = {8 << 20, 8 << 20};
  r[RLIMIT_SIGPENDING] = {kMaxPid, kMaxPid};
  r[RLIMIT_MSGQUEUE] = {819200, 819200};
  r[RLIMIT_NICE] = {0, 0};
  r[RLIMIT_RTPRIO] = {0, 0};
  return r;
}

struct Process {
  int pid = 0, ppid = 0, pgid = 0, sid = 0;
  std::shared_ptr<platform::AddressSpace> as;
  std::shared_ptr<FdTable> fds;
  std::string cwd = "/";
  uint32_t umask = 022;
  // Resource limits as the process sees them (inherited by fork, kept by
  // exec). RLIMIT_NOFILE is enforced on new descriptors; the others are
  // recorded and reported.
  std::array<struct rlimit64, RLIM_NLIMITS> rlim = DefaultRlimits();
  std::shared_ptr<std::array<KSigaction, 65>> act = std::make_shared<std::array<KSigaction, 65>>();
  uint64_t brk_start = 0, brk = 0, brk_mapped = 0;
  uint64_t mmap_next = kMmapTop;
  std::vector<Task*> tasks;
  bool zombie = false;
  int wait_status = 0;
  bool stopped = false, report_stop = false, report_cont = false;
  int stop_sig = 0;
  int exit_signal = SIGCHLD;
  std::string exe;
  std::vector<std::string> argv;
  bool vfork_done = false;  // exec'd or exited: a vfork parent may go on
  bool execed = false;
  int64_t itimer_deadline = -1, itimer_interval = 0;  // ITIMER_REAL, monotonic ns
  struct PosixTimer {
    clockid_t clock = CLOCK_MONOTONIC;
    int notify = SIGEV_SIGNAL;  // SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID
    int signo = SIGALRM;
    uint64_t value = 0;
    int tid = 0;
    int64_t deadline = -1, interval = 0;
    int overrun = 0;
  };
  std::map<int, PosixTimer> timers;  // timer_create
};

struct Task {
  int tid = 0;
  // The page and instruction of the last write fault that found its page
  // already made private (ResolveWriteFault's `already`), to tell a race
  // from a fault that would repeat forever.
  uint64_t refault_key = 0;
  Process* proc = nullptr;
  std::unique_ptr<platform::Context> ctx;
  Registers regs;
  enum class State { kRunnable, kRunning, kBlocked, kStopped, kDead } state = State::kRunnable;
  uint64_t sigmask = 0, pending = 0;
  uint64_t forced = 0;  // pending signals from the task's own faults: delivered even to init
  std::array<siginfo_t, 65> info{};  // the first pending one of each signal
  // Real-time signals (32..64) queue: the ones after info[sig], in order.
  std::map<int, std::deque<siginfo_t>> rt_queue;
  size_t rt_queued = 0;
  uint64_t clear_tid = 0;
  stack_t altstack{nullptr, SS_DISABLE, 0};
  // A waiting call: re-tried until it completes.
  bool retry = false;
  int64_t deadline = -1;  // monotonic ns, -1: none
  bool futex_woken = false;
  bool futex_waiting = false;
  // Blocked in a call only a futex wake, a signal or its deadline ends: not
  // retried after every event (Park); and queued in retry_ (QueueRetry).
  bool parked = false;
  bool queued_retry = false;
  FutexKey futex_key;
  uint32_t futex_bitset = 0;
  uint64_t robust_head = 0;  // set_robust_list
  std::vector<pollfd> host_waits;  // host fds the waiting call needs
  bool restore_mask = false;       // sigsuspend / ppoll / pselect6 set a temporary mask
  uint64_t saved_mask = 0;
  int vfork_child = 0;
  uint64_t io_done = 0;
  uint64_t saved_rem = 0;
  std::shared_ptr<File> fifo_pending;  // a FIFO open waiting for the other end  // a blocking pipe write: bytes already written
  uint64_t arg(int i) const { return regs.syscall_arg(i); }
};

struct Kernel::Impl {
  Impl(platform::Platform& p, GoferClient& g, std::array<int, 3> s, TerminalSignals* term, MemoryFile* mem,
       std::atomic<uint64_t>* enosys)
      : platform_(p), gofer_(g), stdio_(s), term_(term), mem_(mem), enosys_(enosys), fast_entry_(p.fast_entry()) {
    if (mem_) cache_ = std::make_unique<FileCache>(*mem_);
    tmp_.SetMemoryFile(mem_);
    shm_.SetMemoryFile(mem_);
  }

  platform::Platform& platform_;
  GoferClient& gofer_;
  std::array<int, 3> stdio_;
  TerminalSignals* term_;
  MemoryFile* mem_;
  std::atomic<uint64_t>* enosys_;
  const uint64_t fast_entry_;  // Platform::fast_entry(): 0 when sites are never patched
  std::unique_ptr<FileCache> cache_;  // read-only file pages (exec), shared by all processes
  std::string hostname_ = "bulkhead";
  std::vector<RunRequest::Mount> mounts_;  // what fs-gofer serves (root first)
  // Shared mappings of files of the root and volumes: one range of the
  // memory file per file (device, inode) that every MAP_SHARED mapping of it
  // maps, so that processes sharing it see each other's stores; written back
  // to the file on msync, fsync, and once no mapping uses it. write() and
  // read() of the file stay coherent with it (writes go to both; a read
  // first writes back).
  struct SharedFile {
    std::shared_ptr<Chunk> chunk;
    uint64_t handle = 0;  // a gofer handle opened read-write (0: read-only mappings only)
    std::string path;
  };
  std::map<std::pair<uint64_t, uint64_t>, SharedFile> shared_files_;
  LockTable locks_;  // fcntl record and OFD locks, flock
  InotifyHub inotify_;
  // unlink, rmdir: the directory hears IN_DELETE; a watch of the object
  // itself IN_ATTRIB (its link count) and IN_DELETE_SELF, then it ends.
  void NotifyRemoved(const std::string& path, bool dir) {
    if (!inotify_.any()) return;
    if (!dir) inotify_.Event(path, IN_ATTRIB, false, 0, true);
    Notify(path, IN_DELETE_SELF, dir);
    Notify(path, IN_DELETE, dir);
  }
  void NotifyRenamed(Task& t, const std::string& from, const std::string& to) {
    if (!inotify_.any()) return;
    struct stat st;
    const bool dir = StatPath(t, to, false, &st) == 0 && S_ISDIR(st.st_mode);
    const uint32_t cookie = inotify_.NextCookie();
    Notify(from, IN_MOVED_FROM, dir, cookie);
    Notify(to, IN_MOVED_TO, dir, cookie);
    Notify(from, IN_MOVE_SELF, dir);
    inotify_.Moved(from, to);
  }
  // Reports a change the sandbox made (inotify), when anyone watches.
  void Notify(const std::string& path, uint32_t mask, bool is_dir = false, uint32_t cookie = 0) {
    if (inotify_.any()) inotify_.Event(path, mask, is_dir, cookie);
  }
  RunResult* res_ = nullptr;
  // The memory limit (RunRequest::memory_limit) and when it is checked next.
  uint64_t mem_limit_ = 0;
  int64_t next_mem_check_ns_ = 0;
  ipc::ServiceStatsBlock::Memory* mem_stats_ = nullptr;
  int64_t next_mem_stats_ns_ = 0;
  static constexpr int64_t kMemCheckNs = 5'000'000;
  std::map<int, std::unique_ptr<Process>> procs_;
  std::map<int, std::unique_ptr<Task>> tasks_;
  std::map<platform::Context*, Task*> by_ctx_;
  // Work lists of the loop, by tid (a tid may be stale: checked when taken):
  // tasks that became runnable, blocked tasks to retry after events, parked
  // tasks' deadlines, and futex waiters by key in arrival order. Every
  // kSweepNs everything is re-listed from tasks_, so a wake-up a path forgot
  // costs latency, never a hang.
  std::vector<int> ready_;
  std::vector<int> retry_;
  std::priority_queue<std::pair<int64_t, int>, std::vector<std::pair<int64_t, int>>, std::greater<>> timeouts_;
  std::map<std::pair<const void*, uint64_t>, std::deque<int>> futex_q_;
  int64_t next_sweep_ns_ = 0;
  static constexpr int64_t kSweepNs = 250'000'000;
  std::vector<std::unique_ptr<Task>> graveyard_;
  std::vector<std::weak_ptr<File>> timerfds_;  // armed ones set the loop's deadline
  // Writable tmpfs mounts of the sandbox (the rest of the tree is the
  // read-only root through the fs-gofer).
  Tmpfs tmp_{uint64_t{256} << 20, makedev(0, 0x2a)};
  Tmpfs shm_{uint64_t{256} << 20, makedev(0, 0x2b)};
  std::vector<std::pair<std::string, std::unique_ptr<Tmpfs>>> extra_tmpfs_;  // deepest path first

  // System V shared memory (shmget, shmat, shmdt, shmctl): the sandbox's
  // own IPC namespace. A segment's pages are one memory-file chunk; every
  // attachment maps it MAP_SHARED. Attachments belong to an address space
  // (a vfork child shares its parent's); fork copies them, exec and exit
  // drop them.
  struct ShmSegment {
    int id = 0;
    key_t key = IPC_PRIVATE;
    uint64_t size = 0;
    std::shared_ptr<Chunk> chunk;
    struct ipc_perm perm {};
    int nattch = 0;
    bool removed = false;  // IPC_RMID: goes with its last attachment
    time_t atime = 0, dtime = 0, ctime = 0;
    int cpid = 0, lpid = 0;
  };
  struct ShmAttach {
    std::shared_ptr<ShmSegment> seg;
    uint64_t len = 0;
  };
  std::map<int, std::shared_ptr<ShmSegment>> shm_segs_;
  std::map<platform::AddressSpace*, std::map<uint64_t, ShmAttach>> shm_att_;
  int next_shm_id_ = 0;
  uint64_t shm_total_ = 0;  // bytes of live segments
  static constexpr uint64_t kShmMax = uint64_t{1} << 32;     // SHMMAX, per segment
  static constexpr uint64_t kShmAll = uint64_t{256} << 20;   // all segments together
  static constexpr size_t kShmMni = 4096;                    // SHMMNI

  // The tmpfs `path` lies in (and the path below its mount point), or null.
  Tmpfs* TmpfsFor(const std::string& path, std::string* rel) {
    auto under = [&](const std::string& prefix) {
      const size_t n = prefix.size();
      return path.compare(0, n, prefix) == 0 && (path.size() == n || path[n] == '/');
    };
    // Extra mounts first, deepest first (one may lie inside /tmp).
    for (auto& [prefix, fs] : extra_tmpfs_) {
      if (under(prefix)) {
        *rel = path.size() == prefix.size() ? "" : path.substr(prefix.size() + 1);
        return fs.get();
      }
    }
    for (auto [prefix, fs] : {std::pair<const char*, Tmpfs*>{"/tmp", &tmp_}, {"/dev/shm", &shm_}}) {
      if (under(prefix)) {
        const size_t n = std::strlen(prefix);
        *rel = path.size() == n ? "" : path.substr(n + 1);
        return fs;
      }
    }
    return nullptr;
  }

  int64_t OpenTmpfs(Task& t, Tmpfs& fs, const std::string& rel, const std::string& path, uint32_t flags, uint32_t mode) {
    if ((flags & O_TMPFILE) == O_TMPFILE) return -EOPNOTSUPP;
    Tmpfs::NodePtr node;
    if ((flags & O_PATH) && (flags & O_NOFOLLOW)) {
      // O_PATH | O_NOFOLLOW names a symlink itself.
      if (int rc = fs.Lookup(rel, false, &node); rc == 0 && S_ISLNK(node->mode)) flags &= ~static_cast<uint32_t>(O_ACCMODE);
      else node.reset();
    }
    if (!node) {
      if (int rc = fs.Open(rel, static_cast<int>(flags), mode & ~t.proc->umask, &node); rc < 0) return rc;
    }
    if (S_ISFIFO(node->mode) && !(flags & O_PATH)) return OpenFifo(t, *node, path, flags);
    auto f = std::make_shared<File>();
    f->kind = File::Kind::kTmpfs;
    f->tmpfs = &fs;
    f->tnode = node;
    f->path = path;
    fs.Stat(*node, &f->st);
    f->flags = flags & (O_ACCMODE | O_APPEND | O_NONBLOCK | O_PATH);
    return NewFd(t, f, 0, flags & O_CLOEXEC);
  }

  // A FIFO: an end of the node's pipe. As Linux: a reader waits for a
  // writer and a writer for a reader (each counts as present while it
  // waits), unless O_NONBLOCK (a writer then gets ENXIO); O_RDWR never waits.
  int64_t OpenFifo(Task& t, Tmpfs::Node& node, const std::string& path, uint32_t flags) {
    const uint32_t acc = flags & O_ACCMODE;
    if (!t.retry || !t.fifo_pending) {
      if (!node.fifo) node.fifo = std::make_shared<Pipe>();
      auto pipe = std::static_pointer_cast<Pipe>(node.fifo);
      if (acc == O_WRONLY && (flags & O_NONBLOCK) && pipe->readers == 0) return -ENXIO;
      auto f = std::make_shared<File>();
      f->kind = File::Kind::kPipe;
      f->pipe = pipe;
      f->pipe_write = acc == O_WRONLY;
      f->pipe_rw = acc == O_RDWR;
      if (acc != O_WRONLY) ++pipe->readers;
      if (acc != O_RDONLY) ++pipe->writers;
      f->flags = flags & (O_ACCMODE | O_NONBLOCK);
      f->path = path;
      f->st.st_mode = node.mode;
      t.fifo_pending = std::move(f);
    }
    std::shared_ptr<File> f = t.fifo_pending;
    const Pipe& p = *f->pipe;
    const bool other_side = acc == O_RDWR || (flags & O_NONBLOCK) || (acc == O_RDONLY ? p.writers > 0 : p.readers > 0);
    if (!other_side) return kBlock;
    t.fifo_pending.reset();
    return NewFd(t, std::move(f), 0, flags & O_CLOEXEC);
  }

  // mkdir, rmdir, unlink, symlink, rename: in a tmpfs, or EROFS (the root is
  // read-only; ENOENT/ENOTDIR still come first where the path is wrong).
  int64_t ReadOnlyRoot(Task& t, const std::string& path) {
    struct stat st;
    const std::string parent = path.substr(0, std::max<size_t>(path.rfind('/'), 1));
    if (int64_t rc = StatPath(t, parent, true, &st); rc < 0) return rc;
    return S_ISDIR(st.st_mode) ? -EROFS : -ENOTDIR;
  }
  // The sandbox changed a file: its page-cache entries go.
  void ForgetCached(const struct stat& st) {
    if (cache_) cache_->Forget(st.st_dev, st.st_ino);
  }
  std::vector<std::shared_ptr<platform::AddressSpace>> dead_as_;
  int next_pid_ = 1;
  int fg_pgrp_ = 1;
  bool init_exited_ = false;
  const int64_t start_ns_ = NowNs();

  // ------------------------------------------------------------ helpers

  // A fresh address space: in the memory file when there is one.
  std::unique_ptr<platform::AddressSpace> NewAddressSpace() {
    auto as = platform_.NewAddressSpace();
    if (!mem_) return as;
    return std::make_unique<MemoryAddressSpace>(platform_, *mem_, std::move(as));
  }
  // What the platform runs tasks in (the stub behind the memory layer).
  static platform::AddressSpace& Stub(platform::AddressSpace& as) {
    auto* m = dynamic_cast<MemoryAddressSpace*>(&as);
    return m ? m->inner() : as;
  }
  static constexpr int kSigRtFirst = 32;            // the kernel's SIGRTMIN
  static constexpr size_t kMaxQueuedSignals = 4096;  // per task, beyond the first of each

  static MemoryAddressSpace* Mm(Process& p) { return dynamic_cast<MemoryAddressSpace*>(p.as.get()); }

  // True if [addr, addr + len) meets a mapping (MAP_FIXED_NOREPLACE).
  static bool Overlapping(Process& p, uint64_t addr, uint64_t len) {
    auto* mm = Mm(p);
    return mm != nullptr && !mm->Unmapped(addr, len);
  }

  // The advice values Linux knows (MADV_HWPOISON and MADV_SOFT_OFFLINE need
  // privileges the sandbox never has: EINVAL here too).
  static bool KnownAdvice(int advice) {
    return (advice >= MADV_NORMAL && advice <= MADV_DONTNEED) || (advice >= 8 && advice <= 25);
  }

  // Memory as the sandbox sees it (/proc/meminfo, sysinfo): the limit when
  // there is one (free: what the memory file does not hold yet), else the
  // host's.
  long MemTotalPages() const {
    if (mem_limit_ == 0) return Facts().phys_pages;
    return static_cast<long>(std::min<uint64_t>(mem_limit_ / 4096, static_cast<uint64_t>(Facts().phys_pages)));
  }
  // /proc/meminfo. With the memory file: file pages (the exec cache) are
  // Cached; tmpfs data and System V segments are Shmem (and Cached, as
  // Linux counts them); the rest of what the file holds is AnonPages.
  struct MemoryKinds {
    uint64_t used = 0, file = 0, shmem = 0, anon = 0;
  };
  MemoryKinds MemoryByKind() const {
    MemoryKinds k;
    k.used = MemoryUsed();
    k.file = cache_ ? std::min(cache_->cached(), k.used) : 0;
    k.shmem = std::min(tmp_.used() + shm_.used() + shm_total_, k.used - k.file);
    k.anon = k.used - k.file - k.shmem;
    return k;
  }

  std::string MemInfo() const {
    const uint64_t total = static_cast<uint64_t>(MemTotalPages()) * 4096;
    const uint64_t avail = static_cast<uint64_t>(MemAvailPages()) * 4096;
    const MemoryKinds k = MemoryByKind();
    const uint64_t file = k.file, shmem = k.shmem, anon = k.anon;
    uint64_t committed = 0;
    for (auto& [pid, p] : procs_) {
      if (auto* mm = Mm(*p)) committed += mm->mapped();
    }
    auto line = [](const char* key, uint64_t bytes) {
      char b[64];
      std::snprintf(b, sizeof b, "%-16s%8llu kB\n", key, static_cast<unsigned long long>(bytes / 1024));
      return std::string(b);
    };
    return line("MemTotal:", total) + line("MemFree:", avail) +
           line("MemAvailable:", std::min(total, avail + file)) + line("Buffers:", 0) +
           line("Cached:", file + shmem) + line("SwapCached:", 0) + line("AnonPages:", anon) +
           line("Mapped:", file) + line("Shmem:", shmem) + line("SwapTotal:", 0) + line("SwapFree:", 0) +
           line("CommitLimit:", total) + line("Committed_AS:", committed);
  }

  // What the sandbox's memory holds: the memory file's data (application
  // memory, file pages, System V segments, tmpfs files mapped shared) plus
  // tmpfs file data still in the router (counted twice only for tmpfs files
  // that are also mapped shared: an overestimate, never an under-).
  // tmpfs data lives in the memory file when there is one (resident counts it).
  uint64_t MemoryUsed() const { return mem_ ? mem_->resident() : tmp_.used() + shm_.used(); }

  long MemAvailPages() const {
    if (mem_limit_ == 0) return Facts().avail_pages;
    const uint64_t used = MemoryUsed() / 4096;
    const uint64_t total = static_cast<uint64_t>(MemTotalPages());
    return static_cast<long>(used >= total ? 0 : std::min<uint64_t>(total - used, static_cast<uint64_t>(Facts().avail_pages)));
  }

  template <typename T>
  bool In(Task& t, uint64_t addr, T* out) { return t.proc->as->CopyIn(addr, out, sizeof(T)); }
  template <typename T>
  bool Out(Task& t, uint64_t addr, const T& v) { return t.proc->as->CopyOut(addr, &v, sizeof(T)); }

  std::string Absolute(const Process& p, const std::string& path) const {
    if (!path.empty() && path[0] == '/') return Normalize(path);
    return Normalize(p.cwd + "/" + path);
  }

  bool ReadPath(Task& t, uint64_t addr, std::string* out, int64_t* err) {
    auto s = t.proc->as->ReadCString(addr, 4096);
    if (!s) {
      char probe;
      *err = t.proc->as->CopyIn(addr, &probe, 1) ? -ENAMETOOLONG : -EFAULT;
      return false;
    }
    if (s->empty()) {
      *err = -ENOENT;
      return false;
    }
    *out = std::move(*s);
    return true;
  }

  // The last component of a path as the application wrote it ("." and ".."
  // vanish in a normalized path, but mkdir, rmdir, unlink, rename and link
  // answer them with errnos of their own).
  static std::string LastComponent(const std::string& raw) {
    size_t end = raw.size();
    while (end > 1 && raw[end - 1] == '/') --end;
    const size_t cut = raw.rfind('/', end - 1);
    return raw.substr(cut == std::string::npos ? 0 : cut + 1, end - (cut == std::string::npos ? 0 : cut + 1));
  }
  // -errno for a path whose last component is "." or ".." in a call that
  // creates or removes a name; 0 otherwise.
  int64_t DotLast(Task& t, uint64_t addr, int64_t if_dot, int64_t if_dotdot) {
    std::string raw;
    int64_t err = 0;
    if (!ReadPath(t, addr, &raw, &err)) return 0;  // PathAt reports it
    const std::string last = LastComponent(raw);
    return last == "." ? if_dot : last == ".." ? if_dotdot : 0;
  }

  // Resolves (dirfd, path) to an absolute normalized path.
  int64_t PathAt(Task& t, int dirfd, uint64_t addr, std::string* out, bool allow_empty = false) {
    int64_t err = 0;
    std::string path;
    if (!ReadPath(t, addr, &path, &err)) {
      if (!(err == -ENOENT && allow_empty)) return err;
    }
    if (path.empty() || path[0] != '/') {
      if (dirfd != AT_FDCWD) {
        auto d = GetFile(t, dirfd);
        if (!d) return -EBADF;
        if (!path.empty() && !S_ISDIR(d->st.st_mode)) return -ENOTDIR;
        *out = path.empty() ? d->path : Normalize(d->path + "/" + path);
        return 0;
      }
    }
    *out = path.empty() ? t.proc->cwd : Absolute(*t.proc, path);
    return 0;
  }

  std::shared_ptr<File> GetFile(Task& t, int fd) {
    if (!t.proc->fds) return nullptr;
    auto it = t.proc->fds->find(fd);
    return it == t.proc->fds->end() ? nullptr : it->second.file;
  }

  int NewFd(Task& t, std::shared_ptr<File> f, int min_fd = 0, bool cloexec = false) {
    auto& fds = *t.proc->fds;
    const int limit = static_cast<int>(std::min<uint64_t>(t.proc->rlim[RLIMIT_NOFILE].rlim_cur, kMaxFds));
    for (int fd = std::max(min_fd, 0); fd < limit; ++fd) {
      if (!fds.count(fd)) {
        fds[fd] = {std::move(f), cloexec};
        return fd;
      }
    }
    return -EMFILE;
  }

  int AllocPid() {
    for (int i = 0; i < kMaxPid; ++i) {
      int pid = next_pid_++;
      if (next_pid_ >= kMaxPid) next_pid_ = 2;
      if (!tasks_.count(pid) && !procs_.count(pid)) return pid;
    }
    return -EAGAIN;
  }

  Task* NewTask(Process* p, int tid) {
    auto t = std::make_unique<Task>();
    t->tid = tid;
    t->proc = p;
    t->ctx = platform_.NewContext();
    Task* raw = t.get();
    by_ctx_[raw->ctx.get()] = raw;
    tasks_[tid] = std::move(t);
    p->tasks.push_back(raw);
    ready_.push_back(tid);
    return raw;
  }

  // Takes a task out of the kernel; the object lives until the loop's next
  // turn (events of this turn may still name its context).
  void RemoveTask(Task* t) {
    FutexDequeue(*t);
    t->state = Task::State::kDead;
    by_ctx_.erase(t->ctx.get());
    auto& v = t->proc->tasks;
    v.erase(std::remove(v.begin(), v.end(), t), v.end());
    auto it = tasks_.find(t->tid);
    if (it != tasks_.end()) {
      graveyard_.push_back(std::move(it->second));
      tasks_.erase(it);
    }
  }

  void Unimplemented(long nr) {
    if (enosys_ && nr >= 0 && nr < ipc::kMaxCountedSyscall) enosys_[nr].fetch_add(1, std::memory_order_relaxed);
    if (res_->unimplemented[nr]++ == 0) {
      spdlog::info("unimplemented system call {} ({}): answered ENOSYS",
                   harden::SyscallName(static_cast<int>(nr)), nr);
    }
  }

  // ------------------------------------------------------------ the loop

  RunResult Run(const RunRequest& req) {
    RunResult res;
    res_ = &res;
    if (req.argv.empty()) {
      res.exit_code = 127;
      res.error = "no command";
      return res;
    }
    hostname_ = req.hostname;
    mounts_ = req.mounts;
    auto initial_rlimits = DefaultRlimits();
    for (const auto& l : req.rlimits) {
      if (l.resource >= 0 && l.resource < RLIM_NLIMITS && l.soft <= l.hard) {
        initial_rlimits[l.resource] = {l.soft, std::min<uint64_t>(l.hard, l.resource == RLIMIT_NOFILE ? kMaxFds : l.hard)};
        if (l.resource == RLIMIT_NOFILE) initial_rlimits[l.resource].rlim_cur = std::min<uint64_t>(l.soft, kMaxFds);
      }
    }
    extra_tmpfs_.clear();
    for (size_t i = 0; i < req.tmpfs.size() && i < 64; ++i) {
      const auto& m = req.tmpfs[i];
      if (m.path.size() < 2 || m.path[0] != '/' || Normalize(m.path) != m.path || IsVirtual(m.path)) continue;
      auto fs = std::make_unique<Tmpfs>(m.size ? m.size : uint64_t{256} << 20, makedev(0, 0x40 + static_cast<unsigned>(i)));
      fs->SetMemoryFile(mem_);
      extra_tmpfs_.emplace_back(m.path, std::move(fs));
    }
    std::sort(extra_tmpfs_.begin(), extra_tmpfs_.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    mem_limit_ = mem_ ? req.memory_limit : 0;
    auto proc = std::make_unique<Process>();
    Process* p = proc.get();
    p->rlim = initial_rlimits;
    p->pid = p->pgid = p->sid = AllocPid();
    p->ppid = 0;
    p->cwd = req.cwd.empty() ? "/" : Normalize(req.cwd);
    p->fds = std::make_shared<FdTable>();
    for (int i = 0; i < 3; ++i) {
      auto f = std::make_shared<File>();
      f->kind = File::Kind::kHost;
      f->host_fd = stdio_[i];
      f->flags = i == 0 ? O_RDONLY : O_WRONLY;
      if (::fstat(stdio_[i], &f->st) != 0) f->kind = File::Kind::kNull;
      (*p->fds)[i] = {f, false};
    }
    procs_[p->pid] = std::move(proc);
    res.processes = 1;
    Task* t = nullptr;
    try {
      t = NewTask(p, p->pid);
    } catch (const std::exception& e) {
      res.exit_code = 126;
      res.error = std::string("cannot create the application's task: ") + e.what();
      return res;
    }
    std::string why;
    int rc = ExecFirst(*t, req, &why);
    if (rc == kFatalExec) {
      res.exit_code = 128 + SIGSEGV;
      res.error = why + " (killed by SIGSEGV, as Linux does after the point of no return)";
      return Finish(res);
    }
    if (rc < 0) {
      res.exit_code = rc == -ENOENT ? 127 : 126;
      res.error = why.empty() ? req.argv[0] + ": " + strerror(-rc) : why + " (" + strerror(-rc) + ")";
      return Finish(res);
    }
    Loop();
    const int st = procs_.count(1) ? procs_[1]->wait_status : 0;
    res.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return Finish(res);
  }

  RunResult Finish(RunResult& res) {
    // Everything left dies with process 1.
    for (auto& [pid, p] : procs_) {
      if (!p->zombie) ExitProcess(*p, SIGKILL, false);
    }
    graveyard_.clear();
    dead_as_.clear();
    procs_.clear();
    SweepSharedFiles(true);
    return res;
  }

  // Writes a shared file mapping's pages back to the file (up to its size).
  void FlushSharedFile(SharedFile& sf) {
    if (sf.handle == 0 || !mem_) return;
    struct stat st;
    if (gofer_.Fstat(sf.handle, &st) != 0) return;
    const uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(st.st_size), sf.chunk->len);
    for (uint64_t off = 0; off < end;) {
      const size_t n = std::min<uint64_t>(kChunk, end - off);
      int64_t at = 0, size = 0;
      if (gofer_.Pwrite(sf.handle, static_cast<int64_t>(off), {mem_->at(sf.chunk->offset + off), n}, &at, &size) <= 0) break;
      off += n;
    }
    ForgetCached(st);
  }
  // Files no mapping uses any more (or all, at the end) are written back
  // and let go.
  void SweepSharedFiles(bool all) {
    for (auto it = shared_files_.begin(); it != shared_files_.end();) {
      if (all || it->second.chunk.use_count() == 1) {
        FlushSharedFile(it->second);
        if (it->second.handle) gofer_.Close(it->second.handle);
        it = shared_files_.erase(it);
      } else {
        ++it;
      }
    }
  }
  SharedFile* SharedFileOf(const File& f) {
    auto it = shared_files_.find({f.st.st_dev, f.st.st_ino});
    return it == shared_files_.end() ? nullptr : &it->second;
  }

  // mmap(MAP_SHARED) of a file of the root or a volume.
  int64_t MapSharedFile(Process& p, File& f, uint64_t addr, uint64_t len, int prot, uint64_t off) {
    auto* mm = Mm(p);
    if (!mm || !mem_) return -ENODEV;
    if (S_ISDIR(f.st.st_mode)) return -ENODEV;
    struct stat st;
    if (int rc = gofer_.Fstat(f.handle, &st); rc < 0) return rc;
    const std::pair<uint64_t, uint64_t> key{st.st_dev, st.st_ino};
    auto it = shared_files_.find(key);
    const uint64_t need = PageUp(std::max<uint64_t>(off + len, static_cast<uint64_t>(st.st_size)));
    if (it != shared_files_.end() && it->second.chunk->len < need) {
      // Grown past its range: write back, start a new one (older mappings
      // keep theirs).
      SweepSharedFiles(false);
      it = shared_files_.find(key);
      if (it != shared_files_.end()) {
        FlushSharedFile(it->second);
        if (it->second.handle) gofer_.Close(it->second.handle);
        shared_files_.erase(it);
        it = shared_files_.end();
      }
    }
    if (it == shared_files_.end()) {
      SharedFile sf;
      sf.path = f.path;
      sf.chunk = AllocateChunk(*mem_, need, MemKind::kFile);
      if (!sf.chunk) return -ENOMEM;
      for (uint64_t done = 0; done < static_cast<uint64_t>(st.st_size);) {
        const size_t want = std::min<uint64_t>(kChunk, static_cast<uint64_t>(st.st_size) - done);
        long n = gofer_.Pread(f.handle, static_cast<int64_t>(done), {mem_->at(sf.chunk->offset + done), want});
        if (n < 0) return n;
        if (n == 0) break;
        done += static_cast<uint64_t>(n);
      }
      it = shared_files_.emplace(key, std::move(sf)).first;
    }
    SharedFile& sf = it->second;
    if ((prot & PROT_WRITE) && sf.handle == 0) {
      struct stat wst;
      if (int rc = gofer_.Open(sf.path, O_RDWR, 0, &sf.handle, &wst); rc < 0) return rc;
    }
    return mm->MapShared(addr, len, prot, sf.chunk, off, f.path);
  }

  void Loop() {
    std::vector<platform::Platform::Ready> events;
    std::vector<pollfd> host_fds;
    std::vector<Task*> runnable;
    std::vector<int> ready;
    while (!init_exited_) {
      graveyard_.clear();
      dead_as_.clear();
      ReapOrphans();
      // 1. Run what can run.
      // (Collected first: delivering a signal may end a process, and with it
      // tasks; their objects stay valid in the graveyard until next turn.)
      Sweep(NowNs());
      runnable.clear();
      ready.clear();
      ready.swap(ready_);
      for (int tid : ready) {
        Task* tp = FindTask(tid);
        if (tp != nullptr && tp->state == Task::State::kRunnable) runnable.push_back(tp);
      }
      for (Task* tp : runnable) {
        Task& t = *tp;
        if (t.state != Task::State::kRunnable) continue;
        if (t.proc->stopped) {
          t.state = Task::State::kStopped;
          continue;
        }
        if (!DeliverSignals(t)) continue;  // stopped or gone
        if (t.state != Task::State::kRunnable) continue;
        t.state = Task::State::kRunning;
        try {
          t.ctx->Resume(Stub(*t.proc->as), &t.regs);
        } catch (const std::exception& e) {
          // The platform could not run it (no stub thread to be had, say):
          // the process dies as by SIGKILL; the sandbox and the router go on.
          spdlog::warn("process {}: task {} cannot run: {}; killed", t.proc->pid, t.tid, e.what());
          MakeRunnable(t);
          ExitProcess(*t.proc, SIGKILL, false);
        }
      }
      if (init_exited_) break;
      // Signals delivered above may have ended or stopped processes that
      // waiting calls watch (wait4): settle those before sleeping.
      if (RetryBlocked()) continue;
      // 2. Wait for events, host fds and the nearest deadline.
      host_fds.clear();
      // Blocked tasks that are retried (parked ones wait for no descriptor).
      int64_t deadline = NextParkedDeadline();
      for (int tid : retry_) {
        Task* tp = FindTask(tid);
        if (tp == nullptr || tp->state != Task::State::kBlocked) continue;
        for (auto& pfd : tp->host_waits) host_fds.push_back(pfd);
        if (tp->deadline >= 0 && (deadline < 0 || tp->deadline < deadline)) deadline = tp->deadline;
      }
      // The sweep (a safety net for a forgotten wake-up) needs the loop to turn.
      if (!tasks_.empty() && (deadline < 0 || next_sweep_ns_ < deadline)) deadline = next_sweep_ns_;
      for (auto& [pid, p] : procs_) {
        if (p->itimer_deadline >= 0 && (deadline < 0 || p->itimer_deadline < deadline)) deadline = p->itimer_deadline;
        for (auto& [id, tm] : p->timers) {
          if (tm.deadline >= 0 && (deadline < 0 || tm.deadline < deadline)) deadline = tm.deadline;
        }
      }
      for (auto it = timerfds_.begin(); it != timerfds_.end();) {
        auto f = it->lock();
        if (!f) {
          it = timerfds_.erase(it);
          continue;
        }
        if (f->deadline >= 0 && (deadline < 0 || f->deadline < deadline)) deadline = f->deadline;
        ++it;
      }
      if (mem_limit_ != 0 && !tasks_.empty() && (deadline < 0 || next_mem_check_ns_ < deadline)) {
        deadline = next_mem_check_ns_;
      }
      int timeout = -1;
      if (deadline >= 0) timeout = static_cast<int>(std::clamp<int64_t>((deadline - NowNs() + 999999) / 1000000, 0, 60000));
      // Freed memory goes back to the host a slice per turn, between
      // events, never in one long stall; the loop turns again at once while
      // some is left.
      if (!shared_files_.empty()) SweepSharedFiles(false);
      if (mem_ != nullptr && mem_->pending_release() > 0) {
        mem_->ReleasePending(MemoryFile::kReleaseSlice);
        if (mem_->pending_release() > 0) timeout = 0;
      }
      events.clear();
      platform_.WaitEvents(&events, host_fds, timeout);
      // 3. Serve the events.
      for (auto& ev : events) {
        auto it = by_ctx_.find(ev.ctx);
        if (it == by_ctx_.end()) continue;
        HandleEvent(*it->second, ev.event);
        if (init_exited_) return;
      }
      // 4. Terminal signals, timers, then every waiting call again.
      if (term_) {
        for (int sig : term_->Take()) TerminalSignal(sig);
      }
      FireTimers();
      CheckMemoryLimit();
      RetryBlocked();
    }
  }

  // The OOM killer of a sandbox with a memory limit: when the memory file
  // holds more data than the limit (application memory, the file cache and
  // tmpfs data alike, as a memory cgroup counts them), the live process with
  // the most resident memory gets SIGKILL. Checked every kMemCheckNs, after
  // events or at the deadline WaitEvents is given (page faults reach no
  // router, so memory can grow between checks by what a task writes in 5 ms).
  // The memory figures of `bulkhead stats`, at most every 5 ms.
  void PublishMemoryStats(int64_t now) {
    if (!mem_stats_ || now < next_mem_stats_ns_) return;
    next_mem_stats_ns_ = now + kMemCheckNs;
    const MemoryKinds k = MemoryByKind();
    mem_stats_->used.store(k.used, std::memory_order_relaxed);
    mem_stats_->limit.store(mem_limit_, std::memory_order_relaxed);
    mem_stats_->anon.store(k.anon, std::memory_order_relaxed);
    mem_stats_->file.store(k.file, std::memory_order_relaxed);
    mem_stats_->shmem.store(k.shmem, std::memory_order_relaxed);
    mem_stats_->oom_kills.store(res_ ? res_->oom_kills : 0, std::memory_order_relaxed);
  }

  void CheckMemoryLimit() {
    if (!mem_stats_ && mem_limit_ == 0) return;
    const int64_t now = NowNs();
    PublishMemoryStats(now);
    if (mem_limit_ == 0 || now < next_mem_check_ns_) return;
    next_mem_check_ns_ = now + kMemCheckNs;
    uint64_t used = MemoryUsed();
    if (used > mem_limit_ && mem_ != nullptr && mem_->pending_release() > 0) {
      mem_->ReleasePending();  // freed memory first, before anyone is killed
      used = MemoryUsed();
    }
    if (used <= mem_limit_) return;
    Process* victim = nullptr;
    uint64_t most = 0;
    for (auto& [pid, p] : procs_) {
      if (p->zombie || p->tasks.empty()) continue;
      bool dying = false;
      for (Task* t : p->tasks) dying = dying || (t->pending & Bit(SIGKILL));
      if (dying) return;  // the last victim has not gone yet: its memory is about to come back
      auto* mm = Mm(*p);
      const uint64_t r = mm ? mm->resident() : 0;
      if (victim == nullptr || r > most) {
        victim = p.get();
        most = r;
      }
    }
    if (victim == nullptr) return;
    spdlog::warn("memory limit {} MiB exceeded ({} MiB in use): killing pid {} ({}, {} MiB resident)",
                 mem_limit_ >> 20, used >> 20, victim->pid, victim->exe, most >> 20);
    ++res_->oom_kills;
    SignalProcess(*victim, SIGKILL, SI_KERNEL, 0);
    // Its memory goes back when its address space does; look again later.
    next_mem_check_ns_ = now + 4 * kMemCheckNs;
  }

  // A single request for private writable memory larger than the limit:
  // refused (ENOMEM) like a request larger than all memory under Linux's
  // overcommit heuristic.
  bool OverLimit(uint64_t len) const { return mem_limit_ != 0 && len > mem_limit_; }

  // True if any waiting call completed.
  // A waiting call that only a futex wake, its deadline or a signal can end
  // (the signal is checked before): retrying it before one of those came is
  // wasted work, and with a thousand sleeping threads it was the whole
  // loop's time (every event retried every waiter).
  static bool WaitsForWakeOrTime(const Task& t, int64_t now) {
    if (t.deadline >= 0 && now >= t.deadline) return false;
    if (t.futex_waiting) return !t.futex_woken;
    switch (t.regs.syscall_nr()) {
      case SYS_nanosleep:
      case SYS_clock_nanosleep:
      case SYS_pause:
      case SYS_rt_sigsuspend:
        return true;
      default:
        return false;
    }
  }

  Task* FindTask(int tid) {
    auto it = tasks_.find(tid);
    return it == tasks_.end() ? nullptr : it->second.get();
  }
  void MakeRunnable(Task& t) {
    t.state = Task::State::kRunnable;
    ready_.push_back(t.tid);
  }
  void QueueRetry(Task& t) {
    if (t.queued_retry) return;
    t.queued_retry = true;
    retry_.push_back(t.tid);
  }
  // A call that returned kBlock: parked if only a wake-up, a signal or its
  // deadline can end it, else retried after events.
  void Block(Task& t, int64_t now) {
    t.state = Task::State::kBlocked;
    if (WaitsForWakeOrTime(t, now)) {
      Park(t);
    } else {
      QueueRetry(t);
    }
  }
  void Park(Task& t) {
    t.parked = true;
    if (t.deadline >= 0) timeouts_.emplace(t.deadline, t.tid);
  }
  void Unpark(Task& t) {
    if (!t.parked) return;
    t.parked = false;
    QueueRetry(t);
  }
  // Parked tasks whose deadline came.
  void ExpireParked(int64_t now) {
    while (!timeouts_.empty() && timeouts_.top().first <= now) {
      const auto [deadline, tid] = timeouts_.top();
      timeouts_.pop();
      Task* t = FindTask(tid);
      if (t != nullptr && t->state == Task::State::kBlocked && t->deadline == deadline) Unpark(*t);
    }
  }
  // The nearest deadline of a parked task, or -1 (stale entries dropped).
  int64_t NextParkedDeadline() {
    while (!timeouts_.empty()) {
      const auto [deadline, tid] = timeouts_.top();
      Task* t = FindTask(tid);
      if (t != nullptr && t->state == Task::State::kBlocked && t->parked && t->deadline == deadline) return deadline;
      timeouts_.pop();
    }
    return -1;
  }
  // The safety net: every runnable task listed, every blocked one retried.
  void Sweep(int64_t now) {
    if (now < next_sweep_ns_) return;
    next_sweep_ns_ = now + kSweepNs;
    for (auto& [tid, tp] : tasks_) {
      if (tp->state == Task::State::kRunnable) ready_.push_back(tid);
      if (tp->state == Task::State::kBlocked) {
        tp->parked = false;
        QueueRetry(*tp);
      }
    }
  }

  bool RetryBlocked() {
    // Completing one call may unblock another (a pipe write, an exit):
    // repeat until nothing changes, a few rounds at most.
    bool any = false;
    std::vector<int> list;
    for (int round = 0; round < 4; ++round) {
      bool progress = false;
      const int64_t now = NowNs();
      ExpireParked(now);
      list.clear();
      list.swap(retry_);
      for (int tid : list) {
        Task* t = FindTask(tid);
        if (t == nullptr) continue;
        t->queued_retry = false;
        if (t->state != Task::State::kBlocked || t->parked) continue;
        if (HasDeliverable(*t)) {
          InterruptCall(*t);
          progress = true;
          continue;
        }
        if (WaitsForWakeOrTime(*t, now)) {
          Park(*t);
          continue;
        }
        t->retry = true;
        int64_t r = Dispatch(*t, t->regs.syscall_nr());
        if (r == kBlock) {
          Block(*t, now);
          continue;
        }
        Complete(*t, r);
        progress = true;
        if (init_exited_) return true;
      }
      if (!progress) break;
      any = true;
    }
    return any;
  }

  void FutexEnqueue(Task& t) { futex_q_[{t.futex_key.space, t.futex_key.addr}].push_back(t.tid); }
  // A waiter that stops waiting without a wake (timeout, signal, death).
  void FutexDequeue(Task& t) {
    if (!t.futex_waiting) return;
    auto it = futex_q_.find({t.futex_key.space, t.futex_key.addr});
    if (it == futex_q_.end()) return;
    auto& q = it->second;
    q.erase(std::remove(q.begin(), q.end(), t.tid), q.end());
    if (q.empty()) futex_q_.erase(it);
  }

  // ^C, ^\, ^Z or a resize on the sandbox's terminal: to the foreground
  // process group, as the line discipline does. The one exception to init's
  // protection: a ^C or ^\ that init does not handle ends the sandbox, as a
  // user at the terminal expects of `bulkhead do`.
  void TerminalSignal(int sig) {
    std::vector<Process*> group;
    for (auto& [pid, p] : procs_) {
      if (!p->zombie && p->pgid == fg_pgrp_) group.push_back(p.get());
    }
    for (Process* p : group) {
      if (p->zombie || p->tasks.empty()) continue;
      if (p->pid == 1 && (sig == SIGINT || sig == SIGQUIT) && InitProtected(*p, sig)) {
        Task& t = *p->tasks.front();
        t.pending |= Bit(sig);
        t.forced |= Bit(sig);
        t.info[sig] = Info(sig, SI_KERNEL, 0);
        Kick(t);
        continue;
      }
      SignalProcess(*p, sig, SI_KERNEL, 0);
    }
  }

  void FireTimers() {
    const int64_t now = NowNs();
    for (auto& [pid, p] : procs_) {
      if (p->zombie) continue;
      if (p->itimer_deadline >= 0 && p->itimer_deadline <= now) {
        p->itimer_deadline = p->itimer_interval > 0 ? now + p->itimer_interval : -1;
        SignalProcess(*p, SIGALRM, SI_KERNEL, 0);
      }
      for (auto& [id, tm] : p->timers) {
        if (tm.deadline < 0 || tm.deadline > now) continue;
        int missed = 0;
        if (tm.interval > 0) {
          const int64_t late = (now - tm.deadline) / tm.interval;
          missed = static_cast<int>(std::min<int64_t>(late, INT32_MAX));
          tm.deadline += (late + 1) * tm.interval;
        } else {
          tm.deadline = -1;
        }
        if (tm.notify == SIGEV_NONE) continue;
        siginfo_t si = Info(tm.signo, SI_TIMER, 0);
        si.si_timerid = id;
        si.si_overrun = missed;
        si.si_value.sival_ptr = reinterpret_cast<void*>(tm.value);
        if (tm.notify == SIGEV_THREAD_ID) {
          auto it = tasks_.find(tm.tid);
          if (it != tasks_.end() && it->second->proc == p.get()) QueueSignal(*it->second, tm.signo, si);
        } else {
          SignalProcess(*p, tm.signo, SI_TIMER, 0, &si);
        }
      }
    }
  }

  // timerfd: expirations due by now.
  static void TickTimerfd(File& f) {
    if (f.deadline < 0) return;
    const int64_t now = NowNs();
    if (now < f.deadline) return;
    if (f.interval > 0) {
      const int64_t n = (now - f.deadline) / f.interval + 1;
      f.counter += static_cast<uint64_t>(n);
      f.deadline += n * f.interval;
    } else {
      f.counter += 1;
      f.deadline = -1;
    }
  }

  static itimerspec Remaining(int64_t deadline, int64_t interval, int64_t now) {
    itimerspec cur{};
    if (deadline >= 0) {
      const int64_t left = std::max<int64_t>(deadline - now, 1);
      cur.it_value = {left / 1000000000, left % 1000000000};
    }
    cur.it_interval = {interval / 1000000000, interval % 1000000000};
    return cur;
  }

  int64_t TimerCreate(Task& t, clockid_t clock, uint64_t sev_addr, uint64_t id_addr) {
    if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME &&
        clock != CLOCK_PROCESS_CPUTIME_ID && clock != CLOCK_THREAD_CPUTIME_ID) {
      return -EINVAL;
    }
    Process::PosixTimer tm;
    tm.clock = clock;
    if (sev_addr) {
      sigevent sev;
      if (!In(t, sev_addr, &sev)) return -EFAULT;
      tm.notify = sev.sigev_notify;
      tm.signo = sev.sigev_signo;
      tm.value = reinterpret_cast<uint64_t>(sev.sigev_value.sival_ptr);
      if (tm.notify != SIGEV_NONE && tm.notify != SIGEV_SIGNAL && tm.notify != SIGEV_THREAD_ID) return -EINVAL;
      if (tm.notify != SIGEV_NONE && (tm.signo < 1 || tm.signo > 64)) return -EINVAL;
      if (tm.notify == SIGEV_THREAD_ID) {
        tm.tid = sev._sigev_un._tid;
        auto it = tasks_.find(tm.tid);
        if (it == tasks_.end() || it->second->proc != t.proc) return -EINVAL;
      }
    } else {
      tm.value = 0;
    }
    Process& p = *t.proc;
    if (p.timers.size() >= 4096) return -EAGAIN;
    int id = 0;
    while (p.timers.count(id)) ++id;
    if (!sev_addr) tm.value = static_cast<uint64_t>(id);
    const int32_t id32 = id;
    if (!Out(t, id_addr, id32)) return -EFAULT;
    p.timers[id] = tm;
    return 0;
  }

  int64_t TimerSettime(Task& t, int id, int flags, uint64_t new_addr, uint64_t old_addr) {
    auto it = t.proc->timers.find(id);
    if (it == t.proc->timers.end()) return -EINVAL;
    if (flags & ~TIMER_ABSTIME) return -EINVAL;
    itimerspec nv;
    if (!In(t, new_addr, &nv)) return -EFAULT;
    if (!ValidTs(nv.it_value) || !ValidTs(nv.it_interval)) return -EINVAL;
    auto& tm = it->second;
    const int64_t now = NowNs();
    if (old_addr && !Out(t, old_addr, Remaining(tm.deadline, tm.interval, now))) return -EFAULT;
    tm.interval = TsNs(nv.it_interval);
    const int64_t v = TsNs(nv.it_value);
    if (v == 0) {
      tm.deadline = -1;
    } else if (flags & TIMER_ABSTIME) {
      const clockid_t c = tm.clock == CLOCK_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC;
      tm.deadline = now + std::max<int64_t>(v - NowNs(c), 0);
    } else {
      tm.deadline = now + v;
    }
    return 0;
  }

  int64_t TimerfdSettime(Task& t, int fd, int flags, uint64_t new_addr, uint64_t old_addr) {
    auto f = GetFile(t, fd);
    if (!f) return -EBADF;
    if (f->kind != File::Kind::kTimerfd) return -EINVAL;
    if (flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)) return -EINVAL;
    itimerspec nv;
    if (!In(t, new_addr, &nv)) return -EFAULT;
    if (!ValidTs(nv.it_value) || !ValidTs(nv.it_interval)) return -EINVAL;
    // Deadlines are kept on the monotonic clock (the loop sleeps on it); an
    // absolute time on another clock is converted once, here.
    const int64_t now = NowNs();
    TickTimerfd(*f);
    if (old_addr && !Out(t, old_addr, Remaining(f->deadline, f->interval, now))) return -EFAULT;
    f->interval = TsNs(nv.it_interval);
    f->counter = 0;
    const int64_t v = TsNs(nv.it_value);
    if (v == 0) {
      f->deadline = -1;
    } else if (flags & TFD_TIMER_ABSTIME) {
      const clockid_t c = f->clock == CLOCK_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC;
      f->deadline = now + std::max<int64_t>(v - NowNs(c), 0);
    } else {
      f->deadline = now + v;
    }
    return 0;
  }

  // The end of a system call: its result, and the task runs again.
  void Complete(Task& t, int64_t r) {
    t.retry = false;
    t.fifo_pending.reset();  // an interrupted FIFO open no longer counts as an end
    t.deadline = -1;
    t.host_waits.clear();
    if (t.restore_mask && r != -EINTR) {
      t.sigmask = t.saved_mask;
      t.restore_mask = false;
    }
    if (r == kGone || t.state == Task::State::kDead) return;
    if (r != kNoReturn) t.regs.set_syscall_return(r);
    if (t.state == Task::State::kBlocked || t.state == Task::State::kRunning) MakeRunnable(t);
  }

  void ServeSyscall(Task& t, uint32_t arch) {
    ++res_->syscalls;
    const long nr = t.regs.syscall_nr();
    int64_t r;
    t.retry = false;
    if (arch != AUDIT_ARCH_X86_64 || nr < 0) {
      r = -ENOSYS;
    } else {
      r = Dispatch(t, nr);
    }
    if (r == kBlock) {
      Block(t, NowNs());
      return;
    }
    Complete(t, r);
  }

  // ------------------------------------------------------------ site patching (patch.h)

  // Rewrites the `mov $nr, %eax; syscall` that just trapped into a jump to
  // the platform's fast entry, when that is safe (patch.h says when).
  void MaybePatch(Task& t) {
    const long nr = t.regs.syscall_nr();
    // rt_sigreturn needs a signal frame; the others come once per process.
    if (nr < 0 || nr > 0xffff || nr == SYS_rt_sigreturn || nr == SYS_exit || nr == SYS_exit_group ||
        nr == SYS_execve || nr == SYS_execveat || t.regs.gp.gs_base != 0) {
      return;
    }
    MemoryAddressSpace* mm = Mm(*t.proc);
    if (mm == nullptr) return;
    PatchState& ps = mm->patches();
    if (ps.disabled || ps.used >= kPatchSites) return;
    const uint64_t ret = t.regs.ip();
    if (ret < kSiteLen || InPatchArea(ret - 1)) return;
    const uint64_t site = ret - kSiteLen;
    if ((site >> 12) != ((ret - 1) >> 12) || ps.sites.count(site) != 0) return;
    const int prot = mm->ProtAt(site);
    if (prot < 0 || (prot & PROT_WRITE) || !(prot & PROT_EXEC)) return;
    for (Task* o : t.proc->tasks) {
      if (o != &t && o->state == Task::State::kRunning) return;  // it might be executing these bytes
    }
    std::array<uint8_t, kSiteLen> b;
    if (mm->ReadMemory(site, b.data(), b.size()) != static_cast<ssize_t>(b.size())) return;
    auto prefix = PatchableSite(b);
    if (!prefix) return;
    if (auto n = PrefixNumber(*prefix); n && *n != static_cast<uint64_t>(nr)) return;
    if (!ps.area) {
      // Made once per address space, where nothing else is; else never.
      if (!mm->Unmapped(kPatchTable, kPatchAreaSize) ||
          mm->Mmap(kPatchTable, kPatchAreaSize, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
              static_cast<long>(kPatchTable)) {
        ps.disabled = true;
        return;
      }
      mm->Name(kPatchTable, kPatchAreaSize, "[bulkhead-patch]");
      ps.area = true;
    }
    const uint32_t index = ps.used;
    const auto thunk = Thunk(*prefix, ret, fast_entry_);
    const uint64_t entry = ThunkAddress(index);
    const auto jump = SiteJump(index);
    if (!mm->PatchCode(entry, thunk.data(), thunk.size()) || !mm->PatchCode(TableEntry(index), &entry, 8) ||
        !mm->PatchCode(site, jump.data(), jump.size())) {
      return;
    }
    ++ps.used;
    ps.sites[site] = index;
    ++res_->patched_sites;
  }

  // True if `site` is a site this address space patched and still holds the jump.
  bool PatchedSiteAt(Task& t, uint64_t site) {
    MemoryAddressSpace* mm = Mm(*t.proc);
    if (mm == nullptr) return false;
    auto it = mm->patches().sites.find(site);
    if (it == mm->patches().sites.end()) return false;
    std::array<uint8_t, kSiteLen> b;
    return mm->ReadMemory(site, b.data(), b.size()) == static_cast<ssize_t>(b.size()) && b == SiteJump(it->second);
  }

  // The process set its own gs_base, which the fast entry needs: every
  // patched site goes back to trapping (its thunk's slow half), for good.
  void DisablePatches(Process& p) {
    MemoryAddressSpace* mm = Mm(p);
    if (mm == nullptr) return;
    PatchState& ps = mm->patches();
    ps.disabled = true;
    for (uint32_t i = 0; i < ps.used; ++i) {
      const uint64_t slow = ThunkAddress(i) + kPatchThunkSize / 2;
      mm->PatchCode(TableEntry(i), &slow, 8);
    }
  }

  void HandleEvent(Task& t, const platform::Event& e) {
    if (t.state == Task::State::kDead) return;
    if (spdlog::should_log(spdlog::level::trace)) {
      spdlog::trace("task {}: {}", t.tid, platform::DescribeEvent(e, &t.regs));
    }
    MakeRunnable(t);
    switch (e.kind) {
      case platform::EventKind::kSyscall:
        if (e.syscall_arch == AUDIT_ARCH_X86_64 && fast_entry_ != 0) MaybePatch(t);
        ServeSyscall(t, e.syscall_arch);
        return;
      case platform::EventKind::kFault: {
        // A thread preempted between the two instructions of a site that
        // was patched meanwhile resumed on the jump's last bytes (ud2): the
        // system call it was making.
        if (e.signo == SIGILL && PatchedSiteAt(t, t.regs.ip() - 5)) {
          t.regs.gp.rip += 2;
          t.regs.gp.rcx = t.regs.gp.rip;
          t.regs.gp.r11 = t.regs.gp.eflags;
          t.regs.gp.orig_rax = t.regs.gp.rax & 0xffffffffu;
          t.regs.gp.rax = static_cast<uint64_t>(-ENOSYS);
          ServeSyscall(t, AUDIT_ARCH_X86_64);
          return;
        }
        // A write to memory a fork left shared copy-on-write: the page is
        // the task's own now; the instruction runs again.
        if (e.signo == SIGSEGV && e.info.si_code == SEGV_ACCERR) {
          bool already = false;
          if (auto* mm = Mm(*t.proc); mm && mm->ResolveWriteFault(e.fault_addr, &already)) {
            // Already writable: once, for the race; the same instruction
            // faulting there again is a real fault.
            const uint64_t key = (e.fault_addr & ~uint64_t{4095}) ^ t.regs.ip();
            if (!already || t.refault_key != key) {
              t.refault_key = already ? key : 0;
              return;
            }
          }
          t.refault_key = 0;
        }
        siginfo_t si = e.info;
        si.si_signo = e.signo;
        ForceSignal(t, e.signo, si);
        return;
      }
      case platform::EventKind::kSignal:      // a host signal sent to the stub: nothing for the app
      case platform::EventKind::kInterrupted:  // a signal is due: DeliverSignals runs next
        return;
      case platform::EventKind::kExited:
        // The stub died under the task (killed from outside).
        if (!t.proc->zombie) {
          spdlog::warn("process {}: its stub died ({})", t.proc->pid, platform::DescribeWaitStatus(e.wait_status));
          ExitProcess(*t.proc, WIFSIGNALED(e.wait_status) ? WTERMSIG(e.wait_status) : SIGKILL, false);
        }
        return;
    }
  }

  // ------------------------------------------------------------ signals

  bool Ignored(Process& p, int sig) {
    if (sig == SIGKILL || sig == SIGSTOP) return false;
    const KSigaction& a = (*p.act)[sig];
    if (a.handler == reinterpret_cast<uint64_t>(SIG_IGN)) return true;
    if (a.handler != reinterpret_cast<uint64_t>(SIG_DFL)) return false;
    auto d = DefaultFor(sig);
    return d == DefaultAction::kIgnore || d == DefaultAction::kCont;
  }

  void QueueSignal(Task& t, int sig, const siginfo_t& si) {
    const bool blocked = t.sigmask & Bit(sig);
    // A blocked one is queued even for init (sigtimedwait may take it); if
    // it is unblocked with no handler, DeliverSignals drops it then.
    if (!blocked && InitProtected(*t.proc, sig)) return;
    if (Ignored(*t.proc, sig) && !blocked) return;
    if (t.pending & Bit(sig)) {
      // Standard signals: one of each pending. Real-time ones queue, up to
      // a limit (RLIMIT_SIGPENDING's role; past it they are lost).
      if (sig >= kSigRtFirst && t.rt_queued < kMaxQueuedSignals) {
        t.rt_queue[sig].push_back(si);
        ++t.rt_queued;
      }
      return;
    }
    t.pending |= Bit(sig);
    t.info[sig] = si;
    Kick(t);
  }

  // Takes the first pending instance of `sig` (which must be pending): a
  // queued real-time signal leaves the next one pending.
  siginfo_t TakeSignal(Task& t, int sig) {
    const siginfo_t si = t.info[sig];
    auto q = t.rt_queue.find(sig);
    if (q != t.rt_queue.end() && !q->second.empty()) {
      t.info[sig] = q->second.front();
      q->second.pop_front();
      --t.rt_queued;
      if (q->second.empty()) t.rt_queue.erase(q);
    } else {
      t.pending &= ~Bit(sig);
    }
    return si;
  }

  // Drops every pending instance of `sig` (ignored now).
  static void DiscardSignal(Task& t, int sig) {
    t.pending &= ~Bit(sig);
    auto q = t.rt_queue.find(sig);
    if (q != t.rt_queue.end()) {
      t.rt_queued -= q->second.size();
      t.rt_queue.erase(q);
    }
  }

  void Kick(Task& t) {
    spdlog::trace("task {}: kick (state {}, pending {:#x}, mask {:#x})", t.tid, static_cast<int>(t.state), t.pending, t.sigmask);
    if (t.state == Task::State::kRunning && (t.pending & ~t.sigmask)) t.ctx->Interrupt();
    if (t.state == Task::State::kBlocked) Unpark(t);
    if ((t.pending & Bit(SIGKILL)) && t.proc->stopped) ContinueProcess(*t.proc, false);
  }

  static siginfo_t Info(int sig, int code, int pid) {
    siginfo_t si;
    std::memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = code;
    si.si_pid = pid;
    si.si_uid = 0;
    return si;
  }

  void SignalProcess(Process& p, int sig, int code, int from_pid, const siginfo_t* info = nullptr) {
    if (p.zombie || sig <= 0 || sig > 64 || p.tasks.empty()) return;
    siginfo_t si = info ? *info : Info(sig, code, from_pid);
    if (sig == SIGCONT) ContinueProcess(p, true);
    if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
      for (Task* t : p.tasks) t->pending &= ~Bit(SIGCONT);
    }
    if (sig == SIGCONT) {
      for (Task* t : p.tasks) t->pending &= ~(Bit(SIGSTOP) | Bit(SIGTSTP) | Bit(SIGTTIN) | Bit(SIGTTOU));
    }
    Task* target = p.tasks.front();
    for (Task* t : p.tasks) {
      if (!(t->sigmask & Bit(sig))) {
        target = t;
        break;
      }
    }
    QueueSignal(*target, sig, si);
  }

  void NotifyParent(Process& p, int code, int status) {
    auto it = procs_.find(p.ppid);
    if (it == procs_.end() || it->second->zombie) return;
    Process& parent = *it->second;
    const KSigaction& a = (*parent.act)[SIGCHLD];
    if ((code == CLD_STOPPED || code == CLD_CONTINUED) && (a.flags & SA_NOCLDSTOP)) return;
    siginfo_t si = Info(SIGCHLD, code, p.pid);
    si.si_status = status;
    SignalProcess(parent, SIGCHLD, code, p.pid, &si);
  }

  void StopProcess(Process& p, int sig) {
    if (p.stopped) return;
    p.stopped = true;
    p.report_stop = true;
    p.report_cont = false;
    p.stop_sig = sig;
    for (Task* t : p.tasks) {
      if (t->state == Task::State::kRunning) t->ctx->Interrupt();
      if (t->state == Task::State::kRunnable) t->state = Task::State::kStopped;
    }
    NotifyParent(p, CLD_STOPPED, sig);
  }

  void ContinueProcess(Process& p, bool notify) {
    if (!p.stopped) return;
    p.stopped = false;
    p.report_stop = false;
    p.report_cont = true;
    for (Task* t : p.tasks) {
      if (t->state == Task::State::kStopped) MakeRunnable(*t);
    }
    if (notify) NotifyParent(p, CLD_CONTINUED, SIGCONT);
  }

  bool HasDeliverable(Task& t) {
    uint64_t d = t.pending & ~t.sigmask;
    while (d) {
      int sig = __builtin_ctzll(d) + 1;
      if (!Ignored(*t.proc, sig)) return true;
      DiscardSignal(t, sig);  // ignored by now
      d &= ~Bit(sig);
    }
    return false;
  }

  static bool Restartable(long nr) {
    switch (nr) {
      case SYS_read: case SYS_write: case SYS_readv: case SYS_writev: case SYS_pread64:
      case SYS_pwrite64: case SYS_wait4: case SYS_waitid: case SYS_futex: case SYS_ioctl:
      case SYS_fcntl: case SYS_open: case SYS_openat: case SYS_accept: case SYS_accept4:
      case SYS_connect: case SYS_recvfrom: case SYS_sendto: case SYS_recvmsg: case SYS_sendmsg:
      case SYS_flock: case SYS_sendfile: case SYS_splice: case SYS_tee: case SYS_copy_file_range:
        return true;
      default:
        return false;
    }
  }

  // A waiting call meets a signal: EINTR, or a restart after the handler
  // (SA_RESTART), or a restart outright when no handler runs.
  void InterruptCall(Task& t) {
    uint64_t d = t.pending & ~t.sigmask;
    int sig = (d & Bit(SIGKILL)) ? SIGKILL : __builtin_ctzll(d) + 1;
    const KSigaction& a = (*t.proc->act)[sig];
    const long nr = t.regs.syscall_nr();
    const bool handler = a.handler > 1;
    FutexDequeue(t);
    t.futex_waiting = false;
    if (!handler || ((a.flags & SA_RESTART) && Restartable(nr))) {
      t.regs.gp.rip -= 2;  // back onto the `syscall` instruction
      t.regs.gp.rax = static_cast<uint64_t>(nr);
      Complete(t, kNoReturn);
    } else {
      Complete(t, -EINTR);
    }
  }

  // Synchronous faults: a blocked or ignored signal is forced to its default.
  void ForceSignal(Task& t, int sig, const siginfo_t& si) {
    KSigaction& a = (*t.proc->act)[sig];
    if (a.handler == reinterpret_cast<uint64_t>(SIG_IGN) || (t.sigmask & Bit(sig))) {
      a = KSigaction{};
      t.sigmask &= ~Bit(sig);
    }
    t.pending |= Bit(sig);
    t.forced |= Bit(sig);
    t.info[sig] = si;
  }

  // Before a task runs: act on its pending signals. False if it must not run.
  bool DeliverSignals(Task& t) {
    Process& p = *t.proc;
    for (;;) {
      uint64_t d = t.pending & ~t.sigmask;
      if (!d) break;
      int sig = (d & Bit(SIGKILL)) ? SIGKILL : (d & Bit(SIGSTOP)) ? SIGSTOP : __builtin_ctzll(d) + 1;
      siginfo_t si = TakeSignal(t, sig);
      KSigaction a = (*p.act)[sig];
      const bool forced = t.forced & Bit(sig);
      t.forced &= ~Bit(sig);
      if (!forced && InitProtected(p, sig)) continue;
      if (sig == SIGKILL) {
        ExitProcess(p, SIGKILL, false);
        return false;
      }
      if (a.handler == reinterpret_cast<uint64_t>(SIG_IGN)) continue;
      if (a.handler == reinterpret_cast<uint64_t>(SIG_DFL) || sig == SIGSTOP) {
        switch (DefaultFor(sig)) {
          case DefaultAction::kIgnore:
          case DefaultAction::kCont:
            continue;
          case DefaultAction::kStop:
            StopProcess(p, sig);
            t.state = Task::State::kStopped;
            return false;
          case DefaultAction::kTerm:
            ExitProcess(p, sig, false);
            return false;
        }
      }
      if (!SetupFrame(t, sig, si, a)) {
        spdlog::info("process {}: cannot build the frame for signal {}: killed by SIGSEGV", p.pid, sig);
        ExitProcess(p, SIGSEGV, false);
        return false;
      }
      if (a.flags & SA_RESETHAND) (*p.act)[sig] = KSigaction{};
      // On, as Linux does before returning to user mode: another pending
      // signal the new mask lets through gets its frame on top of this one
      // (and its handler runs first).
    }
    if (t.restore_mask) {
      t.sigmask = t.saved_mask;
      t.restore_mask = false;
    }
    return true;
  }

  bool SetupFrame(Task& t, int sig, const siginfo_t& si, const KSigaction& a) {
    if (!(a.flags & kSaRestorer)) return false;  // x86-64 requires a restorer
    auto& g = t.regs.gp;
    uint64_t sp = g.rsp;
    const bool has_alt = !(t.altstack.ss_flags & SS_DISABLE) && t.altstack.ss_size > 0;
    const uint64_t alt_lo = reinterpret_cast<uint64_t>(t.altstack.ss_sp);
    const bool on_alt = has_alt && sp > alt_lo && sp <= alt_lo + t.altstack.ss_size;
    if ((a.flags & SA_ONSTACK) && has_alt && !on_alt) {
      sp = alt_lo + t.altstack.ss_size;
    } else {
      sp -= 128;  // the red zone
    }
    user_fpregs_struct fp{};
    const bool have_fp = t.ctx->GetFpRegs(&fp);
    sp -= sizeof fp;
    sp &= ~63ull;
    const uint64_t fp_addr = sp;
    sp -= sizeof(RtSigframe);
    sp = (sp & ~15ull) - 8;  // as after a call: (%rsp + 8) is 16-aligned
    RtSigframe f;
    std::memset(&f, 0, sizeof f);
    f.pretcode = a.restorer;
    f.uc.uc_stack = t.altstack;
    f.uc.uc_stack.ss_flags = has_alt ? (on_alt ? SS_ONSTACK : 0) : SS_DISABLE;
    f.uc.r8 = g.r8; f.uc.r9 = g.r9; f.uc.r10 = g.r10; f.uc.r11 = g.r11;
    f.uc.r12 = g.r12; f.uc.r13 = g.r13; f.uc.r14 = g.r14; f.uc.r15 = g.r15;
    f.uc.rdi = g.rdi; f.uc.rsi = g.rsi; f.uc.rbp = g.rbp; f.uc.rbx = g.rbx;
    f.uc.rdx = g.rdx; f.uc.rax = g.rax; f.uc.rcx = g.rcx; f.uc.rsp = g.rsp;
    f.uc.rip = g.rip; f.uc.eflags = g.eflags;
    f.uc.cs = platform::kUserCs;
    f.uc.ss = platform::kUserDs;
    if (sig == SIGSEGV || sig == SIGBUS) f.uc.cr2 = reinterpret_cast<uint64_t>(si.si_addr);
    f.uc.fpstate = have_fp ? fp_addr : 0;
    f.uc.uc_sigmask = t.restore_mask ? t.saved_mask : t.sigmask;
    f.uc.oldmask = f.uc.uc_sigmask;
    f.info = si;
    auto& as = *t.proc->as;
    if (have_fp && !as.CopyOut(fp_addr, &fp, sizeof fp)) return false;
    if (!as.CopyOut(sp, &f, sizeof f)) return false;
    g.rsp = sp;
    g.rip = a.handler;
    g.rdi = static_cast<uint64_t>(sig);
    g.rsi = sp + offsetof(RtSigframe, info);
    g.rdx = sp + offsetof(RtSigframe, uc);
    g.rax = 0;
    g.eflags &= ~0x500ull;  // DF, TF
    t.sigmask = f.uc.uc_sigmask | a.mask | ((a.flags & SA_NODEFER) ? 0 : Bit(sig));
    t.sigmask &= ~kUnblockable;
    t.restore_mask = false;
    return true;
  }

  int64_t Sigreturn(Task& t) {
    auto& g = t.regs.gp;
    KUcontext uc;
    if (!In(t, g.rsp, &uc)) {
      ExitProcess(*t.proc, SIGSEGV, false);
      return kGone;
    }
    g.r8 = uc.r8; g.r9 = uc.r9; g.r10 = uc.r10; g.r11 = uc.r11;
    g.r12 = uc.r12; g.r13 = uc.r13; g.r14 = uc.r14; g.r15 = uc.r15;
    g.rdi = uc.rdi; g.rsi = uc.rsi; g.rbp = uc.rbp; g.rbx = uc.rbx;
    g.rdx = uc.rdx; g.rax = uc.rax; g.rcx = uc.rcx; g.rsp = uc.rsp;
    g.rip = uc.rip;
    constexpr uint64_t kUserFlags = 0x40DD5;  // CF PF AF ZF SF TF DF OF AC
    g.eflags = (g.eflags & ~kUserFlags) | (uc.eflags & kUserFlags);
    g.cs = platform::kUserCs;
    g.ss = platform::kUserDs;
    if (uc.fpstate) {
      user_fpregs_struct fp;
      if (!t.proc->as->CopyIn(uc.fpstate, &fp, sizeof fp)) {
        ExitProcess(*t.proc, SIGSEGV, false);
        return kGone;
      }
      fp.mxcsr &= 0xffff;  // reserved bits would make the host refuse the state
      t.ctx->SetFpRegs(fp);
    }
    t.sigmask = uc.uc_sigmask & ~kUnblockable;
    return kNoReturn;
  }

  // ------------------------------------------------------------ processes

  void ExitProcess(Process& p, int code_or_sig, bool normal) {
    locks_.ExitedProcess(p.pid);
    if (p.zombie) return;
    const int status = normal ? ((code_or_sig & 0xff) << 8) : (code_or_sig & 0x7f);
    std::vector<Task*> tasks = p.tasks;
    for (Task* t : tasks) ReleaseRobustList(*t);  // shared locks outlive the process
    for (Task* t : tasks) RemoveTask(t);
    p.zombie = true;
    p.wait_status = status;
    p.itimer_deadline = -1;
    p.vfork_done = true;
    if (p.as && p.as.use_count() == 1) ShmDetachAll(p.as.get());
    if (p.as) dead_as_.push_back(std::move(p.as));
    p.fds.reset();
    for (auto& [pid, c] : procs_) {
      if (c->ppid == p.pid && c.get() != &p) {
        c->ppid = 1;
        c->exit_signal = SIGCHLD;  // as Linux: nobody slays init with an odd exit signal
      }
    }
    if (p.pid == 1) {
      init_exited_ = true;
      return;
    }
    auto it = procs_.find(p.ppid);
    if (it != procs_.end() && !it->second->zombie) {
      const KSigaction& a = (*it->second->act)[SIGCHLD];
      if (a.handler == reinterpret_cast<uint64_t>(SIG_IGN) || (a.flags & SA_NOCLDWAIT)) {
        p.ppid = -1;  // nobody will wait: reaped at once (below, by ReapOrphans)
      } else if (p.exit_signal > 0) {
        siginfo_t si = Info(p.exit_signal, normal ? CLD_EXITED : CLD_KILLED, p.pid);
        si.si_status = normal ? (code_or_sig & 0xff) : code_or_sig;
        SignalProcess(*it->second, p.exit_signal, si.si_code, p.pid, &si);
      }
    }
  }

  // Zombies nobody will wait for.
  void ReapOrphans() {
    for (auto it = procs_.begin(); it != procs_.end();) {
      if (it->second->zombie && it->second->ppid == -1) {
        it = procs_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // ------------------------------------------------------------ exec

  struct Loaded {
    Registers regs;
    uint64_t brk = 0;
    uint64_t mmap_next = kMmapTop;
    std::string exe;
    std::vector<std::string> argv;
  };

  // Bytes of an executable being loaded: from the gofer, or a tmpfs file.
  long ReadFileAt(File& f, int64_t off, std::span<uint8_t> out) {
    if (f.kind == File::Kind::kTmpfs) return f.tmpfs->Read(*f.tnode, static_cast<uint64_t>(off), out.data(), out.size());
    return gofer_.Pread(f.handle, off, out);
  }

  // Loads `path` into the fresh address space `as`. 0, -errno (nothing
  // changed for the caller), or kFatalExec.
  int Load(Process& p, platform::AddressSpace& as, const std::string& path, const std::vector<std::string>& argv,
           const std::vector<std::string>& envp, Loaded* out, std::string* error) {
    loader::ExecRequest er;
    er.filename = path;
    er.argv = argv;
    er.envp = envp;
    er.aux.hwcap = getauxval(AT_HWCAP);
    er.aux.hwcap2 = getauxval(AT_HWCAP2);
    if (unsigned long m = getauxval(AT_MINSIGSTKSZ)) er.aux.minsigstksz = m;
    // The trap platform keeps the host's vDSO in every stub: clock_gettime,
    // gettimeofday, time and getcpu then run without a trap.
    if (uint64_t vdso = platform::TrapPlatformVdso(platform_)) er.aux.vdso = vdso;
    if (getrandom(er.random.data(), er.random.size(), 0) != static_cast<ssize_t>(er.random.size())) return -EIO;
    loader::ExecPlanner planner(er);
    std::map<loader::FileRole, std::shared_ptr<File>> files;
    std::shared_ptr<File> last;
    std::vector<uint8_t> buf;
    for (;;) {
      switch (planner.step()) {
        case loader::ExecPlanner::Step::kOpen: {
          auto f = std::make_shared<File>();
          f->path = Absolute(p, planner.open_path());
          std::string trel;
          int rc;
          if (Tmpfs* fs = TmpfsFor(f->path, &trel)) {
            Tmpfs::NodePtr node;
            rc = fs->Lookup(trel, true, &node);
            if (rc == 0) {
              f->kind = File::Kind::kTmpfs;
              f->tmpfs = fs;
              f->tnode = node;
              fs->Stat(*node, &f->st);
            }
          } else if (IsVirtual(f->path)) {
            rc = -EACCES;  // exec from /proc or /dev: not served
          } else {
            rc = gofer_.Open(f->path, O_RDONLY, 0, &f->handle, &f->st);
            if (rc == 0) {
              f->kind = File::Kind::kGofer;
              f->generation = gofer_.generation();
              f->gofer = &gofer_;
            }
          }
          if (rc == 0 && S_ISDIR(f->st.st_mode)) rc = -EACCES;
          if (rc == 0 && !S_ISREG(f->st.st_mode)) rc = -EACCES;
          if (rc == 0 && !(f->st.st_mode & 0111)) rc = -EACCES;
          if (rc < 0) {
            planner.OpenFailed(-rc);
            break;
          }
          files[planner.open_role()] = f;
          last = f;
          planner.Opened(static_cast<uint64_t>(f->st.st_size));
          break;
        }
        case loader::ExecPlanner::Step::kRead: {
          buf.assign(planner.read_length(), 0);
          uint64_t got = 0;
          int err = 0;
          while (got < buf.size()) {
            long n = ReadFileAt(*last, static_cast<int64_t>(planner.read_offset() + got),
                                  {buf.data() + got, std::min(kChunk, buf.size() - got)});
            if (n < 0) { err = static_cast<int>(-n); break; }
            if (n == 0) break;
            got += static_cast<uint64_t>(n);
          }
          if (err) planner.ReadFailed(err);
          else planner.ReadDone({buf.data(), got});
          break;
        }
        case loader::ExecPlanner::Step::kFailed:
          *error = path + ": " + planner.error().message;
          if (planner.error().fatal) return kFatalExec;
          return -planner.error().err;
        case loader::ExecPlanner::Step::kDone: {
          loader::ExecImage img = planner.TakeImage();
          auto* mm = dynamic_cast<MemoryAddressSpace*>(&as);
          for (const auto& m : img.plan.mappings) {
            if (mm && cache_ && m.file_bytes && !(m.prot & PROT_WRITE)) {
              // Read-only segment (text, rodata): the file cache's pages,
              // shared by every process that maps this file.
              auto& src = files[m.source == loader::MapSource::kInterpreter ? loader::FileRole::kInterpreter
                                                                            : loader::FileRole::kExecutable];
              if (!src) { *error = "no file for a mapping"; return -EIO; }
              long err = 0;
              auto chunk = CachedPages(*src, src->st, m.file_offset, m.file_bytes, &err);
              // (Too large to cache, or no room: a copy of its own, below.)
              if (!chunk && err != -EFBIG && err != -ENOMEM) {
                *error = "reading the image failed";
                return static_cast<int>(err);
              }
              if (chunk) {
                const uint64_t flen = PageUp(m.file_bytes);
                long r = mm->MapCow(m.addr, flen, m.prot, chunk, m.file_offset, src->path);
                if (r < 0) { *error = "mapping the image failed"; return static_cast<int>(r); }
                if (m.len > flen) {
                  r = as.Mmap(m.addr + flen, m.len - flen, m.prot, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
                  if (r < 0) { *error = "mapping the image failed"; return static_cast<int>(r); }
                }
                continue;
              }
            }
            long r = as.Mmap(m.addr, m.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
            if (r < 0) { *error = "mapping the image failed"; return static_cast<int>(r); }
            if (m.file_bytes) {
              auto& src = files[m.source == loader::MapSource::kInterpreter ? loader::FileRole::kInterpreter
                                                                            : loader::FileRole::kExecutable];
              if (!src) { *error = "no file for a mapping"; return -EIO; }
              for (uint64_t done = 0; done < m.file_bytes;) {
                size_t want = std::min<uint64_t>(kChunk, m.file_bytes - done);
                buf.resize(want);
                long n = ReadFileAt(*src, static_cast<int64_t>(m.file_offset + done), {buf.data(), want});
                if (n <= 0) { *error = "reading the image failed"; return n < 0 ? static_cast<int>(n) : -EIO; }
                if (!as.CopyOut(m.addr + done, buf.data(), static_cast<size_t>(n))) return -EFAULT;
                done += static_cast<uint64_t>(n);
              }
            }
            if (m.prot != (PROT_READ | PROT_WRITE)) as.Mprotect(m.addr, m.len, m.prot);
            if (auto* mm = dynamic_cast<MemoryAddressSpace*>(&as)) {
              auto& src = files[m.source == loader::MapSource::kInterpreter ? loader::FileRole::kInterpreter
                                                                            : loader::FileRole::kExecutable];
              if (src) mm->Name(m.addr, m.len, src->path);
            }
          }
          const auto& st = img.stack;
          int sprot = PROT_READ | PROT_WRITE | (img.plan.executable_stack ? PROT_EXEC : 0);
          long r = as.Mmap(st.vma_start, st.top - st.vma_start, sprot, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
          if (r < 0) { *error = "mapping the stack failed"; return static_cast<int>(r); }
          if (!as.CopyOut(st.rsp, st.bytes.data(), st.bytes.size())) return -EFAULT;
          if (auto* mm = dynamic_cast<MemoryAddressSpace*>(&as)) mm->Name(st.vma_start, st.top - st.vma_start, "[stack]");
          out->brk = img.plan.brk;
          out->mmap_next = std::min<uint64_t>(kMmapTop, st.vma_start - (1ull << 30));
          out->regs = Registers::ForEntry(img.plan.entry, st.rsp);
          out->exe = img.exe_path.empty() ? path : Absolute(p, img.exe_path);
          out->argv = img.argv;
          return 0;
        }
      }
    }
  }

  // Loads into a new address space and, on success, makes it the process's.
  int ExecInto(Task& t, const std::string& path, const std::vector<std::string>& argv,
               const std::vector<std::string>& envp, std::string* error) {
    std::shared_ptr<platform::AddressSpace> as;
    try {
      as = NewAddressSpace();
    } catch (const std::exception& e) {
      *error = std::string("cannot create an address space: ") + e.what();
      return -ENOMEM;
    }
    Loaded l;
    int rc = Load(*t.proc, *as, path, argv, envp, &l, error);
    if (rc < 0) return rc;
    Process& p = *t.proc;
    // Past the point of no return: the other threads go, the image changes.
    std::vector<Task*> others;
    for (Task* o : p.tasks) if (o != &t) others.push_back(o);
    for (Task* o : others) RemoveTask(o);
    if (p.as && p.as.use_count() == 1) ShmDetachAll(p.as.get());
    if (p.as) dead_as_.push_back(std::move(p.as));
    p.as = std::move(as);
    p.brk_start = p.brk = p.brk_mapped = l.brk;
    p.mmap_next = l.mmap_next;
    p.exe = l.exe;
    p.argv = l.argv;
    t.regs = l.regs;
    if (p.fds.use_count() > 1) p.fds = std::make_shared<FdTable>(*p.fds);
    for (auto it = p.fds->begin(); it != p.fds->end();) {
      if (it->second.cloexec) it = p.fds->erase(it);
      else ++it;
    }
    if (p.act.use_count() > 1) p.act = std::make_shared<std::array<KSigaction, 65>>(*p.act);
    for (auto& a : *p.act) {
      if (a.handler != reinterpret_cast<uint64_t>(SIG_IGN)) a = KSigaction{};
    }
    t.altstack = {nullptr, SS_DISABLE, 0};
    t.clear_tid = 0;
    p.timers.clear();  // POSIX timers do not survive execve
    p.execed = true;
    p.vfork_done = true;
    return 0;
  }

  int ExecFirst(Task& t, const RunRequest& req, std::string* error) {
    std::string path = req.argv[0];
    if (path.find('/') == std::string::npos) {
      std::string search = kDefaultPath;
      for (auto& e : req.envp) if (e.rfind("PATH=", 0) == 0) search = e.substr(5);
      std::string found;
      size_t start = 0;
      while (start <= search.size() && found.empty()) {
        size_t end = search.find(':', start);
        if (end == std::string::npos) end = search.size();
        std::string dir = search.substr(start, end - start);
        std::string cand = (dir.empty() ? "." : dir) + "/" + path;
        struct stat st;
        if (StatPath(t, Absolute(*t.proc, cand), true, &st) == 0 && S_ISREG(st.st_mode)) found = cand;
        start = end + 1;
      }
      if (found.empty()) {
        *error = path + ": command not found";
        return -ENOENT;
      }
      path = found;
    }
    return ExecInto(t, path, req.argv, req.envp, error);
  }

  // Reads a NULL-terminated array of strings (argv, envp).
  int64_t ReadStrings(Task& t, uint64_t addr, std::vector<std::string>* out, size_t* total) {
    if (addr == 0) return 0;
    for (size_t i = 0;; ++i) {
      uint64_t ptr;
      if (!In(t, addr + i * 8, &ptr)) return -EFAULT;
      if (ptr == 0) return 0;
      if (i >= 0x7fffffff / 8) return -E2BIG;
      auto s = t.proc->as->ReadCString(ptr, 128 * 1024);  // MAX_ARG_STRLEN
      if (!s) {
        char probe;
        return t.proc->as->CopyIn(ptr, &probe, 1) ? -E2BIG : -EFAULT;
      }
      *total += s->size() + 1 + 8;
      if (*total > kMaxArgBytes) return -E2BIG;
      out->push_back(std::move(*s));
    }
  }

  int64_t Execve(Task& t, int dirfd, uint64_t path_addr, uint64_t argv_addr, uint64_t envp_addr, int flags) {
    if (flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) return -EINVAL;
    std::string path;
    if (int64_t rc = PathAt(t, dirfd, path_addr, &path, (flags & AT_EMPTY_PATH) != 0); rc < 0) return rc;
    std::vector<std::string> argv, envp;
    size_t total = 0;
    if (int64_t rc = ReadStrings(t, argv_addr, &argv, &total); rc < 0) return rc;
    if (int64_t rc = ReadStrings(t, envp_addr, &envp, &total); rc < 0) return rc;
    std::string why;
    int rc = ExecInto(t, path, argv, envp, &why);
    if (rc == kFatalExec) {
      spdlog::info("process {}: execve {}: {} (killed by SIGSEGV)", t.proc->pid, path, why);
      ExitProcess(*t.proc, SIGSEGV, false);
      return kGone;
    }
    if (rc < 0) return rc;
    return kNoReturn;
  }

  // ------------------------------------------------------------ clone, wait

  int64_t Clone(Task& t, uint64_t flags, uint64_t newsp, uint64_t ptid, uint64_t ctid, uint64_t tls) {
    if (t.retry) {  // a vfork parent waits for its child to exec or exit
      auto it = procs_.find(t.vfork_child);
      if (it != procs_.end() && !it->second->vfork_done) return kBlock;
      int child = t.vfork_child;
      t.vfork_child = 0;
      return child;
    }
    const uint64_t known = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_PIDFD | CLONE_PTRACE |
                           CLONE_VFORK | CLONE_PARENT | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
                           CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_DETACHED | CLONE_UNTRACED |
                           CLONE_CHILD_SETTID | CSIGNAL | CLONE_IO;
    if (flags & ~known) return -EINVAL;  // namespaces and the rest: not in a sandbox
    if ((flags & CLONE_THREAD) && !(flags & CLONE_SIGHAND)) return -EINVAL;
    if ((flags & CLONE_SIGHAND) && !(flags & CLONE_VM)) return -EINVAL;
    if (flags & CLONE_PIDFD) return -EINVAL;  // no pidfds yet
    if ((flags & CLONE_PARENT) && t.proc->pid == 1) return -EINVAL;  // init has no parent to share
    if ((flags & CLONE_SETTLS) && tls >= platform::kTaskSizeMax) return -EPERM;
    const int pid = AllocPid();
    if (pid < 0) return pid;
    Process& parent = *t.proc;
    Task* c = nullptr;
    if (flags & CLONE_THREAD) {
      c = NewTask(&parent, pid);
    } else {
      // CLONE_VM (vfork, posix_spawn): a new process in the same address
      // space, run by another thread of the same stub, until it execs (which
      // gives it an address space of its own) or exits. Otherwise a copy.
      std::shared_ptr<platform::AddressSpace> as;
      if (flags & CLONE_VM) {
        as = parent.as;
      } else {
        try {
          as = parent.as->Fork();
        } catch (const std::exception& e) {
          spdlog::warn("process {}: fork failed: {}", parent.pid, e.what());
          return -EAGAIN;
        }
        ShmForked(parent.as.get(), as.get());
      }
      auto proc = std::make_unique<Process>();
      Process* p = proc.get();
      p->pid = pid;
      p->ppid = (flags & CLONE_PARENT) ? parent.ppid : parent.pid;
      p->pgid = parent.pgid;
      p->sid = parent.sid;
      p->as = std::move(as);
      p->fds = (flags & CLONE_FILES) ? parent.fds : std::make_shared<FdTable>(*parent.fds);
      p->cwd = parent.cwd;
      p->umask = parent.umask;
      p->rlim = parent.rlim;
      p->act = (flags & CLONE_SIGHAND) ? parent.act : std::make_shared<std::array<KSigaction, 65>>(*parent.act);
      p->brk_start = parent.brk_start;
      p->brk = parent.brk;
      p->brk_mapped = parent.brk_mapped;
      p->mmap_next = parent.mmap_next;
      p->exe = parent.exe;
      p->argv = parent.argv;
      // As Linux: a CLONE_PARENT child tells its (new) parent with the
      // caller's own exit signal, not one of its choosing.
      p->exit_signal = (flags & CLONE_PARENT) ? parent.exit_signal : static_cast<int>(flags & CSIGNAL);
      procs_[pid] = std::move(proc);
      ++res_->processes;
      c = NewTask(p, pid);
    }
    c->regs = t.regs;
    c->regs.set_syscall_return(0);
    if (newsp) c->regs.gp.rsp = newsp;
    if (flags & CLONE_SETTLS) c->regs.gp.fs_base = tls;
    c->sigmask = t.sigmask;
    c->altstack = (flags & CLONE_VM) && !(flags & CLONE_VFORK) ? stack_t{nullptr, SS_DISABLE, 0} : t.altstack;
    const int32_t tid32 = pid;
    if (flags & CLONE_PARENT_SETTID) Out(t, ptid, tid32);
    if (flags & CLONE_CHILD_SETTID) c->proc->as->CopyOut(ctid, &tid32, 4);
    if (flags & CLONE_CHILD_CLEARTID) c->clear_tid = ctid;
    if (flags & CLONE_VM) {
      // Bound now, while this task's stub thread is stopped: the platform
      // makes the new stub thread with a call injected through it.
      c->state = Task::State::kRunning;
      c->ctx->Resume(Stub(*parent.as), &c->regs);
    }
    if (flags & CLONE_VFORK) {
      t.vfork_child = pid;
      return kBlock;
    }
    return pid;
  }

  bool WaitMatches(Task& t, Process& c, int idtype, int id) {
    if (c.ppid != t.proc->pid) return false;
    switch (idtype) {
      case P_ALL: return true;
      case P_PID: return c.pid == id;
      case P_PGID: return c.pgid == (id == 0 ? t.proc->pgid : id);
      default: return false;
    }
  }

  // wait4 and waitid. *pid_out / *status_out / *code_out describe the child.
  int64_t WaitChild(Task& t, int idtype, int id, int options, int* status_out, siginfo_t* info_out) {
    bool any = false;
    for (auto it = procs_.begin(); it != procs_.end(); ++it) {
      Process& c = *it->second;
      if (!WaitMatches(t, c, idtype, id)) continue;
      any = true;
      if (c.zombie && (options & WEXITED)) {
        const int pid = c.pid;
        const int st = c.wait_status;
        *status_out = st;
        if (info_out) {
          *info_out = Info(SIGCHLD, WIFEXITED(st) ? CLD_EXITED : CLD_KILLED, pid);
          info_out->si_status = WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st);
        }
        if (!(options & WNOWAIT)) procs_.erase(it);
        return pid;
      }
      if (c.stopped && c.report_stop && (options & WUNTRACED)) {
        if (!(options & WNOWAIT)) c.report_stop = false;
        *status_out = (c.stop_sig << 8) | 0x7f;
        if (info_out) {
          *info_out = Info(SIGCHLD, CLD_STOPPED, c.pid);
          info_out->si_status = c.stop_sig;
        }
        return c.pid;
      }
      if (c.report_cont && (options & WCONTINUED)) {
        if (!(options & WNOWAIT)) c.report_cont = false;
        *status_out = 0xffff;
        if (info_out) {
          *info_out = Info(SIGCHLD, CLD_CONTINUED, c.pid);
          info_out->si_status = SIGCONT;
        }
        return c.pid;
      }
    }
    if (!any) return -ECHILD;
    if (options & WNOHANG) return 0;
    return kBlock;
  }

  int64_t Kill(Task& t, int pid, int sig) {
    if (sig < 0 || sig > 64) return -EINVAL;
    if (pid == INT32_MIN) return -ESRCH;  // as Linux: -INT_MIN names nothing
    std::vector<Process*> targets;
    if (pid > 0) {
      auto it = procs_.find(pid);
      if (it == procs_.end()) {
        auto tt = tasks_.find(pid);  // a thread id names its process too
        if (tt == tasks_.end()) return -ESRCH;
        targets.push_back(tt->second->proc);
      } else {
        targets.push_back(it->second.get());
      }
    } else {
      const int pgid = pid == 0 ? t.proc->pgid : -pid;
      for (auto& [id, p] : procs_) {
        if (p->zombie) continue;
        if (pid == -1 ? (p->pid != 1 && p.get() != t.proc) : p->pgid == pgid) targets.push_back(p.get());
      }
      if (targets.empty()) return -ESRCH;
    }
    for (Process* p : targets) {
      if (sig != 0) SignalProcess(*p, sig, SI_USER, t.proc->pid);
    }
    return 0;
  }

  // As in a pid namespace: the sandbox's init only receives, from inside,
  // the signals it has a handler for (SIGKILL and SIGSTOP never).
  bool InitProtected(Process& p, int sig) {
    if (p.pid != 1) return false;
    return sig == SIGKILL || sig == SIGSTOP || (*p.act)[sig].handler == reinterpret_cast<uint64_t>(SIG_DFL);
  }

  int64_t Tgkill(Task& t, int tgid, int tid, int sig) {
    if (sig < 0 || sig > 64 || tid <= 0 || (tgid != -1 && tgid <= 0)) return -EINVAL;
    auto it = tasks_.find(tid);
    if (it == tasks_.end() || (tgid != -1 && it->second->proc->pid != tgid)) return -ESRCH;
    if (sig == 0) return 0;
    Task& target = *it->second;
    siginfo_t si = Info(sig, SI_TKILL, t.proc->pid);
    if (sig == SIGCONT) ContinueProcess(*target.proc, true);
    QueueSignal(target, sig, si);
    return 0;
  }

  // rt_sigqueueinfo / rt_tgsigqueueinfo: the caller's siginfo travels
  // (sigqueue's value). As Linux: only to itself may a process send codes
  // that claim to come from the kernel or from tkill.
  int64_t SigqueueInfo(Task& t, int tgid, int tid, int sig, uint64_t uinfo) {
    if (sig < 0 || sig > 64 || tgid <= 0 || (tid != -1 && tid <= 0)) return -EINVAL;
    siginfo_t si;
    if (!In(t, uinfo, &si)) return -EFAULT;
    Process* proc = nullptr;
    Task* task = nullptr;
    if (tid == -1) {
      auto it = procs_.find(tgid);
      if (it == procs_.end() || it->second->zombie) return -ESRCH;
      proc = it->second.get();
    } else {
      auto it = tasks_.find(tid);
      if (it == tasks_.end() || it->second->proc->pid != tgid) return -ESRCH;
      task = it->second.get();
      proc = task->proc;
    }
    if ((si.si_code >= 0 || si.si_code == SI_TKILL) && proc != t.proc) return -EPERM;
    if (sig == 0) return 0;
    si.si_signo = sig;
    if (task == nullptr) {
      SignalProcess(*proc, sig, si.si_code, t.proc->pid, &si);
    } else {
      if (sig == SIGCONT) ContinueProcess(*proc, true);
      QueueSignal(*task, sig, si);
    }
    return 0;
  }

  void ExitThread(Task& t, int code) {
    Process& p = *t.proc;
    if (p.tasks.size() <= 1) {
      ExitProcess(p, code, true);
      return;
    }
    ReleaseRobustList(t);
    if (t.clear_tid) {
      const int32_t zero = 0;
      if (p.as->CopyOut(t.clear_tid, &zero, 4)) FutexWake(p, t.clear_tid, 1, FUTEX_BITSET_MATCH_ANY);
    }
    RemoveTask(&t);
  }

  FutexKey KeyOf(Process& p, uint64_t addr) {
    if (auto* mm = Mm(p)) {
      const auto& v = mm->vmas();
      auto it = v.upper_bound(addr);
      if (it != v.begin()) {
        --it;
        if (addr < it->second.end && it->second.shared) {
          return {mem_, it->second.chunk->offset + it->second.chunk_offset + (addr - it->first)};
        }
      }
    }
    return {p.as.get(), addr};
  }

  int FutexWake(Process& p, uint64_t addr, int n, uint32_t bitset) {
    const FutexKey key = KeyOf(p, addr);
    auto it = futex_q_.find({key.space, key.addr});
    if (it == futex_q_.end()) return 0;
    int woken = 0;
    std::deque<int> keep;
    for (int tid : it->second) {
      Task* w = FindTask(tid);
      if (w == nullptr || w->state != Task::State::kBlocked || !w->futex_waiting || w->futex_woken ||
          !(w->futex_key == key)) {
        continue;  // stale
      }
      if (woken >= n || !(w->futex_bitset & bitset)) {
        keep.push_back(tid);
        continue;
      }
      w->futex_woken = true;
      Unpark(*w);
      ++woken;
    }
    if (keep.empty()) {
      futex_q_.erase(it);
    } else {
      it->second.swap(keep);
    }
    return woken;
  }

  // A dying thread's robust futexes (set_robust_list): each lock it still
  // holds gets FUTEX_OWNER_DIED and one waiter is woken, as Linux does.
  void ReleaseRobustList(Task& t) {
    if (!t.robust_head || !t.proc->as) return;
    struct {
      uint64_t next;
      int64_t futex_offset;
      uint64_t pending;
    } head;
    if (!In(t, t.robust_head, &head)) return;
    auto release = [&](uint64_t entry) {
      const uint64_t uaddr = (entry & ~1ull) + static_cast<uint64_t>(head.futex_offset);
      uint32_t w;
      if (!In(t, uaddr, &w) || (w & FUTEX_TID_MASK) != static_cast<uint32_t>(t.tid)) return;
      const uint32_t nw = (w & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
      if (Out(t, uaddr, nw)) FutexWake(*t.proc, uaddr, 1, FUTEX_BITSET_MATCH_ANY);
    };
    uint64_t entry = head.next;
    for (int limit = 2048; limit > 0 && (entry & ~1ull) != t.robust_head && entry != 0; --limit) {
      uint64_t next;
      if (!In(t, entry & ~1ull, &next)) break;
      if (entry != head.pending) release(entry);
      entry = next;
    }
    if (head.pending) release(head.pending);
    t.robust_head = 0;
  }

  int64_t Futex(Task& t) {
    const uint64_t addr = t.arg(0);
    const int op = static_cast<int>(t.arg(1)) & FUTEX_CMD_MASK;
    const uint32_t val = static_cast<uint32_t>(t.arg(2));
    if (addr % 4) return -EINVAL;
    switch (op) {
      case FUTEX_WAIT:
      case FUTEX_WAIT_BITSET: {
        if (t.retry) {
          if (t.futex_woken) {
            t.futex_waiting = false;
            return 0;
          }
          if (t.deadline >= 0 && NowNs() >= t.deadline) {
            FutexDequeue(t);
            t.futex_waiting = false;
            return -ETIMEDOUT;
          }
          return kBlock;
        }
        const uint32_t bitset = op == FUTEX_WAIT ? FUTEX_BITSET_MATCH_ANY : static_cast<uint32_t>(t.arg(5));
        if (bitset == 0) return -EINVAL;
        uint32_t cur;
        if (!In(t, addr, &cur)) return -EFAULT;
        if (cur != val) return -EAGAIN;
        t.deadline = -1;
        if (t.arg(3)) {
          timespec ts;
          if (!In(t, t.arg(3), &ts)) return -EFAULT;
          if (!ValidTs(ts)) return -EINVAL;
          if (op == FUTEX_WAIT) {
            t.deadline = NowNs() + TsNs(ts);
          } else {
            const bool realtime = static_cast<int>(t.arg(1)) & FUTEX_CLOCK_REALTIME;
            t.deadline = NowNs() + (TsNs(ts) - NowNs(realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC));
          }
        }
        t.futex_key = KeyOf(*t.proc, addr);
        t.futex_waiting = true;
        t.futex_bitset = bitset;
        FutexEnqueue(t);
        t.futex_woken = false;
        return kBlock;
      }
      case FUTEX_WAKE:
      case FUTEX_WAKE_BITSET: {
        const uint32_t bitset = op == FUTEX_WAKE ? FUTEX_BITSET_MATCH_ANY : static_cast<uint32_t>(t.arg(5));
        if (bitset == 0) return -EINVAL;
        return FutexWake(*t.proc, addr, static_cast<int>(std::min<uint32_t>(val, INT32_MAX)), bitset);
      }
      case FUTEX_REQUEUE:
      case FUTEX_CMP_REQUEUE: {
        const uint64_t addr2 = t.arg(4);
        if (addr2 % 4) return -EINVAL;
        if (op == FUTEX_CMP_REQUEUE) {
          uint32_t cur;
          if (!In(t, addr, &cur)) return -EFAULT;
          if (cur != static_cast<uint32_t>(t.arg(5))) return -EAGAIN;
        }
        int woken = FutexWake(*t.proc, addr, static_cast<int>(std::min<uint32_t>(val, INT32_MAX)), FUTEX_BITSET_MATCH_ANY);
        int64_t moved = 0;
        const int64_t limit = static_cast<int64_t>(t.arg(3) & 0x7fffffff);
        const FutexKey from = KeyOf(*t.proc, addr), to = KeyOf(*t.proc, addr2);
        auto it = futex_q_.find({from.space, from.addr});
        if (it != futex_q_.end() && !(from == to)) {
          std::deque<int> keep;
          for (int tid : it->second) {
            Task* w = FindTask(tid);
            if (w == nullptr || w->state != Task::State::kBlocked || !w->futex_waiting || w->futex_woken ||
                !(w->futex_key == from)) {
              continue;  // stale
            }
            if (moved >= limit) {
              keep.push_back(tid);
              continue;
            }
            w->futex_key = to;
            futex_q_[{to.space, to.addr}].push_back(tid);
            ++moved;
          }
          if (keep.empty()) {
            futex_q_.erase(it);
          } else {
            it->second.swap(keep);
          }
        } else if (it != futex_q_.end()) {
          moved = std::min<int64_t>(limit, static_cast<int64_t>(it->second.size()));
        }
        return woken + (op == FUTEX_CMP_REQUEUE ? moved : 0);
      }
      case FUTEX_WAKE_OP: {
        // *addr2 = *addr2 OP oparg; wake on addr; if (old CMP cmparg) wake on addr2.
        const uint64_t addr2 = t.arg(4);
        const uint32_t enc = static_cast<uint32_t>(t.arg(5));
        int opk = (enc >> 28) & 7, cmp = (enc >> 24) & 15;
        int32_t oparg = static_cast<int32_t>((enc >> 12) & 0xfff), cmparg = static_cast<int32_t>(enc & 0xfff);
        if (oparg & 0x800) oparg |= ~0xfff;
        if (cmparg & 0x800) cmparg |= ~0xfff;
        if ((enc >> 28) & 8) oparg = 1 << (oparg & 31);
        int32_t old;
        if (!In(t, addr2, &old)) return -EFAULT;
        int32_t nv;
        switch (opk) {
          case FUTEX_OP_SET: nv = oparg; break;
          case FUTEX_OP_ADD: nv = static_cast<int32_t>(static_cast<uint32_t>(old) + static_cast<uint32_t>(oparg)); break;
          case FUTEX_OP_OR: nv = old | oparg; break;
          case FUTEX_OP_ANDN: nv = old & ~oparg; break;
          case FUTEX_OP_XOR: nv = old ^ oparg; break;
          default: return -ENOSYS;
        }
        if (!Out(t, addr2, nv)) return -EFAULT;
        int woken = FutexWake(*t.proc, addr, static_cast<int>(val), FUTEX_BITSET_MATCH_ANY);
        bool c = false;
        switch (cmp) {
          case FUTEX_OP_CMP_EQ: c = old == cmparg; break;
          case FUTEX_OP_CMP_NE: c = old != cmparg; break;
          case FUTEX_OP_CMP_LT: c = old < cmparg; break;
          case FUTEX_OP_CMP_LE: c = old <= cmparg; break;
          case FUTEX_OP_CMP_GT: c = old > cmparg; break;
          case FUTEX_OP_CMP_GE: c = old >= cmparg; break;
          default: return -ENOSYS;
        }
        if (c) woken += FutexWake(*t.proc, addr2, static_cast<int>(t.arg(3)), FUTEX_BITSET_MATCH_ANY);
        return woken;
      }
      default:
        return -ENOSYS;
    }
  }

  // ------------------------------------------------------------ /dev, /proc, /sys

  static bool IsVirtual(const std::string& path) {
    auto under = [&](const char* root) {
      size_t n = std::strlen(root);
      return path.compare(0, n, root) == 0 && (path.size() == n || path[n] == '/');
    };
    return under("/proc") || under("/sys") || under("/dev");
  }

  struct VNode {
    mode_t mode = S_IFREG | 0444;
    dev_t rdev = 0;
    File::Kind kind = File::Kind::kMem;
    std::string content;
    std::string link;                 // a symlink's target
    std::vector<std::string> entries;  // a directory's names
    std::shared_ptr<File> same;        // /proc/PID/fd/N, /dev/stdin: the open file itself
  };

  std::string MemoryStatus(Process& p) {
    auto* mm = Mm(p);
    if (!mm) return "";
    return "VmSize:\t" + std::to_string(mm->mapped() / 1024) + " kB\nVmRSS:\t" + std::to_string(mm->resident() / 1024) + " kB\n";
  }

  std::string StatusOf(Process& p) {
    std::string name = p.exe.substr(p.exe.rfind('/') + 1);
    return "Name:\t" + name.substr(0, 15) + "\nUmask:\t" + std::to_string(p.umask) + "\nState:\tR (running)\nTgid:\t" +
           std::to_string(p.pid) + "\nPid:\t" + std::to_string(p.pid) + "\nPPid:\t" + std::to_string(std::max(p.ppid, 0)) +
           "\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n" + MemoryStatus(p) + "Threads:\t" + std::to_string(p.tasks.size()) + "\n";
  }

  std::optional<VNode> Virtual(Task& t, const std::string& path, bool follow = true) {
    VNode n;
    auto dir = [&](std::vector<std::string> e) {
      n.mode = S_IFDIR | 0555;
      n.kind = File::Kind::kDir;
      n.entries = std::move(e);
      return n;
    };
    auto chr = [&](File::Kind k, int maj, int min) {
      n.mode = S_IFCHR | 0666;
      n.kind = k;
      n.rdev = makedev(maj, min);
      return n;
    };
    auto text = [&](std::string s) {
      n.content = std::move(s);
      return n;
    };
    if (path == "/dev") return dir({"null", "zero", "full", "random", "urandom", "tty", "stdin", "stdout", "stderr", "fd", "shm"});
    if (path == "/dev/null") return chr(File::Kind::kNull, 1, 3);
    if (path == "/dev/zero") return chr(File::Kind::kZero, 1, 5);
    if (path == "/dev/full") return chr(File::Kind::kFull, 1, 7);
    if (path == "/dev/random") return chr(File::Kind::kRandom, 1, 8);
    if (path == "/dev/urandom") return chr(File::Kind::kRandom, 1, 9);
    if (path == "/dev/tty") {
      for (int fd : stdio_) {
        if (::isatty(fd)) {
          auto f = std::make_shared<File>();
          f->kind = File::Kind::kHost;
          f->host_fd = fd;
          f->flags = O_RDWR;
          ::fstat(fd, &f->st);
          n.same = f;
          n.mode = S_IFCHR | 0666;
          n.rdev = makedev(5, 0);
          return n;
        }
      }
      return std::nullopt;  // no controlling terminal: ENXIO below
    }
    if (path == "/dev/fd" || path == "/dev/stdin" || path == "/dev/stdout" || path == "/dev/stderr") {
      std::string target = path == "/dev/fd" ? "/proc/self/fd" : "/proc/self/fd/" + std::to_string(path == "/dev/stdin" ? 0 : path == "/dev/stdout" ? 1 : 2);
      if (!follow) {
        n.mode = S_IFLNK | 0777;
        n.link = target;
        return n;
      }
      return Virtual(t, Normalize("/proc/" + std::to_string(t.proc->pid) + target.substr(10)), true);
    }
    if (path == "/sys") return dir({"devices"});
    if (path == "/sys/devices/system/cpu/online" || path == "/sys/devices/system/cpu/possible") {
      long n_cpu = Facts().cpus;
      return text(n_cpu > 1 ? "0-" + std::to_string(n_cpu - 1) + "\n" : "0\n");
    }
    if (path.rfind("/sys", 0) == 0 || path.rfind("/dev", 0) == 0) return std::nullopt;
    // /proc
    if (path == "/proc") {
      std::vector<std::string> e = {"self", "cpuinfo", "meminfo", "mounts", "stat", "uptime", "loadavg", "version", "filesystems"};
      for (auto& [pid, p] : procs_) if (!p->zombie) e.push_back(std::to_string(pid));
      return dir(e);
    }
    if (path == "/proc/self" || path.rfind("/proc/self/", 0) == 0 || path == "/proc/thread-self") {
      if (!follow && (path == "/proc/self" || path == "/proc/thread-self")) {
        n.mode = S_IFLNK | 0777;
        n.link = std::to_string(t.proc->pid);
        return n;
      }
      return Virtual(t, "/proc/" + std::to_string(t.proc->pid) + path.substr(path == "/proc/thread-self" ? 17 : 10), follow);
    }
    if (path == "/proc/cpuinfo") {
      std::string s;
      long n_cpu = Facts().cpus;
      for (long i = 0; i < n_cpu; ++i)
        s += "processor\t: " + std::to_string(i) + "\nvendor_id\t: bulkhead\nmodel name\t: bulkhead virtual CPU\nflags\t\t: fpu sse sse2\n\n";
      return text(s);
    }
    if (path == "/proc/meminfo") return text(MemInfo());
    if (path == "/proc/mounts") return text(MountTable(false));
    if (path == "/proc/mountinfo") return text(MountTable(true));
    if (path == "/proc/filesystems") return text("nodev\tproc\nnodev\ttmpfs\n");
    if (path == "/proc/version") return text("Linux version 6.1.0-bulkhead (bulkhead) #1 SMP\n");
    if (path == "/proc/loadavg") return text("0.00 0.00 0.00 1/" + std::to_string(tasks_.size()) + " " + std::to_string(next_pid_ - 1) + "\n");
    if (path == "/proc/uptime") {
      double up = static_cast<double>(NowNs() - start_ns_) / 1e9;
      char b[64];
      std::snprintf(b, sizeof b, "%.2f %.2f\n", up, up);
      return text(b);
    }
    if (path == "/proc/stat") return text("cpu  0 0 0 0 0 0 0 0 0 0\nbtime " + std::to_string(start_ns_ / 1000000000) + "\n");
    // /proc/PID/...
    size_t slash = path.find('/', 6);
    std::string pid_s = path.substr(6, slash == std::string::npos ? std::string::npos : slash - 6);
    if (pid_s.empty() || pid_s.find_first_not_of("0123456789") != std::string::npos || pid_s.size() > 9) return std::nullopt;
    auto it = procs_.find(std::stoi(pid_s));
    if (it == procs_.end() || it->second->zombie) return std::nullopt;
    Process& p = *it->second;
    std::string rest = slash == std::string::npos ? "" : path.substr(slash);
    if (rest.empty()) return dir({"exe", "cwd", "root", "fd", "status", "stat", "cmdline", "comm", "maps", "environ", "mounts", "mountinfo"});
    if (rest == "/exe" || rest == "/cwd" || rest == "/root") {
      n.mode = S_IFLNK | 0777;
      n.link = rest == "/exe" ? p.exe : rest == "/cwd" ? p.cwd : "/";
      if (follow) return std::nullopt;  // followed by the caller through the gofer
      return n;
    }
    if (rest == "/fd") {
      std::vector<std::string> e;
      if (p.fds) for (auto& [fd, ent] : *p.fds) e.push_back(std::to_string(fd));
      return dir(e);
    }
    if (rest.rfind("/fd/", 0) == 0) {
      std::string fd_s = rest.substr(4);
      if (fd_s.empty() || fd_s.find_first_not_of("0123456789") != std::string::npos || fd_s.size() > 6 || !p.fds) return std::nullopt;
      auto f = p.fds->find(std::stoi(fd_s));
      if (f == p.fds->end()) return std::nullopt;
      const File& file = *f->second.file;
      if (!follow) {
        n.mode = S_IFLNK | 0700;
        n.link = !file.path.empty() ? file.path : file.kind == File::Kind::kPipe ? "pipe:[" + std::to_string(reinterpret_cast<uintptr_t>(file.pipe.get()) & 0xffffff) + "]" : "anon_inode:[" + std::string(file.kind == File::Kind::kEventfd ? "eventfd" : file.kind == File::Kind::kEpoll ? "eventpoll" : "file") + "]";
        return n;
      }
      n.same = f->second.file;
      n.mode = file.st.st_mode ? file.st.st_mode : S_IFIFO | 0600;
      return n;
    }
    if (rest == "/status") return text(StatusOf(p));
    if (rest == "/comm") return text(p.exe.substr(p.exe.rfind('/') + 1).substr(0, 15) + "\n");
    if (rest == "/cmdline") {
      std::string s;
      for (auto& a : p.argv) s += a + '\0';
      return text(s);
    }
    if (rest == "/stat") {
      return text(std::to_string(p.pid) + " (" + p.exe.substr(p.exe.rfind('/') + 1).substr(0, 15) + ") R " + std::to_string(std::max(p.ppid, 0)) + " " +
                  std::to_string(p.pgid) + " " + std::to_string(p.sid) + " 0 -1 0 0 0 0 0 0 0 0 0 20 0 " +
                  std::to_string(p.tasks.size()) + " 0 0 0 0\n");
    }
    if (rest == "/maps") return text(Mm(p) ? Mm(p)->Maps() : "");
    if (rest == "/environ") return text("");
    if (rest == "/mounts") return Virtual(t, "/proc/mounts", follow);
    if (rest == "/mountinfo") return Virtual(t, "/proc/mountinfo", follow);
    return std::nullopt;
  }

  // /proc/mounts (or /proc/PID/mountinfo): fs-gofer's tree as the
  // supervisor built it (root, volumes), then the router's own file systems.
  std::string MountTable(bool info) const {
    struct Line {
      std::string source, target, fstype, options;
    };
    std::vector<Line> lines;
    for (const auto& m : mounts_) lines.push_back({m.source, m.target, m.fstype, m.options});
    if (lines.empty()) lines.push_back({"none", "/", "bulkhead", "ro"});
    lines.push_back({"proc", "/proc", "proc", "rw,nosuid,nodev,noexec,relatime"});
    lines.push_back({"sysfs", "/sys", "sysfs", "ro,nosuid,nodev,noexec,relatime"});
    lines.push_back({"tmpfs", "/dev", "tmpfs", "rw,nosuid,mode=755"});
    lines.push_back({"tmpfs", "/dev/shm", "tmpfs", "rw,nosuid,nodev"});
    lines.push_back({"tmpfs", "/tmp", "tmpfs", "rw,nosuid,nodev"});
    for (auto it = extra_tmpfs_.rbegin(); it != extra_tmpfs_.rend(); ++it) {
      lines.push_back({"tmpfs", it->first, "tmpfs", "rw,nosuid,nodev,size=" + std::to_string(it->second->max_bytes() >> 10) + "k"});
    }
    // Spaces, tabs, newlines and backslashes as Linux escapes them (\040 ...).
    auto esc = [](const std::string& v) {
      std::string o;
      for (char c : v) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
          char b[8];
          std::snprintf(b, sizeof b, "\\%03o", static_cast<unsigned char>(c));
          o += b;
        } else {
          o += c;
        }
      }
      return o;
    };
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
      const Line& l = lines[i];
      if (!info) {
        out += esc(l.source) + " " + esc(l.target) + " " + l.fstype + " " + l.options + " 0 0\n";
        continue;
      }
      // The parent: the latest earlier mount whose target holds this one.
      size_t parent = 0;
      for (size_t j = 0; j < i; ++j) {
        const std::string& pt = lines[j].target;
        if (pt == "/" || (l.target.compare(0, pt.size(), pt) == 0 && l.target.size() > pt.size() && l.target[pt.size()] == '/')) {
          parent = j;
        }
      }
      const std::string comma = l.options.find(',') == std::string::npos ? l.options : l.options.substr(0, l.options.find(','));
      out += std::to_string(20 + i) + " " + std::to_string(i == 0 ? 19 : 20 + parent) + " 0:" + std::to_string(30 + i) + " / " +
             esc(l.target) + " " + comma + " - " + l.fstype + " " + esc(l.source) + " " + l.options + "\n";
    }
    return out;
  }

  static void FillVirtualStat(const VNode& n, struct stat* st) {
    std::memset(st, 0, sizeof *st);
    if (n.same) {
      *st = n.same->st;
      if (!st->st_mode) st->st_mode = n.mode;
      return;
    }
    st->st_mode = n.mode;
    st->st_rdev = n.rdev;
    st->st_nlink = 1;
    st->st_dev = makedev(0, 0x42);
    st->st_ino = std::hash<std::string>{}(n.content + n.link) & 0xffffff;
    st->st_blksize = 4096;
    st->st_size = S_ISLNK(n.mode) ? static_cast<off_t>(n.link.size()) : 0;
  }

  int64_t OpenVirtual(Task& t, const std::string& path, uint32_t flags) {
    auto n = Virtual(t, path, !(flags & O_NOFOLLOW));
    if (!n) {
      if (path.rfind("/proc/", 0) == 0) {
        auto l = Virtual(t, path, false);  // /proc/PID/exe and friends: the target itself
        if (l && S_ISLNK(l->mode)) return OpenPath(t, l->link, flags, 0);
      }
      return path == "/dev/tty" ? -ENXIO : -ENOENT;
    }
    if (S_ISLNK(n->mode)) return -ELOOP;
    if (n->same) return NewFd(t, n->same, 0, flags & O_CLOEXEC);
    if ((flags & O_DIRECTORY) && !S_ISDIR(n->mode)) return -ENOTDIR;
    const uint32_t acc = flags & O_ACCMODE;
    if (S_ISDIR(n->mode) && acc != O_RDONLY) return -EISDIR;
    if (S_ISREG(n->mode) && acc != O_RDONLY) return -EACCES;
    auto f = std::make_shared<File>();
    f->kind = n->kind;
    f->path = path;
    FillVirtualStat(*n, &f->st);
    f->flags = flags & (O_ACCMODE | O_APPEND | O_NONBLOCK);
    if (S_ISDIR(n->mode)) {
      // Encoded once: linux_dirent64 records.
      std::vector<std::string> names = {".", ".."};
      names.insert(names.end(), n->entries.begin(), n->entries.end());
      uint64_t ino = 1;
      for (auto& name : names) {
        size_t reclen = (19 + name.size() + 1 + 7) & ~size_t{7};
        std::string rec(reclen, '\0');
        uint64_t off = f->data.size() + reclen;
        std::memcpy(&rec[0], &ino, 8);
        std::memcpy(&rec[8], &off, 8);
        uint16_t rl = static_cast<uint16_t>(reclen);
        std::memcpy(&rec[16], &rl, 2);
        rec[18] = name == "." || name == ".." || name == "fd" || name == "devices" || std::isdigit(static_cast<unsigned char>(name[0])) ? DT_DIR : DT_UNKNOWN;
        std::memcpy(&rec[19], name.data(), name.size());
        f->data += rec;
        ++ino;
      }
    } else {
      f->data = std::move(n->content);
      f->st.st_size = static_cast<off_t>(f->data.size());
    }
    return NewFd(t, f, 0, flags & O_CLOEXEC);
  }

  int64_t OpenPath(Task& t, const std::string& path, uint32_t flags, uint32_t mode) {
    if (!inotify_.any()) return OpenPathRaw(t, path, flags, mode);
    struct stat st;
    const bool existed = StatPath(t, path, true, &st) == 0;
    const int64_t fd = OpenPathRaw(t, path, flags, mode);
    if (fd < 0) return fd;
    if (!existed && (flags & O_CREAT)) Notify(path, IN_CREATE);
    if (existed && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) Notify(path, IN_MODIFY);
    Notify(path, IN_OPEN, existed && S_ISDIR(st.st_mode));
    return fd;
  }

  int64_t OpenPathRaw(Task& t, const std::string& path, uint32_t flags, uint32_t mode) {
    std::string rel;
    if (Tmpfs* fs = TmpfsFor(path, &rel)) return OpenTmpfs(t, *fs, rel, path, flags, mode);
    if (IsVirtual(path)) return OpenVirtual(t, path, flags);
    auto f = std::make_shared<File>();
    // The gofer gets what decides which file and how (access mode, create,
    // exclusive, truncate, directory, nofollow, path, tmpfile); O_APPEND,
    // O_NONBLOCK and O_CLOEXEC stay here, with the file description.
    const uint32_t creating = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
    int rc = gofer_.Open(path, flags & ~(O_CLOEXEC | O_APPEND | O_NONBLOCK | O_ASYNC), creating ? (mode & ~t.proc->umask) : 0,
                         &f->handle, &f->st);
    if (rc < 0) return rc;
    if (flags & O_TRUNC) ForgetCached(f->st);
    f->kind = File::Kind::kGofer;
    f->generation = gofer_.generation();
    f->gofer = &gofer_;
    f->path = path;
    f->flags = flags & (O_ACCMODE | O_APPEND | O_NONBLOCK | O_PATH);
    return NewFd(t, f, 0, flags & O_CLOEXEC);
  }

  // memfd_create: a nameless regular file of the /dev/shm tmpfs (its budget,
  // its data in the memory file once mapped shared), "/memfd:NAME (deleted)"
  // in /proc/PID/fd. MFD_ALLOW_SEALING leaves it open to F_ADD_SEALS.
  int64_t MemfdCreate(Task& t, uint64_t name_addr, uint32_t flags) {
    constexpr uint32_t kMfdNoexecSeal = 0x8, kMfdExec = 0x10;
    if (flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | kMfdNoexecSeal | kMfdExec)) return -EINVAL;
    if (flags & MFD_HUGETLB) return -EINVAL;  // no hugetlbfs in the sandbox
    auto name = t.proc->as->ReadCString(name_addr, 250);
    if (!name) {
      // Linux: EFAULT for an unreadable name, EINVAL for one over 249 bytes.
      char c;
      return t.proc->as->CopyIn(name_addr, &c, 1) ? -EINVAL : -EFAULT;
    }
    if (name->size() > 249) return -EINVAL;
    auto f = std::make_shared<File>();
    f->kind = File::Kind::kTmpfs;
    f->tmpfs = &shm_;
    f->tnode = shm_.NewUnlinked(0777);
    f->tnode->seals = (flags & MFD_ALLOW_SEALING) ? 0 : F_SEAL_SEAL;
    f->path = "/memfd:" + *name + " (deleted)";
    shm_.Stat(*f->tnode, &f->st);
    f->flags = O_RDWR;
    return NewFd(t, f, 0, flags & MFD_CLOEXEC);
  }

  // ------------------------------------------------------------ System V shm

  void ShmDestroyIfDone(const std::shared_ptr<ShmSegment>& seg) {
    if (!seg->removed || seg->nattch > 0) return;
    if (shm_segs_.erase(seg->id)) shm_total_ -= std::min(shm_total_, seg->size);
  }

  int64_t ShmGet(Task& t, key_t key, uint64_t size, int flags) {
    if (key != IPC_PRIVATE) {
      for (auto& [id, seg] : shm_segs_) {
        if (seg->removed || seg->key != key) continue;
        if ((flags & IPC_CREAT) && (flags & IPC_EXCL)) return -EEXIST;
        if (size > seg->size) return -EINVAL;
        return id;
      }
      if (!(flags & IPC_CREAT)) return -ENOENT;
    }
    if (size < 1 || size > kShmMax) return -EINVAL;
    const uint64_t len = PageUp(size);
    if (shm_segs_.size() >= kShmMni) return -ENOSPC;
    if (len > kShmAll - std::min(kShmAll, shm_total_) || OverLimit(len)) return -ENOMEM;
    if (!mem_) return -ENOSYS;
    auto chunk = AllocateChunk(*mem_, len, MemKind::kTmpfs);  // shared memory is shmem, as Linux counts it
    if (!chunk) return -ENOMEM;
    auto seg = std::make_shared<ShmSegment>();
    seg->id = next_shm_id_;
    next_shm_id_ = (next_shm_id_ + 1) & 0x7fffffff;
    seg->key = key;
    seg->size = size;
    seg->chunk = std::move(chunk);
    seg->perm.__key = key;
    seg->perm.mode = static_cast<unsigned short>(flags & 0777);
    seg->perm.uid = seg->perm.cuid = 0;
    seg->perm.gid = seg->perm.cgid = 0;
    seg->ctime = time(nullptr);
    seg->cpid = t.proc->pid;
    shm_total_ += len;
    shm_segs_[seg->id] = seg;
    return seg->id;
  }

  int64_t ShmAt(Task& t, int id, uint64_t addr, int flags) {
    auto it = shm_segs_.find(id);
    if (id < 0 || it == shm_segs_.end()) return -EINVAL;
    Process& p = *t.proc;
    auto* mm = Mm(p);
    if (!mm) return -ENOSYS;
    std::shared_ptr<ShmSegment> seg = it->second;
    const uint64_t len = PageUp(seg->size);
    if (addr != 0) {
      if (flags & SHM_RND) addr &= ~(kPage - 1);  // SHMLBA is a page here
      if (addr % kPage || addr < platform_.min_user_address() || addr + len > platform_.max_user_address() ||
          platform_.stub_range().Overlaps(addr, addr + len)) {
        return -EINVAL;
      }
    } else {
      if (p.mmap_next < len + platform_.min_user_address() + (1ull << 32)) return -ENOMEM;
      addr = p.mmap_next - len;
      p.mmap_next = addr;
    }
    int prot = (flags & SHM_RDONLY) ? PROT_READ : PROT_READ | PROT_WRITE;
    if (flags & SHM_EXEC) prot |= PROT_EXEC;
    char name[32];
    std::snprintf(name, sizeof name, "/SYSV%08x", static_cast<unsigned>(seg->key));
    long r = mm->MapShared(addr, len, prot, seg->chunk, 0, std::string(name) + " (deleted)");
    if (r < 0) return r;
    auto& atts = shm_att_[p.as.get()];
    if (auto old = atts.find(addr); old != atts.end()) {  // replaced by the new mapping
      --old->second.seg->nattch;
      ShmDestroyIfDone(old->second.seg);
    }
    atts[addr] = {seg, len};
    ++seg->nattch;
    seg->atime = time(nullptr);
    seg->lpid = p.pid;
    return static_cast<int64_t>(addr);
  }

  int64_t ShmDt(Task& t, uint64_t addr) {
    Process& p = *t.proc;
    auto at = shm_att_.find(p.as.get());
    if (at == shm_att_.end()) return -EINVAL;
    auto it = at->second.find(addr);
    if (it == at->second.end()) return -EINVAL;
    ShmAttach a = it->second;
    at->second.erase(it);
    p.as->Munmap(addr, a.len);
    --a.seg->nattch;
    a.seg->dtime = time(nullptr);
    a.seg->lpid = p.pid;
    ShmDestroyIfDone(a.seg);
    return 0;
  }

  // Every attachment of an address space that goes (exit, exec).
  void ShmDetachAll(platform::AddressSpace* as) {
    auto at = shm_att_.find(as);
    if (at == shm_att_.end()) return;
    for (auto& [addr, a] : at->second) {
      --a.seg->nattch;
      a.seg->dtime = time(nullptr);
      ShmDestroyIfDone(a.seg);
    }
    shm_att_.erase(at);
  }

  // fork: the child's copy of the address space has the same attachments.
  void ShmForked(platform::AddressSpace* parent, platform::AddressSpace* child) {
    auto at = shm_att_.find(parent);
    if (at == shm_att_.end()) return;
    auto copy = at->second;
    for (auto& [addr, a] : copy) ++a.seg->nattch;
    shm_att_[child] = std::move(copy);
  }

  int64_t ShmCtl(Task& t, int id, int cmd, uint64_t buf) {
    cmd &= ~0x100;  // IPC_64 (linux/ipc.h): the only layout here
    if (cmd == IPC_INFO || cmd == SHM_INFO) {
      if (cmd == IPC_INFO) {
        struct shminfo si {};
        si.shmmax = kShmMax;
        si.shmmin = 1;
        si.shmmni = kShmMni;
        si.shmseg = kShmMni;
        si.shmall = kShmAll / kPage;
        if (!Out(t, buf, si)) return -EFAULT;
      } else {
        struct shm_info si {};
        si.used_ids = static_cast<int>(shm_segs_.size());
        si.shm_tot = shm_total_ / kPage;
        if (!Out(t, buf, si)) return -EFAULT;
      }
      int top = 0;
      for (auto& [sid, seg] : shm_segs_) top = std::max(top, sid);
      return top;
    }
    auto it = shm_segs_.find(id);
    if (id < 0 || it == shm_segs_.end()) return -EINVAL;
    std::shared_ptr<ShmSegment> seg = it->second;
    switch (cmd) {
      case IPC_STAT:
      case SHM_STAT:
      case SHM_STAT_ANY: {
        struct shmid_ds ds {};
        ds.shm_perm = seg->perm;
        if (seg->removed) ds.shm_perm.mode |= SHM_DEST;
        ds.shm_segsz = seg->size;
        ds.shm_atime = seg->atime;
        ds.shm_dtime = seg->dtime;
        ds.shm_ctime = seg->ctime;
        ds.shm_cpid = seg->cpid;
        ds.shm_lpid = seg->lpid;
        ds.shm_nattch = static_cast<shmatt_t>(seg->nattch);
        if (!Out(t, buf, ds)) return -EFAULT;
        return cmd == IPC_STAT ? 0 : id;
      }
      case IPC_SET: {
        struct shmid_ds ds {};
        if (!In(t, buf, &ds)) return -EFAULT;
        seg->perm.uid = ds.shm_perm.uid;
        seg->perm.gid = ds.shm_perm.gid;
        seg->perm.mode = static_cast<unsigned short>((seg->perm.mode & ~0777) | (ds.shm_perm.mode & 0777));
        seg->ctime = time(nullptr);
        return 0;
      }
      case IPC_RMID:
        seg->removed = true;
        seg->key = IPC_PRIVATE;  // the key is free for a new segment at once
        seg->perm.__key = IPC_PRIVATE;
        ShmDestroyIfDone(seg);
        return 0;
      case SHM_LOCK:
      case SHM_UNLOCK:
        return 0;  // memory-file pages are never swapped
      default:
        return -EINVAL;
    }
  }

  int64_t OpenAt(Task& t, int dirfd, uint64_t path_addr, uint32_t flags, uint32_t mode) {
    std::string path;
    if (int64_t rc = PathAt(t, dirfd, path_addr, &path); rc < 0) return rc;
    return OpenPath(t, path, flags, mode);
  }

  int64_t LookupStat(Task& t, int dirfd, uint64_t path_addr, int flags, struct stat* st) {
    std::string path;
    if (int64_t rc = PathAt(t, dirfd, path_addr, &path, (flags & AT_EMPTY_PATH) != 0); rc < 0) return rc;
    int64_t err = 0;
    std::string raw;
    if (!ReadPath(t, path_addr, &raw, &err) && (flags & AT_EMPTY_PATH) && err == -ENOENT) {
      if (dirfd == AT_FDCWD) return StatPath(t, t.proc->cwd, true, st);
      auto f = GetFile(t, dirfd);
      if (!f) return -EBADF;
      return StatFile(*f, st);
    }
    return StatPath(t, path, !(flags & AT_SYMLINK_NOFOLLOW), st);
  }

  int64_t StatPath(Task& t, const std::string& path, bool follow, struct stat* st) {
    std::string rel;
    if (Tmpfs* fs = TmpfsFor(path, &rel)) {
      Tmpfs::NodePtr n;
      if (int rc = fs->Lookup(rel, follow, &n); rc < 0) return rc;
      fs->Stat(*n, st);
      return 0;
    }
    if (IsVirtual(path)) {
      auto n = Virtual(t, path, follow);
      if (!n) {
        auto l = Virtual(t, path, false);
        if (l && S_ISLNK(l->mode)) return StatPath(t, l->link, true, st);
        return -ENOENT;
      }
      FillVirtualStat(*n, st);
      return 0;
    }
    return gofer_.Stat(path, follow, st);
  }

  int64_t StatFile(File& f, struct stat* st) {
    if (f.kind == File::Kind::kHost) return ::fstat(f.host_fd, st) < 0 ? -errno : 0;
    if (f.kind == File::Kind::kTmpfs) {
      f.tmpfs->Stat(*f.tnode, st);
      return 0;
    }
    if (f.kind == File::Kind::kGofer) return gofer_.Fstat(f.handle, st);
    *st = f.st;
    if (f.kind == File::Kind::kPipe) {
      st->st_mode = S_IFIFO | 0600;
      st->st_blksize = 4096;
      st->st_dev = makedev(0, 0x0c);
      st->st_ino = reinterpret_cast<uintptr_t>(f.pipe.get()) & 0xffffff;
    }
    if (f.kind == File::Kind::kEventfd || f.kind == File::Kind::kEpoll) st->st_mode = 0600;
    return 0;
  }

  // ------------------------------------------------------------ I/O

  // Readiness of a file for poll: POLLIN, POLLOUT, POLLHUP, POLLERR.
  short Readiness(File& f, short events) {
    switch (f.kind) {
      case File::Kind::kPipe:
        if (!f.pipe_write) return static_cast<short>((f.pipe->buf.empty() ? 0 : POLLIN) | (f.pipe->writers == 0 ? POLLHUP : 0));
        return static_cast<short>((f.pipe->readers == 0 ? POLLERR : 0) | (f.pipe->buf.size() < kPipeCapacity ? POLLOUT : 0));
      case File::Kind::kHost: {
        pollfd p{f.host_fd, static_cast<short>(events & (POLLIN | POLLOUT | POLLPRI)), 0};
        if (::poll(&p, 1, 0) < 0) return POLLERR;
        return p.revents;
      }
      case File::Kind::kEventfd:
        return static_cast<short>((f.counter > 0 ? POLLIN : 0) | (f.counter < UINT64_MAX - 1 ? POLLOUT : 0));
      case File::Kind::kTimerfd:
        TickTimerfd(f);
        return f.counter > 0 ? POLLIN : 0;
      case File::Kind::kInotify:
        return f.inotify->empty() ? 0 : POLLIN;
      case File::Kind::kEpoll: {
        for (auto& [fd, item] : f.epoll) {
          auto target = item.file.lock();
          if (target && !item.disabled && (Readiness(*target, static_cast<short>(item.events)) & (item.events | POLLHUP | POLLERR))) return POLLIN;
        }
        return 0;
      }
      default:
        return POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
    }
  }

  int64_t Read(Task& t, int fd, uint64_t buf, uint64_t count, int64_t offset) {
    auto f = GetFile(t, fd);
    if (!f) return -EBADF;
    if ((f->flags & O_ACCMODE) == O_WRONLY || (f->flags & O_PATH)) return -EBADF;
    if (count > 0x7ffff000) count = 0x7ffff000;
    const bool nonblock = f->flags & O_NONBLOCK;
    std::vector<uint8_t> tmp;
    auto copy_out = [&](const void* src, size_t n) -> int64_t {
      if (n && !t.proc->as->CopyOut(buf, src, n)) return -EFAULT;
      return static_cast<int64_t>(n);
    };
    switch (f->kind) {
      case File::Kind::kNull:
        return 0;
      case File::Kind::kZero:
      case File::Kind::kFull:
      case File::Kind::kRandom: {
        // The whole count, as Linux gives it (dd bs=1M expects full blocks),
        // up to 64 MiB per call so that one read cannot hold the router long.
        const uint64_t want = std::min<uint64_t>(count, uint64_t{64} << 20);
        tmp.assign(std::min<uint64_t>(want, kChunk), 0);
        uint64_t done = 0;
        while (done < want) {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(tmp.size(), want - done));
          if (f->kind == File::Kind::kRandom && ::getrandom(tmp.data(), n, 0) < 0) return done ? static_cast<int64_t>(done) : -errno;
          if (!t.proc->as->CopyOut(buf + done, tmp.data(), n)) return done ? static_cast<int64_t>(done) : -EFAULT;
          done += n;
        }
        return static_cast<int64_t>(done);
      }
      case File::Kind::kMem: {
        int64_t pos = offset >= 0 ? offset : f->offset;
        if (pos >= static_cast<int64_t>(f->data.size())) return 0;
        size_t n = std::min<uint64_t>(count, f->data.size() - static_cast<size_t>(pos));
        int64_t r = copy_out(f->data.data() + pos, n);
        if (r > 0 && offset < 0) f->offset += r;
        return r;
      }
      case File::Kind::kDir:
        return -EISDIR;
      case File::Kind::kTmpfs: {
        if (S_ISDIR(f->tnode->mode)) return -EISDIR;
        const int64_t pos = offset >= 0 ? offset : f->offset;
        const uint64_t size = f->tnode->data.size();
        if (pos >= static_cast<int64_t>(size)) return 0;
        std::vector<uint8_t> tmp(std::min<uint64_t>({count, size - static_cast<uint64_t>(pos), uint64_t{16} << 20}));
        f->tmpfs->Read(*f->tnode, static_cast<uint64_t>(pos), tmp.data(), tmp.size());
        if (!t.proc->as->CopyOut(buf, tmp.data(), tmp.size())) return -EFAULT;
        if (offset < 0) f->offset += static_cast<int64_t>(tmp.size());
        return static_cast<int64_t>(tmp.size());
      }
      case File::Kind::kPipe: {
        if (offset >= 0) return -ESPIPE;
        Pipe& p = *f->pipe;
        if (p.buf.empty()) {
          if (p.writers == 0) return 0;
          return nonblock ? -EAGAIN : kBlock;
        }
        size_t n = std::min<uint64_t>(count, p.buf.size());
        tmp.assign(p.buf.begin(), p.buf.begin() + static_cast<long>(n));
        int64_t r = copy_out(tmp.data(), n);
        if (r > 0) p.buf.erase(p.buf.begin(), p.buf.begin() + r);
        return r;
      }
      case File::Kind::kEventfd: {
        if (count < 8) return -EINVAL;
        if (f->counter == 0) return nonblock ? -EAGAIN : kBlock;
        uint64_t v = f->semaphore ? 1 : f->counter;
        if (!Out(t, buf, v)) return -EFAULT;
        f->counter -= v;
        return 8;
      }
      case File::Kind::kEpoll:
        return -EINVAL;
      case File::Kind::kInotify: {
        std::string events;
        long n = f->inotify->Read(&events, count);
        if (n == 0) return nonblock ? -EAGAIN : kBlock;
        if (n < 0) return n;
        return copy_out(events.data(), events.size());
      }
      case File::Kind::kTimerfd: {
        if (count < 8) return -EINVAL;
        TickTimerfd(*f);
        if (f->counter == 0) return nonblock ? -EAGAIN : kBlock;
        if (!Out(t, buf, f->counter)) return -EFAULT;
        f->counter = 0;
        return 8;
      }
      case File::Kind::kHost: {
        if (offset >= 0) return -ESPIPE;
        pollfd p{f->host_fd, POLLIN, 0};
        if (::poll(&p, 1, 0) == 0) {
          if (nonblock) return -EAGAIN;
          t.host_waits = {p};
          return kBlock;
        }
        tmp.resize(std::min<uint64_t>(count, kChunk));
        ssize_t n = ::read(f->host_fd, tmp.data(), tmp.size());
        if (n < 0) return -errno;
        return copy_out(tmp.data(), static_cast<size_t>(n));
      }
      case File::Kind::kGofer: {
        if (S_ISDIR(f->st.st_mode)) return -EISDIR;
        if (SharedFile* sf = SharedFileOf(*f); sf && sf->handle) FlushSharedFile(*sf);  // read() sees the mappings' stores
        int64_t pos = offset >= 0 ? offset : f->offset;
        if (int64_t r = ReadCached(t, *f, buf, count, pos); r != -ENOTSUP) {
          if (r > 0 && offset < 0) f->offset += r;
          return r;
        }
        tmp.resize(std::min<uint64_t>(count, kChunk));
        uint64_t total = 0;
        while (total < count) {
          size_t want = std::min<uint64_t>(kChunk, count - total);
          long n = gofer_.Pread(f->handle, pos + static_cast<int64_t>(total), {tmp.data(), want});
          if (n < 0) return total ? static_cast<int64_t>(total) : n;
          if (n == 0) break;
          if (!t.proc->as->CopyOut(buf + total, tmp.data(), static_cast<size_t>(n))) return total ? static_cast<int64_t>(total) : -EFAULT;
          total += static_cast<uint64_t>(n);
          if (static_cast<size_t>(n) < want) break;
        }
        if (offset < 0) f->offset += static_cast<int64_t>(total);
        return static_cast<int64_t>(total);
      }
    }
    return -EBADF;
  }

  int64_t Write(Task& t, int fd, uint64_t buf, uint64_t count) {
    auto f = GetFile(t, fd);
    if (!f) return -EBADF;
    if ((f->flags & O_ACCMODE) == O_RDONLY && f->kind != File::Kind::kHost) return -EBADF;
    if (count > 0x7ffff000) count = 0x7ffff000;
    const bool nonblock = f->flags & O_NONBLOCK;
    std::vector<uint8_t> tmp;
    switch (f->kind) {
      case File::Kind::kNull:
      case File::Kind::kZero:
      case File::Kind::kRandom:
        return static_cast<int64_t>(count);
      case File::Kind::kFull:
        return -ENOSPC;
      case File::Kind::kMem:
      case File::Kind::kDir:
      case File::Kind::kEpoll:
        return -EBADF;
      case File::Kind::kTimerfd:
      case File::Kind::kInotify:
        return -EINVAL;
      case File::Kind::kGofer:
        return WriteGofer(t, *f, buf, count, -1);
      case File::Kind::kTmpfs:
        return WriteTmpfs(t, *f, buf, count, -1);
      case File::Kind::kEventfd: {
        if (count < 8) return -EINVAL;
        uint64_t v;
        if (!In(t, buf, &v)) return -EFAULT;
        if (v == UINT64_MAX) return -EINVAL;
        if (UINT64_MAX - 1 - f->counter < v) return nonblock ? -EAGAIN : kBlock;
        f->counter += v;
        return 8;
      }
      case File::Kind::kPipe: {
        tmp.resize(std::min<uint64_t>(count, 1 << 20));
        if (!t.proc->as->CopyIn(buf, tmp.data(), tmp.size())) return -EFAULT;
        return PipeWrite(t, *f, tmp);
      }
      case File::Kind::kHost: {
        // The host descriptor is blocking (it is the caller's, shared with
        // its shell: no O_NONBLOCK on it). A pipe, socket or terminal whose
        // reader stalls must not stop the router, so those get at most
        // PIPE_BUF bytes per write, each after a poll that says there is
        // room; a full one parks the call (re-tried until all is written,
        // as a blocking write to a pipe completes).
        struct stat hst;
        const bool stream = ::fstat(f->host_fd, &hst) != 0 || S_ISFIFO(hst.st_mode) || S_ISSOCK(hst.st_mode) ||
                            (S_ISCHR(hst.st_mode) && ::isatty(f->host_fd));
        const uint64_t step = stream ? PIPE_BUF : kChunk;
        uint64_t total = t.retry ? t.io_done : 0;
        tmp.resize(std::min<uint64_t>(count, step));
        while (total < count) {
          if (stream) {
            pollfd pf{f->host_fd, POLLOUT, 0};
            if (::poll(&pf, 1, 0) == 0) {
              if (nonblock) return total ? static_cast<int64_t>(total) : -EAGAIN;
              t.io_done = total;
              t.host_waits = {pf};
              return kBlock;
            }
          }
          size_t want = std::min<uint64_t>(step, count - total);
          ssize_t got = t.proc->as->ReadMemory(buf + total, tmp.data(), want);
          if (got <= 0) return total ? static_cast<int64_t>(total) : -EFAULT;
          ssize_t n = ::write(f->host_fd, tmp.data(), static_cast<size_t>(got));
          if (n < 0) {
            if (errno == EPIPE) SignalTask(t, SIGPIPE);
            return total ? static_cast<int64_t>(total) : -errno;
          }
          total += static_cast<uint64_t>(n);
          if (n < got && !stream) break;
        }
        return static_cast<int64_t>(total);
      }
    }
    return -EBADF;
  }

  // A blocking write completes in full (re-tried as the reader drains);
  // writes up to PIPE_BUF are atomic.
  int64_t PipeWrite(Task& t, File& f, const std::vector<uint8_t>& data) {
    Pipe& p = *f.pipe;
    const bool nonblock = f.flags & O_NONBLOCK;
    const uint64_t count = data.size();
    const uint64_t done = t.retry ? t.io_done : 0;
    if (p.readers == 0) {
      SignalTask(t, SIGPIPE);
      return done ? static_cast<int64_t>(done) : -EPIPE;
    }
    const uint64_t left = count - done;
    const size_t space = kPipeCapacity - std::min(kPipeCapacity, p.buf.size());
    if (space == 0 || (count <= PIPE_BUF && space < left)) {
      if (nonblock) return done ? static_cast<int64_t>(done) : -EAGAIN;
      t.io_done = done;
      return kBlock;
    }
    const size_t n = std::min<uint64_t>(left, space);
    p.buf.insert(p.buf.end(), data.begin() + static_cast<long>(done), data.begin() + static_cast<long>(done + n));
    if (done + n < count && !nonblock) {
      t.io_done = done + n;
      return kBlock;
    }
    return static_cast<int64_t>(done + n);
  }

  int64_t WriteTmpfs(Task& t, File& f, uint64_t buf, uint64_t count, int64_t offset) {
    if (S_ISDIR(f.tnode->mode)) return -EISDIR;
    std::vector<uint8_t> tmp(std::min<uint64_t>(count, uint64_t{16} << 20));
    ssize_t got = tmp.empty() ? 0 : t.proc->as->ReadMemory(buf, tmp.data(), tmp.size());
    if (got < 0) return -EFAULT;
    // As Linux: with O_APPEND even pwrite writes at the end.
    const int64_t pos = (f.flags & O_APPEND) ? static_cast<int64_t>(f.tnode->data.size()) : offset >= 0 ? offset : f.offset;
    long n = f.tmpfs->Write(*f.tnode, static_cast<uint64_t>(pos), tmp.data(), static_cast<uint64_t>(got));
    if (n == -EFBIG) SignalTask(t, SIGXFSZ);
    if (n < 0) return n;
    if (n > 0) Notify(f.path, IN_MODIFY);
    if (offset < 0) f.offset = pos + n;
    return n;
  }

  // Where a call on a file's attributes goes: a tmpfs node (*node), a file
  // of the root or a volume (*gofer: its path), or a synthesized file
  // (returns 1 once it is known to exist). -errno when the lookup fails.
  int64_t AttrTargetOf(Task& t, const std::string& path, bool follow, Tmpfs::NodePtr* node, GoferClient::Target* gofer) {
    std::string rel;
    if (Tmpfs* fs = TmpfsFor(path, &rel)) return fs->Lookup(rel, follow, node);
    if (IsVirtual(path)) {
      struct stat st;
      if (int64_t rc = StatPath(t, path, follow, &st); rc < 0) return rc;
      return 1;
    }
    gofer->path = path;
    gofer->follow = follow;
    return 0;
  }

  // Extended attributes of a tmpfs node: trusted., security. and user.
  // names (user. only on regular files and directories, as Linux).
  int64_t TmpfsXattr(Task& t, Tmpfs::Node& n, const std::string& path, bool list, bool get, bool set,
                     const std::string& name) {
    auto a = [&](int i) { return t.arg(i); };
    constexpr uint64_t kMaxValue = 65536;
    auto known = [](const std::string& nm) {
      return nm.rfind("user.", 0) == 0 || nm.rfind("trusted.", 0) == 0 || nm.rfind("security.", 0) == 0;
    };
    if (list) {
      std::string out;
      for (const auto& [k, v] : n.xattrs) out += k + '\0';
      const uint64_t size = a(2);
      if (size == 0) return static_cast<int64_t>(out.size());
      if (out.size() > size) return -ERANGE;
      if (!out.empty() && !t.proc->as->CopyOut(a(1), out.data(), out.size())) return -EFAULT;
      return static_cast<int64_t>(out.size());
    }
    if (!known(name)) return -EOPNOTSUPP;
    if (name.rfind("user.", 0) == 0 && !S_ISREG(n.mode) && !S_ISDIR(n.mode)) return set ? -EPERM : -ENODATA;
    auto it = n.xattrs.find(name);
    if (get) {
      if (it == n.xattrs.end()) return -ENODATA;
      const uint64_t size = a(3);
      if (size == 0) return static_cast<int64_t>(it->second.size());
      if (it->second.size() > size) return -ERANGE;
      if (!it->second.empty() && !t.proc->as->CopyOut(a(2), it->second.data(), it->second.size())) return -EFAULT;
      return static_cast<int64_t>(it->second.size());
    }
    if (set) {
      const uint64_t size = a(3);
      const uint32_t flags = static_cast<uint32_t>(a(4));
      if (size > kMaxValue) return -E2BIG;
      if ((flags & XATTR_CREATE) && it != n.xattrs.end()) return -EEXIST;
      if ((flags & XATTR_REPLACE) && it == n.xattrs.end()) return -ENODATA;
      std::string value(size, '\0');
      if (size && !t.proc->as->CopyIn(a(2), value.data(), size)) return -EFAULT;
      n.xattrs[name] = std::move(value);
    } else {
      if (it == n.xattrs.end()) return -ENODATA;
      n.xattrs.erase(it);
    }
    Tmpfs::Touch(n, false);
    if (!path.empty()) Notify(path, IN_ATTRIB);
    return 0;
  }

  // The xattr calls: files of the root and volumes through the gofer; the
  // router's own files (tmpfs, /proc, /dev) have none (ENOTSUP, as a file
  // system without xattr support answers).
  int64_t Xattr(Task& t, long nr) {
    auto a = [&](int i) { return t.arg(i); };
    const bool by_fd = nr == SYS_fgetxattr || nr == SYS_flistxattr || nr == SYS_fsetxattr || nr == SYS_fremovexattr;
    const bool nofollow = nr == SYS_lgetxattr || nr == SYS_llistxattr || nr == SYS_lsetxattr || nr == SYS_lremovexattr;
    const bool list = nr == SYS_listxattr || nr == SYS_llistxattr || nr == SYS_flistxattr;
    const bool get = nr == SYS_getxattr || nr == SYS_lgetxattr || nr == SYS_fgetxattr;
    const bool set = nr == SYS_setxattr || nr == SYS_lsetxattr || nr == SYS_fsetxattr;
    GoferClient::Target target;
    bool on_gofer = false;
    Tmpfs::NodePtr node;  // a tmpfs file: its attributes are the router's
    std::string path;
    if (by_fd) {
      auto f = GetFile(t, static_cast<int>(a(0)));
      if (!f) return -EBADF;
      if (f->flags & O_PATH) return -EBADF;
      if (f->kind == File::Kind::kGofer) {
        on_gofer = true;
        target.handle = f->handle;
      } else if (f->kind == File::Kind::kTmpfs) {
        node = f->tnode;
        path = f->path;
      }
    } else {
      if (int64_t rc = PathAt(t, AT_FDCWD, a(0), &path); rc < 0) return rc;
      const int64_t rc = AttrTargetOf(t, path, !nofollow, &node, &target);
      if (rc < 0) return rc;
      on_gofer = rc == 0 && !node;
    }
    std::string name;
    if (!list) {
      auto n = t.proc->as->ReadCString(a(1), 256);
      if (!n) {
        char probe;
        return t.proc->as->CopyIn(a(1), &probe, 1) ? -ERANGE : -EFAULT;
      }
      if (n->size() > 255) return -ERANGE;
      if (n->empty()) return -ERANGE;
      name = std::move(*n);
    }
    constexpr uint64_t kMaxValue = 65536;  // XATTR_SIZE_MAX
    if (node) return TmpfsXattr(t, *node, path, list, get, set, name);
    if (list || get) {
      const uint64_t buf = list ? a(1) : a(2);
      const uint64_t size = std::min<uint64_t>(list ? a(2) : a(3), kMaxValue);
      if (!on_gofer) return list ? 0 : -ENODATA;
      std::vector<uint8_t> tmp(size);
      long n = list ? gofer_.ListXattr(target, tmp) : gofer_.GetXattr(target, name, tmp);
      if (n < 0 || size == 0) return n;
      if (!t.proc->as->CopyOut(buf, tmp.data(), static_cast<size_t>(n))) return -EFAULT;
      return n;
    }
    if (set) {
      const uint64_t size = a(3);
      const uint32_t flags = static_cast<uint32_t>(a(4));
      if (flags & ~static_cast<uint32_t>(XATTR_CREATE | XATTR_REPLACE)) return -EINVAL;
      if (size > kMaxValue) return -E2BIG;
      std::vector<uint8_t> value(size);
      if (size && !t.proc->as->CopyIn(a(2), value.data(), size)) return -EFAULT;
      if (!on_gofer) return -ENOTSUP;
      return gofer_.SetXattr(target, name, value, flags);
    }
    if (!on_gofer) return -ENODATA;
    return gofer_.RemoveXattr(target, name);
  }

  // The identity locks are kept under: a file of the root or a volume, or
  // a tmpfs node. Other descriptors (pipes, devices) take no locks.
  static bool LockKey(const File& f, LockTable::Key* k) {
    if (f.kind == File::Kind::kGofer) {
      *k = {f.st.st_dev, f.st.st_ino};
      return true;
    }
    if (f.kind == File::Kind::kTmpfs && f.tnode) {
      *k = {UINT64_MAX, reinterpret_cast<uint64_t>(f.tnode.get())};
      return true;
    }
    return false;
  }

  // fcntl F_SETLK(W), F_GETLK and their OFD forms.
  int64_t RecordLock(Task& t, const std::shared_ptr<File>& f, int cmd, uint64_t arg) {
    struct flock fl;
    if (!In(t, arg, &fl)) return -EFAULT;
    const bool ofd = cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW || cmd == F_OFD_GETLK;
    const bool get = cmd == F_GETLK || cmd == F_OFD_GETLK;
    if (ofd && fl.l_pid != 0) return -EINVAL;
    if (fl.l_type != F_RDLCK && fl.l_type != F_WRLCK && fl.l_type != F_UNLCK) return -EINVAL;
    if (get && fl.l_type == F_UNLCK) return -EINVAL;
    LockTable::Key key;
    if (!LockKey(*f, &key)) {
      if (!get) return 0;
      fl.l_type = F_UNLCK;
      return Out(t, arg, fl) ? 0 : -EFAULT;
    }
    int64_t base = 0;
    switch (fl.l_whence) {
      case SEEK_SET: break;
      case SEEK_CUR: base = f->offset; break;
      case SEEK_END: {
        if (f->kind == File::Kind::kTmpfs) {
          base = static_cast<int64_t>(f->tnode->data.size());
        } else {
          struct stat st;
          if (int rc = gofer_.Fstat(f->handle, &st); rc < 0) return rc;
          base = st.st_size;
        }
        break;
      }
      default: return -EINVAL;
    }
    int64_t start = 0, end = LockTable::kToEnd;
    if (__builtin_add_overflow(base, static_cast<int64_t>(fl.l_start), &start)) return -EOVERFLOW;
    if (fl.l_len > 0) {
      if (__builtin_add_overflow(start, static_cast<int64_t>(fl.l_len), &end)) end = LockTable::kToEnd;
    } else if (fl.l_len < 0) {
      end = start;
      start += fl.l_len;
    }
    if (start < 0) return -EINVAL;
    const LockTable::Owner who = ofd ? LockTable::Owner{t.proc->pid, f, f.get()} : LockTable::Owner{t.proc->pid, {}, nullptr};
    if (get) {
      const LockTable::Lock* c = locks_.Conflict(key, who, fl.l_type, start, end);
      if (c == nullptr) {
        fl.l_type = F_UNLCK;
      } else {
        fl.l_type = c->type;
        fl.l_whence = SEEK_SET;
        fl.l_start = c->start;
        fl.l_len = c->end == LockTable::kToEnd ? 0 : c->end - c->start;
        fl.l_pid = c->owner.ofd_id ? -1 : c->owner.pid;
      }
      return Out(t, arg, fl) ? 0 : -EFAULT;
    }
    const uint32_t acc = f->flags & O_ACCMODE;
    if ((fl.l_type == F_RDLCK && acc == O_WRONLY) || (fl.l_type == F_WRLCK && acc == O_RDONLY)) return -EBADF;
    const int rc = locks_.Set(key, who, fl.l_type, start, end);
    if (rc == -EAGAIN && (cmd == F_SETLKW || cmd == F_OFD_SETLKW)) return kBlock;
    return rc;
  }

  // ------------------------------------------------------------ sendfile, splice, tee, copy_file_range
  // Moved through a router buffer, in pieces of kChunk: from a file at an
  // offset or from a pipe, to a file at an offset, a pipe, or a host
  // descriptor (stdout). Nothing reaches the host kernel but the final
  // write to a host descriptor that is the sandbox's own stdio.

  static bool Regular(const File& f) {
    if (f.kind == File::Kind::kGofer) return S_ISREG(f.st.st_mode);
    if (f.kind == File::Kind::kTmpfs) return f.tnode && S_ISREG(f.tnode->mode);
    return false;
  }

  // Up to n bytes of a regular file at `off`, or of a pipe (consumed unless
  // `peek`). Count, 0 at the end, -errno, or kBlock (an empty pipe).
  int64_t SourceRead(File& f, std::vector<uint8_t>* out, size_t n, int64_t off, bool peek) {
    out->resize(n);
    if (f.kind == File::Kind::kPipe) {
      Pipe& p = *f.pipe;
      if (p.buf.empty()) return p.writers == 0 ? 0 : (f.flags & O_NONBLOCK) ? -EAGAIN : kBlock;
      const size_t k = std::min(n, p.buf.size());
      std::copy(p.buf.begin(), p.buf.begin() + static_cast<long>(k), out->begin());
      if (!peek) p.buf.erase(p.buf.begin(), p.buf.begin() + static_cast<long>(k));
      out->resize(k);
      return static_cast<int64_t>(k);
    }
    if (f.kind == File::Kind::kTmpfs) {
      long r = f.tmpfs->Read(*f.tnode, static_cast<uint64_t>(off), out->data(), n);
      out->resize(r > 0 ? static_cast<size_t>(r) : 0);
      return r;
    }
    if (SharedFile* sf = SharedFileOf(f); sf && sf->handle) FlushSharedFile(*sf);
    long r = gofer_.Pread(f.handle, off, {out->data(), n});
    out->resize(r > 0 ? static_cast<size_t>(r) : 0);
    return r;
  }

  // Writes `data` to a regular file at `off` (-1: its position or end for
  // O_APPEND, moved), a pipe (what fits now), the null device or a host
  // descriptor. Count, -errno or kBlock (nothing fits yet).
  int64_t SinkWrite(Task& t, File& f, const std::vector<uint8_t>& data, int64_t off) {
    switch (f.kind) {
      case File::Kind::kNull:
        return static_cast<int64_t>(data.size());
      case File::Kind::kPipe: {
        Pipe& p = *f.pipe;
        if (p.readers == 0) {
          SignalTask(t, SIGPIPE);
          return -EPIPE;
        }
        const size_t space = kPipeCapacity - std::min(kPipeCapacity, p.buf.size());
        if (space == 0) return (f.flags & O_NONBLOCK) ? -EAGAIN : kBlock;
        const size_t k = std::min(space, data.size());
        p.buf.insert(p.buf.end(), data.begin(), data.begin() + static_cast<long>(k));
        return static_cast<int64_t>(k);
      }
      case File::Kind::kHost: {
        pollfd pf{f.host_fd, POLLOUT, 0};
        if (::poll(&pf, 1, 0) == 0) {
          if (f.flags & O_NONBLOCK) return -EAGAIN;
          t.host_waits = {pf};
          return kBlock;
        }
        ssize_t n = ::write(f.host_fd, data.data(), std::min<size_t>(data.size(), PIPE_BUF));
        if (n < 0 && errno == EPIPE) SignalTask(t, SIGPIPE);
        return n < 0 ? -errno : n;
      }
      case File::Kind::kTmpfs:
      case File::Kind::kGofer: {
        if (!Regular(f)) return -EINVAL;
        if ((f.flags & O_ACCMODE) == O_RDONLY) return -EBADF;
        if (f.kind == File::Kind::kTmpfs) {
          const int64_t pos = off >= 0 ? off : (f.flags & O_APPEND) ? static_cast<int64_t>(f.tnode->data.size()) : f.offset;
          long n = f.tmpfs->Write(*f.tnode, static_cast<uint64_t>(pos), data.data(), data.size());
          if (n > 0 && off < 0) f.offset = pos + n;
          return n;
        }
        const bool append = off < 0 && (f.flags & O_APPEND);
        int64_t at = 0, size = 0;
        long n = gofer_.Pwrite(f.handle, append ? -1 : (off >= 0 ? off : f.offset), data, &at, &size);
        if (n > 0) {
          f.st.st_size = size;
          ForgetCached(f.st);
          if (off < 0) f.offset = at + n;
        }
        return n;
      }
      default:
        return -EINVAL;
    }
  }

  // The loop all four calls share: from `in` (at *in_off, or its position
  // when in_off is null; a pipe has neither) to `out` (likewise), at most
  // `count` bytes. What was moved, or the first piece's error or kBlock.
  int64_t Transfer(Task& t, File& in, int64_t* in_off, File& out, int64_t* out_off, uint64_t count, bool peek) {
    std::vector<uint8_t> buf;
    uint64_t total = 0;
    const bool in_pipe = in.kind == File::Kind::kPipe;
    while (total < count) {
      const size_t want = std::min<uint64_t>(kChunk, count - total);
      const int64_t at = in_pipe ? -1 : in_off ? *in_off : in.offset;
      int64_t n = SourceRead(in, &buf, want, at, peek);
      if (n == kBlock || n < 0) return total ? static_cast<int64_t>(total) : n;
      if (n == 0) break;
      int64_t w = SinkWrite(t, out, buf, out_off ? *out_off : -1);
      if (w == kBlock || w < 0) {
        if (in_pipe && !peek) {  // give back what was taken and not written
          in.pipe->buf.insert(in.pipe->buf.begin(), buf.begin(), buf.end());
        }
        return total ? static_cast<int64_t>(total) : w;
      }
      if (in_pipe && !peek && w < n) in.pipe->buf.insert(in.pipe->buf.begin(), buf.begin() + w, buf.end());
      if (!in_pipe) {
        if (in_off) *in_off += w;
        else in.offset += w;
      }
      if (out_off) *out_off += w;
      total += static_cast<uint64_t>(w);
      if (w < n || in_pipe) break;  // a pipe: what it held now
    }
    return static_cast<int64_t>(total);
  }

  // An optional loff_t argument: read it (null pointer: none).
  bool OffsetArg(Task& t, uint64_t addr, int64_t* v, int64_t** p, int64_t* err) {
    *p = nullptr;
    if (addr == 0) return true;
    if (!In(t, addr, v)) {
      *err = -EFAULT;
      return false;
    }
    if (*v < 0) {
      *err = -EINVAL;
      return false;
    }
    *p = v;
    return true;
  }

  int64_t Sendfile(Task& t, int out_fd, int in_fd, uint64_t off_addr, uint64_t count) {
    auto in = GetFile(t, in_fd), out = GetFile(t, out_fd);
    if (!in || !out) return -EBADF;
    if ((in->flags & O_ACCMODE) == O_WRONLY || (out->flags & O_ACCMODE) == O_RDONLY) return -EBADF;
    if (!Regular(*in)) return -EINVAL;
    if ((out->flags & O_APPEND) && out->kind != File::Kind::kHost) return -EINVAL;
    int64_t off = 0, *offp = nullptr, err = 0;
    if (!OffsetArg(t, off_addr, &off, &offp, &err)) return err;
    count = std::min<uint64_t>(count, 0x7ffff000);
    int64_t r = Transfer(t, *in, offp, *out, nullptr, count, false);
    if (offp && r > 0 && !Out(t, off_addr, off)) return -EFAULT;
    return r;
  }

  int64_t CopyFileRange(Task& t, int in_fd, uint64_t in_addr, int out_fd, uint64_t out_addr, uint64_t len, uint64_t flags) {
    if (flags != 0) return -EINVAL;
    auto in = GetFile(t, in_fd), out = GetFile(t, out_fd);
    if (!in || !out) return -EBADF;
    if ((in->flags & O_ACCMODE) == O_WRONLY || (out->flags & O_ACCMODE) == O_RDONLY || (out->flags & O_APPEND)) return -EBADF;
    const bool in_dir = in->kind == File::Kind::kGofer ? S_ISDIR(in->st.st_mode) : in->kind == File::Kind::kTmpfs && S_ISDIR(in->tnode->mode);
    const bool out_dir = out->kind == File::Kind::kGofer ? S_ISDIR(out->st.st_mode) : out->kind == File::Kind::kTmpfs && S_ISDIR(out->tnode->mode);
    if (in_dir || out_dir) return -EISDIR;
    if (!Regular(*in) || !Regular(*out)) return -EINVAL;
    int64_t ioff = 0, ooff = 0, *ip = nullptr, *op = nullptr, err = 0;
    if (!OffsetArg(t, in_addr, &ioff, &ip, &err) || !OffsetArg(t, out_addr, &ooff, &op, &err)) return err;
    LockTable::Key a, b;
    if (LockKey(*in, &a) && LockKey(*out, &b) && a == b) {
      const int64_t is = ip ? ioff : in->offset, os = op ? ooff : out->offset;
      const int64_t l = static_cast<int64_t>(std::min<uint64_t>(len, INT64_MAX));
      if (is < os + l && os < is + l) return -EINVAL;  // overlapping ranges of one file
    }
    len = std::min<uint64_t>(len, 0x7ffff000);
    int64_t r = Transfer(t, *in, ip, *out, op, len, false);
    if (r > 0 && ((ip && !Out(t, in_addr, ioff)) || (op && !Out(t, out_addr, ooff)))) return -EFAULT;
    return r;
  }

  int64_t Splice(Task& t, int in_fd, uint64_t in_addr, int out_fd, uint64_t out_addr, uint64_t len, uint64_t flags) {
    if (flags & ~static_cast<uint64_t>(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT)) return -EINVAL;
    auto in = GetFile(t, in_fd), out = GetFile(t, out_fd);
    if (!in || !out) return -EBADF;
    if ((in->flags & O_ACCMODE) == O_WRONLY || (out->flags & O_ACCMODE) == O_RDONLY) return -EBADF;
    const bool ip_pipe = in->kind == File::Kind::kPipe, op_pipe = out->kind == File::Kind::kPipe;
    if (!ip_pipe && !op_pipe) return -EINVAL;
    if ((ip_pipe && in_addr) || (op_pipe && out_addr)) return -ESPIPE;
    if (ip_pipe && op_pipe && in->pipe == out->pipe) return -EINVAL;
    if (!ip_pipe && !Regular(*in)) return -EINVAL;
    if (!op_pipe && out->kind != File::Kind::kHost && out->kind != File::Kind::kNull && !Regular(*out)) return -EINVAL;
    if (!op_pipe && (out->flags & O_APPEND) && out->kind != File::Kind::kHost) return -EINVAL;
    int64_t ioff = 0, ooff = 0, *ip = nullptr, *op = nullptr, err = 0;
    if (!OffsetArg(t, in_addr, &ioff, &ip, &err) || !OffsetArg(t, out_addr, &ooff, &op, &err)) return err;
    const uint32_t saved_in = in->flags, saved_out = out->flags;
    if (flags & SPLICE_F_NONBLOCK) {  // the pipes' side only, this call only
      if (ip_pipe) in->flags |= O_NONBLOCK;
      if (op_pipe) out->flags |= O_NONBLOCK;
    }
    int64_t r = Transfer(t, *in, ip, *out, op, std::min<uint64_t>(len, 0x7ffff000), false);
    in->flags = saved_in;
    out->flags = saved_out;
    if (r > 0 && ((ip && !Out(t, in_addr, ioff)) || (op && !Out(t, out_addr, ooff)))) return -EFAULT;
    return r;
  }

  int64_t Tee(Task& t, int in_fd, int out_fd, uint64_t len, uint64_t flags) {
    if (flags & ~static_cast<uint64_t>(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT)) return -EINVAL;
    auto in = GetFile(t, in_fd), out = GetFile(t, out_fd);
    if (!in || !out) return -EBADF;
    if (in->kind != File::Kind::kPipe || out->kind != File::Kind::kPipe || in->pipe == out->pipe) return -EINVAL;
    if ((in->flags & O_ACCMODE) == O_WRONLY || (out->flags & O_ACCMODE) == O_RDONLY) return -EBADF;
    const uint32_t saved_in = in->flags, saved_out = out->flags;
    if (flags & SPLICE_F_NONBLOCK) {
      in->flags |= O_NONBLOCK;
      out->flags |= O_NONBLOCK;
    }
    int64_t r = Transfer(t, *in, nullptr, *out, nullptr, std::min<uint64_t>(len, kPipeCapacity), true);
    in->flags = saved_in;
    out->flags = saved_out;
    return r;
  }

  // pwrite and pwritev: files with offsets only.
  int64_t WriteAt(Task& t, int fd, uint64_t buf, uint64_t count, int64_t offset) {
    auto f = GetFile(t, fd);
    if (!f) return -EBADF;
    if (f->kind != File::Kind::kTmpfs && f->kind != File::Kind::kGofer) {
      return f->kind == File::Kind::kPipe || f->kind == File::Kind::kHost ? -ESPIPE : Write(t, fd, buf, count);
    }
    if ((f->flags & O_ACCMODE) == O_RDONLY) return -EBADF;
    count = std::min<uint64_t>(count, 0x7ffff000);
    return f->kind == File::Kind::kTmpfs ? WriteTmpfs(t, *f, buf, count, offset) : WriteGofer(t, *f, buf, count, offset);
  }

  // A write to a file of the root or a volume: in pieces of at most kChunk
  // (each one round trip with its bytes in the request's bulk area), at the
  // file description's offset, at `offset` (pwrite), or at the end
  // (O_APPEND, which the gofer carries out with the size it finds).
  int64_t WriteGofer(Task& t, File& f, uint64_t buf, uint64_t count, int64_t offset) {
    if (S_ISDIR(f.st.st_mode)) return -EISDIR;
    if (f.flags & O_PATH) return -EBADF;
    // As Linux: with O_APPEND even pwrite writes at the end.
    const bool append = f.flags & O_APPEND;
    int64_t pos = offset >= 0 ? offset : f.offset;
    std::vector<uint8_t> tmp(std::min<uint64_t>(count, kChunk));
    uint64_t total = 0;
    while (total < count) {
      const size_t want = std::min<uint64_t>(kChunk, count - total);
      ssize_t got = t.proc->as->ReadMemory(buf + total, tmp.data(), want);
      if (got <= 0) return total ? static_cast<int64_t>(total) : -EFAULT;
      int64_t at = 0, size = 0;
      long n = gofer_.Pwrite(f.handle, append ? -1 : pos + static_cast<int64_t>(total),
                             {tmp.data(), static_cast<size_t>(got)}, &at, &size);
      if (n == -EFBIG) SignalTask(t, SIGXFSZ);
      if (n < 0) {
        if (total == 0) return n;
        break;
      }
      f.st.st_size = size;
      if (SharedFile* sf = SharedFileOf(f); sf && mem_ && at >= 0 && static_cast<uint64_t>(at) < sf->chunk->len) {
        // Shared mappings see what write() wrote.
        std::memcpy(mem_->at(sf->chunk->offset + static_cast<uint64_t>(at)), tmp.data(),
                    std::min<uint64_t>(static_cast<uint64_t>(n), sf->chunk->len - static_cast<uint64_t>(at)));
      }
      if (append) pos = at - static_cast<int64_t>(total);  // so that pos + total is the end
      total += static_cast<uint64_t>(n);
      if (n < got) break;
    }
    if (total) {
      ForgetCached(f.st);
      Notify(f.path, IN_MODIFY);
    }
    if (offset < 0) f.offset = pos + static_cast<int64_t>(total);
    return static_cast<int64_t>(total);
  }

  // A signal the task's own action caused (SIGPIPE, SIGXFSZ). One deviation
  // from a pid namespace, for parity with the same command run natively: it
  // ends process 1 too when process 1 has no handler (Linux would leave init
  // with just the EPIPE).
  void SignalTask(Task& t, int sig) {
    const siginfo_t si = Info(sig, SI_KERNEL, 0);
    if (InitProtected(*t.proc, sig) && !(t.sigmask & Bit(sig)) &&
        (*t.proc->act)[sig].handler == reinterpret_cast<uint64_t>(SIG_DFL)) {
      t.pending |= Bit(sig);
      t.forced |= Bit(sig);
      t.info[sig] = si;
      Kick(t);
      return;
    }
    QueueSignal(t, sig, si);
  }

  int64_t Iov(Task& t, int fd, uint64_t iov_addr, uint64_t iovcnt, bool write, int64_t offset = -1) {
    if (iovcnt > 1024) return -EINVAL;
    std::vector<iovec> iov(iovcnt);
    if (iovcnt && !t.proc->as->CopyIn(iov_addr, iov.data(), iovcnt * sizeof(iovec))) return -EFAULT;
    auto f = GetFile(t, fd);
    if (f && write && f->kind == File::Kind::kPipe) {
      // Gathered into one write: atomic as Linux makes it, re-tried whole.
      std::vector<uint8_t> data;
      for (auto& v : iov) {
        size_t n = std::min<size_t>(v.iov_len, (1u << 20) - data.size());
        size_t at = data.size();
        data.resize(at + n);
        if (n && !t.proc->as->CopyIn(reinterpret_cast<uint64_t>(v.iov_base), data.data() + at, n)) return -EFAULT;
      }
      return PipeWrite(t, *f, data);
    }
    int64_t total = 0;
    for (size_t i = 0; i < iov.size(); ++i) {
      auto& v = iov[i];
      if (v.iov_len == 0) continue;
      if (static_cast<int64_t>(v.iov_len) < 0) return -EINVAL;
      uint64_t base = reinterpret_cast<uint64_t>(v.iov_base);
      int64_t n = write ? (offset >= 0 ? WriteAt(t, fd, base, v.iov_len, offset + total) : Write(t, fd, base, v.iov_len))
                        : Read(t, fd, base, v.iov_len, offset >= 0 ? offset + total : -1);
      if (n == kBlock) {
        if (total > 0) return total;  // what was done so far
        if (i > 0 && write) return total;
        return kBlock;
      }
      if (n < 0) return total ? total : n;
      total += n;
      if (static_cast<uint64_t>(n) < v.iov_len) break;
      // After the first buffer, never wait for more.
      if (f && (f->kind == File::Kind::kPipe || f->kind == File::Kind::kHost) && !write) break;
    }
    return total;
  }

  // ------------------------------------------------------------ poll, select, epoll

  // Sets the deadline of a waiting call on its first try; true once passed.
  bool TimedOut(Task& t, int64_t timeout_ns) {
    if (!t.retry) t.deadline = timeout_ns < 0 ? -1 : NowNs() + timeout_ns;
    return t.deadline >= 0 && NowNs() >= t.deadline;
  }

  void WaitHostFd(Task& t, File& f, short events) {
    if (f.kind == File::Kind::kHost) t.host_waits.push_back({f.host_fd, events, 0});
  }

  int64_t Poll(Task& t, uint64_t fds_addr, uint64_t nfds, int64_t timeout_ns) {
    if (nfds > kMaxFds) return -EINVAL;
    std::vector<pollfd> pfds(nfds);
    if (nfds && !t.proc->as->CopyIn(fds_addr, pfds.data(), nfds * sizeof(pollfd))) return -EFAULT;
    int64_t ready = 0;
    t.host_waits.clear();
    for (auto& p : pfds) {
      p.revents = 0;
      if (p.fd < 0) continue;
      auto f = GetFile(t, p.fd);
      if (!f) {
        p.revents = POLLNVAL;
      } else {
        p.revents = static_cast<short>(Readiness(*f, p.events) & (p.events | POLLHUP | POLLERR));
        if (!p.revents) WaitHostFd(t, *f, p.events);
      }
      if (p.revents) ++ready;
    }
    if (ready == 0 && !TimedOut(t, timeout_ns)) return kBlock;
    if (nfds && !t.proc->as->CopyOut(fds_addr, pfds.data(), nfds * sizeof(pollfd))) return -EFAULT;
    return ready;
  }

  int64_t Select(Task& t, int nfds, uint64_t rd, uint64_t wr, uint64_t ex, int64_t timeout_ns) {
    if (nfds < 0 || nfds > kMaxFds) return -EINVAL;
    const size_t words = (static_cast<size_t>(nfds) + 63) / 64;
    std::vector<uint64_t> in[3], out[3];
    const uint64_t addrs[3] = {rd, wr, ex};
    for (int k = 0; k < 3; ++k) {
      in[k].assign(words, 0);
      out[k].assign(words, 0);
      if (addrs[k] && words && !t.proc->as->CopyIn(addrs[k], in[k].data(), words * 8)) return -EFAULT;
    }
    int64_t ready = 0;
    t.host_waits.clear();
    for (int fd = 0; fd < nfds; ++fd) {
      const uint64_t bit = 1ull << (fd % 64);
      const size_t w = static_cast<size_t>(fd) / 64;
      const bool want_r = in[0][w] & bit, want_w = in[1][w] & bit, want_x = in[2][w] & bit;
      if (!want_r && !want_w && !want_x) continue;
      auto f = GetFile(t, fd);
      if (!f) return -EBADF;
      short ev = static_cast<short>((want_r ? POLLIN : 0) | (want_w ? POLLOUT : 0) | (want_x ? POLLPRI : 0));
      short r = Readiness(*f, ev);
      bool any = false;
      if (want_r && (r & (POLLIN | POLLHUP | POLLERR))) { out[0][w] |= bit; ++ready; any = true; }
      if (want_w && (r & (POLLOUT | POLLERR))) { out[1][w] |= bit; ++ready; any = true; }
      if (want_x && (r & POLLPRI)) { out[2][w] |= bit; ++ready; any = true; }
      if (!any) WaitHostFd(t, *f, ev);
    }
    if (ready == 0 && !TimedOut(t, timeout_ns)) return kBlock;
    for (int k = 0; k < 3; ++k) {
      if (addrs[k] && words && !t.proc->as->CopyOut(addrs[k], out[k].data(), words * 8)) return -EFAULT;
    }
    return ready;
  }

  int64_t EpollCtl(Task& t, int epfd, int op, int fd, uint64_t ev_addr) {
    auto ep = GetFile(t, epfd);
    if (!ep) return -EBADF;
    auto f = GetFile(t, fd);
    if (!f) return -EBADF;
    if (ep->kind != File::Kind::kEpoll || f == ep) return -EINVAL;
    if (f->kind == File::Kind::kGofer || f->kind == File::Kind::kMem || f->kind == File::Kind::kDir) return -EPERM;
    epoll_event ev{};
    if (op != EPOLL_CTL_DEL && !t.proc->as->CopyIn(ev_addr, &ev, sizeof ev)) return -EFAULT;
    auto it = ep->epoll.find(fd);
    switch (op) {
      case EPOLL_CTL_ADD:
        if (it != ep->epoll.end() && !it->second.file.expired()) return -EEXIST;
        ep->epoll[fd] = {f, ev.events, ev.data.u64, false};
        return 0;
      case EPOLL_CTL_MOD:
        if (it == ep->epoll.end() || it->second.file.expired()) return -ENOENT;
        it->second = {f, ev.events, ev.data.u64, false};
        return 0;
      case EPOLL_CTL_DEL:
        if (it == ep->epoll.end() || it->second.file.expired()) return -ENOENT;
        ep->epoll.erase(it);
        return 0;
      default:
        return -EINVAL;
    }
  }

  int64_t EpollWait(Task& t, int epfd, uint64_t events_addr, int maxevents, int64_t timeout_ns) {
    auto ep = GetFile(t, epfd);
    if (!ep) return -EBADF;
    if (ep->kind != File::Kind::kEpoll || maxevents <= 0 || maxevents > 65536) return -EINVAL;
    std::vector<epoll_event> out;
    t.host_waits.clear();
    for (auto it = ep->epoll.begin(); it != ep->epoll.end();) {
      auto target = it->second.file.lock();
      if (!target) {  // the file was closed everywhere: gone from the set
        it = ep->epoll.erase(it);
        continue;
      }
      auto& item = it->second;
      if (!item.disabled && static_cast<int>(out.size()) < maxevents) {
        short r = Readiness(*target, static_cast<short>(item.events));
        uint32_t got = static_cast<uint32_t>(r) & (item.events | EPOLLHUP | EPOLLERR);
        if (got) {
          epoll_event e{};
          e.events = got;
          e.data.u64 = item.data;
          out.push_back(e);
          if (item.events & EPOLLONESHOT) item.disabled = true;
        } else {
          WaitHostFd(t, *target, static_cast<short>(item.events));
        }
      }
      ++it;
    }
    if (out.empty() && !TimedOut(t, timeout_ns)) return kBlock;
    if (!out.empty() && !t.proc->as->CopyOut(events_addr, out.data(), out.size() * sizeof(epoll_event))) return -EFAULT;
    return static_cast<int64_t>(out.size());
  }

  // Reads a timespec timeout: -1 for none (null pointer).
  bool TimeoutArg(Task& t, uint64_t addr, int64_t* ns, int64_t* err) {
    *ns = -1;
    if (!addr) return true;
    timespec ts;
    if (!In(t, addr, &ts)) { *err = -EFAULT; return false; }
    if (!ValidTs(ts)) { *err = -EINVAL; return false; }
    *ns = TsNs(ts);
    return true;
  }

  // ppoll / pselect6 / epoll_pwait: a temporary signal mask for the wait.
  bool TempMask(Task& t, uint64_t mask_addr, uint64_t size, int64_t* err) {
    if (t.retry || !mask_addr) return true;
    if (size != 8) { *err = -EINVAL; return false; }
    uint64_t m;
    if (!In(t, mask_addr, &m)) { *err = -EFAULT; return false; }
    t.saved_mask = t.sigmask;
    t.restore_mask = true;
    t.sigmask = m & ~kUnblockable;
    return true;
  }

  // ------------------------------------------------------------ dispatch

  int64_t Brk(Process& p, uint64_t want) {
    if (want < p.brk_start || want > p.brk_start + (1ull << 32)) return static_cast<int64_t>(p.brk);
    uint64_t end = PageUp(want);
    if (end > p.brk_mapped && OverLimit(end - p.brk_start)) return static_cast<int64_t>(p.brk);
    if (end > p.brk_mapped) {
      // As Linux: the heap never grows over another mapping.
      if (Overlapping(p, p.brk_mapped, end - p.brk_mapped)) return static_cast<int64_t>(p.brk);
      long r = p.as->Mmap(p.brk_mapped, end - p.brk_mapped, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
      if (r < 0) return static_cast<int64_t>(p.brk);
      if (auto* mm = Mm(p)) mm->Name(p.brk_mapped, end - p.brk_mapped, "[heap]");
      p.brk_mapped = end;
    }
    p.brk = want;
    return static_cast<int64_t>(p.brk);
  }

  // The page cache's pages of a file (stat `st`), [off, off + bytes) filled.
  std::shared_ptr<Chunk> CachedPages(File& f, const struct stat& st, uint64_t off, uint64_t bytes, long* err) {
    const FileCache::Key key{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                             static_cast<uint64_t>(st.st_size), TsNs(st.st_mtim)};
    return cache_->Get(key, off, bytes, [&](uint8_t* dst, uint64_t from, uint64_t len) -> long {
      uint64_t done = 0;
      while (done < len) {
        const size_t want = std::min<uint64_t>(kChunk, len - done);
        long n = ReadFileAt(f, static_cast<int64_t>(from + done), {dst + done, want});
        if (n < 0) return n;
        if (n == 0) break;
        done += static_cast<uint64_t>(n);
      }
      return static_cast<long>(done);
    }, err);
  }

  // A gofer file's attributes as the router keeps them, re-read once the
  // sandbox has changed any file since they were read.
  const struct stat& FreshStat(File& f) {
    if (f.kind == File::Kind::kGofer && f.generation != gofer_.generation()) {
      struct stat st;
      if (gofer_.Fstat(f.handle, &st) == 0) {
        f.st = st;
        f.generation = gofer_.generation();
      }
    }
    return f.st;
  }

  // read() of a file opened read-only: from the page cache's pages (filled
  // in 64 KiB windows, one gofer round trip each), copied straight from the
  // memory file to the application. -ENOTSUP: read it from the gofer.
  int64_t ReadCached(Task& t, File& f, uint64_t buf, uint64_t count, int64_t pos) {
    if (!cache_ || !mem_ || (f.flags & O_ACCMODE) != O_RDONLY || !S_ISREG(f.st.st_mode)) return -ENOTSUP;
    const struct stat& st = FreshStat(f);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size == 0 || size > FileCache::kMaxFile) return -ENOTSUP;
    if (pos < 0) return -EINVAL;
    if (static_cast<uint64_t>(pos) >= size || count == 0) return 0;
    const uint64_t n = std::min<uint64_t>(count, size - static_cast<uint64_t>(pos));
    long err = 0;
    auto chunk = CachedPages(f, st, static_cast<uint64_t>(pos), n, &err);
    if (!chunk) return err == -ENOMEM || err == -EFBIG ? -ENOTSUP : err;
    if (!t.proc->as->CopyOut(buf, mem_->at(chunk->offset + static_cast<uint64_t>(pos)), n)) return -EFAULT;
    return static_cast<int64_t>(n);
  }

  // A private read-only mapping of a host file from the page cache
  // (copy-on-write pages shared by every mapping of the file); pages past
  // the file's last one are fresh zeros. -ENOTSUP: not cacheable here, the
  // caller copies instead.
  int64_t MapCached(Process& p, File& f, uint64_t addr, uint64_t len, int prot, uint64_t off) {
    auto* mm = Mm(p);
    if (!mm || !cache_ || f.kind != File::Kind::kGofer) return -ENOTSUP;
    // The file as it was opened, or as it is since the sandbox last changed
    // a file: the page cache's rule, like the gofer client's parked handles,
    // is that only the sandbox changes its files (no round trip per mapping;
    // ld.so maps each library four times).
    const struct stat& st = FreshStat(f);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size == 0 || off >= size || size > FileCache::kMaxFile) return -ENOTSUP;
    const uint64_t in_file = std::min(len, PageUp(size) - off);
    long err = 0;
    auto chunk = CachedPages(f, st, off, in_file, &err);
    if (!chunk) return err == -ENOMEM || err == -EFBIG ? -ENOTSUP : err;
    long r = mm->MapCow(addr, in_file, prot, std::move(chunk), off, f.path);
    if (r < 0) return r;
    if (len > in_file) {
      r = p.as->Mmap(addr + in_file, len - in_file, prot, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
      if (r < 0) return r;
      mm->Name(addr + in_file, len - in_file, f.path);
    }
    return static_cast<int64_t>(addr);
  }

  int64_t Mmap(Task& t) {
    Process& p = *t.proc;
    uint64_t addr = t.arg(0), len = t.arg(1);
    int prot = static_cast<int>(t.arg(2)), flags = static_cast<int>(t.arg(3));
    int fd = static_cast<int>(t.arg(4));
    uint64_t off = t.arg(5);
    if (len == 0 || off % kPage) return -EINVAL;
    if (len > (1ull << 46)) return -ENOMEM;
    len = PageUp(len);
    const int type = flags & MAP_TYPE;
    if (type != MAP_PRIVATE && type != MAP_SHARED && type != MAP_SHARED_VALIDATE) return -EINVAL;
    if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return -EINVAL;
    if (type == MAP_PRIVATE && (prot & PROT_WRITE) && OverLimit(len)) return -ENOMEM;
    std::shared_ptr<File> f;
    bool shared_tmpfs = false;
    if (!(flags & MAP_ANONYMOUS)) {
      f = GetFile(t, fd);
      if (!f) return -EBADF;
      if (f->kind == File::Kind::kZero || f->kind == File::Kind::kNull) {
        f.reset();  // /dev/zero maps as anonymous memory
      } else {
        if (f->kind != File::Kind::kGofer && f->kind != File::Kind::kTmpfs) return -ENODEV;
        if ((f->flags & O_ACCMODE) == O_WRONLY) return -EACCES;
        if (f->kind == File::Kind::kTmpfs && type != MAP_PRIVATE) {
          if ((prot & PROT_WRITE) && (f->flags & O_ACCMODE) != O_RDWR) return -EACCES;
          if ((prot & PROT_WRITE) && (f->tnode->seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE))) return -EPERM;
          shared_tmpfs = true;
        } else if (type != MAP_PRIVATE && (prot & PROT_WRITE) && (f->flags & O_ACCMODE) != O_RDWR) {
          return -EACCES;
        }
      }
    }
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
      if (addr % kPage || addr < platform_.min_user_address() || addr + len > platform_.max_user_address() ||
          platform_.stub_range().Overlaps(addr, addr + len)) {
        return (flags & MAP_FIXED) ? -EINVAL : -ENOMEM;
      }
      if (!(flags & MAP_FIXED) && Overlapping(p, addr, len)) return -EEXIST;
    } else {
      if (p.mmap_next < len + platform_.min_user_address() + (1ull << 32)) return -ENOMEM;
      addr = p.mmap_next - len;
      p.mmap_next = addr;
    }
    if (shared_tmpfs) {
      // The file's bytes move into the memory file (once) and this mapping
      // shares them with write() and every other shared mapping.
      auto* mm = Mm(p);
      MemoryFile* mem = f->tmpfs->memory_file();
      if (!mm || !mem) return -ENODEV;
      auto chunk = f->tnode->data.Share(*mem, off + len);
      if (!chunk) return -ENOMEM;
      return mm->MapShared(addr, len, prot, std::move(chunk), off, f->path);
    }
    if (f && type != MAP_PRIVATE && f->kind == File::Kind::kGofer) return MapSharedFile(p, *f, addr, len, prot, off);
    if (f && type == MAP_PRIVATE && !(prot & PROT_WRITE)) {
      // Text and read-only data of libraries: the page cache's pages.
      if (int64_t r = MapCached(p, *f, addr, len, prot, off); r != -ENOTSUP) return r;
    }
    const int share = (type == MAP_PRIVATE || f) ? MAP_PRIVATE : MAP_SHARED;
    long r = p.as->Mmap(addr, len, f ? PROT_READ | PROT_WRITE : prot, share | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
    if (r < 0) return r;
    if (f) {
      std::vector<uint8_t> tmp;
      for (uint64_t done = 0; done < len;) {
        size_t want = std::min<uint64_t>(kChunk, len - done);
        tmp.resize(want);
        long n = f->kind == File::Kind::kTmpfs ? f->tmpfs->Read(*f->tnode, off + done, tmp.data(), want)
                                               : gofer_.Pread(f->handle, static_cast<int64_t>(off + done), {tmp.data(), want});
        if (n < 0) return n;
        if (n == 0) break;
        if (!p.as->CopyOut(addr + done, tmp.data(), static_cast<size_t>(n))) return -EFAULT;
        done += static_cast<uint64_t>(n);
      }
      if (prot != (PROT_READ | PROT_WRITE)) p.as->Mprotect(addr, len, prot);
    }
    return static_cast<int64_t>(addr);
  }

  int64_t Sleep(Task& t, clockid_t clock, bool absolute, uint64_t req_addr, uint64_t rem_addr) {
    if (!t.retry) {
      timespec ts;
      if (!In(t, req_addr, &ts)) return -EFAULT;
      if (!ValidTs(ts)) return -EINVAL;
      if (clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME && clock != CLOCK_BOOTTIME) return -EINVAL;
      int64_t rel = absolute ? TsNs(ts) - NowNs(clock) : TsNs(ts);
      t.deadline = NowNs() + std::max<int64_t>(rel, 0);
      t.saved_rem = rem_addr;
    }
    if (NowNs() >= t.deadline) return 0;
    return kBlock;
  }

  int64_t Dispatch(Task& t, long nr) {
    auto a = [&](int i) { return t.arg(i); };
    auto ia = [&](int i) { return static_cast<int>(t.arg(i)); };
    Process& p = *t.proc;
    auto& as = *p.as;
    switch (nr) {
      case SYS_read: return Read(t, ia(0), a(1), a(2), -1);
      case SYS_pread64: return static_cast<int64_t>(a(3)) < 0 ? -EINVAL : Read(t, ia(0), a(1), a(2), static_cast<int64_t>(a(3)));
      case SYS_write: return Write(t, ia(0), a(1), a(2));
      case SYS_pwrite64: {
        if (!GetFile(t, ia(0))) return -EBADF;
        if (static_cast<int64_t>(a(3)) < 0) return -EINVAL;
        return WriteAt(t, ia(0), a(1), a(2), static_cast<int64_t>(a(3)));
      }
      case SYS_pwritev:
      case SYS_pwritev2: {
        const int64_t off = static_cast<int64_t>(a(3));
        if (off < -1 || (off == -1 && nr == SYS_pwritev)) return -EINVAL;
        return Iov(t, ia(0), a(1), a(2), true, off);
      }
      case SYS_inotify_init:
      case SYS_inotify_init1: {
        const uint64_t flags = nr == SYS_inotify_init1 ? a(0) : 0;
        if (flags & ~static_cast<uint64_t>(IN_NONBLOCK | IN_CLOEXEC)) return -EINVAL;
        auto f = std::make_shared<File>();
        f->kind = File::Kind::kInotify;
        f->inotify = inotify_.Create();
        f->path = "anon_inode:inotify";
        f->flags = O_RDONLY | ((flags & IN_NONBLOCK) ? O_NONBLOCK : 0);
        return NewFd(t, f, 0, flags & IN_CLOEXEC);
      }
      case SYS_inotify_add_watch: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        if (f->kind != File::Kind::kInotify) return -EINVAL;
        const uint32_t mask = static_cast<uint32_t>(a(2));
        std::string path;
        if (int64_t rc = PathAt(t, AT_FDCWD, a(1), &path); rc < 0) return rc;
        struct stat st;
        if (int64_t rc = StatPath(t, path, !(mask & IN_DONT_FOLLOW), &st); rc < 0) return rc;
        if ((mask & IN_ONLYDIR) && !S_ISDIR(st.st_mode)) return -ENOTDIR;
        return f->inotify->AddWatch(path, mask);
      }
      case SYS_inotify_rm_watch: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        if (f->kind != File::Kind::kInotify) return -EINVAL;
        return f->inotify->RemoveWatch(ia(1));
      }
      case SYS_sendfile: return Sendfile(t, ia(0), ia(1), a(2), a(3));
      case SYS_copy_file_range: return CopyFileRange(t, ia(0), a(1), ia(2), a(3), a(4), a(5));
      case SYS_splice: return Splice(t, ia(0), a(1), ia(2), a(3), a(4), a(5));
      case SYS_tee: return Tee(t, ia(0), ia(1), a(2), a(3));
      case SYS_readv: return Iov(t, ia(0), a(1), a(2), false);
      case SYS_writev: return Iov(t, ia(0), a(1), a(2), true);
      case SYS_preadv:
      case SYS_preadv2: return static_cast<int64_t>(a(3)) < -1 ? -EINVAL : Iov(t, ia(0), a(1), a(2), false, static_cast<int64_t>(a(3)));
      case SYS_open: return OpenAt(t, AT_FDCWD, a(0), static_cast<uint32_t>(a(1)), static_cast<uint32_t>(a(2)));
      case SYS_openat: return OpenAt(t, ia(0), a(1), static_cast<uint32_t>(a(2)), static_cast<uint32_t>(a(3)));
      case SYS_creat: return OpenAt(t, AT_FDCWD, a(0), O_CREAT | O_WRONLY | O_TRUNC, static_cast<uint32_t>(a(1)));
      case SYS_close: {
        if (auto f = GetFile(t, ia(0))) {
          LockTable::Key key;
          if (LockKey(*f, &key)) locks_.ClosedBy(key, p.pid);  // POSIX: any close drops the process's locks
          if (inotify_.any() && f.use_count() == 2 && (f->kind == File::Kind::kGofer || f->kind == File::Kind::kTmpfs)) {
            Notify(f->path, (f->flags & O_ACCMODE) == O_RDONLY ? IN_CLOSE_NOWRITE : IN_CLOSE_WRITE);
          }
        }
        if (!p.fds->erase(ia(0))) return -EBADF;
        return 0;
      }
      case SYS_close_range: {
        if (a(2) & ~static_cast<uint64_t>(CLOSE_RANGE_CLOEXEC | CLOSE_RANGE_UNSHARE)) return -EINVAL;
        if (a(0) > a(1)) return -EINVAL;
        if (a(2) & CLOSE_RANGE_UNSHARE && p.fds.use_count() > 1) p.fds = std::make_shared<FdTable>(*p.fds);
        for (auto it = p.fds->lower_bound(static_cast<int>(std::min<uint64_t>(a(0), INT32_MAX))); it != p.fds->end() && static_cast<uint64_t>(it->first) <= a(1);) {
          if (a(2) & CLOSE_RANGE_CLOEXEC) {
            it->second.cloexec = true;
            ++it;
          } else {
            it = p.fds->erase(it);
          }
        }
        return 0;
      }
      case SYS_lseek: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        if (f->kind == File::Kind::kHost || f->kind == File::Kind::kPipe) return -ESPIPE;
        if (f->kind == File::Kind::kNull || f->kind == File::Kind::kZero || f->kind == File::Kind::kRandom) return 0;
        int64_t off = static_cast<int64_t>(a(1)), base;
        const bool regular_gofer = f->kind == File::Kind::kGofer && !S_ISDIR(f->st.st_mode);
        if ((ia(2) == SEEK_DATA || ia(2) == SEEK_HOLE) && regular_gofer) {
          int64_t r = gofer_.Seek(f->handle, off, ia(2));
          if (r >= 0) f->offset = r;
          return r;
        }
        if (ia(2) == SEEK_END && regular_gofer) {
          struct stat st;  // other descriptors may have written since
          if (gofer_.Fstat(f->handle, &st) == 0) f->st.st_size = st.st_size;
        }
        int64_t size = f->kind == File::Kind::kGofer   ? f->st.st_size
                       : f->kind == File::Kind::kTmpfs ? static_cast<int64_t>(f->tnode->data.size())
                                                       : static_cast<int64_t>(f->data.size());
        switch (ia(2)) {
          case SEEK_SET: base = 0; break;
          case SEEK_CUR: base = f->offset; break;
          case SEEK_END: base = size; break;
          case SEEK_DATA:
          case SEEK_HOLE: {
            if (off < 0 || off >= size) return -ENXIO;
            // A tmpfs file in the memory file has the holes its pages have
            // (never written); elsewhere: data up to the size, one hole after.
            const Chunk* c = f->kind == File::Kind::kTmpfs ? f->tnode->data.chunk() : nullptr;
            if (c != nullptr && mem_ != nullptr) {
              const off_t r = ::lseek(mem_->fd(), static_cast<off_t>(c->offset + static_cast<uint64_t>(off)), ia(2));
              const int64_t rel = r < 0 ? size : std::min<int64_t>(r - static_cast<off_t>(c->offset), size);
              if (ia(2) == SEEK_DATA && rel >= size) return -ENXIO;
              return f->offset = rel;
            }
            return f->offset = ia(2) == SEEK_DATA ? off : size;
          }
          default: return -EINVAL;
        }
        if ((off > 0 && base > INT64_MAX - off) || base + off < 0) return -EINVAL;
        if (f->kind == File::Kind::kGofer && S_ISDIR(f->st.st_mode)) {
          if (base + off != 0) return -EINVAL;
          // rewinddir: the listing starts again, here and in the gofer.
          if (int rc = gofer_.RewindDir(f->handle); rc < 0) return rc;
          f->data.clear();
          f->dir_pos = 0;
          f->dir_eof = false;
        }
        return f->offset = base + off;
      }
      case SYS_fstat: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        struct stat st;
        if (int64_t rc = StatFile(*f, &st); rc < 0) return rc;
        return Out(t, a(1), st) ? 0 : -EFAULT;
      }
      case SYS_stat:
      case SYS_lstat: {
        struct stat st;
        int64_t rc = LookupStat(t, AT_FDCWD, a(0), nr == SYS_lstat ? AT_SYMLINK_NOFOLLOW : 0, &st);
        if (rc < 0) return rc;
        return Out(t, a(1), st) ? 0 : -EFAULT;
      }
      case SYS_newfstatat: {
        if (ia(3) & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT)) return -EINVAL;
        struct stat st;
        int64_t rc = LookupStat(t, ia(0), a(1), ia(3), &st);
        if (rc < 0) return rc;
        return Out(t, a(2), st) ? 0 : -EFAULT;
      }
      case SYS_statx: {
        const int flags = ia(2);
        if (flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE)) return -EINVAL;
        struct stat st;
        if (int64_t rc = LookupStat(t, ia(0), a(1), flags, &st); rc < 0) return rc;
        struct statx x;
        std::memset(&x, 0, sizeof(x));
        x.stx_mask = STATX_BASIC_STATS;
        x.stx_blksize = static_cast<uint32_t>(st.st_blksize);
        x.stx_nlink = static_cast<uint32_t>(st.st_nlink);
        x.stx_uid = st.st_uid;
        x.stx_gid = st.st_gid;
        x.stx_mode = static_cast<uint16_t>(st.st_mode);
        x.stx_ino = st.st_ino;
        x.stx_size = static_cast<uint64_t>(st.st_size);
        x.stx_blocks = static_cast<uint64_t>(st.st_blocks);
        auto ts = [](const timespec& v) { return statx_timestamp{v.tv_sec, static_cast<uint32_t>(v.tv_nsec), 0}; };
        x.stx_atime = ts(st.st_atim);
        x.stx_mtime = ts(st.st_mtim);
        x.stx_ctime = ts(st.st_ctim);
        x.stx_rdev_major = major(st.st_rdev);
        x.stx_rdev_minor = minor(st.st_rdev);
        x.stx_dev_major = major(st.st_dev);
        x.stx_dev_minor = minor(st.st_dev);
        return Out(t, a(4), x) ? 0 : -EFAULT;
      }
      case SYS_getxattr:
      case SYS_lgetxattr:
      case SYS_fgetxattr:
      case SYS_listxattr:
      case SYS_llistxattr:
      case SYS_flistxattr:
      case SYS_setxattr:
      case SYS_lsetxattr:
      case SYS_fsetxattr:
      case SYS_removexattr:
      case SYS_lremovexattr:
      case SYS_fremovexattr:
        return Xattr(t, nr);
      case SYS_socket:
      case SYS_socketpair:
        return -EAFNOSUPPORT;  // sockets come with the net-stack
      case SYS_access:
      case SYS_faccessat:
      case SYS_faccessat2: {
        const bool at = nr != SYS_access;
        const int mode = at ? ia(2) : ia(1);
        if (mode & ~(R_OK | W_OK | X_OK)) return -EINVAL;
        const uint64_t aflags = nr == SYS_faccessat2 ? a(3) : 0;
        if (aflags & ~static_cast<uint64_t>(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -EINVAL;
        std::string path;
        if (int64_t rc = PathAt(t, at ? ia(0) : AT_FDCWD, at ? a(1) : a(0), &path, aflags & AT_EMPTY_PATH); rc < 0) return rc;
        {
          std::string rel;
          if (!TmpfsFor(path, &rel) && !IsVirtual(path)) {
            return gofer_.Access(path, static_cast<uint32_t>(mode), !(aflags & AT_SYMLINK_NOFOLLOW));
          }
        }
        struct stat st;
        if (int64_t rc = StatPath(t, path, !(aflags & AT_SYMLINK_NOFOLLOW), &st); rc < 0) return rc;
        if ((mode & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111)) return -EACCES;
        std::string rel;
        if ((mode & W_OK) && !TmpfsFor(path, &rel) && !IsVirtual(path) && !S_ISCHR(st.st_mode)) return -EROFS;
        return 0;
      }
      case SYS_getdents64: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        if (f->kind == File::Kind::kTmpfs) {
          if (!S_ISDIR(f->tnode->mode)) return -ENOTDIR;
          if (f->offset == 0) f->data = f->tmpfs->Dirents(*f->tnode);  // a fresh listing from the start
        }
        if (f->kind == File::Kind::kDir || f->kind == File::Kind::kTmpfs) {
          // Whole records from the current offset that fit.
          size_t pos = static_cast<size_t>(f->offset), end = pos;
          while (end < f->data.size()) {
            uint16_t rl;
            std::memcpy(&rl, f->data.data() + end + 16, 2);
            if (end + rl - pos > a(2)) break;
            end += rl;
          }
          if (end == pos && pos < f->data.size()) return -EINVAL;
          if (end > pos && !as.CopyOut(a(1), f->data.data() + pos, end - pos)) return -EFAULT;
          f->offset = static_cast<int64_t>(end);
          return static_cast<int64_t>(end - pos);
        }
        if (f->kind != File::Kind::kGofer || !S_ISDIR(f->st.st_mode)) return -ENOTDIR;
        // Listings come from the gofer in big batches (one round trip for a
        // directory of a few thousand names) and go to the application as
        // whole records that fit its buffer.
        if (f->dir_pos >= f->data.size()) {
          f->data.clear();
          f->dir_pos = 0;
          if (!f->dir_eof) {
            std::vector<uint8_t> tmp(kDirBatch);
            long n = gofer_.Getdents(f->handle, tmp);
            if (n < 0) return n;
            if (n == 0) f->dir_eof = true;
            f->data.assign(reinterpret_cast<const char*>(tmp.data()), static_cast<size_t>(n));
          }
        }
        size_t pos = f->dir_pos, end = pos;
        while (end + 19 <= f->data.size()) {
          uint16_t rl;
          std::memcpy(&rl, f->data.data() + end + 16, 2);
          if (rl < 20 || end + rl > f->data.size() || end + rl - pos > a(2)) break;
          end += rl;
        }
        if (end == pos) return pos < f->data.size() ? -EINVAL : 0;  // nothing fits, or the end
        if (!as.CopyOut(a(1), f->data.data() + pos, end - pos)) return -EFAULT;
        f->dir_pos = end;
        return static_cast<int64_t>(end - pos);
      }
      case SYS_readlink:
      case SYS_readlinkat: {
        const bool at = nr == SYS_readlinkat;
        std::string path, target;
        if (int64_t rc = PathAt(t, at ? ia(0) : AT_FDCWD, at ? a(1) : a(0), &path); rc < 0) return rc;
        const int64_t size = static_cast<int64_t>(at ? a(3) : a(2));
        if (size <= 0) return -EINVAL;
        std::string rel;
        if (Tmpfs* fs = TmpfsFor(path, &rel)) {
          Tmpfs::NodePtr n;
          if (int rc = fs->Lookup(rel, false, &n); rc < 0) return rc;
          if (!S_ISLNK(n->mode)) return -EINVAL;
          target = n->target;
        } else if (IsVirtual(path)) {
          auto n = Virtual(t, path, false);
          if (!n) return -ENOENT;
          if (!S_ISLNK(n->mode)) return -EINVAL;
          target = n->link;
        } else if (int rc = gofer_.Readlink(path, &target); rc < 0) {
          return rc;
        }
        size_t len = std::min<size_t>(target.size(), static_cast<size_t>(size));
        return as.CopyOut(at ? a(2) : a(1), target.data(), len) ? static_cast<int64_t>(len) : -EFAULT;
      }
      case SYS_getcwd: {
        if (a(1) < p.cwd.size() + 1) return -ERANGE;
        return as.CopyOut(a(0), p.cwd.c_str(), p.cwd.size() + 1) ? static_cast<int64_t>(p.cwd.size() + 1) : -EFAULT;
      }
      case SYS_chdir:
      case SYS_fchdir: {
        std::string path;
        if (nr == SYS_chdir) {
          if (int64_t rc = PathAt(t, AT_FDCWD, a(0), &path); rc < 0) return rc;
        } else {
          auto f = GetFile(t, ia(0));
          if (!f) return -EBADF;
          path = f->path;
        }
        struct stat st;
        if (int64_t rc = StatPath(t, path, true, &st); rc < 0) return rc;
        if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
        p.cwd = path;
        return 0;
      }
      case SYS_dup: {
        auto f = GetFile(t, ia(0));
        return f ? NewFd(t, f) : -EBADF;
      }
      case SYS_dup2:
      case SYS_dup3: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        int nfd = ia(1);
        if (nfd < 0 || nfd >= kMaxFds || static_cast<uint64_t>(nfd) >= p.rlim[RLIMIT_NOFILE].rlim_cur) return -EBADF;
        if (nr == SYS_dup3 && (nfd == ia(0) || (a(2) & ~static_cast<uint64_t>(O_CLOEXEC)))) return -EINVAL;
        if (nfd == ia(0)) return nfd;
        (*p.fds)[nfd] = {f, nr == SYS_dup3 && (a(2) & O_CLOEXEC)};
        return nfd;
      }
      case SYS_fcntl: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        auto& ent = (*p.fds)[ia(0)];
        switch (ia(1)) {
          case F_GETFD: return ent.cloexec ? FD_CLOEXEC : 0;
          case F_SETFD: ent.cloexec = a(2) & FD_CLOEXEC; return 0;
          case F_GETFL: return f->flags | (f->kind == File::Kind::kGofer ? O_LARGEFILE : 0);
          case F_SETFL: f->flags = (f->flags & O_ACCMODE) | (static_cast<uint32_t>(a(2)) & (O_APPEND | O_NONBLOCK)); return 0;
          case F_DUPFD:
          case F_DUPFD_CLOEXEC: {
            if (a(2) >= kMaxFds) return -EINVAL;
            return NewFd(t, f, ia(2), ia(1) == F_DUPFD_CLOEXEC);
          }
          case F_GET_SEALS:
            return f->kind == File::Kind::kTmpfs && f->tnode ? f->tnode->seals : -EINVAL;
          case F_ADD_SEALS: {
            if (f->kind != File::Kind::kTmpfs || !f->tnode || !S_ISREG(f->tnode->mode)) return -EINVAL;
            const int add = ia(2);
            if (add & ~(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) return -EINVAL;
            if ((f->flags & O_ACCMODE) == O_RDONLY) return -EPERM;
            if (f->tnode->seals & F_SEAL_SEAL) return -EPERM;
            f->tnode->seals |= add;
            return 0;
          }
          case F_GETPIPE_SZ:
          case F_SETPIPE_SZ:
            return f->kind == File::Kind::kPipe ? static_cast<int64_t>(kPipeCapacity) : -EBADF;
          case F_SETLK:
          case F_SETLKW:
          case F_OFD_SETLK:
          case F_OFD_SETLKW:
          case F_GETLK:
          case F_OFD_GETLK:
            return RecordLock(t, f, ia(1), a(2));
          default: return -EINVAL;
        }
      }
      case SYS_flock: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        const int op = ia(1), kind = op & ~LOCK_NB;
        if (kind != LOCK_SH && kind != LOCK_EX && kind != LOCK_UN) return -EINVAL;
        LockTable::Key key;
        if (!LockKey(*f, &key)) return 0;
        const int rc = locks_.Flock(key, LockTable::Owner{p.pid, f, f.get()}, op);
        return rc == -EWOULDBLOCK && !(op & LOCK_NB) ? kBlock : rc;
      }
      case SYS_ioctl: return Ioctl(t, ia(0), static_cast<unsigned long>(a(1)), a(2));
      case SYS_pipe:
      case SYS_pipe2: {
        const uint64_t flags = nr == SYS_pipe2 ? a(1) : 0;
        if (flags & ~static_cast<uint64_t>(O_CLOEXEC | O_NONBLOCK | O_DIRECT)) return -EINVAL;
        auto pipe = std::make_shared<Pipe>();
        auto r = std::make_shared<File>();
        auto w = std::make_shared<File>();
        r->kind = w->kind = File::Kind::kPipe;
        r->pipe = w->pipe = pipe;
        w->pipe_write = true;
        pipe->readers = pipe->writers = 1;
        r->flags = O_RDONLY | (flags & O_NONBLOCK);
        w->flags = O_WRONLY | (flags & O_NONBLOCK);
        r->st.st_mode = w->st.st_mode = S_IFIFO | 0600;
        int fr = NewFd(t, r, 0, flags & O_CLOEXEC);
        if (fr < 0) return fr;
        int fw = NewFd(t, w, 0, flags & O_CLOEXEC);
        if (fw < 0) {
          p.fds->erase(fr);
          return fw;
        }
        int32_t both[2] = {fr, fw};
        if (!as.CopyOut(a(0), both, sizeof both)) {
          p.fds->erase(fr);
          p.fds->erase(fw);
          return -EFAULT;
        }
        return 0;
      }
      case SYS_eventfd:
      case SYS_memfd_create: return MemfdCreate(t, a(0), static_cast<uint32_t>(a(1)));
      case SYS_shmget: return ShmGet(t, static_cast<key_t>(a(0)), a(1), ia(2));
      case SYS_shmat: return ShmAt(t, ia(0), a(1), ia(2));
      case SYS_shmdt: return ShmDt(t, a(0));
      case SYS_shmctl: return ShmCtl(t, ia(0), ia(1), a(2));
      case SYS_eventfd2: {
        const uint64_t flags = nr == SYS_eventfd2 ? a(1) : 0;
        if (flags & ~static_cast<uint64_t>(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE)) return -EINVAL;
        auto f = std::make_shared<File>();
        f->kind = File::Kind::kEventfd;
        f->counter = static_cast<uint32_t>(a(0));
        f->semaphore = flags & EFD_SEMAPHORE;
        f->flags = O_RDWR | (flags & EFD_NONBLOCK ? O_NONBLOCK : 0);
        return NewFd(t, f, 0, flags & EFD_CLOEXEC);
      }
      case SYS_epoll_create:
      case SYS_epoll_create1: {
        if (nr == SYS_epoll_create && ia(0) <= 0) return -EINVAL;
        if (nr == SYS_epoll_create1 && (a(0) & ~static_cast<uint64_t>(EPOLL_CLOEXEC))) return -EINVAL;
        auto f = std::make_shared<File>();
        f->kind = File::Kind::kEpoll;
        f->flags = O_RDWR;
        return NewFd(t, f, 0, nr == SYS_epoll_create1 && (a(0) & EPOLL_CLOEXEC));
      }
      case SYS_epoll_ctl: return EpollCtl(t, ia(0), ia(1), ia(2), a(3));
      case SYS_epoll_wait:
      case SYS_epoll_pwait: {
        int64_t err = 0;
        if (nr == SYS_epoll_pwait && !TempMask(t, a(4), a(5), &err)) return err;
        return EpollWait(t, ia(0), a(1), ia(2), ia(3) < 0 ? -1 : static_cast<int64_t>(ia(3)) * 1000000);
      }
      case SYS_poll: return Poll(t, a(0), a(1), ia(2) < 0 ? -1 : static_cast<int64_t>(ia(2)) * 1000000);
      case SYS_ppoll: {
        int64_t ns, err = 0;
        if (!t.retry && !TimeoutArg(t, a(2), &ns, &err)) return err;
        if (t.retry) ns = t.deadline;  // unused on a retry
        if (!TempMask(t, a(3), a(4), &err)) return err;
        return Poll(t, a(0), a(1), ns);
      }
      case SYS_select: {
        int64_t ns = -1;
        if (a(4)) {
          timeval tv;
          if (!In(t, a(4), &tv)) return -EFAULT;
          if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000) return -EINVAL;
          ns = ToNs(tv.tv_sec, tv.tv_usec * 1000);
        }
        return Select(t, ia(0), a(1), a(2), a(3), ns);
      }
      case SYS_pselect6: {
        int64_t ns, err = 0;
        if (!t.retry && !TimeoutArg(t, a(4), &ns, &err)) return err;
        if (t.retry) ns = 0;
        if (a(5) && !t.retry) {
          uint64_t sig[2];
          if (!t.proc->as->CopyIn(a(5), sig, sizeof sig)) return -EFAULT;
          if (!TempMask(t, sig[0], sig[1], &err)) return err;
        }
        return Select(t, ia(0), a(1), a(2), a(3), ns);
      }
      case SYS_brk: return Brk(p, a(0));
      case SYS_mmap: return Mmap(t);
      case SYS_munmap: {
        if (a(0) % kPage || a(1) == 0 || platform_.stub_range().Overlaps(a(0), a(0) + PageUp(a(1)))) return -EINVAL;
        return as.Munmap(a(0), a(1));
      }
      case SYS_mprotect: {
        if (a(0) % kPage || platform_.stub_range().Overlaps(a(0), a(0) + PageUp(a(1)))) return -EINVAL;
        return as.Mprotect(a(0), a(1), ia(2));
      }
      case SYS_madvise:
        if (a(0) % kPage) return -EINVAL;
        if (!KnownAdvice(ia(2))) return -EINVAL;
        if (platform_.stub_range().Overlaps(a(0), a(0) + PageUp(a(1)))) return -EINVAL;
        return Mm(p) ? as.Syscall(SYS_madvise, {a(0), a(1), a(2), 0, 0, 0}) : 0;
      case SYS_mremap: {
        if (!Mm(p)) return -ENOMEM;  // glibc falls back to malloc + copy
        const uint64_t flags = a(3), new_len = PageUp(a(2));
        if (new_len > PageUp(a(1)) && OverLimit(new_len)) return -ENOMEM;
        if (flags & MREMAP_FIXED) {
          if (a(4) < platform_.min_user_address() || a(4) + new_len > platform_.max_user_address()) return -EINVAL;
          return as.Syscall(SYS_mremap, {a(0), a(1), a(2), flags, a(4), 0});
        }
        long r = as.Syscall(SYS_mremap, {a(0), a(1), a(2), flags & ~static_cast<uint64_t>(MREMAP_MAYMOVE), 0, 0});
        if (r != -ENOMEM || !(flags & MREMAP_MAYMOVE)) return r;
        if (new_len == 0 || p.mmap_next < new_len + platform_.min_user_address() + (1ull << 32)) return -ENOMEM;
        const uint64_t to = p.mmap_next - new_len;
        r = as.Syscall(SYS_mremap, {a(0), a(1), a(2), MREMAP_MAYMOVE | MREMAP_FIXED, to, 0});
        if (r >= 0) p.mmap_next = to;
        return r;
      }
      case SYS_msync: {
        if ((a(0) & (kPage - 1)) || (a(2) & ~static_cast<uint64_t>(MS_ASYNC | MS_SYNC | MS_INVALIDATE))) return -EINVAL;
        if ((a(2) & MS_ASYNC) && (a(2) & MS_SYNC)) return -EINVAL;
        for (auto& [key, sf] : shared_files_) FlushSharedFile(sf);
        return 0;
      }
      case SYS_mlock:
      case SYS_munlock:
      case SYS_mlockall:
      case SYS_munlockall:
        return 0;
      case SYS_arch_prctl:
        if (a(0) == ARCH_SET_FS) {
          if (a(1) >= platform::kTaskSizeMax) return -EPERM;
          t.regs.gp.fs_base = a(1);
          return 0;
        }
        if (a(0) == ARCH_GET_FS) return Out(t, a(1), t.regs.gp.fs_base) ? 0 : -EFAULT;
        if (a(0) == ARCH_SET_GS) {
          if (a(1) >= platform::kTaskSizeMax) return -EPERM;
          if (a(1) != 0) DisablePatches(*t.proc);
          t.regs.gp.gs_base = a(1);
          return 0;
        }
        if (a(0) == ARCH_GET_GS) return Out(t, a(1), t.regs.gp.gs_base) ? 0 : -EFAULT;
        return -EINVAL;
      case SYS_set_tid_address: t.clear_tid = a(0); return t.tid;
      case SYS_set_robust_list:
        if (a(1) != 24) return -EINVAL;
        t.robust_head = a(0);
        return 0;
      case SYS_get_robust_list: {
        Task* target = &t;
        if (ia(0) != 0) {
          auto it = tasks_.find(ia(0));
          if (it == tasks_.end()) return -ESRCH;
          target = it->second.get();
        }
        const uint64_t len = 24;
        if (!Out(t, a(1), target->robust_head) || !Out(t, a(2), len)) return -EFAULT;
        return 0;
      }
      case SYS_rseq: return -ENOSYS;
      case SYS_futex: return Futex(t);
      case SYS_getpid: return p.pid;
      case SYS_gettid: return t.tid;
      case SYS_getppid: return std::max(p.ppid, 0);
      case SYS_getpgrp: return p.pgid;
      case SYS_getpgid:
      case SYS_getsid: {
        Process* q = &p;
        if (ia(0) != 0) {
          auto it = procs_.find(ia(0));
          if (it == procs_.end() || it->second->zombie) return -ESRCH;
          q = it->second.get();
        }
        return nr == SYS_getpgid ? q->pgid : q->sid;
      }
      case SYS_setpgid: {
        const int pid = ia(0) ? ia(0) : p.pid;
        const int pgid = ia(1) ? ia(1) : pid;
        if (ia(1) < 0) return -EINVAL;
        auto it = procs_.find(pid);
        if (it == procs_.end() || it->second->zombie) return -ESRCH;
        Process& q = *it->second;
        if (q.pid != p.pid && q.ppid != p.pid) return -ESRCH;
        if (q.pid != p.pid && q.execed) return -EACCES;
        if (q.sid != p.sid) return -EPERM;
        if (q.pid == q.sid) return -EPERM;  // a session leader
        if (pgid != q.pid) {
          bool exists = false;
          for (auto& [id, r] : procs_) if (!r->zombie && r->pgid == pgid && r->sid == p.sid) exists = true;
          if (!exists) return -EPERM;
        }
        q.pgid = pgid;
        return 0;
      }
      case SYS_setsid: {
        for (auto& [id, r] : procs_) if (!r->zombie && r->pgid == p.pid) return -EPERM;
        p.sid = p.pgid = p.pid;
        return p.pid;
      }
      case SYS_getuid: case SYS_geteuid: case SYS_getgid: case SYS_getegid: return 0;
      case SYS_getresuid:
      case SYS_getresgid: {
        const uint32_t zero = 0;
        for (int i = 0; i < 3; ++i) if (!as.CopyOut(a(i), &zero, 4)) return -EFAULT;
        return 0;
      }
      case SYS_getgroups: return 0;
      case SYS_setuid: case SYS_setgid: case SYS_setreuid: case SYS_setregid:
      case SYS_setresuid: case SYS_setresgid: case SYS_setgroups: case SYS_setfsuid: case SYS_setfsgid:
        return 0;  // root inside; identities come with the OCI work
      case SYS_umask: {
        uint32_t old = p.umask;
        p.umask = static_cast<uint32_t>(a(0)) & 0777;
        return old;
      }
      case SYS_uname: {
        struct utsname u;
        std::memset(&u, 0, sizeof(u));
        std::strcpy(u.sysname, "Linux");
        std::snprintf(u.nodename, sizeof(u.nodename), "%s", hostname_.c_str());
        std::strcpy(u.release, "6.1.0-bulkhead");
        std::strcpy(u.version, "#1 SMP bulkhead");
        std::strcpy(u.machine, "x86_64");
        std::strcpy(u.domainname, "(none)");
        return Out(t, a(0), u) ? 0 : -EFAULT;
      }
      case SYS_sethostname: {
        if (a(1) > 64) return -EINVAL;
        std::string h(a(1), '\0');
        if (a(1) && !as.CopyIn(a(0), h.data(), a(1))) return -EFAULT;
        hostname_ = h;
        return 0;
      }
      case SYS_getrandom: {
        if (a(2) & ~static_cast<uint64_t>(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) return -EINVAL;
        std::vector<uint8_t> tmp(std::min<uint64_t>(a(1), kChunk));
        ssize_t n = tmp.empty() ? 0 : ::getrandom(tmp.data(), tmp.size(), 0);
        if (n < 0) return -errno;
        return as.CopyOut(a(0), tmp.data(), static_cast<size_t>(n)) ? n : -EFAULT;
      }
      case SYS_clock_gettime: {
        timespec ts;
        if (::clock_gettime(static_cast<clockid_t>(a(0)), &ts) < 0) return -errno;
        return Out(t, a(1), ts) ? 0 : -EFAULT;
      }
      case SYS_clock_getres: {
        timespec ts{0, 1};
        if (static_cast<int>(a(0)) < 0 || a(0) > CLOCK_TAI) return -EINVAL;
        return a(1) == 0 || Out(t, a(1), ts) ? 0 : -EFAULT;
      }
      case SYS_gettimeofday: {
        timeval tv;
        ::gettimeofday(&tv, nullptr);
        if (a(0) && !Out(t, a(0), tv)) return -EFAULT;
        return 0;
      }
      case SYS_time: {
        int64_t now = ::time(nullptr);
        if (a(0) && !Out(t, a(0), now)) return -EFAULT;
        return now;
      }
      case SYS_times: {
        struct tms tm{};
        if (a(0) && !Out(t, a(0), tm)) return -EFAULT;
        return (NowNs() - start_ns_) / 10000000;
      }
      case SYS_getrusage: {
        if (ia(0) != RUSAGE_SELF && ia(0) != RUSAGE_CHILDREN && ia(0) != RUSAGE_THREAD) return -EINVAL;
        struct rusage ru{};
        return Out(t, a(1), ru) ? 0 : -EFAULT;
      }
      case SYS_sysinfo: {
        struct sysinfo si{};
        si.uptime = (NowNs() - start_ns_) / 1000000000;
        si.totalram = static_cast<unsigned long>(MemTotalPages()) * 4096;
        si.freeram = static_cast<unsigned long>(MemAvailPages()) * 4096;
        si.procs = static_cast<unsigned short>(procs_.size());
        si.mem_unit = 1;
        return Out(t, a(0), si) ? 0 : -EFAULT;
      }
      case SYS_nanosleep: return Sleep(t, CLOCK_MONOTONIC, false, a(0), a(1));
      case SYS_clock_nanosleep: {
        if (a(1) & ~static_cast<uint64_t>(TIMER_ABSTIME)) return -EINVAL;
        int64_t r = Sleep(t, static_cast<clockid_t>(a(0)), a(1) & TIMER_ABSTIME, a(2), a(3));
        return r;
      }
      case SYS_pause: return kBlock;  // only a signal ends it (EINTR)
      case SYS_alarm: {
        const int64_t now = NowNs();
        uint64_t left = p.itimer_deadline >= 0 ? static_cast<uint64_t>((p.itimer_deadline - now + 999999999) / 1000000000) : 0;
        p.itimer_deadline = a(0) ? now + static_cast<int64_t>(std::min<uint64_t>(a(0), 1u << 30)) * 1000000000 : -1;
        p.itimer_interval = 0;
        return static_cast<int64_t>(left);
      }
      case SYS_setitimer:
      case SYS_getitimer: {
        const int which = ia(0);
        if (which != ITIMER_REAL) return which == ITIMER_VIRTUAL || which == ITIMER_PROF ? 0 : -EINVAL;
        const int64_t now = NowNs();
        itimerval old{};
        if (p.itimer_deadline >= 0) {
          int64_t left = std::max<int64_t>(p.itimer_deadline - now, 1000);
          old.it_value = {left / 1000000000, (left % 1000000000) / 1000};
          old.it_interval = {p.itimer_interval / 1000000000, (p.itimer_interval % 1000000000) / 1000};
        }
        if (nr == SYS_getitimer) return Out(t, a(1), old) ? 0 : -EFAULT;
        itimerval nv{};
        if (a(1) && !In(t, a(1), &nv)) return -EFAULT;
        for (const timeval& tv : {nv.it_value, nv.it_interval}) {
          if (tv.tv_usec < 0 || tv.tv_usec >= 1000000 || tv.tv_sec < 0) return -EINVAL;
        }
        if (a(2) && !Out(t, a(2), old)) return -EFAULT;
        const int64_t v = ToNs(nv.it_value.tv_sec, nv.it_value.tv_usec * 1000);
        p.itimer_deadline = v > 0 ? now + v : -1;
        p.itimer_interval = ToNs(nv.it_interval.tv_sec, nv.it_interval.tv_usec * 1000);
        return 0;
      }
      case SYS_mkdir:
      case SYS_mkdirat: {
        const bool at = nr == SYS_mkdirat;
        std::string path, rel;
        if (int64_t rc = PathAt(t, at ? ia(0) : AT_FDCWD, at ? a(1) : a(0), &path); rc < 0) return rc;
        if (int64_t rc = DotLast(t, at ? a(1) : a(0), -EEXIST, -EEXIST); rc < 0) return rc;
        const uint32_t mode = static_cast<uint32_t>(at ? a(2) : a(1)) & ~p.umask;
        if (IsVirtual(path) && !TmpfsFor(path, &rel)) {
          struct stat st;
          if (StatPath(t, path, false, &st) == 0) return -EEXIST;
          return ReadOnlyRoot(t, path);
        }
        Tmpfs* fs = TmpfsFor(path, &rel);
        const int rc = fs ? fs->Mkdir(rel, mode) : gofer_.Mknod(path, S_IFDIR | (mode & 07777), 0);
        if (rc == 0) Notify(path, IN_CREATE, true);
        return rc;
      }
      case SYS_rmdir:
      case SYS_unlink:
      case SYS_unlinkat: {
        const bool at = nr == SYS_unlinkat;
        if (at && (a(2) & ~static_cast<uint64_t>(AT_REMOVEDIR))) return -EINVAL;
        const bool dir = nr == SYS_rmdir || (at && (a(2) & AT_REMOVEDIR));
        std::string path, rel;
        if (int64_t rc = PathAt(t, at ? ia(0) : AT_FDCWD, at ? a(1) : a(0), &path); rc < 0) return rc;
        if (int64_t rc = DotLast(t, at ? a(1) : a(0), dir ? -EINVAL : -EISDIR, dir ? -ENOTEMPTY : -EISDIR); rc < 0) return rc;
        if (Tmpfs* fs = TmpfsFor(path, &rel)) {
          const int rc = dir ? fs->Rmdir(rel) : fs->Unlink(rel);
          if (rc == 0) NotifyRemoved(path, dir);
          return rc;
        }
        if (IsVirtual(path)) {
          struct stat st;
          if (int64_t rc = StatPath(t, path, false, &st); rc < 0) return rc;
          if (dir && !S_ISDIR(st.st_mode)) return -ENOTDIR;
          if (!dir && S_ISDIR(st.st_mode)) return -EISDIR;
          return dir ? -EBUSY : -EPERM;
        }
        struct stat st;
        int rc = gofer_.Unlink(path, dir, &st);
        if (rc == 0 && st.st_ino != 0) ForgetCached(st);
        if (rc == 0) NotifyRemoved(path, dir);
        return rc;
      }
      case SYS_symlink:
      case SYS_symlinkat: {
        const bool at = nr == SYS_symlinkat;
        std::string target, path, rel;
        int64_t err = 0;
        if (!ReadPath(t, a(0), &target, &err)) return err;
        if (int64_t rc = PathAt(t, at ? ia(1) : AT_FDCWD, at ? a(2) : a(1), &path); rc < 0) return rc;
        if (int64_t rc = DotLast(t, at ? a(2) : a(1), -EEXIST, -EEXIST); rc < 0) return rc;
        if (IsVirtual(path) && !TmpfsFor(path, &rel)) {
          struct stat st;
          if (StatPath(t, path, false, &st) == 0) return -EEXIST;
          return ReadOnlyRoot(t, path);
        }
        Tmpfs* fs = TmpfsFor(path, &rel);
        const int rc = fs ? fs->Symlink(target, rel) : gofer_.Symlink(target, path);
        if (rc == 0) Notify(path, IN_CREATE);
        return rc;
      }
      case SYS_rename:
      case SYS_renameat:
      case SYS_renameat2: {
        const bool at = nr != SYS_rename;
        const uint64_t flags = nr == SYS_renameat2 ? a(4) : 0;
        if (flags & ~static_cast<uint64_t>(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) return -EINVAL;
        if ((flags & RENAME_EXCHANGE) && (flags & (RENAME_NOREPLACE | RENAME_WHITEOUT))) return -EINVAL;
        std::string from, to, rf, rt;
        if (int64_t rc = PathAt(t, at ? ia(0) : AT_FDCWD, at ? a(1) : a(0), &from); rc < 0) return rc;
        if (int64_t rc = PathAt(t, at ? ia(2) : AT_FDCWD, at ? a(3) : a(1), &to); rc < 0) return rc;
        if (int64_t rc = DotLast(t, at ? a(1) : a(0), -EBUSY, -EBUSY); rc < 0) return rc;
        if (int64_t rc = DotLast(t, at ? a(3) : a(1), -EBUSY, -EBUSY); rc < 0) return rc;
        Tmpfs* ff = TmpfsFor(from, &rf);
        Tmpfs* ft = TmpfsFor(to, &rt);
        if (ff && ff == ft) {
          if (flags & RENAME_WHITEOUT) return -EINVAL;  // not in a tmpfs of the router's
          const int rc = (flags & RENAME_EXCHANGE) ? ff->Exchange(rf, rt) : ff->Rename(rf, rt, flags & RENAME_NOREPLACE);
          if (rc == 0) NotifyRenamed(t, from, to);
          return rc;
        }
        const bool vf = !ff && IsVirtual(from), vt = !ft && IsVirtual(to);
        if (ff || ft || vf || vt) {
          struct stat st;
          if (int64_t rc = StatPath(t, from, false, &st); rc < 0) return rc;
          return -EXDEV;
        }
        if (flags & RENAME_WHITEOUT) return -EPERM;  // needs CAP_MKNOD
        const int rc = gofer_.Rename(from, to, static_cast<uint32_t>(flags));
        if (rc == 0) NotifyRenamed(t, from, to);
        return rc;
      }
      case SYS_link:
      case SYS_linkat: {
        const bool at = nr == SYS_linkat;
        if (at && (a(4) & ~static_cast<uint64_t>(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH))) return -EINVAL;
        std::string from, to, rel;
        std::string src;
        int64_t src_err = 0;
        const bool has_src = ReadPath(t, at ? a(1) : a(0), &src, &src_err);
        if (!has_src && src_err != -ENOENT) return src_err;
        if (int64_t rc = DotLast(t, at ? a(3) : a(1), -EEXIST, -EEXIST); rc < 0) return rc;
        if (at && (a(4) & AT_EMPTY_PATH) && src.empty()) {
          // linkat(fd, "", ...): the open file itself (an O_TMPFILE gets its name).
          auto f = GetFile(t, ia(0));
          if (!f) return -EBADF;
          if (int64_t rc = PathAt(t, ia(2), a(3), &to); rc < 0) return rc;
          if (f->kind != File::Kind::kGofer) return f->kind == File::Kind::kTmpfs ? -EXDEV : -ENOENT;
          if (TmpfsFor(to, &rel) || IsVirtual(to)) return -EXDEV;
          const int rc = gofer_.LinkHandle(f->handle, to);
          if (rc == 0) {
            f->path = to;
            Notify(to, IN_CREATE);
          }
          return rc;
        }
        if (int64_t rc = PathAt(t, at ? ia(0) : AT_FDCWD, at ? a(1) : a(0), &from); rc < 0) return rc;
        if (int64_t rc = PathAt(t, at ? ia(2) : AT_FDCWD, at ? a(3) : a(1), &to); rc < 0) return rc;
        std::string rf;
        Tmpfs* ff = TmpfsFor(from, &rf);
        Tmpfs* ft = TmpfsFor(to, &rel);
        if (ff && ff == ft) {
          const int rc = ff->Link(rf, rel, at && (a(4) & AT_SYMLINK_FOLLOW));
          if (rc == 0) Notify(to, IN_CREATE);
          return rc;
        }
        const bool vf = !ff && IsVirtual(from), vt = !ft && IsVirtual(to);
        if (ff || ft || vf || vt) {
          struct stat st;
          if (int64_t rc = StatPath(t, from, false, &st); rc < 0) return rc;
          if (StatPath(t, to, false, &st) == 0) return -EEXIST;
          return -EXDEV;
        }
        const int rc = gofer_.Link(from, to, at && (a(4) & AT_SYMLINK_FOLLOW));
        if (rc == 0) {
          Notify(to, IN_CREATE);
          Notify(from, IN_ATTRIB);
        }
        return rc;
      }
      case SYS_chmod:
      case SYS_fchmodat:
      case SYS_fchmod:
      case SYS_chown:
      case SYS_lchown:
      case SYS_fchownat:
      case SYS_fchown: {
        // Modes in a tmpfs change; owners stay root (one identity inside).
        // Files of the root and volumes: the gofer changes them.
        Tmpfs::NodePtr node;
        std::string path, rel;
        GoferClient::Target target;
        bool on_gofer = false;
        const bool is_chmod = nr == SYS_chmod || nr == SYS_fchmod || nr == SYS_fchmodat;
        if (nr == SYS_fchownat && (a(4) & ~static_cast<uint64_t>(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))) return -EINVAL;
        if (nr == SYS_fchmod || nr == SYS_fchown) {
          auto f = GetFile(t, ia(0));
          if (!f) return -EBADF;
          if (f->kind == File::Kind::kTmpfs) node = f->tnode;
          else if (f->kind == File::Kind::kGofer) {
            on_gofer = true;
            target.handle = f->handle;
          }
        } else {
          const bool at = nr == SYS_fchmodat || nr == SYS_fchownat;
          if (int64_t rc = PathAt(t, at ? ia(0) : AT_FDCWD, at ? a(1) : a(0), &path, nr == SYS_fchownat && (a(4) & AT_EMPTY_PATH)); rc < 0) return rc;
          const bool follow = nr != SYS_lchown && !(nr == SYS_fchownat && (a(4) & AT_SYMLINK_NOFOLLOW));
          const int64_t rc = AttrTargetOf(t, path, follow, &node, &target);
          if (rc != 0) return rc < 0 ? rc : -EPERM;
          on_gofer = !node;
        }
        if (on_gofer) {
          GoferClient::Attr attr;
          if (is_chmod) {
            attr.set_mode = true;
            attr.mode = static_cast<uint32_t>(nr == SYS_fchmodat ? a(2) : a(1)) & 07777;
          } else {
            attr.set_owner = true;
            const int uarg = nr == SYS_fchownat ? 2 : 1;
            attr.uid = static_cast<uint32_t>(a(uarg));
            attr.gid = static_cast<uint32_t>(a(uarg + 1));
          }
          const int rc = gofer_.SetAttr(target, attr);
          if (rc == 0 && !path.empty()) Notify(path, IN_ATTRIB);
          return rc;
        }
        if (node && is_chmod) {
          const uint32_t mode = static_cast<uint32_t>(nr == SYS_fchmodat ? a(2) : a(1));
          node->mode = (node->mode & S_IFMT) | (mode & 07777);
          Tmpfs::Touch(*node, false);
        }
        if (!path.empty()) Notify(path, IN_ATTRIB);
        return 0;
      }
      case SYS_utimensat:
      case SYS_utimes:
      case SYS_utime:
      case SYS_futimesat: {
        Tmpfs::NodePtr node;
        std::string path, rel;
        GoferClient::Target target;
        bool on_gofer = false;
        if (nr == SYS_utimensat && (a(3) & ~static_cast<uint64_t>(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))) return -EINVAL;
        if (nr == SYS_utimensat && a(1) == 0) {  // futimens
          auto f = GetFile(t, ia(0));
          if (!f) return -EBADF;
          if (f->kind == File::Kind::kGofer) {
            on_gofer = true;
            target.handle = f->handle;
          } else if (f->kind != File::Kind::kTmpfs) {
            return 0;
          } else {
            node = f->tnode;
          }
        } else {
          const bool at = nr == SYS_utimensat || nr == SYS_futimesat;
          if (int64_t rc = PathAt(t, at ? ia(0) : AT_FDCWD, at ? a(1) : a(0), &path); rc < 0) return rc;
          const bool follow = !(nr == SYS_utimensat && (a(3) & AT_SYMLINK_NOFOLLOW));
          const int64_t rc = AttrTargetOf(t, path, follow, &node, &target);
          if (rc != 0) return rc < 0 ? rc : -EPERM;
          on_gofer = !node;
        }
        // In utimensat's terms: UTIME_NOW and UTIME_OMIT marks.
        timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
        const uint64_t times = nr == SYS_utimensat ? a(2) : nr == SYS_futimesat ? a(2) : a(1);
        if (times && nr == SYS_utimensat) {
          if (!t.proc->as->CopyIn(times, ts, sizeof ts)) return -EFAULT;
          for (const timespec& v : ts) {
            if (v.tv_nsec != UTIME_NOW && v.tv_nsec != UTIME_OMIT && !ValidTs(v)) return -EINVAL;
          }
        } else if (times && nr == SYS_utime) {
          struct { int64_t actime, modtime; } u;
          if (!In(t, times, &u)) return -EFAULT;
          ts[0] = {u.actime, 0};
          ts[1] = {u.modtime, 0};
        } else if (times) {
          timeval tv[2];
          if (!t.proc->as->CopyIn(times, tv, sizeof tv)) return -EFAULT;
          for (const timeval& v : tv) {
            if (v.tv_usec < 0 || v.tv_usec >= 1000000) return -EINVAL;
          }
          ts[0] = {tv[0].tv_sec, tv[0].tv_usec * 1000};
          ts[1] = {tv[1].tv_sec, tv[1].tv_usec * 1000};
        }
        if (on_gofer) {
          GoferClient::Attr attr;
          attr.set_times = true;
          attr.times[0] = ts[0];
          attr.times[1] = ts[1];
          const int rc = gofer_.SetAttr(target, attr);
          if (rc == 0 && !path.empty()) Notify(path, IN_ATTRIB);
          return rc;
        }
        timespec now;
        ::clock_gettime(CLOCK_REALTIME, &now);
        if (ts[0].tv_nsec != UTIME_OMIT) node->atime = ts[0].tv_nsec == UTIME_NOW ? now : ts[0];
        if (ts[1].tv_nsec != UTIME_OMIT) node->mtime = ts[1].tv_nsec == UTIME_NOW ? now : ts[1];
        node->ctime = now;
        if (!path.empty()) Notify(path, IN_ATTRIB);
        return 0;
      }
      case SYS_truncate:
      case SYS_ftruncate: {
        if (static_cast<int64_t>(a(1)) < 0) return -EINVAL;
        if (nr == SYS_ftruncate) {
          auto f = GetFile(t, ia(0));
          if (!f) return -EBADF;
          if (f->kind != File::Kind::kTmpfs && f->kind != File::Kind::kGofer) return -EINVAL;
          if ((f->flags & O_ACCMODE) == O_RDONLY) return -EINVAL;
          if (f->kind == File::Kind::kGofer) {
            if (S_ISDIR(f->st.st_mode)) return -EINVAL;
            int rc = gofer_.Ftruncate(f->handle, static_cast<int64_t>(a(1)));
            if (rc == 0) {
              f->st.st_size = static_cast<off_t>(a(1));
              ForgetCached(f->st);
              Notify(f->path, IN_MODIFY);
            }
            return rc;
          }
          return f->tmpfs->Truncate(*f->tnode, a(1));
        }
        std::string path, rel;
        if (int64_t rc = PathAt(t, AT_FDCWD, a(0), &path); rc < 0) return rc;
        if (Tmpfs* fs = TmpfsFor(path, &rel)) {
          Tmpfs::NodePtr node;
          if (int rc = fs->Lookup(rel, true, &node); rc < 0) return rc;
          if (S_ISDIR(node->mode)) return -EISDIR;
          return fs->Truncate(*node, a(1));
        }
        struct stat st;
        if (IsVirtual(path)) {
          if (int64_t rc = StatPath(t, path, true, &st); rc < 0) return rc;
          return S_ISDIR(st.st_mode) ? -EISDIR : -EACCES;
        }
        int rc = gofer_.Truncate(path, static_cast<int64_t>(a(1)));
        if (rc == 0 && gofer_.Stat(path, true, &st) == 0) ForgetCached(st);
        if (rc == 0) Notify(path, IN_MODIFY);
        return rc;
      }
      case SYS_fallocate: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        const int64_t off = static_cast<int64_t>(a(2)), len = static_cast<int64_t>(a(3));
        if (off < 0 || len <= 0 || off > INT64_MAX - len) return -EINVAL;
        if (f->kind == File::Kind::kGofer) {
          if ((f->flags & O_ACCMODE) == O_RDONLY) return -EBADF;
          if (S_ISDIR(f->st.st_mode)) return -EISDIR;
          int rc = gofer_.Fallocate(f->handle, static_cast<uint32_t>(a(1)), off, len);
          if (rc == 0) ForgetCached(f->st);
          return rc;
        }
        if (f->kind != File::Kind::kTmpfs) return -ENODEV;
        if ((f->flags & O_ACCMODE) == O_RDONLY) return -EBADF;
        const uint64_t end = static_cast<uint64_t>(off + len);
        const int mode = ia(1);
        if (mode == FALLOC_FL_KEEP_SIZE) return 0;
        if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) || mode == FALLOC_FL_ZERO_RANGE ||
            mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) {
          // Zeros over the range (kept in memory: this tmpfs has no holes).
          const uint64_t size = f->tnode->data.size();
          const uint64_t stop = std::min(end, size);
          std::vector<uint8_t> zeros(std::min<uint64_t>(kChunk, stop > static_cast<uint64_t>(off) ? stop - off : 0));
          for (uint64_t at = static_cast<uint64_t>(off); at < stop;) {
            const uint64_t n = std::min<uint64_t>(zeros.size(), stop - at);
            f->tmpfs->Write(*f->tnode, at, zeros.data(), n);
            at += n;
          }
          if ((mode & FALLOC_FL_ZERO_RANGE) && !(mode & FALLOC_FL_KEEP_SIZE) && end > size) {
            return f->tmpfs->Truncate(*f->tnode, end);
          }
          return 0;
        }
        if (mode != 0) return -EOPNOTSUPP;
        return end > f->tnode->data.size() ? f->tmpfs->Truncate(*f->tnode, end) : 0;
      }
      case SYS_statfs:
      case SYS_fstatfs: {
        struct statfs sf;
        std::memset(&sf, 0, sizeof sf);
        std::string path, rel;
        bool tmp = false;
        Tmpfs* tfs = nullptr;
        GoferClient::Target target;
        bool on_gofer = false;
        if (nr == SYS_statfs) {
          if (int64_t rc = PathAt(t, AT_FDCWD, a(0), &path); rc < 0) return rc;
          tfs = TmpfsFor(path, &rel);
          tmp = tfs != nullptr;
          if (!tmp && !IsVirtual(path)) {
            on_gofer = true;
            target.path = path;
          } else {
            struct stat st;
            if (int64_t rc = StatPath(t, path, true, &st); rc < 0) return rc;
          }
        } else {
          auto f = GetFile(t, ia(0));
          if (!f) return -EBADF;
          tmp = f->kind == File::Kind::kTmpfs;
          tfs = tmp ? f->tmpfs : nullptr;
          if (f->kind == File::Kind::kGofer) {
            on_gofer = true;
            target.handle = f->handle;
          }
        }
        if (on_gofer) {
          if (int rc = gofer_.Statfs(target, &sf); rc < 0) return rc;
          return Out(t, a(1), sf) ? 0 : -EFAULT;
        }
        sf.f_type = tmp ? 0x01021994 /* TMPFS_MAGIC */ : 0x9fa0 /* PROC_SUPER_MAGIC */;
        sf.f_bsize = 4096;
        sf.f_frsize = 4096;
        sf.f_blocks = tfs ? tfs->max_bytes() / 4096 : 0;
        sf.f_bfree = tfs ? sf.f_blocks - std::min<uint64_t>(sf.f_blocks, tfs->used() / 4096) : 0;
        sf.f_bavail = sf.f_bfree;
        sf.f_files = tmp ? 1u << 20 : 0;
        sf.f_ffree = tmp ? sf.f_files / 2 : 0;
        sf.f_namelen = 255;
        sf.f_flags = tmp ? 0 : ST_RDONLY;
        return Out(t, a(1), sf) ? 0 : -EFAULT;
      }
      case SYS_mknod:
      case SYS_mknodat: {
        std::string path, rel;
        const bool at = nr == SYS_mknodat;
        if (int64_t rc = PathAt(t, at ? ia(0) : AT_FDCWD, at ? a(1) : a(0), &path); rc < 0) return rc;
        const uint32_t mode = static_cast<uint32_t>(at ? a(2) : a(1));
        if (Tmpfs* fs = TmpfsFor(path, &rel)) {
          if (S_ISFIFO(mode) || S_ISSOCK(mode)) return fs->Mknod(rel, (mode & S_IFMT) | (mode & 07777 & ~p.umask));
          if (S_ISREG(mode) || (mode & S_IFMT) == 0) {
            Tmpfs::NodePtr n;
            return fs->Open(rel, O_CREAT | O_EXCL | O_WRONLY, mode & ~p.umask & 07777, &n);
          }
          return -EPERM;  // device nodes: not in a sandbox
        }
        if (IsVirtual(path)) {
          struct stat st;
          if (StatPath(t, path, false, &st) == 0) return -EEXIST;
          return ReadOnlyRoot(t, path);
        }
        const uint32_t type = mode & S_IFMT;
        if (type != 0 && type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR && type != S_IFBLK) {
          return -EINVAL;
        }
        if (type == S_IFCHR || type == S_IFBLK) return -EPERM;  // device nodes: not in a sandbox
        const int rc = gofer_.Mknod(path, (type ? type : S_IFREG) | (mode & 07777 & ~p.umask), 0);
        if (rc == 0) Notify(path, IN_CREATE);
        return rc;
      }
      case SYS_timer_create: return TimerCreate(t, static_cast<clockid_t>(ia(0)), a(1), a(2));
      case SYS_timer_settime: return TimerSettime(t, ia(0), ia(1), a(2), a(3));
      case SYS_timer_gettime: {
        auto it = p.timers.find(ia(0));
        if (it == p.timers.end()) return -EINVAL;
        return Out(t, a(1), Remaining(it->second.deadline, it->second.interval, NowNs())) ? 0 : -EFAULT;
      }
      case SYS_timer_getoverrun: {
        auto it = p.timers.find(ia(0));
        return it == p.timers.end() ? -EINVAL : it->second.overrun;
      }
      case SYS_timer_delete: return p.timers.erase(ia(0)) ? 0 : -EINVAL;
      case SYS_timerfd_create: {
        const int clock = ia(0);
        if (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC && clock != CLOCK_BOOTTIME) return -EINVAL;
        if (a(1) & ~static_cast<uint64_t>(TFD_CLOEXEC | TFD_NONBLOCK)) return -EINVAL;
        auto f = std::make_shared<File>();
        f->kind = File::Kind::kTimerfd;
        f->clock = clock;
        f->flags = O_RDWR | ((a(1) & TFD_NONBLOCK) ? O_NONBLOCK : 0);
        timerfds_.push_back(f);
        return NewFd(t, f, 0, a(1) & TFD_CLOEXEC);
      }
      case SYS_timerfd_settime: return TimerfdSettime(t, ia(0), ia(1), a(2), a(3));
      case SYS_timerfd_gettime: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        if (f->kind != File::Kind::kTimerfd) return -EINVAL;
        TickTimerfd(*f);
        return Out(t, a(1), Remaining(f->deadline, f->interval, NowNs())) ? 0 : -EFAULT;
      }
      case SYS_rt_sigaction: {
        const int sig = ia(0);
        if (sig < 1 || sig > 64 || a(3) != 8) return -EINVAL;
        if ((sig == SIGKILL || sig == SIGSTOP) && a(1)) return -EINVAL;
        KSigaction& cur = (*p.act)[sig];
        KSigaction nv;
        if (a(1) && !In(t, a(1), &nv)) return -EFAULT;
        if (a(2) && !Out(t, a(2), cur)) return -EFAULT;
        if (a(1)) {
          nv.mask &= ~kUnblockable;
          cur = nv;
          if (Ignored(p, sig)) {  // pending ones of an ignored signal are discarded
            for (Task* o : p.tasks) DiscardSignal(*o, sig);
          }
        }
        return 0;
      }
      case SYS_rt_sigprocmask: {
        if (a(3) != 8) return -EINVAL;
        uint64_t set = 0;
        if (a(1) && !In(t, a(1), &set)) return -EFAULT;
        if (a(1) && ia(0) != SIG_BLOCK && ia(0) != SIG_UNBLOCK && ia(0) != SIG_SETMASK) return -EINVAL;
        if (a(2) && !Out(t, a(2), t.sigmask)) return -EFAULT;
        if (a(1)) {
          switch (ia(0)) {
            case SIG_BLOCK: t.sigmask |= set; break;
            case SIG_UNBLOCK: t.sigmask &= ~set; break;
            case SIG_SETMASK: t.sigmask = set; break;
          }
          t.sigmask &= ~kUnblockable;
        }
        return 0;
      }
      case SYS_rt_sigpending: {
        if (a(1) > 8) return -EINVAL;
        uint64_t pend = t.pending;
        return as.CopyOut(a(0), &pend, a(1)) ? 0 : -EFAULT;
      }
      case SYS_rt_sigsuspend: {
        if (!t.retry) {
          if (a(1) != 8) return -EINVAL;
          uint64_t m;
          if (!In(t, a(0), &m)) return -EFAULT;
          t.saved_mask = t.sigmask;
          t.restore_mask = true;
          t.sigmask = m & ~kUnblockable;
        }
        return kBlock;  // ended by a signal: EINTR
      }
      case SYS_rt_sigtimedwait: {
        if (a(3) != 8) return -EINVAL;
        uint64_t set;
        if (!In(t, a(0), &set)) return -EFAULT;
        set &= ~kUnblockable;
        uint64_t hit = t.pending & set;
        if (hit) {
          int sig = __builtin_ctzll(hit) + 1;
          const siginfo_t si = TakeSignal(t, sig);
          if (a(1) && !Out(t, a(1), si)) return -EFAULT;
          return sig;
        }
        int64_t ns, err = 0;
        if (!t.retry && !TimeoutArg(t, a(2), &ns, &err)) return err;
        if (t.retry) ns = 0;
        if (TimedOut(t, ns)) return -EAGAIN;
        return kBlock;
      }
      case SYS_rt_sigreturn: return Sigreturn(t);
      case SYS_sigaltstack: {
        const uint64_t sp = t.regs.gp.rsp;
        const uint64_t lo = reinterpret_cast<uint64_t>(t.altstack.ss_sp);
        const bool on = !(t.altstack.ss_flags & SS_DISABLE) && sp > lo && sp <= lo + t.altstack.ss_size;
        if (a(1)) {
          stack_t old = t.altstack;
          old.ss_flags = (t.altstack.ss_flags & SS_DISABLE) ? SS_DISABLE : on ? SS_ONSTACK : 0;
          if (!Out(t, a(1), old)) return -EFAULT;
        }
        if (a(0)) {
          stack_t ns;
          if (!In(t, a(0), &ns)) return -EFAULT;
          if (on) return -EPERM;
          if (ns.ss_flags & ~(SS_DISABLE | kSsAutodisarm)) return -EINVAL;
          if (!(ns.ss_flags & SS_DISABLE) && ns.ss_size < static_cast<size_t>(MINSIGSTKSZ)) return -ENOMEM;
          t.altstack = ns;
          if (ns.ss_flags & SS_DISABLE) t.altstack = {nullptr, SS_DISABLE, 0};
        }
        return 0;
      }
      case SYS_kill: return Kill(t, ia(0), ia(1));
      case SYS_tkill: return Tgkill(t, -1, ia(0), ia(1));
      case SYS_tgkill: return Tgkill(t, ia(0), ia(1), ia(2));
      case SYS_rt_sigqueueinfo: return SigqueueInfo(t, ia(0), -1, ia(1), a(2));
      case SYS_rt_tgsigqueueinfo: return SigqueueInfo(t, ia(0), ia(1), ia(2), a(3));
      case SYS_prlimit64:
      case SYS_getrlimit:
      case SYS_setrlimit: {
        const uint64_t res_id = nr == SYS_prlimit64 ? a(1) : a(0);
        const uint64_t old = nr == SYS_prlimit64 ? a(3) : nr == SYS_getrlimit ? a(1) : 0;
        if (nr == SYS_prlimit64 && a(0) != 0 && static_cast<int>(a(0)) != p.pid) {
          if (!procs_.count(ia(0))) return -ESRCH;
        }
        if (res_id >= RLIM_NLIMITS) return -EINVAL;
        Process* target = &p;
        if (nr == SYS_prlimit64 && a(0) != 0) target = procs_.at(ia(0)).get();
        struct rlimit64& cur = target->rlim[res_id];
        const uint64_t neu = nr == SYS_prlimit64 ? a(2) : nr == SYS_setrlimit ? a(1) : 0;
        struct rlimit64 want{};
        if (neu) {
          if (nr == SYS_setrlimit) {
            struct rlimit r;
            if (!In(t, neu, &r)) return -EFAULT;
            want = {r.rlim_cur == RLIM_INFINITY ? RLIM64_INFINITY : r.rlim_cur, r.rlim_max == RLIM_INFINITY ? RLIM64_INFINITY : r.rlim_max};
          } else if (!In(t, neu, &want)) {
            return -EFAULT;
          }
          if (want.rlim_cur > want.rlim_max) return -EINVAL;
          // The sandbox's one identity is root: raising a hard limit is allowed,
          // but no descriptor limit above what the router serves.
          if (res_id == RLIMIT_NOFILE && want.rlim_max > static_cast<uint64_t>(kMaxFds)) return -EPERM;
        }
        if (old) {
          if (nr == SYS_getrlimit) {
            struct rlimit r{static_cast<rlim_t>(cur.rlim_cur), static_cast<rlim_t>(cur.rlim_max)};
            if (!Out(t, old, r)) return -EFAULT;
          } else if (!Out(t, old, cur)) {
            return -EFAULT;
          }
        }
        if (neu) cur = want;
        return 0;
      }
      case SYS_sched_getaffinity: {
        if (a(1) < 8 || a(1) % 8) return -EINVAL;
        long n_cpu = std::clamp(Facts().cpus, 1L, 64L);
        uint64_t mask = n_cpu == 64 ? ~0ull : (1ull << n_cpu) - 1;
        return Out(t, a(2), mask) ? 8 : -EFAULT;
      }
      case SYS_sched_setaffinity: return 0;
      case SYS_sched_yield: return 0;
      case SYS_sched_getscheduler: return SCHED_OTHER;
      case SYS_sched_getparam: { int z = 0; return Out(t, a(1), z) ? 0 : -EFAULT; }
      case SYS_sched_get_priority_max: case SYS_sched_get_priority_min: return 0;
      case SYS_getpriority: return 20;
      case SYS_setpriority: return 0;
      case SYS_getcpu: {
        const uint32_t zero = 0;
        if (a(0) && !Out(t, a(0), zero)) return -EFAULT;
        if (a(1) && !Out(t, a(1), zero)) return -EFAULT;
        return 0;
      }
      case SYS_personality: return a(0) == 0xffffffff || a(0) == 0 ? 0 : -EINVAL;
      case SYS_prctl: {
        switch (ia(0)) {
          case PR_SET_NAME: {
            auto s = as.ReadCString(a(1), 15);
            if (s) p.exe = p.exe.substr(0, p.exe.rfind('/') + 1) + *s;
            return 0;
          }
          case PR_GET_NAME: {
            std::string n = p.exe.substr(p.exe.rfind('/') + 1).substr(0, 15);
            char b[16] = {};
            std::memcpy(b, n.data(), n.size());
            return as.CopyOut(a(1), b, 16) ? 0 : -EFAULT;
          }
          case PR_SET_PDEATHSIG: case PR_SET_DUMPABLE: case PR_SET_NO_NEW_PRIVS: case PR_SET_CHILD_SUBREAPER:
          case PR_SET_KEEPCAPS: case PR_SET_SECCOMP:
            return 0;
          case PR_GET_DUMPABLE: return 1;
          case PR_GET_NO_NEW_PRIVS: return 0;
          case PR_CAPBSET_READ: return 1;
          default: return -EINVAL;
        }
      }
      case SYS_capget: return 0;
      case SYS_capset: return 0;
      case SYS_sync: return 0;
      case SYS_syncfs:
      case SYS_fsync:
      case SYS_fdatasync:
      case SYS_sync_file_range: {
        auto f = GetFile(t, ia(0));
        if (!f) return -EBADF;
        if (nr == SYS_sync_file_range) {
          if (a(3) & ~static_cast<uint64_t>(SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)) return -EINVAL;
          if (static_cast<int64_t>(a(1)) < 0 || static_cast<int64_t>(a(2)) < 0) return -EINVAL;
          if (f->kind == File::Kind::kPipe) return -ESPIPE;
        }
        if (f->kind == File::Kind::kGofer) {
          if (SharedFile* sf = SharedFileOf(*f)) FlushSharedFile(*sf);
          if (nr != SYS_syncfs) return gofer_.Fsync(f->handle, nr != SYS_fsync);
        }
        if (nr == SYS_fsync || nr == SYS_fdatasync) {
          if (f->kind == File::Kind::kPipe || f->kind == File::Kind::kEpoll || f->kind == File::Kind::kEventfd ||
              f->kind == File::Kind::kTimerfd) {
            return -EINVAL;
          }
        }
        return 0;
      }
      case SYS_membarrier: return 0;  // one router serializes every task's system calls
      case SYS_clone: return Clone(t, a(0), a(1), a(2), a(3), a(4));
      case SYS_clone3: {
        if (t.retry) return Clone(t, 0, 0, 0, 0, 0);
        if (a(1) < 64 || a(1) > 4096) return -EINVAL;
        struct { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; } ca;
        if (!In(t, a(0), &ca)) return -EFAULT;
        if (ca.exit_signal > 64 || (ca.flags & 0xff)) return -EINVAL;
        const uint64_t sp = ca.stack ? ca.stack + ca.stack_size : 0;
        return Clone(t, ca.flags | ca.exit_signal, sp, ca.parent_tid, ca.child_tid, ca.tls);
      }
      case SYS_fork: return Clone(t, SIGCHLD, 0, 0, 0, 0);
      case SYS_vfork: return Clone(t, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0);
      case SYS_execve: return Execve(t, AT_FDCWD, a(0), a(1), a(2), 0);
      case SYS_execveat: return Execve(t, ia(0), a(1), a(2), a(3), ia(4));
      case SYS_wait4: {
        const int options = ia(2);
        if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WALL | __WCLONE | __WNOTHREAD)) return -EINVAL;
        const int pid = ia(0);
        if (pid == INT32_MIN) return -ESRCH;  // as Linux: -INT_MIN names nothing
        int idtype = pid > 0 ? P_PID : pid == -1 ? P_ALL : P_PGID;
        int id = pid < -1 ? -pid : pid > 0 ? pid : 0;
        int status = 0;
        int64_t r = WaitChild(t, idtype, id, options | WEXITED, &status, nullptr);
        if (r > 0) {
          if (a(1) && !Out(t, a(1), status)) return -EFAULT;
          if (a(3)) {
            struct rusage ru{};
            if (!Out(t, a(3), ru)) return -EFAULT;
          }
        }
        return r;
      }
      case SYS_waitid: {
        const int idtype = ia(0), options = ia(3);
        if (idtype != P_ALL && idtype != P_PID && idtype != P_PGID) return -EINVAL;
        if (!(options & (WEXITED | WSTOPPED | WCONTINUED))) return -EINVAL;
        int status = 0;
        siginfo_t si;
        std::memset(&si, 0, sizeof si);
        int64_t r = WaitChild(t, idtype, ia(1), (options & WSTOPPED) ? (options | WUNTRACED) : options, &status, &si);
        if (r < 0 || r == kBlock) return r;
        if (a(2)) {
          if (r == 0) std::memset(&si, 0, sizeof si);
          if (!Out(t, a(2), si)) return -EFAULT;
        }
        return 0;
      }
      case SYS_exit:
        ExitThread(t, ia(0) & 0xff);
        return kGone;
      case SYS_exit_group:
        ExitProcess(p, ia(0) & 0xff, true);
        return kGone;
      default:
        Unimplemented(nr);
        return -ENOSYS;
    }
  }

  int64_t Ioctl(Task& t, int fd, unsigned long cmd, uint64_t arg) {
    auto f = GetFile(t, fd);
    if (!f) return -EBADF;
    switch (cmd) {
      case FIOCLEX: (*t.proc->fds)[fd].cloexec = true; return 0;
      case FIONCLEX: (*t.proc->fds)[fd].cloexec = false; return 0;
      case FIONBIO: {
        int on;
        if (!In(t, arg, &on)) return -EFAULT;
        f->flags = on ? (f->flags | O_NONBLOCK) : (f->flags & ~O_NONBLOCK);
        return 0;
      }
      case FIONREAD: {
        int n = 0;
        if (f->kind == File::Kind::kPipe) n = static_cast<int>(f->pipe->buf.size());
        else if (f->kind == File::Kind::kInotify) n = static_cast<int>(f->inotify->queued_bytes());
        else if (f->kind == File::Kind::kHost && ::ioctl(f->host_fd, FIONREAD, &n) < 0) return -errno;
        else if (f->kind != File::Kind::kPipe && f->kind != File::Kind::kHost && f->kind != File::Kind::kInotify) return -ENOTTY;
        return Out(t, arg, n) ? 0 : -EFAULT;
      }
      default:
        break;
    }
    if (f->kind != File::Kind::kHost || !::isatty(f->host_fd)) return -ENOTTY;
    // The terminal the sandbox was started on: its settings pass through,
    // its foreground process group is the sandbox's own.
    switch (cmd) {
      case TCGETS: {
        KTermios tio;
        if (::ioctl(f->host_fd, TCGETS, &tio) < 0) return -errno;
        return Out(t, arg, tio) ? 0 : -EFAULT;
      }
      case TCSETS:
      case TCSETSW:
      case TCSETSF: {
        KTermios tio;
        if (!In(t, arg, &tio)) return -EFAULT;
        return ::ioctl(f->host_fd, cmd, &tio) < 0 ? -errno : 0;
      }
      case TIOCGWINSZ: {
        struct winsize ws;
        if (::ioctl(f->host_fd, TIOCGWINSZ, &ws) < 0) return -errno;
        return Out(t, arg, ws) ? 0 : -EFAULT;
      }
      case TIOCSWINSZ: {
        struct winsize ws;
        if (!In(t, arg, &ws)) return -EFAULT;
        return ::ioctl(f->host_fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
      }
      case TIOCGPGRP: return Out(t, arg, static_cast<int32_t>(fg_pgrp_)) ? 0 : -EFAULT;
      case TIOCSPGRP: {
        int32_t pg;
        if (!In(t, arg, &pg)) return -EFAULT;
        if (pg <= 0) return -EINVAL;
        fg_pgrp_ = pg;
        return 0;
      }
      case TIOCGSID: return Out(t, arg, static_cast<int32_t>(1)) ? 0 : -EFAULT;
      default:
        return -ENOTTY;
    }
  }
};

void Kernel::CaptureHostFacts() {
  HostFacts& f = Facts();
  f.cpus = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  f.phys_pages = std::max(1L, ::sysconf(_SC_PHYS_PAGES));
  f.avail_pages = std::max(1L, ::sysconf(_SC_AVPHYS_PAGES));
}

Kernel::Kernel(platform::Platform& platform, GoferClient& gofer, std::array<int, 3> stdio,
               TerminalSignals* terminal, MemoryFile* memory, std::atomic<uint64_t>* enosys_counters)
    : impl_(std::make_unique<Impl>(platform, gofer, stdio, terminal, memory, enosys_counters)) {}
Kernel::~Kernel() = default;

RunResult Kernel::Run(const RunRequest& req) { return impl_->Run(req); }

void Kernel::SetMemoryStats(ipc::ServiceStatsBlock::Memory* out) { impl_->mem_stats_ = out; }

}  // namespace bulkhead::router
