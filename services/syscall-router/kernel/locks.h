// Advisory file locks of the sandbox: POSIX record locks (fcntl F_SETLK,
// owned by a process), open-file-description locks (F_OFD_SETLK) and flock
// (both owned by an open file description). Every process of a sandbox is
// served by one router, so the router is where they meet: no host lock is
// taken (the gofer's descriptors are not the application's).
//
// As Linux: record and OFD locks share one space per file and conflict with
// each other by byte range (a read lock with read locks of others is fine);
// flock locks are a space of their own. An owner's new lock replaces what it
// held in that range. POSIX locks go when their process closes any
// descriptor of the file or exits; OFD and flock locks when their open file
// description's last descriptor closes (the table holds it weakly).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

namespace bulkhead::router {

class LockTable {
 public:
  using Key = std::pair<uint64_t, uint64_t>;  // the file's identity (device, inode)
  static constexpr int64_t kToEnd = INT64_MAX;

  // Who holds a lock: a process (POSIX record locks: pid) or an open file
  // description (OFD and flock: `ofd`, held weakly; `pid` is reported).
  struct Owner {
    int pid = 0;
    std::weak_ptr<void> ofd;
    const void* ofd_id = nullptr;  // ofd's address, for comparisons after it expired
    bool same(const Owner& o) const { return ofd_id ? ofd_id == o.ofd_id : (o.ofd_id == nullptr && pid == o.pid); }
  };
  struct Lock {
    Owner owner;
    short type = 0;  // F_RDLCK, F_WRLCK
    int64_t start = 0, end = kToEnd;  // [start, end)
  };

  // F_GETLK: a lock of someone else that conflicts with `type` over
  // [start, end), or nullptr.
  const Lock* Conflict(const Key& k, const Owner& who, short type, int64_t start, int64_t end);
  // F_SETLK: takes (F_RDLCK, F_WRLCK) or drops (F_UNLCK) the range.
  // -EAGAIN when someone else's lock conflicts (the caller blocks or fails).
  int Set(const Key& k, const Owner& who, short type, int64_t start, int64_t end);
  // A process closed a descriptor of `k`: its POSIX locks on `k` go.
  void ClosedBy(const Key& k, int pid);
  // A process exited: all its POSIX locks go.
  void ExitedProcess(int pid);

  // flock(2): LOCK_SH, LOCK_EX or LOCK_UN for an open file description.
  // -EWOULDBLOCK on a conflict.
  int Flock(const Key& k, const Owner& who, int op);

  // Locks held on `k` (tests).
  size_t locks(const Key& k) const;

 private:
  void Prune(std::vector<Lock>& v);
  std::map<Key, std::vector<Lock>> ranges_;
  std::map<Key, std::vector<Lock>> flocks_;  // start/end unused
};

}  // namespace bulkhead::router
