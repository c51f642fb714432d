#include "services/fs-gofer/file_server.h"

#include <fcntl.h>
#include <linux/limits.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sys/xattr.h>

namespace bulkhead::gofer {

FileServer::FileServer(UniqueFd root) : root_(std::move(root)) {}

int FileServer::CheckPath(std::string_view path, std::string* rel) {
  if (path.empty()) return -ENOENT;
  if (path.find('\0') != std::string_view::npos) return -EINVAL;
  if (path.size() >= PATH_MAX) return -ENAMETOOLONG;
  if (path[0] != '/') return -EINVAL;  // the router makes every path absolute
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end - start > NAME_MAX) return -ENAMETOOLONG;
    start = end + 1;
  }
  size_t first = path.find_first_not_of('/');
  *rel = first == std::string_view::npos ? "." : std::string(path.substr(first));
  return 0;
}

namespace {
constexpr int kResolveAttempts = 64;
}  // namespace

int FileServer::Resolve(std::string_view path, uint64_t flags, uint64_t resolve, UniqueFd* out) {
  std::string rel;
  if (int rc = CheckPath(path, &rel); rc < 0) return rc;
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = resolve | RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  // EAGAIN: a ".." in the path (a symlink such as /etc/os-release ->
  // ../usr/lib/os-release) raced with a rename or mount anywhere on the
  // host, and the kernel could not prove the walk stayed in the root. It
  // asks for a retry; the application must not see it.
  long fd = -1;
  for (int attempt = 0; attempt < kResolveAttempts; ++attempt) {
    fd = ::syscall(SYS_openat2, root_.get(), rel.c_str(), &how, sizeof(how));
    if (fd >= 0 || errno != EAGAIN) break;
  }
  if (fd < 0) return -errno;
  out->Reset(static_cast<int>(fd));
  return 0;
}

namespace {

// Calls newer than the build machine's headers (Linux 6.6 and 6.13).
constexpr long kSysFchmodat2 = 452;
constexpr long kSysSetxattrat = 463;
constexpr long kSysGetxattrat = 464;
constexpr long kSysListxattrat = 465;
constexpr long kSysRemovexattrat = 466;
struct XattrArgs {
  uint64_t value;
  uint32_t size;
  uint32_t flags;
};

}  // namespace

int FileServer::ResolveParent(std::string_view path, UniqueFd* dir, std::string* name, bool* slash) {
  std::string rel;
  if (int rc = CheckPath(path, &rel); rc < 0) return rc;
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;
  if (slash) *slash = end != path.size();
  std::string_view p = path.substr(0, end);
  const size_t cut = p.rfind('/');
  name->assign(p.substr(cut + 1));
  std::string_view parent = cut == 0 ? std::string_view("/") : p.substr(0, cut);
  if (p == "/") {
    name->clear();
    parent = "/";
  }
  return Resolve(parent, O_PATH | O_DIRECTORY, 0, dir);
}

int FileServer::ResolveFinal(std::string_view path, bool follow, UniqueFd* dir, std::string* name) {
  std::string cur(path);
  for (int hop = 0; hop <= kMaxSymlinkHops; ++hop) {
    if (int rc = ResolveParent(cur, dir, name, nullptr); rc < 0) return rc;
    if (name->empty() || *name == "." || *name == "..") {
      // The directory itself: name it "." in itself (or its parent's "..").
      if (!name->empty()) {
        UniqueFd d;
        if (int rc = Resolve(cur, O_PATH | O_DIRECTORY, 0, &d); rc < 0) return rc;
        *dir = std::move(d);
      }
      *name = ".";
      return 0;
    }
    if (!follow) return 0;
    char buf[PATH_MAX];
    ssize_t n = ::readlinkat(dir->get(), name->c_str(), buf, sizeof(buf));
    if (n < 0) return errno == EINVAL || errno == ENOENT ? 0 : -errno;  // not a symlink (or the call finds it missing)
    std::string target(buf, static_cast<size_t>(n));
    if (target.empty()) return -ENOENT;
    if (target[0] == '/') {
      cur = target;
    } else {
      size_t end = cur.size();
      while (end > 1 && cur[end - 1] == '/') --end;
      const size_t cut = cur.rfind('/', end - 1);
      cur = cur.substr(0, cut + 1) + target;
    }
  }
  return -ELOOP;
}

int FileServer::TargetFd(const Target& t, UniqueFd* owned, int* fd) {
  if (t.handle != 0) {
    auto it = files_.find(t.handle);
    if (it == files_.end()) return -EBADF;
    *fd = it->second.get();
    return 0;
  }
  if (int rc = Resolve(t.path, O_PATH | (t.follow ? 0 : O_NOFOLLOW), 0, owned); rc < 0) return rc;
  *fd = owned->get();
  return 0;
}

int FileServer::Open(std::string_view path, uint32_t flags, uint32_t mode, OpenResult* out) {
  if (files_.size() >= kMaxHandles) return -ENFILE;
  // Only flags that change what is opened pass through; the rest (O_CLOEXEC,
  // O_ASYNC, O_APPEND, ...) belong to the application's file description,
  // which the router keeps (appends come as Pwrite with append). O_NONBLOCK
  // always: a FIFO must never block the gofer.
  const bool tmpfile = (flags & O_TMPFILE) == O_TMPFILE;
  uint64_t pass;
  if (flags & O_PATH) {
    pass = O_PATH | (flags & (O_DIRECTORY | O_NOFOLLOW));
  } else {
    pass = (flags & (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_DIRECTORY | O_NOFOLLOW | O_NOATIME)) | O_NONBLOCK;
    if (tmpfile) pass = (pass & ~static_cast<uint64_t>(O_DIRECTORY | O_CREAT)) | O_TMPFILE;
    if ((pass & O_ACCMODE) == O_ACCMODE) return -EINVAL;
  }
  UniqueFd fd;
  std::string rel;
  if (int rc = CheckPath(path, &rel); rc < 0) return rc;
  open_how how{};
  how.flags = pass | O_CLOEXEC;
  how.mode = (pass & O_CREAT) || tmpfile ? (mode & 07777) : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long r = -1;
  for (int attempt = 0; attempt < kResolveAttempts; ++attempt) {
    r = ::syscall(SYS_openat2, root_.get(), rel.c_str(), &how, sizeof(how));
    if (r >= 0 || errno != EAGAIN) break;
  }
  if (r < 0) return -errno;
  fd.Reset(static_cast<int>(r));
  if (::fstat(fd.get(), &out->st) < 0) return -errno;
  out->handle = next_handle_++;
  files_.emplace(out->handle, std::move(fd));
  return 0;
}

long FileServer::Pread(uint64_t handle, int64_t offset, std::span<uint8_t> out) {
  auto it = files_.find(handle);
  if (it == files_.end()) return -EBADF;
  if (offset < 0) return -EINVAL;
  ssize_t n = ::pread(it->second.get(), out.data(), out.size(), offset);
  return n < 0 ? -errno : n;
}

int FileServer::Pwrite(uint64_t handle, int64_t offset, bool append, int64_t if_size, std::span<const uint8_t> data,
                       WriteResult* out) {
  auto it = files_.find(handle);
  if (it == files_.end()) return -EBADF;
  const int fd = it->second.get();
  struct stat st;
  if (append) {
    if (::fstat(fd, &st) < 0) return -errno;
    if (if_size >= 0 && st.st_size != if_size) {
      out->size_is = st.st_size;
      out->size = st.st_size;
      return 0;
    }
    offset = st.st_size;
  } else if (offset < 0) {
    return -EINVAL;
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<int64_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (done == 0) return -errno;
      break;  // a short write: what was written counts
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out->count = static_cast<long>(done);
  out->offset = offset;
  out->size = ::fstat(fd, &st) == 0 ? st.st_size : offset + static_cast<int64_t>(done);
  return 0;
}

int FileServer::Fstat(uint64_t handle, struct stat* st) {
  auto it = files_.find(handle);
  if (it == files_.end()) return -EBADF;
  return ::fstat(it->second.get(), st) < 0 ? -errno : 0;
}

int FileServer::Stat(std::string_view path, bool follow_links, struct stat* st) {
  UniqueFd fd;
  if (int rc = Resolve(path, O_PATH | (follow_links ? 0 : O_NOFOLLOW), 0, &fd); rc < 0) return rc;
  return ::fstat(fd.get(), st) < 0 ? -errno : 0;
}

long FileServer::Getdents(uint64_t handle, std::span<uint8_t> out) {
  auto it = files_.find(handle);
  if (it == files_.end()) return -EBADF;
  long n = ::syscall(SYS_getdents64, it->second.get(), out.data(), out.size());
  return n < 0 ? -errno : n;
}

int FileServer::Readlink(std::string_view path, std::string* target) {
  UniqueFd fd;
  if (int rc = Resolve(path, O_PATH | O_NOFOLLOW, 0, &fd); rc < 0) return rc;
  char buf[PATH_MAX];
  ssize_t n = ::readlinkat(fd.get(), "", buf, sizeof(buf));
  if (n < 0) return errno == ENOENT ? -EINVAL : -errno;  // not a symlink
  target->assign(buf, static_cast<size_t>(n));
  return 0;
}

int FileServer::Close(uint64_t handle) {
  return files_.erase(handle) ? 0 : -EBADF;
}

int64_t FileServer::Seek(uint64_t handle, int64_t offset, int whence) {
  auto it = files_.find(handle);
  if (it == files_.end()) return -EBADF;
  // SEEK_DATA, SEEK_HOLE; and SEEK_SET to 0, which restarts a directory
  // listing (rewinddir).
  if (whence != SEEK_DATA && whence != SEEK_HOLE && !(whence == SEEK_SET && offset == 0)) return -EINVAL;
  off_t r = ::lseek(it->second.get(), offset, whence);
  return r < 0 ? -errno : r;
}

int FileServer::Truncate(const Target& t, int64_t length) {
  if (length < 0) return -EINVAL;
  if (t.handle != 0) {
    auto it = files_.find(t.handle);
    if (it == files_.end()) return -EBADF;
    return ::ftruncate(it->second.get(), length) < 0 ? -errno : 0;
  }
  UniqueFd obj;
  if (int rc = Resolve(t.path, O_PATH, 0, &obj); rc < 0) return rc;
  struct stat st;
  if (::fstat(obj.get(), &st) < 0) return -errno;
  if (S_ISDIR(st.st_mode)) return -EISDIR;
  if (!S_ISREG(st.st_mode)) return -EINVAL;
  UniqueFd fd;
  if (int rc = Resolve(t.path, O_WRONLY | O_NONBLOCK, 0, &fd); rc < 0) return rc;
  return ::ftruncate(fd.get(), length) < 0 ? -errno : 0;
}

int FileServer::Fallocate(uint64_t handle, uint32_t mode, int64_t offset, int64_t length) {
  auto it = files_.find(handle);
  if (it == files_.end()) return -EBADF;
  return ::fallocate(it->second.get(), static_cast<int>(mode), offset, length) < 0 ? -errno : 0;
}

int FileServer::Fsync(uint64_t handle, bool data_only) {
  auto it = files_.find(handle);
  if (it == files_.end()) return -EBADF;
  int rc = data_only ? ::fdatasync(it->second.get()) : ::fsync(it->second.get());
  return rc < 0 ? -errno : 0;
}

int FileServer::Mknod(std::string_view path, uint32_t mode, uint64_t dev) {
  UniqueFd dir;
  std::string name;
  bool slash = false;
  if (int rc = ResolveParent(path, &dir, &name, &slash); rc < 0) return rc;
  if (name.empty() || name == "." || name == "..") return -EEXIST;
  if (S_ISDIR(mode)) return ::mkdirat(dir.get(), name.c_str(), mode & 07777) < 0 ? -errno : 0;
  if (slash) {
    struct stat st;
    return ::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? -EEXIST : -ENOENT;
  }
  const uint32_t type = (mode & S_IFMT) ? (mode & S_IFMT) : S_IFREG;
  return ::mknodat(dir.get(), name.c_str(), type | (mode & 07777), static_cast<dev_t>(dev)) < 0 ? -errno : 0;
}

int FileServer::Unlink(std::string_view path, bool directory, struct stat* removed) {
  if (removed) std::memset(removed, 0, sizeof(*removed));
  UniqueFd dir;
  std::string name;
  bool slash = false;
  if (int rc = ResolveParent(path, &dir, &name, &slash); rc < 0) return rc;
  if (name.empty()) return directory ? -EBUSY : -EISDIR;
  if (name == ".") return directory ? -EINVAL : -EISDIR;
  if (name == "..") return directory ? -ENOTEMPTY : -EISDIR;
  if (!directory && slash) {
    struct stat st;
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
    return S_ISDIR(st.st_mode) ? -EISDIR : -ENOTDIR;
  }
  if (removed && ::fstatat(dir.get(), name.c_str(), removed, AT_SYMLINK_NOFOLLOW) < 0) std::memset(removed, 0, sizeof(*removed));
  return ::unlinkat(dir.get(), name.c_str(), directory ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
}

int FileServer::Rename(std::string_view from, std::string_view to, uint32_t flags) {
  UniqueFd fdir, tdir;
  std::string fname, tname;
  bool fslash = false, tslash = false;
  if (int rc = ResolveParent(from, &fdir, &fname, &fslash); rc < 0) return rc;
  if (int rc = ResolveParent(to, &tdir, &tname, &tslash); rc < 0) return rc;
  if (fname.empty() || fname == "." || fname == ".." || tname.empty() || tname == "." || tname == "..") return -EBUSY;
  if (fslash || tslash) {
    struct stat st;
    if (::fstatat(fdir.get(), fname.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
    if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  }
  long rc = ::syscall(SYS_renameat2, fdir.get(), fname.c_str(), tdir.get(), tname.c_str(), flags);
  return rc < 0 ? -errno : 0;
}

int FileServer::Link(std::string_view from, std::string_view to, bool follow) {
  UniqueFd tdir;
  std::string tname;
  bool tslash = false;
  if (int rc = ResolveParent(to, &tdir, &tname, &tslash); rc < 0) return rc;
  if (tname.empty() || tname == "." || tname == "..") return -EEXIST;
  if (follow) {
    // The source's symlinks resolve inside the root; the link is made from
    // the object's own descriptor (allowed for a descriptor this process
    // opened, Linux 6.10).
    UniqueFd src;
    if (int rc = Resolve(from, O_PATH, 0, &src); rc < 0) return rc;
    return ::linkat(src.get(), "", tdir.get(), tname.c_str(), AT_EMPTY_PATH) < 0 ? -errno : 0;
  }
  UniqueFd fdir;
  std::string fname;
  bool fslash = false;
  if (int rc = ResolveParent(from, &fdir, &fname, &fslash); rc < 0) return rc;
  if (fname.empty() || fname == "." || fname == "..") return -EPERM;
  if (fslash || tslash) {
    struct stat st;
    if (::fstatat(fdir.get(), fname.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
    return S_ISDIR(st.st_mode) ? -EPERM : -ENOTDIR;
  }
  return ::linkat(fdir.get(), fname.c_str(), tdir.get(), tname.c_str(), 0) < 0 ? -errno : 0;
}

int FileServer::LinkHandle(uint64_t handle, std::string_view to) {
  auto it = files_.find(handle);
  if (it == files_.end()) return -EBADF;
  UniqueFd tdir;
  std::string tname;
  bool tslash = false;
  if (int rc = ResolveParent(to, &tdir, &tname, &tslash); rc < 0) return rc;
  if (tname.empty() || tname == "." || tname == "..") return -EEXIST;
  return ::linkat(it->second.get(), "", tdir.get(), tname.c_str(), AT_EMPTY_PATH) < 0 ? -errno : 0;
}

int FileServer::Symlink(std::string_view target, std::string_view path) {
  if (target.empty()) return -ENOENT;
  if (target.size() >= PATH_MAX) return -ENAMETOOLONG;
  if (target.find('\0') != std::string_view::npos) return -EINVAL;
  UniqueFd dir;
  std::string name;
  bool slash = false;
  if (int rc = ResolveParent(path, &dir, &name, &slash); rc < 0) return rc;
  if (name.empty() || name == "." || name == "..") return -EEXIST;
  if (slash) {
    struct stat st;
    return ::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? -EEXIST : -ENOENT;
  }
  const std::string t(target);
  return ::symlinkat(t.c_str(), dir.get(), name.c_str()) < 0 ? -errno : 0;
}

int FileServer::SetAttr(const Target& t, const AttrChange& c) {
  UniqueFd owned;
  int fd = -1;
  if (int rc = TargetFd(t, &owned, &fd); rc < 0) return rc;
  if (c.set_mode) {
    if (::syscall(kSysFchmodat2, fd, "", c.mode & 07777, AT_EMPTY_PATH) < 0) {
      if (errno != ENOSYS) return -errno;
      if (::fchmod(fd, c.mode & 07777) < 0) return -errno;  // before Linux 6.6: not on O_PATH descriptors
    }
  }
  if (c.set_owner && ::fchownat(fd, "", c.uid, c.gid, AT_EMPTY_PATH) < 0) return -errno;
  if (c.set_times && ::utimensat(fd, "", c.times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) return -errno;
  return 0;
}

int FileServer::Statfs(const Target& t, struct statfs* out) {
  UniqueFd owned;
  int fd = -1;
  if (int rc = TargetFd(t, &owned, &fd); rc < 0) return rc;
  return ::fstatfs(fd, out) < 0 ? -errno : 0;
}

int FileServer::Access(std::string_view path, uint32_t mode, bool follow) {
  if (mode & ~static_cast<uint32_t>(F_OK | R_OK | W_OK | X_OK)) return -EINVAL;
  UniqueFd fd;
  if (int rc = Resolve(path, O_PATH | (follow ? 0 : O_NOFOLLOW), 0, &fd); rc < 0) return rc;
  long rc = ::syscall(SYS_faccessat2, fd.get(), "", mode, AT_EMPTY_PATH | (follow ? 0 : AT_SYMLINK_NOFOLLOW));
  return rc < 0 ? -errno : 0;
}

// The xattr calls take no O_PATH descriptor (EBADF), so a path is named as
// its directory plus the final name, its symlinks resolved here inside the
// root; a handle is an open file of its own.
int FileServer::XattrTarget(const Target& t, UniqueFd* dir, std::string* name, int* fd, unsigned* flags) {
  if (t.handle != 0) {
    auto it = files_.find(t.handle);
    if (it == files_.end()) return -EBADF;
    *fd = it->second.get();
    name->clear();
    *flags = AT_EMPTY_PATH;
    return 0;
  }
  if (int rc = ResolveFinal(t.path, t.follow, dir, name); rc < 0) return rc;
  *fd = dir->get();
  *flags = AT_SYMLINK_NOFOLLOW;
  return 0;
}

long FileServer::GetXattr(const Target& t, std::string_view name, std::span<uint8_t> out) {
  UniqueFd dir;
  std::string file;
  int fd = -1;
  unsigned flags = 0;
  if (int rc = XattrTarget(t, &dir, &file, &fd, &flags); rc < 0) return rc;
  const std::string n(name);
  XattrArgs args{reinterpret_cast<uint64_t>(out.data()), static_cast<uint32_t>(out.size()), 0};
  long rc = ::syscall(kSysGetxattrat, fd, file.c_str(), flags, n.c_str(), &args, sizeof(args));
  return rc < 0 ? -errno : rc;
}

long FileServer::ListXattr(const Target& t, std::span<uint8_t> out) {
  UniqueFd dir;
  std::string file;
  int fd = -1;
  unsigned flags = 0;
  if (int rc = XattrTarget(t, &dir, &file, &fd, &flags); rc < 0) return rc;
  long rc = ::syscall(kSysListxattrat, fd, file.c_str(), flags, out.data(), out.size());
  return rc < 0 ? -errno : rc;
}

int FileServer::SetXattr(const Target& t, std::string_view name, std::span<const uint8_t> value, uint32_t flags) {
  UniqueFd dir;
  std::string file;
  int fd = -1;
  unsigned at = 0;
  if (int rc = XattrTarget(t, &dir, &file, &fd, &at); rc < 0) return rc;
  const std::string n(name);
  XattrArgs args{reinterpret_cast<uint64_t>(value.data()), static_cast<uint32_t>(value.size()), flags};
  long rc = ::syscall(kSysSetxattrat, fd, file.c_str(), at, n.c_str(), &args, sizeof(args));
  return rc < 0 ? -errno : 0;
}

int FileServer::RemoveXattr(const Target& t, std::string_view name) {
  UniqueFd dir;
  std::string file;
  int fd = -1;
  unsigned flags = 0;
  if (int rc = XattrTarget(t, &dir, &file, &fd, &flags); rc < 0) return rc;
  const std::string n(name);
  long rc = ::syscall(kSysRemovexattrat, fd, file.c_str(), flags, n.c_str());
  return rc < 0 ? -errno : 0;
}

}  // namespace bulkhead::gofer
