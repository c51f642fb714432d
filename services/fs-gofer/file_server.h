// The fs-gofer's file service: resolves sandbox paths inside the sandbox
// root only, through one directory descriptor opened before hardening and
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), and keeps the table of
// open handles the router refers to.
//
// Read-only for now: any flag that could write is refused with EROFS.
// Every input comes from the router, which forwards the application's
// arguments: paths, counts and offsets are all hostile.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/fd.h"

namespace bulkhead::gofer {

inline constexpr size_t kMaxHandles = 65536;

struct OpenResult {
  uint64_t handle = 0;
  struct stat st {};
};

class FileServer {
 public:
  // `root` is a directory descriptor (O_PATH is enough) of the sandbox root.
  explicit FileServer(UniqueFd root);

  // Each returns 0 or -errno, as Linux would for the application.
  int Open(std::string_view path, uint32_t flags, uint32_t mode, OpenResult* out);
  // Reads up to out.size() bytes at `offset`; returns the count or -errno.
  long Pread(uint64_t handle, int64_t offset, std::span<uint8_t> out);
  int Fstat(uint64_t handle, struct stat* st);
  int Stat(std::string_view path, bool follow_links, struct stat* st);
  // linux_dirent64 records into `out`, continuing where the last call ended.
  long Getdents(uint64_t handle, std::span<uint8_t> out);
  int Readlink(std::string_view path, std::string* target);
  int Close(uint64_t handle);

  size_t open_handles() const { return files_.size(); }

  // Checks a sandbox path: absolute, no NUL, at most PATH_MAX bytes, each
  // component at most NAME_MAX. Returns 0 or -errno; `rel` is the path
  // relative to the root ("." for "/").
  static int CheckPath(std::string_view path, std::string* rel);

 private:
  int Resolve(std::string_view path, uint64_t flags, uint64_t resolve, UniqueFd* out);

  UniqueFd root_;
  std::unordered_map<uint64_t, UniqueFd> files_;
  uint64_t next_handle_ = 1;
};

}  // namespace bulkhead::gofer
