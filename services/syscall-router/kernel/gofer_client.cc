#include "services/syscall-router/kernel/gofer_client.h"

#include <algorithm>
#include <cstring>

#include "schemas/gofer.capnp.h"

namespace bulkhead::router {
namespace {

namespace g = schema::gofer;
constexpr uint64_t kGoferDeadlineNs = 10'000'000'000ull;

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

// One request/response round trip. `use` runs with the decoded response and
// the received message (for its bulk bytes), under the channel's lock.
template <typename Fill, typename Use>
long Call(service::ChannelHolder* h, Fill&& fill, Use&& use) {
  std::lock_guard<std::mutex> l(h->call_mutex());
  auto ch = h->Get();
  if (!ch) return -EIO;
  ipc::ReceivedMessage m;
  ipc::Decoded<g::Response> resp;
  ipc::Status st = ch->Call<g::Request, g::Response>(std::forward<Fill>(fill), &m, &resp, ipc::DeadlineIn(kGoferDeadlineNs));
  if (st != ipc::Status::kOk) return -ipc::StatusErrno(st);
  long rc;
  if (resp.root().isError()) {
    int e = resp.root().getError().getErrno();
    rc = (e > 0 && e < 4096) ? -e : -EIO;
  } else {
    rc = use(resp.root(), m);
  }
  ch->ReleaseBulk(m);
  return rc;
}

}  // namespace

int GoferClient::Open(const std::string& path, uint32_t flags, uint32_t mode, uint64_t* handle, struct stat* st) {
  return static_cast<int>(Call(
      holder_,
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

long GoferClient::Pread(uint64_t handle, int64_t offset, std::span<uint8_t> out) {
  return Call(
      holder_,
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

int GoferClient::Fstat(uint64_t handle, struct stat* st) {
  return static_cast<int>(Call(
      holder_, [&](g::Request::Builder b) { b.initFstat().setHandle(handle); },
      [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long {
        if (!r.isStat()) return -EIO;
        ToStat(r.getStat(), st);
        return 0;
      }));
}

int GoferClient::Stat(const std::string& path, bool follow, struct stat* st) {
  return static_cast<int>(Call(
      holder_,
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

long GoferClient::Getdents(uint64_t handle, std::span<uint8_t> out) {
  return Call(
      holder_,
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

int GoferClient::Readlink(const std::string& path, std::string* target) {
  return static_cast<int>(Call(
      holder_, [&](g::Request::Builder b) { b.initReadlink().setPath(path); },
      [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long {
        if (!r.isTarget()) return -EIO;
        target->assign(r.getTarget().cStr(), r.getTarget().size());
        return 0;
      }));
}

int GoferClient::Close(uint64_t handle) {
  return static_cast<int>(Call(
      holder_, [&](g::Request::Builder b) { b.initClose().setHandle(handle); },
      [&](g::Response::Reader r, const ipc::ReceivedMessage&) -> long { return r.isOk() ? 0 : -EIO; }));
}

}  // namespace bulkhead::router
