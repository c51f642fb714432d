#include "services/syscall-router/kernel/kernel.h"

#include <asm/prctl.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "harden/seccomp_policy.h"
#include "services/syscall-router/loader/exec.h"
#include "services/syscall-router/platform/ptrace_platform.h"

namespace bulkhead::router {
namespace {

constexpr uint64_t kPage = 4096;
constexpr size_t kChunk = 256 * 1024;          // bytes moved per gofer round trip / memory copy
constexpr uint64_t kMmapTop = 0x7e0000000000;  // non-fixed mmaps grow down from here
constexpr int kMaxFds = 1024;
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

constexpr int kFatalExec = -100000;  // Exec: the image is gone, the task dies by SIGSEGV

uint64_t PageUp(uint64_t v) { return (v + kPage - 1) & ~(kPage - 1); }

}  // namespace

struct Kernel::File {
  enum class Kind { kHost, kGofer, kNull } kind = Kind::kNull;
  GoferClient* gofer = nullptr;
  int host_fd = -1;
  uint64_t handle = 0;
  int64_t offset = 0;
  uint32_t flags = 0;  // O_ACCMODE | O_APPEND | O_NONBLOCK ... as the application set them
  std::string path;
  struct stat st {};
  ~File() {
    if (kind == Kind::kGofer && gofer) gofer->Close(handle);
  }
};

struct Kernel::Task {
  std::unique_ptr<platform::AddressSpace> as;
  std::unique_ptr<platform::Context> ctx;
  platform::Registers regs;
  std::map<int, std::shared_ptr<File>> fds;
  std::map<int, bool> cloexec;
  std::string cwd = "/";
  uint64_t brk_start = 0, brk = 0, brk_mapped = 0;
  uint64_t mmap_next = kMmapTop;
  uint32_t umask = 022;
  bool exited = false;
  int exit_code = 0;
  std::map<int, std::array<uint64_t, 4>> sigactions;  // k_sigaction as stored by the app
  uint64_t sigmask = 0;
  RunResult* result = nullptr;
  uint64_t arg(int i) const { return regs.syscall_arg(i); }
};

Kernel::Kernel(platform::Platform& platform, GoferClient& gofer, std::array<int, 3> stdio)
    : platform_(platform), gofer_(gofer), stdio_(stdio) {}
Kernel::~Kernel() = default;

std::string Kernel::Absolute(const Task& t, const std::string& path) const {
  if (!path.empty() && path[0] == '/') return path;
  return t.cwd == "/" ? "/" + path : t.cwd + "/" + path;
}

bool Kernel::ReadPath(Task& t, uint64_t addr, std::string* out, int64_t* err) {
  auto s = t.as->ReadCString(addr, 4096);
  if (!s) {
    // Either a fault or no NUL within PATH_MAX.
    char probe;
    *err = t.as->CopyIn(addr, &probe, 1) ? -ENAMETOOLONG : -EFAULT;
    return false;
  }
  if (s->empty()) {
    *err = -ENOENT;
    return false;
  }
  *out = std::move(*s);
  return true;
}

int Kernel::NewFd(Task& t, std::shared_ptr<File> f, int min_fd) {
  for (int fd = std::max(min_fd, 0); fd < kMaxFds; ++fd) {
    if (!t.fds.count(fd)) {
      t.fds[fd] = std::move(f);
      t.cloexec[fd] = false;
      return fd;
    }
  }
  return -EMFILE;
}

std::shared_ptr<Kernel::File> Kernel::GetFile(Task& t, int fd) {
  auto it = t.fds.find(fd);
  return it == t.fds.end() ? nullptr : it->second;
}

// ------------------------------------------------------------------ exec

int Kernel::Exec(Task& t, const RunRequest& req, std::string* error) {
  std::string path = req.argv[0];
  if (path.find('/') == std::string::npos) {
    // execvp-style lookup in the application's PATH.
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
      if (gofer_.Stat(Absolute(t, cand), true, &st) == 0 && S_ISREG(st.st_mode)) found = cand;
      start = end + 1;
    }
    if (found.empty()) {
      *error = path + ": command not found";
      return -ENOENT;
    }
    path = found;
  }
  loader::ExecRequest er;
  er.filename = path;
  er.argv = req.argv;
  er.envp = req.envp;
  er.aux.hwcap = getauxval(AT_HWCAP);
  er.aux.hwcap2 = getauxval(AT_HWCAP2);
  if (unsigned long m = getauxval(AT_MINSIGSTKSZ)) er.aux.minsigstksz = m;
  if (getrandom(er.random.data(), er.random.size(), 0) != static_cast<ssize_t>(er.random.size())) return -EIO;
  loader::ExecPlanner planner(er);
  std::map<loader::FileRole, std::shared_ptr<File>> files;
  std::shared_ptr<File> last;
  std::vector<uint8_t> buf;
  for (;;) {
    switch (planner.step()) {
      case loader::ExecPlanner::Step::kOpen: {
        auto f = std::make_shared<File>();
        f->kind = File::Kind::kGofer;
        f->gofer = &gofer_;
        f->path = Absolute(t, planner.open_path());
        int rc = gofer_.Open(f->path, O_RDONLY, 0, &f->handle, &f->st);
        if (rc == 0 && !S_ISREG(f->st.st_mode)) rc = -EACCES;
        if (rc == 0 && !(f->st.st_mode & 0111)) rc = -EACCES;
        if (rc < 0) {
          f->kind = File::Kind::kNull;  // nothing to close if the open failed
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
          long n = gofer_.Pread(last->handle, static_cast<int64_t>(planner.read_offset() + got),
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
        // Past Linux's point of no return the exec cannot fail with an
        // errno: the process dies with SIGSEGV.
        if (planner.error().fatal) return kFatalExec;
        return -planner.error().err;
      case loader::ExecPlanner::Step::kDone: {
        loader::ExecImage img = planner.TakeImage();
        for (const auto& m : img.plan.mappings) {
          long r = t.as->Mmap(m.addr, m.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
          if (r < 0) { *error = "mapping the image failed"; return static_cast<int>(r); }
          if (m.file_bytes) {
            auto& src = files[m.source == loader::MapSource::kInterpreter ? loader::FileRole::kInterpreter
                                                                          : loader::FileRole::kExecutable];
            if (!src) { *error = "no file for a mapping"; return -EIO; }
            for (uint64_t done = 0; done < m.file_bytes;) {
              size_t want = std::min<uint64_t>(kChunk, m.file_bytes - done);
              buf.resize(want);
              long n = gofer_.Pread(src->handle, static_cast<int64_t>(m.file_offset + done), {buf.data(), want});
              if (n <= 0) { *error = "reading the image failed"; return n < 0 ? static_cast<int>(n) : -EIO; }
              if (!t.as->CopyOut(m.addr + done, buf.data(), static_cast<size_t>(n))) return -EFAULT;
              done += static_cast<uint64_t>(n);
            }
          }
          if (m.prot != (PROT_READ | PROT_WRITE)) t.as->Mprotect(m.addr, m.len, m.prot);
        }
        const auto& st = img.stack;
        int sprot = PROT_READ | PROT_WRITE | (img.plan.executable_stack ? PROT_EXEC : 0);
        long r = t.as->Mmap(st.vma_start, st.top - st.vma_start, sprot, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
        if (r < 0) { *error = "mapping the stack failed"; return static_cast<int>(r); }
        if (!t.as->CopyOut(st.rsp, st.bytes.data(), st.bytes.size())) return -EFAULT;
        t.brk_start = t.brk = t.brk_mapped = img.plan.brk;
        t.mmap_next = std::min<uint64_t>(kMmapTop, st.vma_start - (1ull << 30));
        t.regs = platform::Registers::ForEntry(img.plan.entry, st.rsp);
        return 0;
      }
    }
  }
}

// ------------------------------------------------------------------ run

RunResult Kernel::Run(const RunRequest& req) {
  RunResult res;
  if (req.argv.empty()) {
    res.exit_code = 127;
    res.error = "no command";
    return res;
  }
  Task t;
  t.result = &res;
  t.cwd = req.cwd.empty() ? "/" : req.cwd;
  hostname_ = req.hostname;
  for (int i = 0; i < 3; ++i) {
    auto f = std::make_shared<File>();
    f->kind = File::Kind::kHost;
    f->host_fd = stdio_[i];
    f->flags = i == 0 ? O_RDONLY : O_WRONLY;
    t.fds[i] = f;
  }
  try {
    t.as = platform_.NewAddressSpace();
    t.ctx = platform_.NewContext();
  } catch (const std::exception& e) {
    res.exit_code = 126;
    res.error = std::string("cannot create the application's address space: ") + e.what();
    return res;
  }
  std::string why;
  int rc = Exec(t, req, &why);
  if (rc == kFatalExec) {
    res.exit_code = 128 + SIGSEGV;
    res.error = why + " (killed by SIGSEGV, as Linux does after the point of no return)";
    return res;
  }
  if (rc < 0) {
    res.exit_code = rc == -ENOENT ? 127 : 126;
    res.error = why.empty() ? req.argv[0] + ": " + strerror(-rc) : why + " (" + strerror(-rc) + ")";
    return res;
  }
  while (!t.exited) {
    platform::Event e = t.ctx->Switch(*t.as, t.regs);
    switch (e.kind) {
      case platform::EventKind::kSyscall: {
        ++res.syscalls;
        long nr = t.regs.syscall_nr();
        int64_t r = e.syscall_arch == AUDIT_ARCH_X86_64 && nr >= 0 ? Dispatch(t, nr) : -ENOSYS;
        if (!t.exited) t.regs.set_syscall_return(r);
        break;
      }
      case platform::EventKind::kFault:
        spdlog::info("application {}: {}", req.argv[0], platform::DescribeEvent(e, &t.regs));
        t.exited = true;
        t.exit_code = 128 + e.signo;
        break;
      case platform::EventKind::kSignal:
        // A host signal aimed at the stub (a terminal's ^C, say): default action.
        if (e.signo == SIGCHLD || e.signo == SIGWINCH || e.signo == SIGURG) break;
        t.exited = true;
        t.exit_code = 128 + e.signo;
        break;
      case platform::EventKind::kInterrupted:
        break;
      case platform::EventKind::kExited:
        t.exited = true;
        t.exit_code = WIFEXITED(e.wait_status) ? WEXITSTATUS(e.wait_status) : 128 + WTERMSIG(e.wait_status);
        break;
    }
  }
  res.exit_code = t.exit_code;
  return res;
}

// ------------------------------------------------------------------ syscalls

int64_t Kernel::OpenAt(Task& t, int dirfd, uint64_t path_addr, uint32_t flags, uint32_t mode) {
  std::string path;
  int64_t err;
  if (!ReadPath(t, path_addr, &path, &err)) return err;
  if (path[0] != '/' && dirfd != AT_FDCWD) {
    auto d = GetFile(t, dirfd);
    if (!d) return -EBADF;
    if (!S_ISDIR(d->st.st_mode)) return -ENOTDIR;
    path = d->path + "/" + path;
  }
  path = Absolute(t, path);
  auto f = std::make_shared<File>();
  if (path == "/dev/null") {
    f->kind = File::Kind::kNull;
    f->st.st_mode = S_IFCHR | 0666;
    f->st.st_rdev = makedev(1, 3);
  } else {
    f->kind = File::Kind::kGofer;
    f->gofer = &gofer_;
    int rc = gofer_.Open(path, flags & ~O_CLOEXEC, mode & ~t.umask, &f->handle, &f->st);
    if (rc < 0) {
      f->kind = File::Kind::kNull;
      return rc;
    }
  }
  f->path = path;
  f->flags = flags & ~(O_CLOEXEC | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC);
  int fd = NewFd(t, f);
  if (fd >= 0) t.cloexec[fd] = (flags & O_CLOEXEC) != 0;
  return fd;
}

int64_t Kernel::Read(Task& t, int fd, uint64_t buf, uint64_t count, int64_t offset) {
  auto f = GetFile(t, fd);
  if (!f) return -EBADF;
  if ((f->flags & O_ACCMODE) == O_WRONLY) return -EBADF;
  if (count > 0x7ffff000) count = 0x7ffff000;
  std::vector<uint8_t> tmp(std::min<uint64_t>(count, kChunk));
  switch (f->kind) {
    case File::Kind::kNull:
      return 0;
    case File::Kind::kHost: {
      ssize_t n = ::read(f->host_fd, tmp.data(), tmp.size());
      if (n < 0) return -errno;
      if (n > 0 && !t.as->CopyOut(buf, tmp.data(), static_cast<size_t>(n))) return -EFAULT;
      return n;
    }
    case File::Kind::kGofer: {
      if (S_ISDIR(f->st.st_mode)) return -EISDIR;
      int64_t pos = offset >= 0 ? offset : f->offset;
      uint64_t total = 0;
      while (total < count) {
        size_t want = std::min<uint64_t>(kChunk, count - total);
        long n = gofer_.Pread(f->handle, pos + static_cast<int64_t>(total), {tmp.data(), want});
        if (n < 0) return total ? static_cast<int64_t>(total) : n;
        if (n == 0) break;
        if (!t.as->CopyOut(buf + total, tmp.data(), static_cast<size_t>(n))) return total ? static_cast<int64_t>(total) : -EFAULT;
        total += static_cast<uint64_t>(n);
        if (static_cast<size_t>(n) < want) break;
      }
      if (offset < 0) f->offset += static_cast<int64_t>(total);
      return static_cast<int64_t>(total);
    }
  }
  return -EBADF;
}

int64_t Kernel::Write(Task& t, int fd, uint64_t buf, uint64_t count) {
  auto f = GetFile(t, fd);
  if (!f) return -EBADF;
  if ((f->flags & O_ACCMODE) == O_RDONLY && f->kind != File::Kind::kHost) return -EBADF;
  if (count > 0x7ffff000) count = 0x7ffff000;
  if (f->kind == File::Kind::kNull) return static_cast<int64_t>(count);
  if (f->kind == File::Kind::kGofer) return -EROFS;
  std::vector<uint8_t> tmp(std::min<uint64_t>(count, kChunk));
  uint64_t total = 0;
  while (total < count) {
    size_t want = std::min<uint64_t>(kChunk, count - total);
    ssize_t got = t.as->ReadMemory(buf + total, tmp.data(), want);
    if (got <= 0) return total ? static_cast<int64_t>(total) : -EFAULT;
    ssize_t n = ::write(f->host_fd, tmp.data(), static_cast<size_t>(got));
    if (n < 0) return total ? static_cast<int64_t>(total) : -errno;
    total += static_cast<uint64_t>(n);
    if (n < got) break;
  }
  return static_cast<int64_t>(total);
}

int64_t Kernel::Iov(Task& t, int fd, uint64_t iov_addr, uint64_t iovcnt, bool write) {
  if (iovcnt > 1024) return -EINVAL;
  std::vector<iovec> iov(iovcnt);
  if (iovcnt && !t.as->CopyIn(iov_addr, iov.data(), iovcnt * sizeof(iovec))) return -EFAULT;
  int64_t total = 0;
  for (auto& v : iov) {
    if (v.iov_len == 0) continue;
    uint64_t base = reinterpret_cast<uint64_t>(v.iov_base);
    int64_t n = write ? Write(t, fd, base, v.iov_len) : Read(t, fd, base, v.iov_len, -1);
    if (n < 0) return total ? total : n;
    total += n;
    if (static_cast<uint64_t>(n) < v.iov_len) break;
  }
  return total;
}

int64_t Kernel::StatAt(Task& t, int dirfd, uint64_t path_addr, uint64_t statbuf, int flags) {
  struct stat st;
  if (int64_t rc = LookupStat(t, dirfd, path_addr, flags, &st); rc < 0) return rc;
  return t.as->CopyOut(statbuf, &st, sizeof(st)) ? 0 : -EFAULT;
}

int64_t Kernel::LookupStat(Task& t, int dirfd, uint64_t path_addr, int flags, struct stat* out) {
  struct stat& st = *out;
  std::string path;
  auto s = t.as->ReadCString(path_addr, 4096);
  if (!s) return -EFAULT;
  path = *s;
  if (path.empty()) {
    if (!(flags & AT_EMPTY_PATH)) return -ENOENT;
    auto f = GetFile(t, dirfd);
    if (!f) return -EBADF;
    if (f->kind == File::Kind::kHost) {
      if (::fstat(f->host_fd, &st) < 0) return -errno;
    } else if (f->kind == File::Kind::kGofer) {
      if (int rc = gofer_.Fstat(f->handle, &st); rc < 0) return rc;
    } else {
      st = f->st;
    }
  } else {
    if (path[0] != '/' && dirfd != AT_FDCWD) {
      auto d = GetFile(t, dirfd);
      if (!d) return -EBADF;
      path = d->path + "/" + path;
    }
    path = Absolute(t, path);
    if (path == "/dev/null") {
      std::memset(&st, 0, sizeof(st));
      st.st_mode = S_IFCHR | 0666;
      st.st_rdev = makedev(1, 3);
    } else if (int rc = gofer_.Stat(path, !(flags & AT_SYMLINK_NOFOLLOW), &st); rc < 0) {
      return rc;
    }
  }
  return 0;
}

int64_t Kernel::Brk(Task& t, uint64_t want) {
  if (want < t.brk_start || want > t.brk_start + (1ull << 32)) return static_cast<int64_t>(t.brk);
  uint64_t end = PageUp(want);
  if (end > t.brk_mapped) {
    long r = t.as->Mmap(t.brk_mapped, end - t.brk_mapped, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
    if (r < 0) return static_cast<int64_t>(t.brk);
    t.brk_mapped = end;
  }
  t.brk = want;
  return static_cast<int64_t>(t.brk);
}

int64_t Kernel::Mmap(Task& t) {
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
  std::shared_ptr<File> f;
  if (!(flags & MAP_ANONYMOUS)) {
    f = GetFile(t, fd);
    if (!f) return -EBADF;
    if (f->kind != File::Kind::kGofer) return -ENODEV;
    if (type != MAP_PRIVATE && (prot & PROT_WRITE)) return -EACCES;  // read-only files for now
  }
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    if (addr % kPage || addr < platform_.min_user_address() || addr + len > platform_.max_user_address() ||
        platform_.stub_range().Overlaps(addr, addr + len)) {
      return (flags & MAP_FIXED) ? -EINVAL : -ENOMEM;
    }
  } else {
    if (t.mmap_next < len + platform_.min_user_address() + (1ull << 32)) return -ENOMEM;
    addr = t.mmap_next - len;
    t.mmap_next = addr;
  }
  const int share = (type == MAP_PRIVATE || f) ? MAP_PRIVATE : MAP_SHARED;
  long r = t.as->Mmap(addr, len, f ? PROT_READ | PROT_WRITE : prot, share | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
  if (r < 0) return r;
  if (f) {
    std::vector<uint8_t> tmp;
    for (uint64_t done = 0; done < len;) {
      size_t want = std::min<uint64_t>(kChunk, len - done);
      tmp.resize(want);
      long n = gofer_.Pread(f->handle, static_cast<int64_t>(off + done), {tmp.data(), want});
      if (n < 0) return n;
      if (n == 0) break;
      if (!t.as->CopyOut(addr + done, tmp.data(), static_cast<size_t>(n))) return -EFAULT;
      done += static_cast<uint64_t>(n);
    }
    if (prot != (PROT_READ | PROT_WRITE)) t.as->Mprotect(addr, len, prot);
  }
  return static_cast<int64_t>(addr);
}

int64_t Kernel::Dispatch(Task& t, long nr) {
  auto a = [&](int i) { return t.arg(i); };
  auto ia = [&](int i) { return static_cast<int>(t.arg(i)); };
  switch (nr) {
    case SYS_read: return Read(t, ia(0), a(1), a(2), -1);
    case SYS_pread64: return static_cast<int64_t>(a(3)) < 0 ? -EINVAL : Read(t, ia(0), a(1), a(2), static_cast<int64_t>(a(3)));
    case SYS_write: return Write(t, ia(0), a(1), a(2));
    case SYS_readv: return Iov(t, ia(0), a(1), a(2), false);
    case SYS_writev: return Iov(t, ia(0), a(1), a(2), true);
    case SYS_open: return OpenAt(t, AT_FDCWD, a(0), static_cast<uint32_t>(a(1)), static_cast<uint32_t>(a(2)));
    case SYS_openat: return OpenAt(t, ia(0), a(1), static_cast<uint32_t>(a(2)), static_cast<uint32_t>(a(3)));
    case SYS_close: return t.fds.erase(ia(0)) ? (t.cloexec.erase(ia(0)), 0) : -EBADF;
    case SYS_lseek: {
      auto f = GetFile(t, ia(0));
      if (!f) return -EBADF;
      if (f->kind == File::Kind::kHost) return -ESPIPE;
      int64_t off = static_cast<int64_t>(a(1)), base;
      switch (ia(2)) {
        case SEEK_SET: base = 0; break;
        case SEEK_CUR: base = f->offset; break;
        case SEEK_END: base = f->st.st_size; break;
        default: return -EINVAL;
      }
      if ((off > 0 && base > INT64_MAX - off) || base + off < 0) return -EINVAL;
      return f->offset = base + off;
    }
    case SYS_fstat: {
      auto f = GetFile(t, ia(0));
      if (!f) return -EBADF;
      struct stat st = f->st;
      if (f->kind == File::Kind::kHost && ::fstat(f->host_fd, &st) < 0) return -errno;
      if (f->kind == File::Kind::kGofer) {
        if (int rc = gofer_.Fstat(f->handle, &st); rc < 0) return rc;
      }
      return t.as->CopyOut(a(1), &st, sizeof(st)) ? 0 : -EFAULT;
    }
    case SYS_stat: return StatAt(t, AT_FDCWD, a(0), a(1), 0);
    case SYS_lstat: return StatAt(t, AT_FDCWD, a(0), a(1), AT_SYMLINK_NOFOLLOW);
    case SYS_newfstatat: return StatAt(t, ia(0), a(1), a(2), ia(3));
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
      auto ts = [](const timespec& t) { return statx_timestamp{t.tv_sec, static_cast<uint32_t>(t.tv_nsec), 0}; };
      x.stx_atime = ts(st.st_atim);
      x.stx_mtime = ts(st.st_mtim);
      x.stx_ctime = ts(st.st_ctim);
      x.stx_rdev_major = major(st.st_rdev);
      x.stx_rdev_minor = minor(st.st_rdev);
      x.stx_dev_major = major(st.st_dev);
      x.stx_dev_minor = minor(st.st_dev);
      return t.as->CopyOut(a(4), &x, sizeof(x)) ? 0 : -EFAULT;
    }
    case SYS_getxattr:
    case SYS_lgetxattr:
    case SYS_fgetxattr:
      return -ENODATA;  // no extended attributes yet
    case SYS_socket:
      return -EAFNOSUPPORT;  // sockets come with the net-stack
    case SYS_access:
    case SYS_faccessat:
    case SYS_faccessat2: {
      bool at = nr != SYS_access;
      std::string path;
      int64_t err;
      if (!ReadPath(t, at ? a(1) : a(0), &path, &err)) return err;
      struct stat st;
      if (int rc = gofer_.Stat(Absolute(t, path), true, &st); rc < 0) return rc;
      int mode = at ? ia(2) : ia(1);
      if ((mode & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111)) return -EACCES;
      return 0;
    }
    case SYS_getdents64: {
      auto f = GetFile(t, ia(0));
      if (!f) return -EBADF;
      if (f->kind != File::Kind::kGofer || !S_ISDIR(f->st.st_mode)) return -ENOTDIR;
      std::vector<uint8_t> tmp(std::min<uint64_t>(a(2), kChunk));
      long n = gofer_.Getdents(f->handle, tmp);
      if (n < 0) return n;
      if (n == 0 && a(2) < sizeof(dirent64)) return -EINVAL;
      return t.as->CopyOut(a(1), tmp.data(), static_cast<size_t>(n)) ? n : -EFAULT;
    }
    case SYS_readlink:
    case SYS_readlinkat: {
      bool at = nr == SYS_readlinkat;
      std::string path, target;
      int64_t err;
      if (!ReadPath(t, at ? a(1) : a(0), &path, &err)) return err;
      if (static_cast<int64_t>(at ? a(3) : a(2)) <= 0) return -EINVAL;
      if (path == "/proc/self/exe") return -ENOENT;  // synthesized /proc comes later
      if (int rc = gofer_.Readlink(Absolute(t, path), &target); rc < 0) return rc;
      size_t n = std::min<size_t>(target.size(), at ? a(3) : a(2));
      return t.as->CopyOut(at ? a(2) : a(1), target.data(), n) ? static_cast<int64_t>(n) : -EFAULT;
    }
    case SYS_getcwd: {
      if (a(1) < t.cwd.size() + 1) return -ERANGE;
      return t.as->CopyOut(a(0), t.cwd.c_str(), t.cwd.size() + 1) ? static_cast<int64_t>(t.cwd.size() + 1) : -EFAULT;
    }
    case SYS_chdir: {
      std::string path;
      int64_t err;
      if (!ReadPath(t, a(0), &path, &err)) return err;
      struct stat st;
      std::string abs = Absolute(t, path);
      if (int rc = gofer_.Stat(abs, true, &st); rc < 0) return rc;
      if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
      while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
      t.cwd = abs;
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
      if (nfd < 0 || nfd >= kMaxFds) return -EBADF;
      if (nr == SYS_dup3 && (nfd == ia(0) || (a(2) & ~static_cast<uint64_t>(O_CLOEXEC)))) return -EINVAL;
      if (nfd == ia(0)) return nfd;
      t.fds[nfd] = f;
      t.cloexec[nfd] = nr == SYS_dup3 && (a(2) & O_CLOEXEC);
      return nfd;
    }
    case SYS_fcntl: {
      auto f = GetFile(t, ia(0));
      if (!f) return -EBADF;
      switch (ia(1)) {
        case F_GETFD: return t.cloexec[ia(0)] ? FD_CLOEXEC : 0;
        case F_SETFD: t.cloexec[ia(0)] = a(2) & FD_CLOEXEC; return 0;
        case F_GETFL: return f->flags;
        case F_SETFL: f->flags = (f->flags & O_ACCMODE) | (static_cast<uint32_t>(a(2)) & (O_APPEND | O_NONBLOCK)); return 0;
        case F_DUPFD:
        case F_DUPFD_CLOEXEC: {
          if (static_cast<int64_t>(a(2)) < 0 || a(2) >= kMaxFds) return -EINVAL;
          int nfd = NewFd(t, f, ia(2));
          if (nfd >= 0) t.cloexec[nfd] = ia(1) == F_DUPFD_CLOEXEC;
          return nfd;
        }
        default: return -EINVAL;
      }
    }
    case SYS_ioctl: {
      auto f = GetFile(t, ia(0));
      if (!f) return -EBADF;
      return -ENOTTY;  // terminals come with the pty work
    }
    case SYS_brk: return Brk(t, a(0));
    case SYS_mmap: return Mmap(t);
    case SYS_munmap: {
      if (a(0) % kPage || a(1) == 0 || platform_.stub_range().Overlaps(a(0), a(0) + PageUp(a(1)))) return -EINVAL;
      return t.as->Munmap(a(0), a(1));
    }
    case SYS_mprotect: {
      if (a(0) % kPage || platform_.stub_range().Overlaps(a(0), a(0) + PageUp(a(1)))) return -EINVAL;
      return t.as->Mprotect(a(0), a(1), ia(2));
    }
    case SYS_madvise: return 0;
    case SYS_mremap: return -ENOMEM;  // glibc falls back to malloc + copy
    case SYS_arch_prctl:
      if (a(0) == ARCH_SET_FS) {
        if (a(1) >= platform::kTaskSizeMax) return -EPERM;
        t.regs.gp.fs_base = a(1);
        return 0;
      }
      if (a(0) == ARCH_GET_FS) return t.as->CopyOut(a(1), &t.regs.gp.fs_base, 8) ? 0 : -EFAULT;
      return -EINVAL;
    case SYS_set_tid_address: return 1;
    case SYS_set_robust_list: return a(1) == 24 ? 0 : -EINVAL;
    case SYS_rseq: return -ENOSYS;
    case SYS_futex: {
      int op = ia(1) & FUTEX_CMD_MASK;
      if (op == FUTEX_WAKE || op == FUTEX_WAKE_BITSET) return 0;
      if (op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET) return -EAGAIN;  // single task: nobody could wake it
      return -ENOSYS;
    }
    case SYS_getpid:
    case SYS_gettid:
    case SYS_getpgrp:
    case SYS_getsid:
      return 1;
    case SYS_getppid: return 0;
    case SYS_getpgid: return 1;
    case SYS_setpgid: return 0;
    case SYS_getuid:
    case SYS_geteuid:
    case SYS_getgid:
    case SYS_getegid:
      return 0;
    case SYS_umask: {
      uint32_t old = t.umask;
      t.umask = static_cast<uint32_t>(a(0)) & 0777;
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
      return t.as->CopyOut(a(0), &u, sizeof(u)) ? 0 : -EFAULT;
    }
    case SYS_getrandom: {
      if (a(2) & ~static_cast<uint64_t>(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) return -EINVAL;
      std::vector<uint8_t> tmp(std::min<uint64_t>(a(1), kChunk));
      ssize_t n = ::getrandom(tmp.data(), tmp.size(), 0);
      if (n < 0) return -errno;
      return t.as->CopyOut(a(0), tmp.data(), static_cast<size_t>(n)) ? n : -EFAULT;
    }
    case SYS_clock_gettime: {
      timespec ts;
      if (::clock_gettime(static_cast<clockid_t>(a(0)), &ts) < 0) return -errno;
      return t.as->CopyOut(a(1), &ts, sizeof(ts)) ? 0 : -EFAULT;
    }
    case SYS_gettimeofday: {
      timeval tv;
      ::gettimeofday(&tv, nullptr);
      if (a(0) && !t.as->CopyOut(a(0), &tv, sizeof(tv))) return -EFAULT;
      return 0;
    }
    case SYS_time: {
      int64_t now = ::time(nullptr);
      if (a(0) && !t.as->CopyOut(a(0), &now, 8)) return -EFAULT;
      return now;
    }
    case SYS_nanosleep:
    case SYS_clock_nanosleep: {
      timespec ts;
      uint64_t src = nr == SYS_nanosleep ? a(0) : a(2);
      if (!t.as->CopyIn(src, &ts, sizeof(ts))) return -EFAULT;
      if (ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000 || ts.tv_sec < 0) return -EINVAL;
      if (nr == SYS_clock_nanosleep && (a(1) & TIMER_ABSTIME)) {
        return ::clock_nanosleep(static_cast<clockid_t>(a(0)), TIMER_ABSTIME, &ts, nullptr) == 0 ? 0 : -EINVAL;
      }
      ::nanosleep(&ts, nullptr);
      return 0;
    }
    case SYS_rt_sigaction: {
      int sig = ia(0);
      if (sig < 1 || sig > 64 || a(3) != 8) return -EINVAL;
      if ((sig == SIGKILL || sig == SIGSTOP) && a(1)) return -EINVAL;
      auto& cur = t.sigactions[sig];
      if (a(2) && !t.as->CopyOut(a(2), cur.data(), sizeof(cur))) return -EFAULT;
      if (a(1)) {
        std::array<uint64_t, 4> n;
        if (!t.as->CopyIn(a(1), n.data(), sizeof(n))) return -EFAULT;
        cur = n;
      }
      return 0;
    }
    case SYS_rt_sigprocmask: {
      if (a(3) != 8) return -EINVAL;
      if (a(2) && !t.as->CopyOut(a(2), &t.sigmask, 8)) return -EFAULT;
      if (a(1)) {
        uint64_t set;
        if (!t.as->CopyIn(a(1), &set, 8)) return -EFAULT;
        switch (ia(0)) {
          case SIG_BLOCK: t.sigmask |= set; break;
          case SIG_UNBLOCK: t.sigmask &= ~set; break;
          case SIG_SETMASK: t.sigmask = set; break;
          default: return -EINVAL;
        }
      }
      return 0;
    }
    case SYS_sigaltstack: return 0;
    case SYS_prlimit64:
    case SYS_getrlimit: {
      uint64_t res_id = nr == SYS_prlimit64 ? a(1) : a(0);
      uint64_t old = nr == SYS_prlimit64 ? a(3) : a(1);
      if (nr == SYS_prlimit64 && a(0) != 0 && a(0) != 1) return -ESRCH;
      if (res_id >= RLIM_NLIMITS) return -EINVAL;
      struct rlimit64 lim {RLIM64_INFINITY, RLIM64_INFINITY};
      if (res_id == RLIMIT_STACK) lim = {8 << 20, RLIM64_INFINITY};
      if (res_id == RLIMIT_NOFILE) lim = {kMaxFds, kMaxFds};
      if (res_id == RLIMIT_CORE) lim = {0, RLIM64_INFINITY};
      if (old && !t.as->CopyOut(old, &lim, sizeof(lim))) return -EFAULT;
      return 0;
    }
    case SYS_sched_getaffinity: {
      if (a(1) < 8) return -EINVAL;
      uint64_t mask = 1;
      return t.as->CopyOut(a(2), &mask, 8) ? 8 : -EFAULT;
    }
    case SYS_sched_yield: return 0;
    case SYS_exit:
    case SYS_exit_group:
      t.exited = true;
      t.exit_code = ia(0) & 0xff;
      return 0;
    default:
      if (t.result->unimplemented[nr]++ == 0) {
        spdlog::info("unimplemented system call {} ({}): answered ENOSYS", harden::SyscallName(static_cast<int>(nr)), nr);
      }
      return -ENOSYS;
  }
}

}  // namespace bulkhead::router
