#include "services/syscall-router/kernel/memory.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "base/error.h"

namespace bulkhead::router {
namespace {

constexpr uint64_t kPage = 4096;
uint64_t PageUp(uint64_t v) { return (v + kPage - 1) & ~(kPage - 1); }

}  // namespace

// ---------------------------------------------------------------- MemoryFile

const char* MemKindName(MemKind k) {
  switch (k) {
    case MemKind::kAnon: return "anonymous";
    case MemKind::kFile: return "page cache";
    case MemKind::kTmpfs: return "tmpfs";
    case MemKind::kMeta: return "metadata";
  }
  return "?";
}

std::shared_ptr<Chunk> AllocateChunk(MemoryFile& file, uint64_t len, MemKind kind) {
  const int64_t off = file.Allocate(len, kind);
  if (off < 0) return nullptr;
  return std::make_shared<Chunk>(file, static_cast<uint64_t>(off), PageUp(len), kind);
}

MemoryFile::MemoryFile(uint64_t size) {
  size = PageUp(size);
  fd_.Reset(CheckSys(static_cast<int>(::syscall(SYS_memfd_create, "bulkhead.memory", MFD_CLOEXEC)),
                     "memfd_create", "the memory file"));
  CheckSys(::ftruncate(fd_.get(), static_cast<off_t>(size)), "ftruncate", "the memory file");
  MapWhole(size);
}

MemoryFile::MemoryFile(UniqueFd fd) : fd_(std::move(fd)) {
  struct stat st;
  CheckSys(::fstat(fd_.get(), &st), "fstat", "the memory file");
  const uint64_t size = static_cast<uint64_t>(st.st_size) & ~(kPage - 1);
  if (!S_ISREG(st.st_mode) || size < kPage) {
    throw SysError(EINVAL, "memory file", "not a regular file of at least a page");
  }
  MapWhole(size);
  // Chunk 0 is the mem-broker's ledger (the broker attached to it already,
  // or will): never used here, never discarded.
  const uint64_t ledger = std::min(size, ChunkSource::kChunk);
  pools_[0] = Pool{};
  if (size > ledger) {
    InsertFree(pools_[0], ledger, size - ledger);
    Discard(ledger, size - ledger);
  }
}

void MemoryFile::MapWhole(uint64_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_.get(), 0);
  if (p == MAP_FAILED) throw SysError(errno, "mmap", "the memory file (" + std::to_string(size) + " bytes)");
  map_ = Mapping(p, size);
  InsertFree(pools_[0], 0, size);
}

void MemoryFile::SetChunkSource(ChunkSource* source) {
  source_ = source;
  for (Pool& p : pools_) p = Pool{};
}

uint64_t MemoryFile::granted_chunks() const {
  uint64_t n = 0;
  for (const Pool& p : pools_) n += p.granted;
  return n / ChunkSource::kChunk;
}

uint64_t MemoryFile::allocated() const {
  uint64_t n = 0;
  for (uint64_t a : allocated_) n += a;
  return n;
}

int64_t MemoryFile::Allocate(uint64_t len, MemKind kind) {
  len = PageUp(len);
  if (len == 0 || len > size() || static_cast<int>(kind) >= kMemKinds) return -1;
  Pool& pool = pools_[Index(kind)];
  bool asked = false;
  for (int attempt = 0; attempt < 3; ++attempt) {
    // Best fit: the smallest free range that holds it (O(log n) however
    // fragmented the file is).
    auto best = pool.by_len.lower_bound({len, 0});
    if (best != pool.by_len.end()) {
      const uint64_t off = best->second;
      const uint64_t rest = best->first - len;
      EraseFree(pool, off);
      if (rest) InsertFree(pool, off + len, rest);
      allocated_[static_cast<int>(kind)] += len;
      return static_cast<int64_t>(off);
    }
    // Nothing fits: first what is waiting to go back to the host...
    if (pending_bytes_ > 0) {
      ReleasePending();
      continue;
    }
    if (source_ == nullptr || asked) break;
    // ... then more chunks of this kind from the broker, a reserve beyond
    // the need when it has them.
    asked = true;
    const uint64_t need = (len + ChunkSource::kChunk - 1) / ChunkSource::kChunk;
    if (need > 0xffffffffu) break;
    const uint64_t reserve = ReserveChunks(kind);
    int64_t first = source_->Grant(static_cast<uint32_t>(need + reserve), kind);
    uint64_t got = need + reserve;
    if (first < 0) {
      first = source_->Grant(static_cast<uint32_t>(need), kind);
      got = need;
    }
    if (first <= 0) break;
    const uint64_t start = static_cast<uint64_t>(first) * ChunkSource::kChunk;
    if (start + got * ChunkSource::kChunk > size()) break;  // a broker answer past the file: refused
    pool.granted += got * ChunkSource::kChunk;
    if (kind == MemKind::kAnon) AdviseChunks(start, got * ChunkSource::kChunk);
    AddFree(pool, start, got * ChunkSource::kChunk, /*may_release=*/false, kind);  // it is about to be used
  }
  return -1;
}

void MemoryFile::InsertFree(Pool& pool, uint64_t offset, uint64_t len) {
  pool.free[offset] = len;
  pool.by_len.insert({len, offset});
}

void MemoryFile::EraseFree(Pool& pool, uint64_t offset) {
  auto it = pool.free.find(offset);
  if (it == pool.free.end()) return;
  pool.by_len.erase({it->second, offset});
  pool.free.erase(it);
}

void MemoryFile::AddFree(Pool& pool, uint64_t offset, uint64_t len, bool may_release, MemKind kind) {
  auto next = pool.free.lower_bound(offset);
  uint64_t start = offset, end = offset + len;
  if (next != pool.free.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      EraseFree(pool, prev->first);
    }
  }
  next = pool.free.lower_bound(end);
  if (next != pool.free.end() && next->first == end) {
    end += next->second;
    EraseFree(pool, next->first);
  }
  InsertFree(pool, start, end - start);
  if (source_ != nullptr && may_release) ReleaseSpare(pool, start, end, kind);
}

void MemoryFile::ReleaseSpare(Pool& pool, uint64_t start, uint64_t end, MemKind kind) {
  // The top whole chunks of [start, end) go back, as many as leave the
  // kind's reserve free.
  constexpr uint64_t kChunk = ChunkSource::kChunk;
  const uint64_t a = (start + kChunk - 1) / kChunk * kChunk, b = end / kChunk * kChunk;
  const uint64_t used = allocated_[static_cast<int>(kind)];
  const uint64_t free_bytes = pool.granted - std::min(pool.granted, used);
  const uint64_t reserve = ReserveChunks(kind) * kChunk;
  if (b <= a || free_bytes <= reserve) return;
  const uint64_t n = std::min(b - a, (free_bytes - reserve) / kChunk * kChunk);
  if (n == 0) return;
  const uint64_t from = b - n;
  EraseFree(pool, start);
  if (from > start) InsertFree(pool, start, from - start);
  if (end > b) InsertFree(pool, b, end - b);
  pool.granted -= n;
  source_->Release(static_cast<uint32_t>(from / kChunk), static_cast<uint32_t>(n / kChunk));
}

void MemoryFile::Free(uint64_t offset, uint64_t len, MemKind kind) {
  len = PageUp(len);
  if (len == 0 || static_cast<int>(kind) >= kMemKinds) return;
  uint64_t& a = allocated_[static_cast<int>(kind)];
  a -= std::min(a, len);
  // Queued, not punched at once: the kernel's loop gives the queue back in
  // slices between events (ReleasePending), a full queue goes back here, and
  // the range is free space again only once its pages are gone (a fresh
  // range reads as zeros).
  pending_.push_back({offset, len, kind});
  pending_bytes_ += len;
  if (pending_bytes_ >= kReleaseHigh) ReleasePending(kReleaseSlice);
}

uint64_t MemoryFile::ReleasePending(uint64_t max_bytes) {
  if (pending_.empty()) return 0;
  // Neighbours of one kind become one punch.
  std::sort(pending_.begin(), pending_.end());
  std::vector<Pending> runs;
  for (const Pending& p : pending_) {
    if (!runs.empty() && runs.back().offset + runs.back().len == p.offset && runs.back().kind == p.kind) {
      runs.back().len += p.len;
    } else {
      runs.push_back(p);
    }
  }
  uint64_t done = 0;
  size_t i = 0;
  for (; i < runs.size() && done < max_bytes; ++i) {
    Discard(runs[i].offset, runs[i].len);
    AddFree(pools_[Index(runs[i].kind)], runs[i].offset, runs[i].len, /*may_release=*/true, runs[i].kind);
    done += runs[i].len;
    ++release_batches_;
  }
  runs.erase(runs.begin(), runs.begin() + static_cast<ptrdiff_t>(i));
  pending_ = std::move(runs);
  pending_bytes_ -= std::min(pending_bytes_, done);
  released_bytes_ += done;
  return done;
}

void MemoryFile::AdviseChunks(uint64_t offset, uint64_t len) {
  // Huge pages where the host allows them for shared memory
  // (/sys/kernel/mm/transparent_hugepage/shmem_enabled "advise" or
  // "within_size"): the router's view, and the stubs map the same pages.
  // A host that refuses the advice still serves small pages.
  (void)::madvise(at(offset), len, MADV_HUGEPAGE);
}

void MemoryFile::Discard(uint64_t offset, uint64_t len) {
  // Punched pages read as zeros and are no longer charged to anyone.
  if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(len)) != 0) {
    std::memset(at(offset), 0, len);  // the contract (zeros) still holds
  }
}

uint64_t MemoryFile::resident() const {
  struct stat st;
  if (::fstat(fd_.get(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

// ---------------------------------------------------------------- MemoryAddressSpace

MemoryAddressSpace::MemoryAddressSpace(platform::Platform& platform, MemoryFile& file,
                                       std::unique_ptr<platform::AddressSpace> inner)
    : platform_(platform), file_(file), inner_(std::move(inner)) {}

long MemoryAddressSpace::Syscall(long nr, const platform::SyscallArgs& a) {
  switch (nr) {
    case SYS_mmap:
      if ((a[3] & MAP_ANONYMOUS) && (a[3] & MAP_FIXED)) return Map(a[0], a[1], static_cast<int>(a[2]), static_cast<int>(a[3]));
      return inner_->Syscall(nr, a);
    case SYS_munmap: return Unmap(a[0], a[1]);
    case SYS_mprotect: return Protect(a[0], a[1], static_cast<int>(a[2]));
    case SYS_madvise: return Advise(a[0], a[1], static_cast<int>(a[2]));
    case SYS_mremap: return Remap(a[0], a[1], a[2], static_cast<int>(a[3]), a[4]);
    default: return inner_->Syscall(nr, a);
  }
}

void MemoryAddressSpace::SplitAt(uint64_t at) {
  auto it = vmas_.upper_bound(at);
  if (it == vmas_.begin()) return;
  --it;
  if (it->first >= at || at >= it->second.end) return;
  Vma right = it->second;
  right.chunk_offset += at - it->first;
  it->second.end = at;
  vmas_[at] = std::move(right);
}

long MemoryAddressSpace::Install(uint64_t addr, uint64_t len, int prot, bool shared,
                                 std::shared_ptr<Chunk> chunk, uint64_t chunk_offset, std::string name) {
  return Replace(addr, len, prot, std::move(chunk), chunk_offset, shared, false, std::move(name));
}

long MemoryAddressSpace::Map(uint64_t addr, uint64_t len, int prot, int flags) {
  len = PageUp(len);
  if (addr % kPage || len == 0 || addr + len < addr) return -EINVAL;
  auto chunk = AllocateChunk(file_, len);
  if (!chunk) return -ENOMEM;
  return Replace(addr, len, prot, std::move(chunk), 0,
                 (flags & MAP_TYPE) != MAP_PRIVATE, false, "");
}

long MemoryAddressSpace::Replace(uint64_t addr, uint64_t len, int prot, std::shared_ptr<Chunk> chunk,
                                 uint64_t chunk_offset, bool shared, bool cow, std::string name) {
  // MAP_FIXED replaces what was there; the stub's mmap does that itself, so
  // the old VMAs are only forgotten once it succeeded.
  SplitAt(addr);
  SplitAt(addr + len);
  std::vector<uint64_t> gone;
  for (auto it = vmas_.lower_bound(addr); it != vmas_.end() && it->first < addr + len; ++it) gone.push_back(it->first);
  long r = inner_->MapFile(addr, len, prot, file_.fd(), chunk->offset + chunk_offset);
  if (r < 0) return r;
  for (uint64_t g : gone) vmas_.erase(g);
  Vma v;
  v.end = addr + len;
  v.prot = prot;
  v.shared = shared;
  v.cow = cow;
  v.chunk = std::move(chunk);
  v.chunk_offset = chunk_offset;
  v.name = std::move(name);
  vmas_[addr] = std::move(v);
  return static_cast<long>(addr);
}

long MemoryAddressSpace::MapCow(uint64_t addr, uint64_t len, int prot, std::shared_ptr<Chunk> chunk,
                                uint64_t chunk_offset, std::string name) {
  len = PageUp(len);
  if (addr % kPage || len == 0 || addr + len < addr || (prot & PROT_WRITE) || chunk_offset % kPage ||
      chunk_offset > chunk->len || len > chunk->len - chunk_offset) {
    return -EINVAL;
  }
  return Replace(addr, len, prot, std::move(chunk), chunk_offset, false, true, std::move(name));
}

long MemoryAddressSpace::MapShared(uint64_t addr, uint64_t len, int prot, std::shared_ptr<Chunk> chunk,
                                   uint64_t chunk_offset, std::string name) {
  len = PageUp(len);
  if (addr % kPage || len == 0 || addr + len < addr || chunk_offset % kPage || chunk_offset + len > chunk->len) {
    return -EINVAL;
  }
  return Replace(addr, len, prot, std::move(chunk), chunk_offset, true, false, std::move(name));
}

long MemoryAddressSpace::BreakCow(uint64_t addr, uint64_t len) {
  SplitAt(addr);
  SplitAt(addr + len);
  for (auto it = vmas_.lower_bound(addr); it != vmas_.end() && it->first < addr + len; ++it) {
    Vma& v = it->second;
    if (!v.cow) continue;
    const uint64_t n = v.end - it->first;
    if (v.anon_cow) {
      // Nobody else refers to the pages any more (the other process exited
      // or exec'd, or copied): take them over, no copy.
      if (Exclusive(v)) {
        long r = inner_->Syscall(SYS_mprotect, {it->first, n, static_cast<uint64_t>(v.prot), 0, 0, 0});
        if (r < 0) return r;
        v.cow = v.anon_cow = false;
        ++cow_takeovers_;
        continue;
      }
    }
    auto chunk = AllocateChunk(file_, n);
    if (!chunk) return -ENOMEM;
    CopyData(v.chunk->offset + v.chunk_offset, chunk->offset, n);
    long r = inner_->MapFile(it->first, n, v.prot, file_.fd(), chunk->offset);
    if (r < 0) return r;
    v.chunk = std::move(chunk);
    v.chunk_offset = 0;
    if (v.anon_cow) cow_copies_ += n / kPage;
    v.cow = v.anon_cow = false;
  }
  return 0;
}

namespace {
// Copies made on write faults go into a private range of the memory file
// per 2 MiB block of the address space ("shadow"), each page at its offset
// in the block: pages copied one by one stay contiguous in the file, so the
// host merges their mappings (and the router its VMAs) instead of keeping
// one mapping per page.
constexpr uint64_t kCowBlock = uint64_t{2} << 20;
// Pages copied at most on one fault: a writer that walks forward gets runs
// that double (1, 2, 4, ... pages) up to this; a scattered writer copies
// single pages.
constexpr uint64_t kCowMaxRun = uint64_t{1} << 20;
constexpr size_t kManyVmas = 16384;
}  // namespace

bool MemoryAddressSpace::Exclusive(const Vma& v) const {
  long refs = 0;
  for (const auto& [s, o] : vmas_) refs += o.chunk == v.chunk ? 1 : 0;
  return refs == v.chunk.use_count();
}

void MemoryAddressSpace::MergeAt(uint64_t edge) {
  auto right = vmas_.find(edge);
  if (right == vmas_.end() || right == vmas_.begin()) return;
  auto left = std::prev(right);
  Vma& l = left->second;
  const Vma& r = right->second;
  if (l.end == edge && l.prot == r.prot && l.shared == r.shared && l.chunk == r.chunk &&
      l.chunk_offset + (edge - left->first) == r.chunk_offset && l.name == r.name && l.cow == r.cow &&
      l.anon_cow == r.anon_cow) {
    l.end = r.end;
    vmas_.erase(right);
  }
}

std::shared_ptr<Chunk> MemoryAddressSpace::ShadowFor(uint64_t addr, uint64_t vma_start, uint64_t vma_end,
                                                     uint64_t* base) {
  // A live shadow that covers addr: its page for addr is unused (a page's
  // place in a shadow is its address, and only one mapping is at an address).
  auto it = shadows_.upper_bound(addr);
  uint64_t lo = std::max(vma_start, addr & ~(kCowBlock - 1));
  uint64_t hi = std::min(vma_end, (addr & ~(kCowBlock - 1)) + kCowBlock);
  if (it != shadows_.begin()) {
    auto prev = std::prev(it);
    if (auto s = prev->second.lock()) {
      if (addr < prev->first + s->len) {
        *base = prev->first;
        return s;
      }
      lo = std::max(lo, prev->first + s->len);
    } else {
      shadows_.erase(prev);
    }
  }
  while (it != shadows_.end() && it->first < hi) {
    if (it->second.expired()) {
      it = shadows_.erase(it);
      continue;
    }
    hi = std::min(hi, it->first);
    break;
  }
  auto s = AllocateChunk(file_, hi - lo);
  if (!s) return nullptr;
  shadows_[lo] = s;
  *base = lo;
  return s;
}

long MemoryAddressSpace::CopyOnWrite(uint64_t addr, uint64_t len, uint64_t vma_start, uint64_t vma_end) {
  // The shadow is sized by the whole mapping's part of the block (found
  // before the copied piece is split off), so later faults elsewhere in the
  // mapping land in it too.
  uint64_t base = 0;
  auto shadow = ShadowFor(addr, vma_start, vma_end, &base);
  if (!shadow) return -ENOMEM;
  const uint64_t soff = addr - base;
  if (soff >= shadow->len) return -EFAULT;
  // (A shadow made for another mapping earlier may end inside the run: the
  // rest is copied by the next fault, into a shadow of its own.)
  len = std::min(len, shadow->len - soff);
  SplitAt(addr);
  SplitAt(addr + len);
  auto it = vmas_.find(addr);
  if (it == vmas_.end() || it->second.end != addr + len || !it->second.anon_cow) return -EFAULT;
  Vma& v = it->second;
  CopyData(v.chunk->offset + v.chunk_offset, shadow->offset + soff, len);
  long r = inner_->MapFile(addr, len, v.prot, file_.fd(), shadow->offset + soff);
  if (r < 0) return r;
  v.chunk = std::move(shadow);
  v.chunk_offset = soff;
  v.cow = v.anon_cow = false;
  cow_copies_ += len / kPage;
  MergeAt(addr);
  MergeAt(addr + len);
  return 0;
}

bool MemoryAddressSpace::ResolveWriteFault(uint64_t addr, bool* already) {
  if (already) *already = false;
  auto it = vmas_.upper_bound(addr);
  if (it == vmas_.begin()) return false;
  --it;
  const uint64_t start = it->first;
  const Vma& v = it->second;
  if (addr >= v.end || !(v.prot & PROT_WRITE) || v.shared) return false;
  if (!v.anon_cow) {
    // Made private since the fault was taken (two threads wrote to the
    // page, or a run or takeover covered it): the write may go ahead.
    if (v.cow || already == nullptr) return false;
    *already = true;
    return true;
  }
  const uint64_t page = addr & ~(kPage - 1);
  const uint64_t block = page & ~(kCowBlock - 1);
  if (Exclusive(v)) {
    // Nobody else refers to the pages any more (the other process exited,
    // exec'd or copied them): the block is this process's again, without a
    // copy. (Block by block: the next fork has only what was written since
    // to write-protect again.)
    const uint64_t s = std::max(start, block), e = std::min(v.end, block + kCowBlock);
    if (inner_->Syscall(SYS_mprotect, {s, e - s, static_cast<uint64_t>(v.prot), 0, 0, 0}) < 0) return false;
    SplitAt(s);
    SplitAt(e);
    Vma& piece = vmas_.at(s);
    piece.cow = piece.anon_cow = false;
    ++cow_takeovers_;
    MergeAt(e);
    MergeAt(s);
    return true;
  }
  // Fault-around for a writer walking forward: when the page before is
  // already this process's own (a run copied by the last faults), copy as
  // much again, within this block.
  uint64_t run = kPage;
  if (page == start && it != vmas_.begin()) {
    auto prev = std::prev(it);
    const Vma& p = prev->second;
    if (p.end == page && !p.cow && !p.shared && page > block) {
      run = std::clamp(page - std::max(prev->first, block), kPage, kCowMaxRun);
    }
  }
  // A scattered writer leaves private and shared pages interleaved, one
  // mapping each, here and in the stub (whose kernel allows ~65530): past
  // kManyVmas pieces, a fault copies the rest of its block, which merges.
  if (vmas_.size() > kManyVmas) run = kCowBlock;
  const uint64_t end = std::min({v.end, block + kCowBlock, page + run});
  return CopyOnWrite(page, end - page, start, v.end) == 0;
}

void MemoryAddressSpace::PrepareWrite(uint64_t addr, uint64_t len) {
  uint64_t pos = addr & ~(kPage - 1);
  const uint64_t end = addr + len < addr ? ~uint64_t{0} : addr + len;
  while (pos < end) {
    auto it = vmas_.upper_bound(pos);
    if (it == vmas_.begin()) return;
    --it;
    if (pos >= it->second.end) return;
    const Vma& v = it->second;
    if (v.anon_cow && (v.prot & PROT_WRITE)) {
      if (Exclusive(v)) {
        if (!ResolveWriteFault(pos)) return;
        continue;
      }
      const uint64_t page_end = end > ~(kPage - 1) ? ~(kPage - 1) : PageUp(end);  // (no wrap past 2^64)
      const uint64_t stop = std::min({v.end, (pos & ~(kCowBlock - 1)) + kCowBlock, page_end});
      if (CopyOnWrite(pos, stop - pos, it->first, v.end) < 0) return;
      continue;  // (pos is now in a private piece: the loop moves past it)
    }
    pos = v.end;
  }
}

long MemoryAddressSpace::Unmap(uint64_t addr, uint64_t len) {
  len = PageUp(len);
  if (addr % kPage || len == 0 || addr + len < addr) return -EINVAL;
  long r = inner_->Syscall(SYS_munmap, {addr, len, 0, 0, 0, 0});
  if (r < 0) return r;
  SplitAt(addr);
  SplitAt(addr + len);
  for (auto it = vmas_.lower_bound(addr); it != vmas_.end() && it->first < addr + len;) it = vmas_.erase(it);
  return 0;
}

long MemoryAddressSpace::Protect(uint64_t addr, uint64_t len, int prot) {
  len = PageUp(len);
  if (addr % kPage || addr + len < addr) return -EINVAL;
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) return -EINVAL;
  if (len == 0) return 0;
  // Linux: ENOMEM when part of the range is not mapped.
  uint64_t pos = addr;
  for (auto it = vmas_.upper_bound(addr); pos < addr + len;) {
    auto c = it == vmas_.begin() ? vmas_.end() : std::prev(it);
    if (c == vmas_.end() || c->first > pos || c->second.end <= pos) return -ENOMEM;
    pos = c->second.end;
    it = vmas_.upper_bound(pos);
  }
  // Writable pages of a shared file cache: a private copy first.
  if (prot & PROT_WRITE) {
    if (long r = BreakCow(addr, len); r < 0) return r;
  }
  long r = inner_->Syscall(SYS_mprotect, {addr, len, static_cast<uint64_t>(prot), 0, 0, 0});
  if (r < 0) return r;
  SplitAt(addr);
  SplitAt(addr + len);
  for (auto it = vmas_.lower_bound(addr); it != vmas_.end() && it->first < addr + len; ++it) it->second.prot = prot;
  // Merge neighbours that became alike again (malloc grows arenas one
  // mprotect at a time; the list must not grow with every call).
  MergeAt(addr);
  MergeAt(addr + len);
  return 0;
}

long MemoryAddressSpace::Advise(uint64_t addr, uint64_t len, int advice) {
  if (addr % kPage || addr + len < addr) return -EINVAL;
  len = PageUp(len);
  if (advice != MADV_DONTNEED && advice != MADV_REMOVE && advice != MADV_FREE) return 0;
  // DONTNEED / FREE on private memory: the pages read as zeros afterwards
  // and go back to the host now. REMOVE also on shared memory. Private
  // memory still shared copy-on-write with another process gets fresh zero
  // pages of its own instead (the other process keeps the data).
  std::vector<std::pair<uint64_t, uint64_t>> fresh;
  auto it = vmas_.upper_bound(addr);
  if (it != vmas_.begin() && std::prev(it)->second.end > addr) --it;
  for (; it != vmas_.end() && it->first < addr + len; ++it) {
    const uint64_t s = std::max(addr, it->first), e = std::min(addr + len, it->second.end);
    if (s >= e) continue;
    if (it->second.anon_cow) {
      fresh.emplace_back(s, e);
    } else if (!it->second.cow && (!it->second.shared || advice == MADV_REMOVE)) {
      file_.Discard(it->second.chunk->offset + it->second.chunk_offset + (s - it->first), e - s);
    }
  }
  for (auto [s, e] : fresh) {
    auto v = std::prev(vmas_.upper_bound(s));
    const int prot = v->second.prot;
    const std::string name = v->second.name;
    auto chunk = AllocateChunk(file_, e - s);
    if (!chunk) return -ENOMEM;
    long r = Replace(s, e - s, prot, std::move(chunk), 0, false, false,
                     name);
    if (r < 0) return r;
  }
  return 0;
}

long MemoryAddressSpace::Remap(uint64_t old_addr, uint64_t old_len, uint64_t new_len, int flags, uint64_t new_addr) {
  if (old_addr % kPage || (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED))) return -EINVAL;
  if ((flags & MREMAP_FIXED) && (!(flags & MREMAP_MAYMOVE) || new_addr % kPage)) return -EINVAL;
  old_len = PageUp(old_len);
  new_len = PageUp(new_len);
  if (new_len == 0 || old_len == 0 || old_addr + old_len < old_addr) return -EINVAL;
  // The old range is mapped without holes (it may span the pieces an
  // earlier in-place growth added).
  auto it = vmas_.upper_bound(old_addr);
  if (it == vmas_.begin()) return -EFAULT;
  --it;
  if (it->second.end <= old_addr) return -EFAULT;
  const Vma v = it->second;
  {
    uint64_t pos = it->second.end;
    for (auto n = std::next(it); pos < old_addr + old_len; ++n) {
      if (n == vmas_.end() || n->first != pos) return -EFAULT;
      pos = n->second.end;
    }
  }
  if (!(flags & MREMAP_FIXED)) {
    if (new_len <= old_len) {
      if (new_len < old_len) Unmap(old_addr + new_len, old_len - new_len);
      return static_cast<long>(old_addr);
    }
    // Grow in place when the pages after it are free.
    const uint64_t ext = old_addr + old_len, ext_len = new_len - old_len;
    auto next = vmas_.lower_bound(ext);
    auto last = std::prev(vmas_.upper_bound(ext - 1));
    const bool free_after = (next == vmas_.end() || next->first >= ext + ext_len) && last->second.end == ext &&
                            ext + ext_len <= platform_.max_user_address() &&
                            !platform_.stub_range().Overlaps(ext, ext + ext_len);
    if (free_after) {
      auto chunk = AllocateChunk(file_, ext_len);
      if (!chunk) return -ENOMEM;
      long r = Install(ext, ext_len, v.prot, v.shared, std::move(chunk), 0, v.name);
      return r < 0 ? r : static_cast<long>(old_addr);
    }
    return -ENOMEM;  // the kernel picks an address and asks again with MREMAP_FIXED
  }
  if (platform_.stub_range().Overlaps(new_addr, new_addr + new_len) || new_addr + new_len > platform_.max_user_address() ||
      (new_addr < old_addr + old_len && old_addr < new_addr + new_len)) {
    return -EINVAL;
  }
  auto chunk = AllocateChunk(file_, new_len);
  if (!chunk) return -ENOMEM;
  const uint64_t copy_len = std::min(old_len, new_len);
  for (auto p = it; p != vmas_.end() && p->first < old_addr + copy_len; ++p) {
    const uint64_t s = std::max(old_addr, p->first), e = std::min(old_addr + copy_len, p->second.end);
    CopyData(p->second.chunk->offset + p->second.chunk_offset + (s - p->first), chunk->offset + (s - old_addr), e - s);
  }
  Unmap(new_addr, new_len);
  long r = Install(new_addr, new_len, v.prot, v.shared, std::move(chunk), 0, v.name);
  if (r < 0) return r;
  Unmap(old_addr, old_len);
  return static_cast<long>(new_addr);
}

void MemoryAddressSpace::CopyData(uint64_t src, uint64_t dst, uint64_t len) {
  // Only the extents that hold data: untouched pages stay holes in the copy
  // (reading a hole through the mapping would commit a page on both sides).
  // SEEK_HOLE walks the file to the end of the data extent, however far past
  // `len` that is, so a short copy (a copy-on-write fault) asks SEEK_DATA
  // page by page instead, which answers at once where there is data.
  uint64_t pos = src;
  const uint64_t end = src + len;
  constexpr uint64_t kShort = uint64_t{1} << 20;
  while (pos < end) {
    off_t d = ::lseek(file_.fd(), static_cast<off_t>(pos), SEEK_DATA);
    if (d < 0 || static_cast<uint64_t>(d) >= end) break;
    uint64_t stop;
    if (len <= kShort) {
      stop = static_cast<uint64_t>(d) + kPage;
      while (stop < end && ::lseek(file_.fd(), static_cast<off_t>(stop), SEEK_DATA) == static_cast<off_t>(stop)) {
        stop += kPage;
      }
    } else {
      off_t h = ::lseek(file_.fd(), d, SEEK_HOLE);
      stop = h < 0 ? end : static_cast<uint64_t>(h);
    }
    stop = std::min(stop, end);
    uint8_t* to = file_.at(dst + (static_cast<uint64_t>(d) - src));
    // pwrite, not memcpy: the file takes whole pages without zeroing them
    // first, and the router's page tables stay out of it (copy-on-write
    // writes: 4.9 -> 4.0 us a page). The router may pwrite this descriptor
    // only (service_main.cc).
    const uint64_t n = stop - static_cast<uint64_t>(d);
    const uint64_t dst_off = dst + (static_cast<uint64_t>(d) - src);
    uint64_t put = 0;
    while (put < n) {
      const ssize_t w = ::pwrite(file_.fd(), file_.at(static_cast<uint64_t>(d) + put), n - put,
                                 static_cast<off_t>(dst_off + put));
      if (w <= 0) break;
      put += static_cast<uint64_t>(w);
    }
    if (put < n) std::memcpy(to + put, file_.at(static_cast<uint64_t>(d) + put), n - put);
    pos = stop;
  }
}

std::unique_ptr<platform::AddressSpace> MemoryAddressSpace::Fork() {
  // A host fork of the stub gives the child the same layout at once, every
  // mapping on the same memory-file pages: right for MAP_SHARED memory.
  // Private memory then gets pages of its own: a copy of the parent's
  // (only the extents that hold data), mapped over the inherited range.
  // Private memory is shared copy-on-write (Vma::anon_cow): both stubs map
  // it without PROT_WRITE, and a write on either side copies the page (or
  // a run of pages) it falls in (ResolveWriteFault). The parent's shadows
  // now hold pages the child shares: copies go into fresh ones.
  shadows_.clear();
  // Write-protected before the host fork, so that the child's stub
  // inherits them so (one round trip per mapping, in the parent only).
  // Pieces still copy-on-write from an earlier fork are read-only already.
  // Should the fork fail, the parent's pieces are merely copy-on-write with
  // nobody else: its next write takes them back.
  for (auto& [start, v] : vmas_) {
    if (v.shared || v.cow) continue;
    if (v.prot & PROT_WRITE) {
      const uint64_t ro = static_cast<uint64_t>(v.prot & ~PROT_WRITE);
      long r = inner_->Syscall(SYS_mprotect, {start, v.end - start, ro, 0, 0, 0});
      if (r < 0) throw SysError(static_cast<int>(-r), "fork", "write-protecting the parent's memory");
    }
    v.cow = v.anon_cow = true;
  }
  auto child = std::make_unique<MemoryAddressSpace>(platform_, file_, inner_->Fork());
  child->vmas_ = vmas_;  // the host fork mapped the same pages
  child->patches_ = patches_;
  return child;
}

template <typename Fn>
ssize_t MemoryAddressSpace::Access(uint64_t addr, size_t len, int need, Fn&& fn) {
  if (!alive()) return -ESRCH;
  if (len == 0) return 0;
  if (addr + len < addr) len = static_cast<size_t>(0 - addr);
  size_t done = 0;
  while (done < len) {
    const uint64_t pos = addr + done;
    auto it = vmas_.upper_bound(pos);
    if (it == vmas_.begin()) break;
    --it;
    const Vma& v = it->second;
    // Never a write into pages shared copy-on-write (PrepareWrite made the
    // writable ones private; one it could not copy stays refused).
    if (pos >= v.end || !(v.prot & need) || (need == PROT_WRITE && v.cow)) break;
    const size_t n = std::min<uint64_t>(len - done, v.end - pos);
    fn(file_.at(v.chunk->offset + v.chunk_offset + (pos - it->first)), done, n);
    done += n;
  }
  return done ? static_cast<ssize_t>(done) : -EFAULT;
}

ssize_t MemoryAddressSpace::ReadMemory(uint64_t addr, void* dst, size_t len) {
  // x86 pages that are mapped at all are readable (write and exec imply read).
  return Access(addr, len, PROT_READ | PROT_WRITE | PROT_EXEC, [&](uint8_t* p, size_t at, size_t n) {
    std::memcpy(static_cast<uint8_t*>(dst) + at, p, n);
  });
}

ssize_t MemoryAddressSpace::WriteMemory(uint64_t addr, const void* src, size_t len) {
  PrepareWrite(addr, len);
  return Access(addr, len, PROT_WRITE, [&](uint8_t* p, size_t at, size_t n) {
    std::memcpy(p, static_cast<const uint8_t*>(src) + at, n);
  });
}

bool MemoryAddressSpace::Unmapped(uint64_t addr, uint64_t len) const {
  auto it = vmas_.upper_bound(addr);
  if (it != vmas_.begin() && std::prev(it)->second.end > addr) return false;
  return it == vmas_.end() || it->first >= addr + len;
}

int MemoryAddressSpace::ProtAt(uint64_t addr) const {
  auto it = vmas_.upper_bound(addr);
  if (it == vmas_.begin()) return -1;
  --it;
  return addr < it->second.end ? it->second.prot : -1;
}

bool MemoryAddressSpace::PatchCode(uint64_t addr, const void* src, size_t len) {
  if (len == 0 || addr + len < addr || !alive()) return false;
  auto find = [&]() -> Vma* {
    auto it = vmas_.upper_bound(addr);
    if (it == vmas_.begin()) return nullptr;
    --it;
    if (addr + len > it->second.end || it->second.shared) return nullptr;
    return &it->second;
  };
  Vma* v = find();
  if (v == nullptr) return false;
  if (v->cow) {
    const uint64_t page = addr & ~(kPage - 1);
    if (BreakCow(page, PageUp(addr + len) - page) < 0) return false;
    v = find();
    if (v == nullptr || v->cow) return false;
  }
  auto it = std::prev(vmas_.upper_bound(addr));
  uint8_t* dst = file_.at(v->chunk->offset + v->chunk_offset + (addr - it->first));
  if (len == 8 && addr % 8 == 0) {
    // A patch table entry: one store, as other threads may jump through it.
    uint64_t word;
    std::memcpy(&word, src, 8);
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(dst)).store(word, std::memory_order_release);
  } else {
    std::memcpy(dst, src, len);
  }
  return true;
}

void MemoryAddressSpace::Name(uint64_t addr, uint64_t len, const std::string& name) {
  len = PageUp(len);
  SplitAt(addr);
  SplitAt(addr + len);
  for (auto it = vmas_.lower_bound(addr); it != vmas_.end() && it->first < addr + len; ++it) it->second.name = name;
}

std::string MemoryAddressSpace::Maps() const {
  std::string out;
  char line[160];
  // Neighbours with the same protection, sharing and name show as one line,
  // as Linux merges them (a library's text stays one line after a page of it
  // was copied for a patched call site).
  for (auto it = vmas_.begin(); it != vmas_.end();) {
    const Vma& v = it->second;
    const uint64_t start = it->first;
    uint64_t end = v.end;
    for (++it; it != vmas_.end() && it->first == end && it->second.prot == v.prot &&
               it->second.shared == v.shared && it->second.name == v.name;
         ++it) {
      end = it->second.end;
    }
    std::snprintf(line, sizeof line, "%08lx-%08lx %c%c%c%c %08lx 00:00 0", static_cast<unsigned long>(start),
                  static_cast<unsigned long>(end), (v.prot & PROT_READ) ? 'r' : '-', (v.prot & PROT_WRITE) ? 'w' : '-',
                  (v.prot & PROT_EXEC) ? 'x' : '-', v.shared ? 's' : 'p', 0ul);
    out += line;
    if (!v.name.empty()) out += std::string(20, ' ') + v.name;
    out += '\n';
  }
  return out;
}

void FileCache::Trim() {
  while (reserved_ > keep_bytes_) {
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.chunk.use_count() == 1 && (victim == entries_.end() || it->second.last_use < victim->second.last_use)) {
        victim = it;
      }
    }
    if (victim == entries_.end()) return;  // everything is in use
    filled_ -= std::min(filled_, victim->second.filled_bytes);
    reserved_ -= std::min(reserved_, victim->second.chunk->len);
    entries_.erase(victim);
  }
}

void FileCache::Forget(uint64_t dev, uint64_t ino) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->first.dev == dev && it->first.ino == ino) {
      filled_ -= std::min(filled_, it->second.filled_bytes);
      reserved_ -= std::min(reserved_, it->second.chunk->len);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

uint64_t MemoryAddressSpace::mapped() const {
  uint64_t n = 0;
  for (const auto& [start, v] : vmas_) n += v.end - start;
  return n;
}

uint64_t MemoryAddressSpace::resident() const {
  uint64_t n = 0;
  for (const auto& [start, v] : vmas_) {
    uint64_t pos = v.chunk->offset + v.chunk_offset;
    const uint64_t end = pos + (v.end - start);
    while (pos < end) {
      off_t d = ::lseek(file_.fd(), static_cast<off_t>(pos), SEEK_DATA);
      if (d < 0 || static_cast<uint64_t>(d) >= end) break;
      off_t h = ::lseek(file_.fd(), d, SEEK_HOLE);
      uint64_t stop = h < 0 ? end : std::min<uint64_t>(static_cast<uint64_t>(h), end);
      n += stop - static_cast<uint64_t>(d);
      pos = stop;
    }
  }
  return n;
}

}  // namespace bulkhead::router
