// The router's side of the fs-gofer protocol: typed calls over the router's
// data ring to the gofer. Results are Linux errnos for the application.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
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
    std::set<std::string> seen;  // directories: names returned so far
    struct stat st {};           // as the open returned it (parking keeps it)
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

  service::ChannelHolder* holder_;
  std::function<void(bool)> busy_;
  std::map<uint64_t, Handle> handles_;
  uint64_t next_id_ = 1;
  uint64_t reopens_ = 0;
  std::map<std::pair<std::string, uint32_t>, Parked> parked_;
  uint64_t park_clock_ = 0, parked_hits_ = 0;
};

}  // namespace bulkhead::router
