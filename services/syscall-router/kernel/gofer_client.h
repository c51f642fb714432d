// The router's side of the fs-gofer protocol: typed calls over the router's
// data ring to the gofer. Results are Linux errnos for the application.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <unordered_set>
#include <vector>
#include <span>
#include <string>

#include "services/common/channel_holder.h"

namespace bulkhead::router {

// Handles are the client's own ids. Each remembers its path and flags, so
// that when the fs-gofer is restarted (kill -9, crash) the client re-opens it
// on the new gofer at its next use and the application never notices: reads,
// fstat and directory listings go on (a listing restarted by the re-open
// leaves out the names already returned). Calls in flight when the gofer
// dies wait for its replacement (ChannelHolder) and are retried.
class GoferClient {
 public:
  explicit GoferClient(service::ChannelHolder* holder) : holder_(holder) {}

  // Each returns 0 (or a count) or -errno. -EIO when the gofer cannot be
  // reached within the deadline, or is not replaced after it died.
  int Open(const std::string& path, uint32_t flags, uint32_t mode, uint64_t* handle, struct stat* st);
  long Pread(uint64_t handle, int64_t offset, std::span<uint8_t> out);
  int Fstat(uint64_t handle, struct stat* st);
  int Stat(const std::string& path, bool follow, struct stat* st);
  long Getdents(uint64_t handle, std::span<uint8_t> out);
  int Readlink(const std::string& path, std::string* target);
  int Close(uint64_t handle);

  // The write side. Calls the gofer may have carried out before it died
  // are retried on its successor with their effect checked, so that none is
  // applied twice: an append carries the size the file had (the gofer writes
  // only at that size; a retry that finds the size grown by exactly its
  // count knows its bytes landed), and a retried mkdir, unlink, rename,
  // link, symlink or exclusive create that finds its work done reports
  // success. Every change drops the parked handles (their attributes may be
  // stale). `offset` < 0: append. *at: where the bytes went; *size: the
  // file's size after.
  long Pwrite(uint64_t handle, int64_t offset, std::span<const uint8_t> data, int64_t* at, int64_t* size);
  int64_t Seek(uint64_t handle, int64_t offset, int whence);
  // rewinddir: the directory's listing starts again (and its restart filter
  // forgets what was returned).
  int RewindDir(uint64_t handle);
  int Ftruncate(uint64_t handle, int64_t length);
  int Truncate(const std::string& path, int64_t length);
  int Fallocate(uint64_t handle, uint32_t mode, int64_t offset, int64_t length);
  int Fsync(uint64_t handle, bool data_only);
  int Mknod(const std::string& path, uint32_t mode, uint64_t dev);
  // *removed: what was removed (device and inode zero when unknown).
  int Unlink(const std::string& path, bool directory, struct stat* removed);
  int Rename(const std::string& from, const std::string& to, uint32_t flags);
  int Link(const std::string& from, const std::string& to, bool follow);
  // An open file (client handle) gets the name `to` (O_TMPFILE's linkat).
  int LinkHandle(uint64_t handle, const std::string& to);
  int Symlink(const std::string& target, const std::string& path);
  int Access(const std::string& path, uint32_t mode, bool follow);
  // A file by handle (a client handle, != 0) or by path.
  struct Target {
    uint64_t handle = 0;
    std::string path;
    bool follow = true;
  };
  struct Attr {
    bool set_mode = false;
    uint32_t mode = 0;
    bool set_owner = false;
    uint32_t uid = UINT32_MAX, gid = UINT32_MAX;
    bool set_times = false;
    timespec times[2] = {};
  };
  int SetAttr(const Target& t, const Attr& a);
  int Statfs(const Target& t, struct statfs* out);
  long GetXattr(const Target& t, const std::string& name, std::span<uint8_t> out);
  long ListXattr(const Target& t, std::span<uint8_t> out);
  int SetXattr(const Target& t, const std::string& name, std::span<const uint8_t> value, uint32_t flags);
  int RemoveXattr(const Target& t, const std::string& name);

  // Called with true before each round trip to the gofer and with false
  // after it (the platform's Busy hint: a trap stub stops spinning while the
  // router waits on another service).
  void SetBusyHook(std::function<void(bool)> hook) { busy_ = std::move(hook); }

  // Handles re-opened after a gofer restart (tests, stats).
  uint64_t reopens() const { return reopens_; }

  // Closed read-only handles of regular files are kept (up to kMaxParked,
  // least recently used out first) and an Open of the same path with the
  // same flags takes one back with the attributes it was opened with: a
  // file the sandbox opens again costs no round trip. The sandbox cannot
  // change host files yet, so the attributes go stale only if the host
  // changes a file under a running sandbox (the issue's "paths only the
  // sandbox changes"); fstat still asks the gofer.
  static constexpr size_t kMaxParked = 64;
  // Attributes and misses (ENOENT, ENOTDIR) of paths, under the same rule:
  // every change the sandbox makes drops them all (with the parked handles),
  // so only the host changing a file under a running sandbox can make one
  // stale. Bounded: cleared when full.
  static constexpr size_t kMaxStats = 4096;
  uint64_t stat_hits() const { return stat_hits_; }
  // Bumped by every change the sandbox makes through this client: a reader
  // that saw another value re-reads attributes it keeps (its size).
  uint64_t generation() const { return generation_; }
  uint64_t parked_hits() const { return parked_hits_; }
  size_t parked() const { return parked_.size(); }

 private:
  struct Handle {
    std::string path;
    uint32_t flags = 0;
    uint64_t server = 0;  // the gofer's handle
    uint64_t epoch = 0;   // channel version it was opened on
    bool directory = false;
    bool refilter = false;
    // Directories: hashes of the names returned so far (64-bit: a collision
    // could hide a name only in a listing restarted by a gofer crash), kept
    // in a plain list and made a set only when a restart needs the filter.
    std::vector<uint64_t> seen;
    std::unordered_set<uint64_t> seen_set;
    struct stat st {};           // as the open returned it (parking keeps it)
    int64_t known_size = -1;     // appends: the file's size after the last one (-1: ask)
  };
  static bool Parkable(uint32_t flags) {
    return (flags & O_ACCMODE) == O_RDONLY && !(flags & (O_PATH | O_DIRECTORY | O_CREAT | O_TRUNC | O_EXCL));
  }
  struct Parked {
    uint64_t server = 0, epoch = 0, last_use = 0;
    struct stat st {};
  };
  // Takes a parked handle for (path, flags) into *h; false if none is live.
  bool Unpark(const std::string& path, uint32_t flags, Handle* h, struct stat* st);
  void Park(Handle h);
  long Reopen(Handle& h);
  template <typename Fn>
  long WithHandle(uint64_t id, Fn&& fn);

  int RawOpen(const std::string& path, uint32_t flags, uint32_t mode, uint64_t* handle, struct stat* st);
  long RawPread(uint64_t handle, int64_t offset, std::span<uint8_t> out);
  int RawFstat(uint64_t handle, struct stat* st);
  int RawStat(const std::string& path, bool follow, struct stat* st);
  long RawGetdents(uint64_t handle, std::span<uint8_t> out);
  int RawReadlink(const std::string& path, std::string* target);
  int RawClose(uint64_t handle);
  long RawPwrite(uint64_t server, int64_t offset, bool append, int64_t if_size, std::span<const uint8_t> data,
                 int64_t* at, int64_t* size, int64_t* size_is);
  // A call on a target: a client handle becomes the gofer's (re-opened after
  // a restart); a path goes as it is.
  template <typename Fn>
  long OnTarget(const Target& t, Fn&& fn);
  // Retries `call` on a restarted gofer; after a retry, `done_errno` (say
  // EEXIST for mkdir) means the first attempt did the work.
  template <typename Fn>
  int Mutate(int done_errno, Fn&& call);
  void DropParked();
  void RawCloseAsync(uint64_t server);
  struct CachedStat {
    int rc = 0;
    struct stat st {};
  };
  std::map<std::pair<std::string, bool>, CachedStat> stats_;
  uint64_t stat_hits_ = 0, generation_ = 0;
  int RawRename(const std::string& from, const std::string& to, uint32_t flags);

  service::ChannelHolder* holder_;
  std::function<void(bool)> busy_;
  std::map<uint64_t, Handle> handles_;
  uint64_t next_id_ = 1;
  uint64_t reopens_ = 0;
  std::map<std::pair<std::string, uint32_t>, Parked> parked_;
  uint64_t park_clock_ = 0, parked_hits_ = 0;
};

}  // namespace bulkhead::router
