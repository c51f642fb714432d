// The mem-broker's allocator: which 2 MiB chunks of the sandbox's memory file
// the syscall-router owns. Its whole state lives in chunk 0 of the memory file
// itself (the "ledger"), so that it outlives the broker: a broker that is
// killed (-9, a crash) is replaced by the supervisor, and the new one attaches
// to the same bytes, finishes the operation its predecessor was in the middle
// of, and answers a request it had already applied with the same answer.
//
// The router asks for chunks (Grant: a contiguous run, so that one mapping
// can cover a large allocation), gives them back (Release: the broker punches
// the pages out of the file, so the host memory goes back), and, when a new
// router starts, drops everything the old one had (Reset). Requests carry the
// router's sequence number; the router re-sends a request with the same
// number after the broker died, so each one is applied once:
//
//   1. the operation (kind, seq, range) is written, then state = PENDING;
//   2. the owner bytes of its chunks change;
//   3. last_seq = seq, state = DONE.
//
// A broker that dies after 1 leaves PENDING: its successor redoes 2 (setting
// owner bytes is idempotent) and 3. A re-sent request whose seq is last_seq
// gets the recorded answer; an older one is refused. So no chunk is ever
// handed out twice, and none is lost. (ledger_test.cc kills the broker
// between every pair of steps and checks each grant against a shadow map.)
//
// The bytes are shared with the router (it maps the whole file): the ledger
// is validated when attached, and anything inconsistent (magic, sizes, owner
// values, the pending record) starts a fresh ledger with an error, never a
// crash. Requests are hostile too: absurd counts, ranges outside the file or
// not owned by the router get an errno.
#pragma once

#include <cstdint>
#include <string>

#include "schemas/mem.capnp.h"

namespace bulkhead::mem {

inline constexpr uint64_t kChunk = schema::mem::CHUNK_BYTES;
// Chunk 0 holds the ledger; the largest file it can describe.
inline constexpr uint64_t kLedgerBytes = kChunk;
inline constexpr uint64_t kMaxChunks = kLedgerBytes - 4096;  // one owner byte each after the header page

// What a chunk the router holds is used for (its owner byte): the broker
// accounts by kind, and the router draws each kind's pages from chunks of
// that kind only. (2 is the ledger's own chunk.)
enum class ChunkKind : uint8_t { kAnonymous = 1, kPageCache = 3, kTmpfs = 4, kMetadata = 5 };
inline constexpr bool ValidKind(uint32_t v) { return v == 1 || v == 3 || v == 4 || v == 5; }
inline constexpr ChunkKind kAllKinds[] = {ChunkKind::kAnonymous, ChunkKind::kPageCache, ChunkKind::kTmpfs,
                                          ChunkKind::kMetadata};
const char* KindName(ChunkKind k);

class Ledger {
 public:
  // Attaches to `mem` (kLedgerBytes of shared memory, chunk 0 of a memory
  // file of `file_size` bytes): loads the state a previous broker left, or
  // makes a fresh one. `note` (if given) says which.
  Ledger(uint8_t* mem, uint64_t file_size, std::string* note = nullptr);

  struct Range {
    int err = 0;  // 0, or an errno
    uint32_t first = 0;
    uint32_t count = 0;
  };
  // `count` contiguous free chunks for the router (first fit), for request
  // `seq`. EINVAL for a count of 0 or more than the file has, ENOMEM when no
  // run is free, EALREADY for a seq older than the last one applied.
  // The chunks are recorded as `kind` (EINVAL for a value that is none).
  Range Grant(uint64_t seq, uint32_t count, ChunkKind kind = ChunkKind::kAnonymous);
  // Gives back [first, first + count): every chunk must be the router's
  // (EINVAL otherwise, and nothing changes). The range released: for a
  // re-sent request the one recorded while it is still free, else an empty
  // one; never the request's (a hostile router could change it to have
  // other chunks punched).
  Range Release(uint64_t seq, uint32_t first, uint32_t count);
  // A new router: every chunk the old one had is free, and `seq` (any value
  // but 0) starts the new router's sequence. A re-sent reset is applied
  // again.
  int Reset(uint64_t seq);

  uint32_t chunks() const { return chunks_; }
  uint32_t granted() const;
  uint32_t granted(ChunkKind kind) const;
  // The kind of a chunk the router holds, as its owner byte; 0 if it holds
  // none there.
  int kind(uint32_t chunk) const;
  uint64_t last_seq() const;
  bool owned(uint32_t chunk) const;

  // Tests: the next operation stops (throws Crash) after step `step` (1 or
  // 2 above), as a broker killed there would.
  struct Crash {};
  void CrashAfter(int step) { crash_after_ = step; }

 private:
  void Fresh(uint64_t file_size);
  bool Valid(uint64_t file_size) const;
  void Begin(uint32_t kind, uint64_t seq, uint32_t first, uint32_t count, ChunkKind chunk_kind);
  void Apply();
  void Finish();
  void MaybeCrash(int step);
  bool AllOwnedBy(uint32_t first, uint32_t count, uint8_t owner) const;

  uint8_t* mem_;
  uint32_t chunks_ = 0;
  int crash_after_ = 0;
};

}  // namespace bulkhead::mem
