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

}  // namespace

void HandleFileRequest(FileServer& fs, ipc::Channel& ch, uint64_t id, g::Request::Reader r) {
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
    default:
      SendError(ch, id, ENOSYS);
  }
}

}  // namespace bulkhead::gofer
