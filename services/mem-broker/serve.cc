#include "services/mem-broker/serve.h"

#include <cerrno>

namespace bulkhead::mem {

Answer Serve(Ledger& ledger, schema::mem::Request::Reader r) {
  namespace m = schema::mem;
  Answer a;
  switch (r.which()) {
    case m::Request::GRANT: {
      auto g = r.getGrant();
      ChunkKind kind = ChunkKind::kAnonymous;
      switch (g.getKind()) {
        case m::ChunkKind::ANONYMOUS: kind = ChunkKind::kAnonymous; break;
        case m::ChunkKind::PAGE_CACHE: kind = ChunkKind::kPageCache; break;
        case m::ChunkKind::TMPFS: kind = ChunkKind::kTmpfs; break;
        case m::ChunkKind::METADATA: kind = ChunkKind::kMetadata; break;
        default: return {EINVAL, "grant of an unknown kind"};  // a newer router's kind, or garbage
      }
      auto got = ledger.Grant(g.getSeq(), g.getCount(), kind);
      if (got.err != 0) return {got.err, "grant refused"};
      a.granted = true;
      a.first = got.first;
      a.count = got.count;
      return a;
    }
    case m::Request::RELEASE: {
      auto x = r.getRelease();
      const auto got = ledger.Release(x.getSeq(), x.getFirst(), x.getCount());
      if (got.err != 0) return {got.err, "release refused"};
      a.punch = got.count > 0;  // the pages go back to the host
      a.first = got.first;
      a.count = got.count;
      return a;
    }
    case m::Request::RESET: {
      const int e = ledger.Reset(r.getReset().getSeq());
      if (e != 0) return {e, "reset refused"};
      return a;
    }
    default:
      return {ENOSYS, "request not implemented by this version"};
  }
}

}  // namespace bulkhead::mem
