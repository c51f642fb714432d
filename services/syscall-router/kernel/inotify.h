// inotify for changes made inside the sandbox. Every change to a file goes
// through the router (and the router alone: the sandbox's writable layer is
// private), so the router reports each one as it serves it, by path, to the
// instances that watch that path or its directory. Changes the host makes
// to a volume are not seen (documented).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bulkhead::router {

class Inotify {
 public:
  static constexpr size_t kMaxQueued = 16384;  // /proc/sys/fs/inotify/max_queued_events
  static constexpr size_t kMaxWatches = 8192;

  // inotify_add_watch: the watch descriptor (an existing one for a path
  // already watched, its mask replaced or, with IN_MASK_ADD, or'ed).
  int AddWatch(const std::string& path, uint32_t mask);
  // inotify_rm_watch: 0 or -EINVAL; queues IN_IGNORED.
  int RemoveWatch(int wd);

  // Something happened to `path` (absolute, normalized): events for a watch
  // of the path itself (no name) and of its directory (with the name).
  void Event(const std::string& path, uint32_t mask, uint32_t cookie, bool is_dir, bool self_only = false);
  // `from` was renamed to `to`: watches of it and below it follow (a watch
  // belongs to the file, not to its name).
  void Moved(const std::string& from, const std::string& to);

  // read(2): whole records that fit into `max` bytes; -EINVAL if even the
  // first does not fit, 0 if none is queued.
  long Read(std::string* out, size_t max);
  size_t queued_bytes() const;
  bool empty() const { return queue_.empty(); }

 private:
  void Queue(int wd, uint32_t mask, uint32_t cookie, const std::string& name);
  struct Watch {
    std::string path;
    uint32_t mask = 0;
  };
  std::map<int, Watch> watches_;
  int next_wd_ = 1;
  std::deque<std::string> queue_;  // encoded struct inotify_event records
  bool overflowed_ = false;
};

// Every instance of the sandbox, for fan-out (held weakly: an instance goes
// with its last descriptor).
class InotifyHub {
 public:
  std::shared_ptr<Inotify> Create();
  bool any() const { return !list_.empty(); }
  // self_only: only watches of the path itself hear it (an unlinked file's
  // IN_ATTRIB).
  void Event(const std::string& path, uint32_t mask, bool is_dir, uint32_t cookie = 0, bool self_only = false);
  void Moved(const std::string& from, const std::string& to);
  // A fresh cookie tying IN_MOVED_FROM to its IN_MOVED_TO.
  uint32_t NextCookie() { return ++cookie_; }

 private:
  std::vector<std::weak_ptr<Inotify>> list_;
  uint32_t cookie_ = 0;
};

}  // namespace bulkhead::router
