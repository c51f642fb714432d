#include "services/mem-broker/serve.h"

#include <cerrno>

namespace bulkhead::mem {

Answer Serve(Ledger& ledger, schema::mem::Request::Reader r) {
  namespace m = schema::mem;
  Answer a;
  switch (r.which()) {
    case m::Request::GRANT: {
      auto g = r.getGrant();
      auto got = ledger.Grant(g.getSeq(), g.getCount());
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
