#include "services/syscall-router/kernel/gofer_client.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cstring>

#include "services/syscall-router/kernel/busy_guard.h"
#include "services/syscall-router/kernel/peer_call.h"
#include "schemas/gofer.capnp.h"

namespace bulkhead::router {
namespace {

namespace g = schema::gofer;
constexpr uint64_t kGoferDeadlineNs = 10'000'000'000ull;
constexpr int kRestartWaitMs = 10'000;  // how long a call waits for a restarted gofer
constexpr int kAttempts = 3;

void ToStat(schema::Stat::Reader s, struct stat* st) {
  std::memset(st, 0, sizeof(*st));
  st->st_dev = s.getDev();
  st->st_ino = s.getIno();
  st->st_mode = s.getMode();
  st->st_nlink = s.getNlink();
  st->st_uid = s.getUid();
  st->st_gid = s.getGid();
  st->st_rdev = s.getRdev();
  st->st_size = s.getSize();
  st->st_blksize = s.getBlksize();
  st->st_blocks = s.getBlocks();
  st->st_atim = {s.getAtime().getSec(), s.getAtime().getNsec()};
  st->st_mtim = {s.getMtime().getSec(), s.getMtime().getNsec()};
  st->st_ctim = {s.getCtime().getSec(), s.getCtime().getNsec()};
}

// One round trip to the gofer (PeerCall), the platform told it is busy.
template <typename Fill, typename Use>
long Call(service::ChannelHolder* h, const std::function<void(bool)>& busy, Fill&& fill, Use&& use,
          std::span<const uint8_t> bulk = {}) {
  BusyGuard busy_guard(busy);
  return PeerCall<g::Request, g::Response>(h, kGoferDeadlineNs, kRestartWaitMs, std::forward<Fill>(fill),
                                           std::forward<Use>(use), bulk);
}

}  // namespace

int GoferClient::RawOpen(const std::string& path, uint32_t flags, uint32_t mode, uint64_t* handle, struct stat* st) {
  return static_cast<int>(Call(
      holder_, busy_,
      [&](g::Request::Builder b) {
        auto o = b.initOpen();
        o.setPath(path);
        o.setFlags(flags);
        o.setMode(mode);
      },
      [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long {
        if (!r.isOpened()) return -EIO;
        *handle = r.getOpened().getHandle();
        ToStat(r.getOpened().getStat(), st);
        return 0;
      }));
}

long GoferClient::RawPread(uint64_t handle, int64_t offset, std::span<uint8_t> out) {
  return Call(
      holder_, busy_,
      [&](g::Request::Builder b) {
        auto p = b.initPread();
        p.setHandle(handle);
        p.setOffset(offset);
        p.setCount(static_cast<uint32_t>(std::min<size_t>(out.size(), 1u << 30)));
      },
      [&](g::Response::Reader r, const ipc::ReceivedMessage& m) -> long {
        if (!r.isRead()) return -EIO;
        size_t n = std::min<size_t>({r.getRead(), m.bulk().size(), out.size()});
        if (n) std::memcpy(out.data(), m.bulk().data(), n);
        return static_cast<long>(n);
      });
}

int GoferClient::RawFstat(uint64_t handle, struct stat* st) {
  return static_cast<int>(Call(
      holder_, busy_, [&](g::Request::Builder b) { b.initFstat().setHandle(handle); },
      [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long {
        if (!r.isStat()) return -EIO;
        ToStat(r.getStat(), st);
        return 0;
      }));
}

int GoferClient::RawStat(const std::string& path, bool follow, struct stat* st) {
  return static_cast<int>(Call(
      holder_, busy_,
      [&](g::Request::Builder b) {
        auto s = b.initStat();
        s.setPath(path);
        s.setFollowLinks(follow);
      },
      [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long {
        if (!r.isStat()) return -EIO;
        ToStat(r.getStat(), st);
        return 0;
      }));
}

long GoferClient::RawGetdents(uint64_t handle, std::span<uint8_t> out) {
  return Call(
      holder_, busy_,
      [&](g::Request::Builder b) {
        auto d = b.initGetdents();
        d.setHandle(handle);
        d.setCount(static_cast<uint32_t>(std::min<size_t>(out.size(), 1u << 30)));
      },
      [&](g::Response::Reader r, const ipc::ReceivedMessage& m) -> long {
        if (!r.isDirents()) return -EIO;
        size_t n = std::min<size_t>({r.getDirents().getBytes(), m.bulk().size(), out.size()});
        if (n) std::memcpy(out.data(), m.bulk().data(), n);
        return static_cast<long>(n);
      });
}

int GoferClient::RawReadlink(const std::string& path, std::string* target) {
  return static_cast<int>(Call(
      holder_, busy_, [&](g::Request::Builder b) { b.initReadlink().setPath(path); },
      [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long {
        if (!r.isTarget()) return -EIO;
        target->assign(r.getTarget().cStr(), r.getTarget().size());
        return 0;
      }));
}

int GoferClient::RawClose(uint64_t handle) {
  return static_cast<int>(Call(
      holder_, busy_, [&](g::Request::Builder b) { b.initClose().setHandle(handle); },
      [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long { return r.isOk() ? 0 : -EIO; }));
}

namespace {

void FillTarget(g::Target::Builder b, uint64_t server, const std::string& path, bool follow) {
  b.setHandle(server);
  if (server == 0) b.setPath(path);
  b.setFollow(follow);
}

}  // namespace

long GoferClient::RawPwrite(uint64_t server, int64_t offset, bool append, int64_t if_size,
                            std::span<const uint8_t> data, int64_t* at, int64_t* size, int64_t* size_is) {
  *size_is = -1;
  return Call(
      holder_, busy_,
      [&](g::Request::Builder b) {
        auto w = b.initPwrite();
        w.setHandle(server);
        w.setOffset(offset);
        w.setAppend(append);
        w.setIfSize(if_size);
      },
      [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long {
        if (r.isSizeIs()) {
          *size_is = r.getSizeIs();
          return 0;
        }
        if (!r.isWritten()) return -EIO;
        auto w = r.getWritten();
        *at = w.getOffset();
        *size = w.getSize();
        return std::min<long>(w.getCount(), static_cast<long>(data.size()));
      },
      data);
}

long GoferClient::Pwrite(uint64_t handle, int64_t offset, std::span<const uint8_t> data, int64_t* at, int64_t* size) {
  DropParked();
  bool doubt = false;
  return WithHandle(handle, [&](Handle& h) -> long {
    int64_t size_is = -1;
    if (offset >= 0) {
      long n = RawPwrite(h.server, offset, false, -1, data, at, size, &size_is);
      if (n >= 0) h.st.st_size = *size;
      return n;
    }
    // Appends: guarded by the size the file had.
    if (h.known_size < 0 || doubt) {
      struct stat st;
      if (!doubt) {
        if (long rc = RawFstat(h.server, &st); rc < 0) return rc;
        h.known_size = st.st_size;
      }
    }
    for (int i = 0; i < 16; ++i) {
      long n = RawPwrite(h.server, 0, true, h.known_size, data, at, size, &size_is);
      if (n == -ESTALE) {
        doubt = true;
        return n;
      }
      if (n < 0) return n;
      if (size_is < 0) {
        h.known_size = *size;
        h.st.st_size = *size;
        return n;
      }
      if (doubt && size_is == h.known_size + static_cast<int64_t>(data.size())) {
        // The gofer that died had appended these bytes before it went.
        *at = h.known_size;
        *size = size_is;
        h.known_size = size_is;
        return static_cast<long>(data.size());
      }
      doubt = false;
      h.known_size = size_is;  // another writer changed it: write at its size
    }
    return -EIO;
  });
}

int64_t GoferClient::Seek(uint64_t handle, int64_t offset, int whence) {
  return WithHandle(handle, [&](Handle& h) -> long {
    int64_t out = 0;
    long rc = Call(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initSeek();
          q.setHandle(h.server);
          q.setOffset(offset);
          q.setWhence(static_cast<uint32_t>(whence));
        },
        [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long {
          if (!r.isOffset()) return -EIO;
          out = r.getOffset();
          return 0;
        });
    return rc < 0 ? rc : out;
  });
}

int GoferClient::RewindDir(uint64_t handle) {
  auto it = handles_.find(handle);
  if (it == handles_.end()) return -EBADF;
  it->second.seen.clear();
  it->second.seen_set.clear();
  it->second.refilter = false;
  const int64_t r = Seek(handle, 0, SEEK_SET);
  return r < 0 ? static_cast<int>(r) : 0;
}

template <typename Fn>
int GoferClient::Mutate(int done_errno, Fn&& call) {
  DropParked();
  bool doubt = false;
  for (int i = 0; i < kAttempts; ++i) {
    long rc = call();
    if (rc == -ESTALE) {
      doubt = true;
      continue;
    }
    if (doubt && done_errno != 0 && rc == -done_errno) return 0;
    return static_cast<int>(rc);
  }
  return -EIO;
}

template <typename Fn>
long GoferClient::OnTarget(const Target& t, Fn&& fn) {
  if (t.handle != 0) return WithHandle(t.handle, [&](Handle& h) -> long { return fn(h.server); });
  for (int i = 0; i < kAttempts; ++i) {
    long rc = fn(0);
    if (rc != -ESTALE) return rc;
  }
  return -EIO;
}

namespace {
// The answer is ok or an errno.
long OkOrError(g::Response::Reader r, const ipc::ReceivedMessage&) { return r.isOk() ? 0 : -EIO; }
// A call whose answer is ok or an errno.
template <typename Fill>
long CallOk(service::ChannelHolder* h, const std::function<void(bool)>& busy, Fill&& fill,
            std::span<const uint8_t> bulk = {}) {
  return Call(h, busy, std::forward<Fill>(fill), OkOrError, bulk);
}
}  // namespace

int GoferClient::Ftruncate(uint64_t handle, int64_t length) {
  DropParked();
  return static_cast<int>(WithHandle(handle, [&](Handle& h) -> long {
    return CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initTruncate();
          q.setHandle(h.server);
          q.setLength(length);
        });
  }));
}

int GoferClient::Truncate(const std::string& path, int64_t length) {
  return Mutate(0, [&] {
    return CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initTruncate();
          q.setPath(path);
          q.setLength(length);
        });
  });
}

int GoferClient::Fallocate(uint64_t handle, uint32_t mode, int64_t offset, int64_t length) {
  DropParked();
  return static_cast<int>(WithHandle(handle, [&](Handle& h) -> long {
    return CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initFallocate();
          q.setHandle(h.server);
          q.setMode(mode);
          q.setOffset(offset);
          q.setLength(length);
        });
  }));
}

int GoferClient::Fsync(uint64_t handle, bool data_only) {
  return static_cast<int>(WithHandle(handle, [&](Handle& h) -> long {
    return CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initFsync();
          q.setHandle(h.server);
          q.setDataOnly(data_only);
        });
  }));
}

int GoferClient::Mknod(const std::string& path, uint32_t mode, uint64_t dev) {
  return Mutate(EEXIST, [&] {
    return CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initMknod();
          q.setPath(path);
          q.setMode(mode);
          q.setDev(dev);
        });
  });
}

int GoferClient::Unlink(const std::string& path, bool directory, struct stat* removed) {
  std::memset(removed, 0, sizeof(*removed));
  return Mutate(ENOENT, [&] {
    return Call(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initUnlink();
          q.setPath(path);
          q.setDirectory(directory);
        },
        [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long {
          if (r.isStat()) ToStat(r.getStat(), removed);
          return r.isStat() || r.isOk() ? 0 : -EIO;
        });
  });
}

int GoferClient::Rename(const std::string& from, const std::string& to, uint32_t flags) {
  int rc = RawRename(from, to, flags);
  if (rc == 0) {
    // Open handles re-open by path after a gofer restart: they follow the
    // rename (both ways for an exchange).
    auto moved = [](const std::string& path, const std::string& a, const std::string& b, std::string* out) {
      if (path.compare(0, a.size(), a) != 0 || (path.size() > a.size() && path[a.size()] != '/')) return false;
      *out = b + path.substr(a.size());
      return true;
    };
    for (auto& [id, h] : handles_) {
      std::string p;
      if (moved(h.path, from, to, &p) || ((flags & RENAME_EXCHANGE) && moved(h.path, to, from, &p))) h.path = p;
    }
  }
  return rc;
}

int GoferClient::RawRename(const std::string& from, const std::string& to, uint32_t flags) {
  return Mutate(ENOENT, [&] {
    return CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initRename();
          q.setFrom(from);
          q.setTo(to);
          q.setFlags(flags);
        });
  });
}

int GoferClient::Link(const std::string& from, const std::string& to, bool follow) {
  return Mutate(EEXIST, [&] {
    return CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initLink();
          q.setFrom(from);
          q.setTo(to);
          q.setFollow(follow);
        });
  });
}

int GoferClient::LinkHandle(uint64_t handle, const std::string& to) {
  DropParked();
  bool doubt = false;
  return static_cast<int>(WithHandle(handle, [&](Handle& h) -> long {
    long rc = CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initLink();
          q.setTo(to);
          q.setFromHandle(h.server);
        });
    if (rc == -ESTALE) doubt = true;
    if (doubt && rc == -EEXIST) return 0;
    if (rc == 0) {
      h.path = to;  // re-opens by its name from now on
      h.flags &= ~static_cast<uint32_t>(O_TMPFILE);
    }
    return rc;
  }));
}

int GoferClient::Symlink(const std::string& target, const std::string& path) {
  return Mutate(EEXIST, [&] {
    return CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initSymlink();
          q.setTarget(target);
          q.setPath(path);
        });
  });
}

int GoferClient::Access(const std::string& path, uint32_t mode, bool follow) {
  for (int i = 0; i < kAttempts; ++i) {
    long rc = CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initAccess();
          q.setPath(path);
          q.setMode(mode);
          q.setFollow(follow);
        });
    if (rc != -ESTALE) return static_cast<int>(rc);
  }
  return -EIO;
}

int GoferClient::SetAttr(const Target& t, const Attr& a) {
  DropParked();
  return static_cast<int>(OnTarget(t, [&](uint64_t server) -> long {
    return CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initSetattr();
          FillTarget(q.initTarget(), server, t.path, t.follow);
          q.setSetMode(a.set_mode);
          q.setMode(a.mode);
          q.setSetOwner(a.set_owner);
          q.setUid(a.uid);
          q.setGid(a.gid);
          q.setSetTimes(a.set_times);
          q.initAtime().setSec(a.times[0].tv_sec);
          q.getAtime().setNsec(static_cast<uint32_t>(a.times[0].tv_nsec));
          q.initMtime().setSec(a.times[1].tv_sec);
          q.getMtime().setNsec(static_cast<uint32_t>(a.times[1].tv_nsec));
        });
  }));
}

int GoferClient::Statfs(const Target& t, struct statfs* out) {
  return static_cast<int>(OnTarget(t, [&](uint64_t server) -> long {
    return Call(
        holder_, busy_,
        [&](g::Request::Builder b) { FillTarget(b.initStatfs(), server, t.path, t.follow); },
        [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long {
          if (!r.isStatfs()) return -EIO;
          auto f = r.getStatfs();
          std::memset(out, 0, sizeof(*out));
          out->f_type = f.getType();
          out->f_bsize = f.getBsize();
          out->f_blocks = f.getBlocks();
          out->f_bfree = f.getBfree();
          out->f_bavail = f.getBavail();
          out->f_files = f.getFiles();
          out->f_ffree = f.getFfree();
          out->f_namelen = f.getNamelen();
          out->f_frsize = f.getFrsize();
          out->f_flags = f.getFlags();
          return 0;
        });
  }));
}

long GoferClient::GetXattr(const Target& t, const std::string& name, std::span<uint8_t> out) {
  return OnTarget(t, [&](uint64_t server) -> long {
    return Call(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initGetxattr();
          FillTarget(q.initTarget(), server, t.path, t.follow);
          q.setName(name);
          q.setSize(static_cast<uint32_t>(std::min<size_t>(out.size(), 1u << 20)));
        },
        [&](g::Response::Reader r, const ipc::ReceivedMessage& m) -> long {
          if (!r.isXattr()) return -EIO;
          if (out.empty()) return r.getXattr();
          size_t n = std::min<size_t>({r.getXattr(), m.bulk().size(), out.size()});
          if (n) std::memcpy(out.data(), m.bulk().data(), n);
          return static_cast<long>(n);
        });
  });
}

long GoferClient::ListXattr(const Target& t, std::span<uint8_t> out) {
  return OnTarget(t, [&](uint64_t server) -> long {
    return Call(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initListxattr();
          FillTarget(q.initTarget(), server, t.path, t.follow);
          q.setSize(static_cast<uint32_t>(std::min<size_t>(out.size(), 1u << 20)));
        },
        [&](g::Response::Reader r, const ipc::ReceivedMessage& m) -> long {
          if (!r.isXattr()) return -EIO;
          if (out.empty()) return r.getXattr();
          size_t n = std::min<size_t>({r.getXattr(), m.bulk().size(), out.size()});
          if (n) std::memcpy(out.data(), m.bulk().data(), n);
          return static_cast<long>(n);
        });
  });
}

int GoferClient::SetXattr(const Target& t, const std::string& name, std::span<const uint8_t> value, uint32_t flags) {
  DropParked();
  bool doubt = false;
  return static_cast<int>(OnTarget(t, [&](uint64_t server) -> long {
    long rc = Call(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initSetxattr();
          FillTarget(q.initTarget(), server, t.path, t.follow);
          q.setName(name);
          q.setFlags(flags);
        },
        OkOrError, value);
    if (rc == -ESTALE) doubt = true;
    if (doubt && rc == -EEXIST && (flags & XATTR_CREATE)) return 0;
    return rc;
  }));
}

int GoferClient::RemoveXattr(const Target& t, const std::string& name) {
  DropParked();
  bool doubt = false;
  return static_cast<int>(OnTarget(t, [&](uint64_t server) -> long {
    long rc = CallOk(
        holder_, busy_,
        [&](g::Request::Builder b) {
          auto q = b.initRemovexattr();
          FillTarget(q.initTarget(), server, t.path, t.follow);
          q.setName(name);
        });
    if (rc == -ESTALE) doubt = true;
    if (doubt && rc == -ENODATA) return 0;
    return rc;
  }));
}

// ---------------------------------------------------------------- recovery

void GoferClient::DropParked() {
  ++generation_;
  stats_.clear();
  for (auto& [key, p] : parked_) {
    if (p.epoch == holder_->version()) RawCloseAsync(p.server);
  }
  parked_.clear();
}

void GoferClient::RawCloseAsync(uint64_t server) {
  // No answer awaited: the gofer serves its ring in order, so a later call
  // finds the handle closed; the answer is dropped as a stale one. Lost with
  // the gofer if it dies, and so is the handle.
  std::unique_lock<std::mutex> l(holder_->call_mutex());
  uint64_t version = 0;
  auto ch = holder_->Get(&version);
  if (!ch) return;
  ch->template Send<g::Request>(ch->NextId(), [&](g::Request::Builder b) { b.initClose().setHandle(server); },
                                ipc::DeadlineIn(kGoferDeadlineNs));
}

bool GoferClient::Unpark(const std::string& path, uint32_t flags, Handle* h, struct stat* st) {
  auto it = parked_.find({path, flags});
  if (it == parked_.end()) return false;
  const Parked p = it->second;
  parked_.erase(it);
  if (p.epoch != holder_->version()) return false;  // its gofer is gone, and the handle with it
  h->path = path;
  h->flags = flags;
  h->server = p.server;
  h->epoch = p.epoch;
  h->st = p.st;
  *st = p.st;
  ++parked_hits_;
  return true;
}

void GoferClient::Park(Handle h) {
  const std::pair<std::string, uint32_t> key{h.path, h.flags};
  auto close_raw = [&](const Parked& p) {
    if (p.epoch == holder_->version()) RawCloseAsync(p.server);
  };
  if (auto it = parked_.find(key); it != parked_.end()) {
    close_raw(it->second);  // one per path and flags: the newer stays
    parked_.erase(it);
  } else if (parked_.size() >= kMaxParked) {
    auto oldest = std::min_element(parked_.begin(), parked_.end(),
                                   [](const auto& a, const auto& b) { return a.second.last_use < b.second.last_use; });
    close_raw(oldest->second);
    parked_.erase(oldest);
  }
  parked_[key] = Parked{h.server, h.epoch, ++park_clock_, h.st};
}

int GoferClient::Open(const std::string& path, uint32_t flags, uint32_t mode, uint64_t* handle, struct stat* st) {
  if (Parkable(flags)) {
    Handle h;
    if (Unpark(path, flags, &h, st)) {
      *handle = next_id_++;
      handles_[*handle] = std::move(h);
      return 0;
    }
  }
  if (flags & (O_CREAT | O_TRUNC)) DropParked();
  bool doubt = false;
  for (int i = 0; i < kAttempts; ++i) {
    Handle h;
    h.epoch = holder_->version();
    int rc = RawOpen(path, flags, mode, &h.server, st);
    if (rc == -ESTALE) {
      doubt = true;
      continue;
    }
    if (rc == -EEXIST && doubt && (flags & O_EXCL)) {
      // The dead gofer created it: open what it made.
      flags &= ~static_cast<uint32_t>(O_CREAT | O_EXCL);
      rc = RawOpen(path, flags, mode, &h.server, st);
      if (rc == -ESTALE) continue;
    }
    if (rc < 0) return rc;
    h.path = path;
    // A re-open must not create, truncate or fail on an existing file.
    h.flags = flags & ~static_cast<uint32_t>(O_CREAT | O_EXCL | O_TRUNC);
    h.directory = S_ISDIR(st->st_mode);
    h.st = *st;
    *handle = next_id_++;
    handles_[*handle] = std::move(h);
    return 0;
  }
  return -EIO;
}

long GoferClient::Reopen(Handle& h) {
  const uint64_t epoch = holder_->version();
  struct stat st;
  int rc = RawOpen(h.path, h.flags, 0, &h.server, &st);
  if (rc < 0) return rc;
  h.epoch = epoch;
  h.refilter = h.directory && !h.seen.empty();
  if (h.refilter) h.seen_set.insert(h.seen.begin(), h.seen.end());
  ++reopens_;
  return 0;
}

template <typename Fn>
long GoferClient::WithHandle(uint64_t id, Fn&& fn) {
  auto it = handles_.find(id);
  if (it == handles_.end()) return -EBADF;
  Handle& h = it->second;
  for (int i = 0; i < kAttempts; ++i) {
    if (h.epoch != holder_->version()) {
      long rc = Reopen(h);
      if (rc == -ESTALE) continue;
      if (rc < 0) return rc;
    }
    long rc = fn(h);
    if (rc != -ESTALE) return rc;
  }
  return -EIO;
}

long GoferClient::Pread(uint64_t handle, int64_t offset, std::span<uint8_t> out) {
  return WithHandle(handle, [&](Handle& h) { return RawPread(h.server, offset, out); });
}

int GoferClient::Fstat(uint64_t handle, struct stat* st) {
  return static_cast<int>(WithHandle(handle, [&](Handle& h) -> long { return RawFstat(h.server, st); }));
}

long GoferClient::Getdents(uint64_t handle, std::span<uint8_t> out) {
  return WithHandle(handle, [&](Handle& h) -> long {
    for (;;) {
      long n = RawGetdents(h.server, out);
      if (n <= 0) return n;
      // Remember what the application has seen; after a re-open (the
      // listing starts again) leave those entries out.
      size_t w = 0;
      for (size_t pos = 0; pos + 19 <= static_cast<size_t>(n);) {
        uint16_t rl;
        std::memcpy(&rl, out.data() + pos + 16, 2);
        if (rl < 20 || pos + rl > static_cast<size_t>(n)) break;
        const std::string_view name(reinterpret_cast<const char*>(out.data() + pos + 19),
                                    strnlen(reinterpret_cast<const char*>(out.data() + pos + 19), rl - 19));
        const uint64_t key = std::hash<std::string_view>{}(name);
        const bool dup = h.refilter && h.seen_set.count(key);
        if (!dup) {
          if (w != pos) std::memmove(out.data() + w, out.data() + pos, rl);
          w += rl;
          h.seen.push_back(key);
          if (h.refilter) h.seen_set.insert(key);
        }
        pos += rl;
      }
      if (w > 0) return static_cast<long>(w);
      // Everything in this batch was seen before: read on.
    }
  });
}

int GoferClient::Stat(const std::string& path, bool follow, struct stat* st) {
  const std::pair<std::string, bool> key{path, follow};
  if (auto it = stats_.find(key); it != stats_.end()) {
    ++stat_hits_;
    if (it->second.rc == 0) *st = it->second.st;
    return it->second.rc;
  }
  for (int i = 0; i < kAttempts; ++i) {
    int rc = RawStat(path, follow, st);
    if (rc == -ESTALE) continue;
    if (rc == 0 || rc == -ENOENT || rc == -ENOTDIR) {
      if (stats_.size() >= kMaxStats) stats_.clear();
      stats_[key] = CachedStat{rc, rc == 0 ? *st : (struct stat){}};
    }
    return rc;
  }
  return -EIO;
}

int GoferClient::Readlink(const std::string& path, std::string* target) {
  for (int i = 0; i < kAttempts; ++i) {
    int rc = RawReadlink(path, target);
    if (rc != -ESTALE) return rc;
  }
  return -EIO;
}

int GoferClient::Close(uint64_t handle) {
  auto it = handles_.find(handle);
  if (it == handles_.end()) return -EBADF;
  Handle h = std::move(it->second);
  handles_.erase(it);
  // A handle of a gofer that has since been restarted is gone already.
  if (h.epoch != holder_->version()) return 0;
  if (!h.directory && Parkable(h.flags) && S_ISREG(h.st.st_mode)) {
    Park(std::move(h));
    return 0;
  }
  RawCloseAsync(h.server);
  return 0;
}

}  // namespace bulkhead::router
