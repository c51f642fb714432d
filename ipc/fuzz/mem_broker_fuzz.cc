// libFuzzer target: the mem-broker as a hostile router sees it. The router
// speaks the memory protocol (schemas/mem.capnp) and also maps chunk 0 of the
// memory file, where the broker keeps its ledger, so both are inputs here.
//
// The input is a sequence of frames [kind u8][len u16][len bytes]:
//   kind % 4 == 0  the bytes are a Cap'n Proto flat array: decoded with
//                  ipc::Decoded<mem::Request> and, if accepted, served;
//   kind % 4 == 1  a well-formed request made from the bytes (grant, release
//                  or reset, with the bytes' numbers), encoded, decoded and
//                  served: deep sequences of valid requests;
//   kind % 4 == 2  the broker is replaced: a new Ledger on the same bytes;
//   kind % 4 == 3  the bytes are written into the ledger at an offset (the
//                  router scribbling), then the broker is replaced.
// Checked: no crash or hang, and a grant never hands out a chunk the router
// already holds (a shadow of what it holds, re-read from the ledger only
// after scribbling, when the broker may legitimately start afresh).
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <vector>

#include "ipc/fuzz/decode_walk.h"
#include "ipc/message.h"
#include "schemas/mem.capnp.h"
#include "services/mem-broker/serve.h"

namespace {

namespace m = bulkhead::schema::mem;
using bulkhead::mem::Ledger;

constexpr uint64_t kFileChunks = 64;
constexpr size_t kUsed = 4096 + kFileChunks;  // header page and owner bytes

struct Reader {
  const uint8_t* p;
  size_t n;
  uint64_t Take(size_t bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < bytes && n > 0; ++i, --n) v |= uint64_t{*p++} << (8 * i);
    return v;
  }
};

void CheckAt(bool ok, const char* what, int line) {
  if (ok) return;
  std::fprintf(stderr, "mem_broker_fuzz: line %d: %s does not hold\n", line, what);
  std::abort();
}
#define Check(x) CheckAt((x), #x, __LINE__)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulkhead;
  ++ipc::fuzz::Stats().inputs;
  static std::vector<uint8_t> ledger_bytes(mem::kLedgerBytes);
  std::memset(ledger_bytes.data(), 0, kUsed);
  const uint64_t file = kFileChunks * mem::kChunk;
  auto ledger = std::make_unique<Ledger>(ledger_bytes.data(), file);
  std::set<uint32_t> held;
  auto resync = [&] {
    held.clear();
    for (uint32_t c = 0; c < ledger->chunks(); ++c) {
      if (ledger->owned(c)) held.insert(c);
    }
  };
  auto serve = [&](m::Request::Reader r) {
    const mem::Answer a = mem::Serve(*ledger, r);
    if (a.err != 0) return;
    if (a.granted) {
      Check(a.count > 0 && a.first > 0 && a.first + a.count <= ledger->chunks());
      const bool replay = held.count(a.first) != 0;  // a re-sent request: the same chunks again
      for (uint64_t c = a.first; c < uint64_t{a.first} + a.count; ++c) {
        Check(ledger->owned(static_cast<uint32_t>(c)));
        if (!replay) Check(held.insert(static_cast<uint32_t>(c)).second);
      }
    } else if (a.punch) {
      // What is punched was the router's and is no longer: never a range the
      // request made up.
      Check(a.first > 0 && a.count > 0 && a.first < ledger->chunks() && a.count <= ledger->chunks() - a.first);
      for (uint64_t c = a.first; c < uint64_t{a.first} + a.count; ++c) {
        Check(!ledger->owned(static_cast<uint32_t>(c)));
        held.erase(static_cast<uint32_t>(c));
      }
    } else if (r.isReset()) {
      held.clear();
      Check(ledger->granted() == 0);
    }
  };
  Reader in{data, size};
  for (int frames = 0; in.n >= 3 && frames < 256; ++frames) {
    const uint8_t kind = static_cast<uint8_t>(in.Take(1));
    size_t len = std::min<size_t>(in.Take(2), in.n);
    Reader body{in.p, len};
    in.p += len;
    in.n -= len;
    switch (kind % 4) {
      case 0: {
        const size_t count = len / 8;
        auto words = std::make_unique<uint64_t[]>(count);
        if (count) std::memcpy(words.get(), body.p, count * 8);
        ipc::Decoded<m::Request> req;
        ++ipc::fuzz::Stats().decode_attempts;
        if (req.DecodeWords(words.get(), count) != ipc::Status::kOk) break;
        ++ipc::fuzz::Stats().decoded_ok;
        serve(req.root());
        break;
      }
      case 1: {
        capnp::MallocMessageBuilder b;
        auto r = b.initRoot<m::Request>();
        const uint8_t op = static_cast<uint8_t>(body.Take(1));
        const uint64_t seq = body.Take(8);
        if (op % 3 == 0) {
          auto g = r.initGrant();
          g.setSeq(seq);
          g.setCount(static_cast<uint32_t>(body.Take(4)));
          g.setKind(static_cast<m::ChunkKind>(body.Take(1) % 5));  // 4: a kind this broker does not know
        } else if (op % 3 == 1) {
          auto x = r.initRelease();
          x.setSeq(seq);
          x.setFirst(static_cast<uint32_t>(body.Take(4)));
          x.setCount(static_cast<uint32_t>(body.Take(4)));
        } else {
          r.initReset().setSeq(seq);
        }
        auto flat = capnp::messageToFlatArray(b);
        ipc::Decoded<m::Request> req;
        ++ipc::fuzz::Stats().decode_attempts;
        if (req.DecodeWords(reinterpret_cast<const uint64_t*>(flat.begin()), flat.size()) != ipc::Status::kOk) {
          std::abort();  // our own well-formed message must decode
        }
        ++ipc::fuzz::Stats().decoded_ok;
        serve(req.root());
        break;
      }
      case 2:
        ledger = std::make_unique<Ledger>(ledger_bytes.data(), file);
        for (uint32_t c : held) Check(ledger->owned(c));  // nothing lost across a restart
        break;
      case 3: {
        const size_t off = body.Take(2) % kUsed;
        const size_t n = std::min(body.n, kUsed - off);
        std::memcpy(ledger_bytes.data() + off, body.p, n);
        ledger = std::make_unique<Ledger>(ledger_bytes.data(), file);
        resync();
        break;
      }
    }
  }
  return 0;
}
