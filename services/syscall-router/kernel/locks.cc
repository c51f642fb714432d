#include "services/syscall-router/kernel/locks.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <cerrno>

namespace bulkhead::router {
namespace {

bool Overlap(const LockTable::Lock& l, int64_t start, int64_t end) { return l.start < end && start < l.end; }
bool Conflicts(short a, short b) { return a == F_WRLCK || b == F_WRLCK; }

}  // namespace

void LockTable::Prune(std::vector<Lock>& v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](const Lock& l) { return l.owner.ofd_id && l.owner.ofd.expired(); }),
          v.end());
}

const LockTable::Lock* LockTable::Conflict(const Key& k, const Owner& who, short type, int64_t start, int64_t end) {
  auto it = ranges_.find(k);
  if (it == ranges_.end()) return nullptr;
  Prune(it->second);
  for (const Lock& l : it->second) {
    if (!l.owner.same(who) && Overlap(l, start, end) && Conflicts(l.type, type)) return &l;
  }
  return nullptr;
}

int LockTable::Set(const Key& k, const Owner& who, short type, int64_t start, int64_t end) {
  if (start >= end) return 0;
  if (type != F_UNLCK && Conflict(k, who, type, start, end)) return -EAGAIN;
  std::vector<Lock>& v = ranges_[k];
  Prune(v);
  // Cut the owner's locks out of [start, end): keep what lies outside.
  std::vector<Lock> kept;
  for (const Lock& l : v) {
    if (!l.owner.same(who) || !Overlap(l, start, end)) {
      kept.push_back(l);
      continue;
    }
    if (l.start < start) kept.push_back(Lock{l.owner, l.type, l.start, start});
    if (l.end > end) kept.push_back(Lock{l.owner, l.type, end, l.end});
  }
  if (type != F_UNLCK) {
    // Merge with the owner's adjacent locks of the same type.
    Lock n{who, type, start, end};
    for (auto it = kept.begin(); it != kept.end();) {
      if (it->owner.same(who) && it->type == type && (it->end == n.start || it->start == n.end)) {
        n.start = std::min(n.start, it->start);
        n.end = std::max(n.end, it->end);
        it = kept.erase(it);
      } else {
        ++it;
      }
    }
    kept.push_back(n);
  }
  if (kept.empty()) {
    ranges_.erase(k);
  } else {
    v = std::move(kept);
  }
  return 0;
}

void LockTable::ClosedBy(const Key& k, int pid) {
  auto it = ranges_.find(k);
  if (it == ranges_.end()) return;
  auto& v = it->second;
  v.erase(std::remove_if(v.begin(), v.end(), [&](const Lock& l) { return !l.owner.ofd_id && l.owner.pid == pid; }),
          v.end());
  if (v.empty()) ranges_.erase(it);
}

void LockTable::ExitedProcess(int pid) {
  for (auto it = ranges_.begin(); it != ranges_.end();) {
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(), [&](const Lock& l) { return !l.owner.ofd_id && l.owner.pid == pid; }),
            v.end());
    it = v.empty() ? ranges_.erase(it) : std::next(it);
  }
}

int LockTable::Flock(const Key& k, const Owner& who, int op) {
  std::vector<Lock>& v = flocks_[k];
  Prune(v);
  const int kind = op & (LOCK_SH | LOCK_EX | LOCK_UN);
  // Converting drops the old lock first (as Linux does: not atomic).
  v.erase(std::remove_if(v.begin(), v.end(), [&](const Lock& l) { return l.owner.same(who); }), v.end());
  if (kind == LOCK_UN) {
    if (v.empty()) flocks_.erase(k);
    return 0;
  }
  const short type = kind == LOCK_EX ? F_WRLCK : F_RDLCK;
  for (const Lock& l : v) {
    if (Conflicts(l.type, type)) return -EWOULDBLOCK;
  }
  v.push_back(Lock{who, type, 0, kToEnd});
  return 0;
}

size_t LockTable::locks(const Key& k) const {
  size_t n = 0;
  if (auto it = ranges_.find(k); it != ranges_.end()) n += it->second.size();
  if (auto it = flocks_.find(k); it != flocks_.end()) n += it->second.size();
  return n;
}

}  // namespace bulkhead::router
