#include "services/syscall-router/kernel/inotify.h"

#include <sys/inotify.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace bulkhead::router {
namespace {

std::string Parent(const std::string& path) {
  const size_t cut = path.rfind('/');
  if (cut == std::string::npos || path == "/") return "";
  return cut == 0 ? "/" : path.substr(0, cut);
}

constexpr uint32_t kEventBits = IN_ALL_EVENTS;

}  // namespace

int Inotify::AddWatch(const std::string& path, uint32_t mask) {
  if ((mask & kEventBits) == 0) return -EINVAL;
  if ((mask & IN_MASK_ADD) && (mask & IN_MASK_CREATE)) return -EINVAL;
  for (auto& [wd, w] : watches_) {
    if (w.path != path) continue;
    if (mask & IN_MASK_CREATE) return -EEXIST;
    w.mask = (mask & IN_MASK_ADD) ? (w.mask | mask) : mask;
    return wd;
  }
  if (watches_.size() >= kMaxWatches) return -ENOSPC;
  const int wd = next_wd_++;
  watches_[wd] = Watch{path, mask};
  return wd;
}

int Inotify::RemoveWatch(int wd) {
  if (!watches_.erase(wd)) return -EINVAL;
  Queue(wd, IN_IGNORED, 0, "");
  return 0;
}

void Inotify::Queue(int wd, uint32_t mask, uint32_t cookie, const std::string& name) {
  if (queue_.size() >= kMaxQueued) {
    if (!overflowed_) {  // one IN_Q_OVERFLOW past the limit, then nothing until read
      overflowed_ = true;
      inotify_event ev{};
      ev.wd = -1;
      ev.mask = IN_Q_OVERFLOW;
      queue_.emplace_back(reinterpret_cast<const char*>(&ev), sizeof(ev));
    }
    return;
  }
  // The name is NUL-padded to a multiple of the record's alignment, as Linux.
  const size_t len = name.empty() ? 0 : (name.size() + 1 + sizeof(inotify_event) - 1) / sizeof(inotify_event) * sizeof(inotify_event);
  std::string rec(sizeof(inotify_event) + len, '\0');
  inotify_event ev{};
  ev.wd = wd;
  ev.mask = mask;
  ev.cookie = cookie;
  ev.len = static_cast<uint32_t>(len);
  std::memcpy(rec.data(), &ev, sizeof(ev));
  std::memcpy(rec.data() + sizeof(ev), name.data(), name.size());
  // Linux merges an event identical to the last one still queued.
  if (!queue_.empty() && queue_.back() == rec) return;
  queue_.push_back(std::move(rec));
}

void Inotify::Moved(const std::string& from, const std::string& to) {
  for (auto& [wd, w] : watches_) {
    if (w.path.compare(0, from.size(), from) == 0 && (w.path.size() == from.size() || w.path[from.size()] == '/')) {
      w.path = to + w.path.substr(from.size());
    }
  }
}

void Inotify::Event(const std::string& path, uint32_t mask, uint32_t cookie, bool is_dir, bool self_only) {
  const std::string parent = Parent(path);
  const uint32_t dirbit = is_dir ? IN_ISDIR : 0;
  std::vector<int> gone;
  for (auto& [wd, w] : watches_) {
    uint32_t m = 0;
    std::string name;
    if (w.path == path && !(mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO))) {
      m = mask & w.mask;
      if (mask & IN_DELETE_SELF) m |= IN_DELETE_SELF & w.mask;
    } else if (!self_only && w.path == parent && !(mask & (IN_DELETE_SELF | IN_MOVE_SELF))) {
      m = mask & w.mask;
      name = path.substr(parent == "/" ? 1 : parent.size() + 1);
    }
    if (m == 0) continue;
    Queue(wd, m | dirbit, cookie, name);
    if (w.mask & IN_ONESHOT) gone.push_back(wd);
  }
  // The watched file is gone: its watch ends (IN_IGNORED).
  if (mask & IN_DELETE_SELF) {
    for (auto& [wd, w] : watches_) {
      if (w.path == path) gone.push_back(wd);
    }
  }
  for (int wd : gone) {
    if (watches_.erase(wd)) Queue(wd, IN_IGNORED, 0, "");
  }
}

long Inotify::Read(std::string* out, size_t max) {
  out->clear();
  if (queue_.empty()) return 0;
  if (queue_.front().size() > max) return -EINVAL;
  while (!queue_.empty() && out->size() + queue_.front().size() <= max) {
    *out += queue_.front();
    queue_.pop_front();
  }
  if (queue_.empty()) overflowed_ = false;
  return static_cast<long>(out->size());
}

size_t Inotify::queued_bytes() const {
  size_t n = 0;
  for (const auto& r : queue_) n += r.size();
  return n;
}

std::shared_ptr<Inotify> InotifyHub::Create() {
  auto i = std::make_shared<Inotify>();
  list_.erase(std::remove_if(list_.begin(), list_.end(), [](const auto& w) { return w.expired(); }), list_.end());
  list_.push_back(i);
  return i;
}

void InotifyHub::Moved(const std::string& from, const std::string& to) {
  for (auto& w : list_) {
    if (auto i = w.lock()) i->Moved(from, to);
  }
}

void InotifyHub::Event(const std::string& path, uint32_t mask, bool is_dir, uint32_t cookie, bool self_only) {
  bool expired = false;
  for (auto& w : list_) {
    if (auto i = w.lock()) {
      i->Event(path, mask, cookie, is_dir, self_only);
    } else {
      expired = true;
    }
  }
  if (expired) list_.erase(std::remove_if(list_.begin(), list_.end(), [](const auto& w) { return w.expired(); }), list_.end());
}

}  // namespace bulkhead::router
