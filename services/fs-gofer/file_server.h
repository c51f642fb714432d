// The fs-gofer's file service: resolves sandbox paths inside the sandbox
// root only, through one directory descriptor opened before hardening and
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), and keeps the table of
// open handles the router refers to.
//
// The root it is given is the sandbox's mount tree (runtime/mount_tree.h):
// a kernel overlay whose upper layer is a private tmpfs, with the volumes
// attached below it, so writes land in the sandbox's own layer (or in a
// volume) and never in the image. Every call that names a path works on a
// directory descriptor resolved inside the root plus one final name, or on
// a descriptor of the final object itself (AT_EMPTY_PATH): no host path is
// ever walked by the kernel outside RESOLVE_IN_ROOT.
//
// Every input comes from the router, which forwards the application's
// arguments: paths, counts and offsets are all hostile.
#pragma once

#include <sys/stat.h>
#include <sys/statfs.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/fd.h"

namespace bulkhead::gofer {

inline constexpr size_t kMaxHandles = 65536;
inline constexpr int kMaxSymlinkHops = 40;  // Linux's MAXSYMLINKS

struct OpenResult {
  uint64_t handle = 0;
  struct stat st {};
};

struct WriteResult {
  long count = 0;        // bytes written
  int64_t offset = 0;    // where they went
  int64_t size = 0;      // the file's size after
  int64_t size_is = -1;  // >= 0: an append with a size guard found this size and wrote nothing
};

// What a SetAttr call changes (chmod, chown, utimensat).
struct AttrChange {
  bool set_mode = false;
  uint32_t mode = 0;
  bool set_owner = false;
  uint32_t uid = UINT32_MAX, gid = UINT32_MAX;
  bool set_times = false;
  timespec times[2] = {};  // atime, mtime; tv_nsec may be UTIME_NOW / UTIME_OMIT
};

// A file named by an open handle (handle != 0) or by a path.
struct Target {
  uint64_t handle = 0;
  std::string_view path;
  bool follow = true;
};

class FileServer {
 public:
  // `root` is a directory descriptor (O_PATH is enough) of the sandbox root.
  explicit FileServer(UniqueFd root);

  // Each returns 0 (or a count) or -errno, as Linux would for the application.
  int Open(std::string_view path, uint32_t flags, uint32_t mode, OpenResult* out);
  // Reads up to out.size() bytes at `offset`; returns the count or -errno.
  long Pread(uint64_t handle, int64_t offset, std::span<uint8_t> out);
  // Writes `data` at `offset`, or at the end with `append`. An append with
  // if_size >= 0 writes only if the file's size is if_size (else sets
  // out->size_is): the router's guard against applying one append twice when
  // it retries a call the gofer may have carried out before it died.
  int Pwrite(uint64_t handle, int64_t offset, bool append, int64_t if_size, std::span<const uint8_t> data,
             WriteResult* out);
  int Fstat(uint64_t handle, struct stat* st);
  int Stat(std::string_view path, bool follow_links, struct stat* st);
  // linux_dirent64 records into `out`, continuing where the last call ended.
  long Getdents(uint64_t handle, std::span<uint8_t> out);
  int Readlink(std::string_view path, std::string* target);
  int Close(uint64_t handle);

  // lseek for SEEK_DATA and SEEK_HOLE, and to 0 (a directory listing starts
  // again): the offset or -errno.
  int64_t Seek(uint64_t handle, int64_t offset, int whence);
  int Truncate(const Target& t, int64_t length);
  int Fallocate(uint64_t handle, uint32_t mode, int64_t offset, int64_t length);
  int Fsync(uint64_t handle, bool data_only);
  // mkdir (S_IFDIR), mknod of a FIFO, socket or regular file.
  int Mknod(std::string_view path, uint32_t mode, uint64_t dev);
  // *removed (when given): what the name named, as it was (zeroed if unknown).
  int Unlink(std::string_view path, bool directory, struct stat* removed = nullptr);
  int Rename(std::string_view from, std::string_view to, uint32_t flags);
  int Link(std::string_view from, std::string_view to, bool follow);
  // linkat(fd, "", ..., AT_EMPTY_PATH) of an open handle: gives an
  // O_TMPFILE file its name.
  int LinkHandle(uint64_t handle, std::string_view to);
  int Symlink(std::string_view target, std::string_view path);
  int SetAttr(const Target& t, const AttrChange& c);
  int Statfs(const Target& t, struct statfs* out);
  int Access(std::string_view path, uint32_t mode, bool follow);
  // Extended attributes: get and list fill `out` (size 0: only the size is
  // returned), as the Linux calls do.
  long GetXattr(const Target& t, std::string_view name, std::span<uint8_t> out);
  long ListXattr(const Target& t, std::span<uint8_t> out);
  int SetXattr(const Target& t, std::string_view name, std::span<const uint8_t> value, uint32_t flags);
  int RemoveXattr(const Target& t, std::string_view name);

  size_t open_handles() const { return files_.size(); }

  // Checks a sandbox path: absolute, no NUL, at most PATH_MAX bytes, each
  // component at most NAME_MAX. Returns 0 or -errno; `rel` is the path
  // relative to the root ("." for "/").
  static int CheckPath(std::string_view path, std::string* rel);

 private:
  int Resolve(std::string_view path, uint64_t flags, uint64_t resolve, UniqueFd* out);
  // The directory holding the last component of `path` and that component
  // ("" for the root itself; "." or ".." as written); *slash: the path
  // ended in "/".
  int ResolveParent(std::string_view path, UniqueFd* dir, std::string* name, bool* slash);
  // The directory and name of the object `path` names, its final symlinks
  // followed (inside the root) when `follow`; "." for a directory itself.
  int ResolveFinal(std::string_view path, bool follow, UniqueFd* dir, std::string* name);
  // Where an xattr call goes: (fd, name, at-flags).
  int XattrTarget(const Target& t, UniqueFd* dir, std::string* name, int* fd, unsigned* flags);
  // A descriptor of the target: its handle's, or the path's (O_PATH).
  int TargetFd(const Target& t, UniqueFd* owned, int* fd);

  UniqueFd root_;
  std::unordered_map<uint64_t, UniqueFd> files_;
  uint64_t next_handle_ = 1;
};

}  // namespace bulkhead::gofer
