#include "services/fs-gofer/file_server.h"

#include <fcntl.h>
#include <linux/limits.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

int FileServer::Open(std::string_view path, uint32_t flags, uint32_t mode, OpenResult* out) {
  (void)mode;
  const uint32_t acc = flags & O_ACCMODE;
  // O_TMPFILE includes O_DIRECTORY's bit: compare the whole mask.
  if (acc == O_WRONLY || acc == O_RDWR || (flags & (O_CREAT | O_TRUNC | O_APPEND)) ||
      (flags & O_TMPFILE) == O_TMPFILE) {
    return -EROFS;
  }
  if (files_.size() >= kMaxHandles) return -ENFILE;
  // Only flags that change what is opened pass through; the rest (O_NONBLOCK,
  // O_CLOEXEC, O_ASYNC, ...) belong to the application's file description,
  // which the router keeps.
  const uint32_t pass = flags & (O_DIRECTORY | O_NOFOLLOW | O_PATH | O_NOATIME);
  UniqueFd fd;
  if (int rc = Resolve(path, O_RDONLY | pass, 0, &fd); rc < 0) return rc;
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

}  // namespace bulkhead::gofer
