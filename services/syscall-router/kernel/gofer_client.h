// The router's side of the fs-gofer protocol: typed calls over the router's
// data ring to the gofer. Results are Linux errnos for the application.
#pragma once

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

 private:
  struct Handle {
    std::string path;
    uint32_t flags = 0;
    uint64_t server = 0;  // the gofer's handle
    uint64_t epoch = 0;   // channel version it was opened on
    bool directory = false;
    bool refilter = false;
    std::set<std::string> seen;  // directories: names returned so far
  };
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
};

}  // namespace bulkhead::router
