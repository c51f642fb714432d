#include "services/mem-broker/ledger.h"

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cstring>

namespace bulkhead::mem {
namespace {

constexpr uint64_t kMagic = 0x315247444c484221ull;  // "!BHLDGR1"
constexpr uint32_t kVersion = 2;  // 2: owner bytes say the kind of each chunk
constexpr uint64_t kOwners = 4096;  // owner bytes start here

// Header fields (offsets into the ledger).
constexpr size_t kMagicOff = 0, kVersionOff = 8, kChunksOff = 12, kLastSeqOff = 16, kStateOff = 24, kKindOff = 28,
                 kOpSeqOff = 32, kOpFirstOff = 40, kOpCountOff = 44, kOpChunkKindOff = 48;

constexpr uint32_t kDone = 0, kPending = 1;
constexpr uint32_t kNone = 0, kGrant = 1, kRelease = 2, kReset = 3;
// Owner bytes: free, the ledger itself, or the router's with the chunk's kind.
constexpr uint8_t kFree = 0, kLedger = 2;

template <typename T>
T Load(const uint8_t* mem, size_t off) {
  return std::atomic_ref<T>(*reinterpret_cast<T*>(const_cast<uint8_t*>(mem) + off)).load(std::memory_order_acquire);
}
template <typename T>
void Store(uint8_t* mem, size_t off, T v) {
  std::atomic_ref<T>(*reinterpret_cast<T*>(mem + off)).store(v, std::memory_order_release);
}

}  // namespace

const char* KindName(ChunkKind k) {
  switch (k) {
    case ChunkKind::kAnonymous: return "anonymous";
    case ChunkKind::kPageCache: return "page cache";
    case ChunkKind::kTmpfs: return "tmpfs";
    case ChunkKind::kMetadata: return "metadata";
  }
  return "?";
}

Ledger::Ledger(uint8_t* mem, uint64_t file_size, std::string* note) : mem_(mem) {
  const uint64_t want = std::min<uint64_t>(file_size / kChunk, kMaxChunks);
  chunks_ = static_cast<uint32_t>(want);
  if (Load<uint64_t>(mem_, kMagicOff) == 0) {
    Fresh(file_size);
    if (note) *note = "fresh ledger";
    return;
  }
  if (!Valid(file_size)) {
    Fresh(file_size);
    if (note) *note = "the ledger was inconsistent: started afresh (chunks the router held are lost to it)";
    return;
  }
  if (Load<uint32_t>(mem_, kStateOff) == kPending) {
    // The previous broker died inside an operation: finish it.
    Apply();
    Finish();
    if (note) *note = "reloaded; finished the operation the previous broker was in";
    return;
  }
  if (note) *note = "reloaded";
}

void Ledger::Fresh(uint64_t file_size) {
  (void)file_size;
  std::memset(mem_, 0, kOwners + chunks_);
  Store<uint32_t>(mem_, kVersionOff, kVersion);
  Store<uint32_t>(mem_, kChunksOff, chunks_);
  if (chunks_ > 0) mem_[kOwners] = kLedger;
  Store<uint64_t>(mem_, kMagicOff, kMagic);
}

bool Ledger::Valid(uint64_t file_size) const {
  (void)file_size;
  if (Load<uint64_t>(mem_, kMagicOff) != kMagic || Load<uint32_t>(mem_, kVersionOff) != kVersion) return false;
  if (Load<uint32_t>(mem_, kChunksOff) != chunks_ || chunks_ == 0) return false;
  const uint32_t state = Load<uint32_t>(mem_, kStateOff), kind = Load<uint32_t>(mem_, kKindOff);
  if (state > kPending || kind > kReset || (state == kPending && kind == kNone)) return false;
  const uint32_t first = Load<uint32_t>(mem_, kOpFirstOff), count = Load<uint32_t>(mem_, kOpCountOff);
  if (kind == kGrant || kind == kRelease) {
    if (first == 0 || count == 0 || first >= chunks_ || count > chunks_ - first) return false;
  }
  if (mem_[kOwners] != kLedger) return false;
  if (kind == kGrant && !ValidKind(Load<uint32_t>(mem_, kOpChunkKindOff))) return false;
  for (uint32_t i = 1; i < chunks_; ++i) {
    if (mem_[kOwners + i] != kFree && !ValidKind(mem_[kOwners + i])) return false;
  }
  return true;
}

void Ledger::MaybeCrash(int step) {
  if (crash_after_ == step) {
    crash_after_ = 0;
    throw Crash{};
  }
}

void Ledger::Begin(uint32_t kind, uint64_t seq, uint32_t first, uint32_t count, ChunkKind chunk_kind) {
  Store<uint32_t>(mem_, kKindOff, kind);
  Store<uint32_t>(mem_, kOpChunkKindOff, static_cast<uint32_t>(chunk_kind));
  Store<uint64_t>(mem_, kOpSeqOff, seq);
  Store<uint32_t>(mem_, kOpFirstOff, first);
  Store<uint32_t>(mem_, kOpCountOff, count);
  Store<uint32_t>(mem_, kStateOff, kPending);
  MaybeCrash(1);
}

void Ledger::Apply() {
  const uint32_t kind = Load<uint32_t>(mem_, kKindOff);
  const uint32_t first = Load<uint32_t>(mem_, kOpFirstOff), count = Load<uint32_t>(mem_, kOpCountOff);
  if (kind == kReset) {
    for (uint32_t i = 1; i < chunks_; ++i) mem_[kOwners + i] = kFree;
  } else {
    const uint8_t v = kind == kGrant ? static_cast<uint8_t>(Load<uint32_t>(mem_, kOpChunkKindOff)) : kFree;
    for (uint32_t i = first; i < first + count; ++i) mem_[kOwners + i] = v;
  }
  std::atomic_thread_fence(std::memory_order_release);
  MaybeCrash(2);
}

void Ledger::Finish() {
  Store<uint64_t>(mem_, kLastSeqOff, Load<uint64_t>(mem_, kOpSeqOff));
  Store<uint32_t>(mem_, kStateOff, kDone);
}

Ledger::Range Ledger::Grant(uint64_t seq, uint32_t count, ChunkKind chunk_kind) {
  const uint64_t last = last_seq();
  if (seq == last && last != 0) {
    // A re-sent request: the recorded answer, as long as the ledger still
    // says so (bytes the router scribbled over are not answered).
    if (Load<uint32_t>(mem_, kKindOff) != kGrant) return {EALREADY, 0, 0};
    const uint32_t first = Load<uint32_t>(mem_, kOpFirstOff), count = Load<uint32_t>(mem_, kOpCountOff);
    const uint32_t k = Load<uint32_t>(mem_, kOpChunkKindOff);
    if (!ValidKind(k) || !AllOwnedBy(first, count, static_cast<uint8_t>(k))) return {EALREADY, 0, 0};
    return {0, first, count};
  }
  if (seq < last || seq == 0) return {EALREADY, 0, 0};
  if (count == 0 || count >= chunks_ || !ValidKind(static_cast<uint32_t>(chunk_kind))) return {EINVAL, 0, 0};
  // First fit over the owner bytes (32 KiB for a 64 GiB file).
  uint32_t run = 0;
  for (uint32_t i = 1; i < chunks_; ++i) {
    run = mem_[kOwners + i] == kFree ? run + 1 : 0;
    if (run == count) {
      const uint32_t first = i + 1 - count;
      Begin(kGrant, seq, first, count, chunk_kind);
      Apply();
      Finish();
      return {0, first, count};
    }
  }
  return {ENOMEM, 0, 0};
}

Ledger::Range Ledger::Release(uint64_t seq, uint32_t first, uint32_t count) {
  const uint64_t last = last_seq();
  if (seq == last && last != 0) {
    // A re-sent request: done already. The recorded range is punched again
    // only while it is still free (never what the request names).
    if (Load<uint32_t>(mem_, kKindOff) != kRelease) return {EALREADY, 0, 0};
    const uint32_t first = Load<uint32_t>(mem_, kOpFirstOff), count = Load<uint32_t>(mem_, kOpCountOff);
    if (!AllOwnedBy(first, count, kFree)) return {0, 0, 0};
    return {0, first, count};
  }
  if (seq < last || seq == 0) return {EALREADY, 0, 0};
  if (first == 0 || count == 0 || first >= chunks_ || count > chunks_ - first) return {EINVAL, 0, 0};
  for (uint32_t i = first; i < first + count; ++i) {
    if (!ValidKind(mem_[kOwners + i])) return {EINVAL, 0, 0};  // not the router's to give back
  }
  Begin(kRelease, seq, first, count, ChunkKind::kAnonymous);
  Apply();
  Finish();
  return {0, first, count};
}

int Ledger::Reset(uint64_t seq) {
  // A new router numbers its requests from a base of its own (a clock
  // reading), which need not exceed the old router's: any seq but a replay
  // of the last reset starts a new sequence.
  // A re-sent reset is simply applied again (freeing everything twice is
  // freeing it once).
  if (seq == 0) return EINVAL;
  Begin(kReset, seq, 0, 0, ChunkKind::kAnonymous);
  Apply();
  Finish();
  return 0;
}

bool Ledger::AllOwnedBy(uint32_t first, uint32_t count, uint8_t owner) const {
  if (first == 0 || count == 0 || first >= chunks_ || count > chunks_ - first) return false;
  for (uint32_t i = first; i < first + count; ++i) {
    if (mem_[kOwners + i] != owner) return false;
  }
  return true;
}

uint32_t Ledger::granted() const {
  uint32_t n = 0;
  for (uint32_t i = 1; i < chunks_; ++i) n += ValidKind(mem_[kOwners + i]) ? 1 : 0;
  return n;
}

uint32_t Ledger::granted(ChunkKind kind) const {
  uint32_t n = 0;
  for (uint32_t i = 1; i < chunks_; ++i) n += mem_[kOwners + i] == static_cast<uint8_t>(kind) ? 1 : 0;
  return n;
}

int Ledger::kind(uint32_t chunk) const {
  return chunk > 0 && chunk < chunks_ && ValidKind(mem_[kOwners + chunk]) ? mem_[kOwners + chunk] : 0;
}

uint64_t Ledger::last_seq() const { return Load<uint64_t>(mem_, kLastSeqOff); }

bool Ledger::owned(uint32_t chunk) const { return kind(chunk) != 0; }

}  // namespace bulkhead::mem
