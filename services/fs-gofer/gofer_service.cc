#include "services/fs-gofer/gofer_service.h"

#include <algorithm>
#include <string>
#include <vector>

namespace bulkhead::gofer {
namespace {

namespace g = schema::gofer;

void FillStat(schema::Stat::Builder b, const struct stat& st) {
  b.setDev(st.st_dev);
  b.setIno(st.st_ino);
  b.setMode(st.st_mode);
  b.setNlink(st.st_nlink);
  b.setUid(st.st_uid);
  b.setGid(st.st_gid);
  b.setRdev(st.st_rdev);
  b.setSize(st.st_size);
  b.setBlksize(st.st_blksize);
  b.setBlocks(st.st_blocks);
  auto t = [](schema::Timespec::Builder o, const timespec& ts) {
    o.setSec(ts.tv_sec);
    o.setNsec(static_cast<uint32_t>(ts.tv_nsec));
  };
  t(b.initAtime(), st.st_atim);
  t(b.initMtime(), st.st_mtim);
  t(b.initCtime(), st.st_ctim);
}

void SendError(ipc::Channel& ch, uint64_t id, int err) {
  ch.Send<g::Response>(id, [&](g::Response::Builder b) { b.initError().setErrno(err); });
}

void SendResult(ipc::Channel& ch, uint64_t id, int rc) {
  if (rc < 0) return SendError(ch, id, -rc);
  ch.Send<g::Response>(id, [](g::Response::Builder b) { b.setOk(); });
}

std::string_view View(capnp::Text::Reader t) { return {t.cStr(), t.size()}; }

Target ToTarget(g::Target::Reader t) { return Target{t.getHandle(), View(t.getPath()), t.getFollow()}; }

// getxattr, listxattr: the bytes straight into the response's bulk area.
template <typename Get>
void SendXattr(ipc::Channel& ch, uint64_t id, size_t count, Get&& get) {
  if (count == 0) {  // the size only
    long n = get(std::span<uint8_t>());
    if (n < 0) return SendError(ch, id, static_cast<int>(-n));
    ch.Send<g::Response>(id, [&](g::Response::Builder b) { b.setXattr(static_cast<uint32_t>(n)); });
    return;
  }
  ch.SendProduced<g::Response>(
      id, count, [&](uint8_t* dst, size_t max) -> long { return get(std::span<uint8_t>(dst, max)); },
      [&](g::Response::Builder b, long n) {
        if (n < 0) {
          b.initError().setErrno(static_cast<int32_t>(-n));
        } else {
          b.setXattr(static_cast<uint32_t>(n));
        }
      });
}

}  // namespace

void HandleFileRequest(FileServer& fs, ipc::Channel& ch, uint64_t id, g::Request::Reader r,
                       std::span<const uint8_t> bulk) {
  const uint64_t max_bulk = ch.geometry().bulk_size / 2;
  switch (r.which()) {
    case g::Request::OPEN: {
      OpenResult o;
      auto req = r.getOpen();
      int rc = fs.Open(std::string_view(req.getPath().cStr(), req.getPath().size()), req.getFlags(), req.getMode(), &o);
      if (rc < 0) return SendError(ch, id, -rc);
      ch.Send<g::Response>(id, [&](g::Response::Builder b) {
        auto op = b.initOpened();
        op.setHandle(o.handle);
        FillStat(op.initStat(), o.st);
      });
      return;
    }
    case g::Request::PREAD: {
      // Read straight into the bulk area: no scratch copy.
      auto req = r.getPread();
      const size_t count = std::min<uint64_t>(req.getCount(), max_bulk);
      ch.SendProduced<g::Response>(
          id, count,
          [&](uint8_t* dst, size_t max) -> long { return fs.Pread(req.getHandle(), req.getOffset(), {dst, max}); },
          [&](g::Response::Builder b, long n) {
            if (n < 0) {
              b.initError().setErrno(static_cast<int32_t>(-n));
            } else {
              b.setRead(static_cast<uint32_t>(n));
            }
          });
      return;
    }
    case g::Request::FSTAT:
    case g::Request::STAT: {
      struct stat st;
      int rc = r.isFstat() ? fs.Fstat(r.getFstat().getHandle(), &st)
                           : fs.Stat(std::string_view(r.getStat().getPath().cStr(), r.getStat().getPath().size()),
                                     r.getStat().getFollowLinks(), &st);
      if (rc < 0) return SendError(ch, id, -rc);
      ch.Send<g::Response>(id, [&](g::Response::Builder b) { FillStat(b.initStat(), st); });
      return;
    }
    case g::Request::GETDENTS: {
      const size_t count = std::min<uint64_t>(r.getGetdents().getCount(), max_bulk);
      const uint64_t handle = r.getGetdents().getHandle();
      ch.SendProduced<g::Response>(
          id, count, [&](uint8_t* dst, size_t max) -> long { return fs.Getdents(handle, {dst, max}); },
          [&](g::Response::Builder b, long n) {
            if (n < 0) {
              b.initError().setErrno(static_cast<int32_t>(-n));
            } else {
              b.initDirents().setBytes(static_cast<uint32_t>(n));
            }
          });
      return;
    }
    case g::Request::READLINK: {
      std::string target;
      int rc = fs.Readlink(std::string_view(r.getReadlink().getPath().cStr(), r.getReadlink().getPath().size()), &target);
      if (rc < 0) return SendError(ch, id, -rc);
      ch.Send<g::Response>(id, [&](g::Response::Builder b) { b.setTarget(target); });
      return;
    }
    case g::Request::CLOSE: {
      int rc = fs.Close(r.getClose().getHandle());
      if (rc < 0) return SendError(ch, id, -rc);
      ch.Send<g::Response>(id, [](g::Response::Builder b) { b.setOk(); });
      return;
    }
    case g::Request::PWRITE: {
      auto req = r.getPwrite();
      WriteResult w;
      int rc = fs.Pwrite(req.getHandle(), req.getOffset(), req.getAppend(), req.getIfSize(), bulk, &w);
      if (rc < 0) return SendError(ch, id, -rc);
      ch.Send<g::Response>(id, [&](g::Response::Builder b) {
        if (w.size_is >= 0) return b.setSizeIs(w.size_is);
        auto o = b.initWritten();
        o.setCount(static_cast<uint32_t>(w.count));
        o.setSize(w.size);
        o.setOffset(w.offset);
      });
      return;
    }
    case g::Request::TRUNCATE: {
      auto req = r.getTruncate();
      return SendResult(ch, id, fs.Truncate(Target{req.getHandle(), View(req.getPath()), true}, req.getLength()));
    }
    case g::Request::FALLOCATE: {
      auto req = r.getFallocate();
      return SendResult(ch, id, fs.Fallocate(req.getHandle(), req.getMode(), req.getOffset(), req.getLength()));
    }
    case g::Request::SEEK: {
      auto req = r.getSeek();
      int64_t off = fs.Seek(req.getHandle(), req.getOffset(), static_cast<int>(req.getWhence()));
      if (off < 0) return SendError(ch, id, static_cast<int>(-off));
      ch.Send<g::Response>(id, [&](g::Response::Builder b) { b.setOffset(off); });
      return;
    }
    case g::Request::FSYNC:
      return SendResult(ch, id, fs.Fsync(r.getFsync().getHandle(), r.getFsync().getDataOnly()));
    case g::Request::MKNOD: {
      auto req = r.getMknod();
      return SendResult(ch, id, fs.Mknod(View(req.getPath()), req.getMode(), req.getDev()));
    }
    case g::Request::UNLINK: {
      // Answered with what was removed: the router drops its cached pages.
      struct stat st;
      int rc = fs.Unlink(View(r.getUnlink().getPath()), r.getUnlink().getDirectory(), &st);
      if (rc < 0) return SendError(ch, id, -rc);
      ch.Send<g::Response>(id, [&](g::Response::Builder b) { FillStat(b.initStat(), st); });
      return;
    }
    case g::Request::RENAME: {
      auto req = r.getRename();
      return SendResult(ch, id, fs.Rename(View(req.getFrom()), View(req.getTo()), req.getFlags()));
    }
    case g::Request::LINK: {
      auto req = r.getLink();
      if (req.getFromHandle() != 0) return SendResult(ch, id, fs.LinkHandle(req.getFromHandle(), View(req.getTo())));
      return SendResult(ch, id, fs.Link(View(req.getFrom()), View(req.getTo()), req.getFollow()));
    }
    case g::Request::SYMLINK: {
      auto req = r.getSymlink();
      return SendResult(ch, id, fs.Symlink(View(req.getTarget()), View(req.getPath())));
    }
    case g::Request::SETATTR: {
      auto req = r.getSetattr();
      AttrChange c;
      c.set_mode = req.getSetMode();
      c.mode = req.getMode();
      c.set_owner = req.getSetOwner();
      c.uid = req.getUid();
      c.gid = req.getGid();
      c.set_times = req.getSetTimes();
      c.times[0] = {req.getAtime().getSec(), static_cast<long>(req.getAtime().getNsec())};
      c.times[1] = {req.getMtime().getSec(), static_cast<long>(req.getMtime().getNsec())};
      return SendResult(ch, id, fs.SetAttr(ToTarget(req.getTarget()), c));
    }
    case g::Request::STATFS: {
      struct statfs sf;
      int rc = fs.Statfs(ToTarget(r.getStatfs()), &sf);
      if (rc < 0) return SendError(ch, id, -rc);
      ch.Send<g::Response>(id, [&](g::Response::Builder b) {
        auto o = b.initStatfs();
        o.setType(sf.f_type);
        o.setBsize(sf.f_bsize);
        o.setBlocks(sf.f_blocks);
        o.setBfree(sf.f_bfree);
        o.setBavail(sf.f_bavail);
        o.setFiles(sf.f_files);
        o.setFfree(sf.f_ffree);
        o.setNamelen(sf.f_namelen);
        o.setFrsize(sf.f_frsize);
        o.setFlags(sf.f_flags);
      });
      return;
    }
    case g::Request::ACCESS: {
      auto req = r.getAccess();
      return SendResult(ch, id, fs.Access(View(req.getPath()), req.getMode(), req.getFollow()));
    }
    case g::Request::GETXATTR: {
      auto req = r.getGetxattr();
      const size_t count = std::min<uint64_t>(req.getSize(), max_bulk);
      return SendXattr(ch, id, count, [&](std::span<uint8_t> out) {
        return fs.GetXattr(ToTarget(req.getTarget()), View(req.getName()), out.first(count));
      });
    }
    case g::Request::LISTXATTR: {
      auto req = r.getListxattr();
      const size_t count = std::min<uint64_t>(req.getSize(), max_bulk);
      return SendXattr(ch, id, count,
                       [&](std::span<uint8_t> out) { return fs.ListXattr(ToTarget(req.getTarget()), out.first(count)); });
    }
    case g::Request::SETXATTR: {
      auto req = r.getSetxattr();
      return SendResult(ch, id, fs.SetXattr(ToTarget(req.getTarget()), View(req.getName()), bulk, req.getFlags()));
    }
    case g::Request::REMOVEXATTR: {
      auto req = r.getRemovexattr();
      return SendResult(ch, id, fs.RemoveXattr(ToTarget(req.getTarget()), View(req.getName())));
    }
    default:
      SendError(ch, id, ENOSYS);
  }
}

}  // namespace bulkhead::gofer
