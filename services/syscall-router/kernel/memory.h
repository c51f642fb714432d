// Application memory in the memory file.
//
// Every page of application memory is a page of one memfd (the memory
// file): the stubs map ranges of it MAP_SHARED (injected mmap), and the
// router maps the whole file once, so that it reads and writes application
// memory with memcpy instead of cross-process copies. The router therefore
// knows every mapping (a VMA list per address space) and implements what the
// host kernel did for anonymous memory: fork shares private memory
// copy-on-write (write-protected in both stubs; a write fault copies the
// page, see Vma::anon_cow), MAP_SHARED memory stays shared across
// fork, munmap and mprotect
// split mappings, freed ranges go back to the host (FALLOC_FL_PUNCH_HOLE).
//
// MemoryFile: the file, the router's mapping of it, and a best-fit
// allocator of page ranges (indexed by size: O(log n) however fragmented)
// inside the 2 MiB chunks the mem-broker grants (ChunkSource).
// MemoryAddressSpace: a platform::AddressSpace decorator that turns the
// kernel's anonymous mmaps into memory-file mappings and serves
// ReadMemory/WriteMemory from the router's mapping, honouring protections.
// Only the kernel's thread may use either.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "base/fd.h"
#include "schemas/mem.capnp.h"
#include "base/mapping.h"
#include "services/syscall-router/kernel/patch.h"
#include "services/syscall-router/platform/platform.h"

namespace bulkhead::router {

// What memory-file pages hold. With the mem-broker, each kind's pages come
// from chunks granted for that kind (the broker's ledger records it), so a
// chunk never mixes application memory with file pages; without one, kinds
// are only counted.
enum class MemKind : uint8_t { kAnon = 0, kFile = 1, kTmpfs = 2, kMeta = 3 };
inline constexpr int kMemKinds = 4;
const char* MemKindName(MemKind k);

// Where a MemoryFile gets its space when the mem-broker owns allocation:
// 2 MiB chunks of the file, by index, granted and released in contiguous
// runs (services/mem-broker/ledger.h).
class ChunkSource {
 public:
  static constexpr uint64_t kChunk = schema::mem::CHUNK_BYTES;  // the broker's (mem.capnp)
  virtual ~ChunkSource() = default;
  // `count` contiguous chunks for pages of `kind`: the first one's index,
  // or -1 (none free, or the broker cannot be reached).
  virtual int64_t Grant(uint32_t count, MemKind kind) = 0;
  virtual void Release(uint32_t first, uint32_t count) = 0;
};

class MemoryFile {
 public:
  // A sparse memfd of `size` bytes (nothing is committed until written),
  // mapped into the router. Throws SysError.
  explicit MemoryFile(uint64_t size = uint64_t{64} << 30);
  // Adopts an existing memory file (the sandbox's, from the supervisor): its
  // size is the file's; anything in it but chunk 0 (the mem-broker's ledger)
  // is discarded (a router that starts afresh has no application yet, a
  // previous router's pages are garbage).
  explicit MemoryFile(UniqueFd fd);

  int fd() const { return fd_.get(); }
  uint64_t size() const { return map_.size(); }
  uint8_t* at(uint64_t offset) const { return map_.data() + offset; }

  // A page-aligned range of `len` bytes (rounded up to pages) for pages of
  // `kind`; -1 when the file is full. Fresh ranges read as zeros.
  int64_t Allocate(uint64_t len, MemKind kind = MemKind::kAnon);
  // Gives a range of `kind` back. Its pages go back to the host in batches
  // (ReleasePending), and the range is not handed out again before.
  void Free(uint64_t offset, uint64_t len, MemKind kind = MemKind::kAnon);
  // Punches queued ranges (neighbours together) until `max_bytes` went back
  // and makes them free space (whole chunks beyond the reserve go back to
  // the source); the bytes released. The kernel calls it between events.
  uint64_t ReleasePending(uint64_t max_bytes = ~uint64_t{0});
  // Bytes freed and not yet given back to the host.
  uint64_t pending_release() const { return pending_bytes_; }
  // Bytes given back so far, in how many punches.
  uint64_t released_bytes() const { return released_bytes_; }
  uint64_t release_batches() const { return release_batches_; }
  // A slice of the release queue: what the kernel gives back per loop turn.
  static constexpr uint64_t kReleaseSlice = uint64_t{16} << 20;
  // Zeroes a range and returns its pages to the host (MADV_DONTNEED of
  // private anonymous memory).
  void Discard(uint64_t offset, uint64_t len);

  // From now on the space comes from `source` (the mem-broker): chunk 0 is
  // left alone (the broker's ledger) and nothing else is used until granted;
  // ranges come from granted chunks of their kind, more are asked for when
  // none fits, and whole free chunks beyond a reserve go back. Call before
  // any Allocate.
  void SetChunkSource(ChunkSource* source);
  // Chunks held from the source (0 without one), in all or of one kind.
  uint64_t granted_chunks() const;
  uint64_t granted_chunks(MemKind kind) const { return pools_[Index(kind)].granted / ChunkSource::kChunk; }

  uint64_t allocated() const;
  uint64_t allocated(MemKind kind) const { return allocated_[static_cast<int>(kind)]; }
  // Bytes of the file that hold data (pages the host committed).
  uint64_t resident() const;

 private:
  // Free space: with a source, one pool per kind (each over its own
  // chunks); without, pool 0 serves every kind.
  struct Pool {
    std::map<uint64_t, uint64_t> free;                 // offset -> length, coalesced
    std::set<std::pair<uint64_t, uint64_t>> by_len;   // (length, offset): best fit
    uint64_t granted = 0;                              // bytes of granted chunks
  };
  int Index(MemKind kind) const { return source_ ? static_cast<int>(kind) : 0; }
  void MapWhole(uint64_t size);
  UniqueFd fd_;
  Mapping map_;
  void AddFree(Pool& pool, uint64_t offset, uint64_t len, bool may_release, MemKind kind);  // coalescing
  void AdviseChunks(uint64_t offset, uint64_t len);
  struct Pending {
    uint64_t offset, len;
    MemKind kind;
    bool operator<(const Pending& o) const { return offset < o.offset; }
  };
  std::vector<Pending> pending_;  // freed, not punched yet
  uint64_t pending_bytes_ = 0, released_bytes_ = 0, release_batches_ = 0;
  // A queue this full goes back at once (a slice), whatever the loop does.
  static constexpr uint64_t kReleaseHigh = uint64_t{64} << 20;
  // Whole free chunks beyond the kind's reserve go back to the source.
  void ReleaseSpare(Pool& pool, uint64_t start, uint64_t end, MemKind kind);
  static void InsertFree(Pool& pool, uint64_t offset, uint64_t len);
  static void EraseFree(Pool& pool, uint64_t offset);
  Pool pools_[kMemKinds];
  uint64_t allocated_[kMemKinds] = {};
  ChunkSource* source_ = nullptr;
  // Free bytes kept when chunks could go back, and chunks asked for at once
  // beyond what a request needs (most mappings need no round trip): eight
  // for application memory, two for each other kind.
  static uint64_t ReserveChunks(MemKind kind) { return kind == MemKind::kAnon ? 8 : 2; }
};

// A range of the memory file, shared by every mapping that refers to it
// (split halves of one mapping, a MAP_SHARED mapping and its forks). Freed
// when the last reference goes.
struct Chunk {
  Chunk(MemoryFile& f, uint64_t off, uint64_t l, MemKind k = MemKind::kAnon) : file(f), offset(off), len(l), kind(k) {}
  ~Chunk() { file.Free(offset, len, kind); }
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;
  MemoryFile& file;
  const uint64_t offset;
  const uint64_t len;
  const MemKind kind;
};

// A fresh range of `len` bytes of `kind` as a Chunk; null when the file is full.
std::shared_ptr<Chunk> AllocateChunk(MemoryFile& file, uint64_t len, MemKind kind = MemKind::kAnon);

struct Vma {
  uint64_t end = 0;  // exclusive; the key of the map is the start
  int prot = 0;
  bool shared = false;  // MAP_SHARED: fork shares it, else copies
  // Read-only pages of a cached file (FileCache) shared by every process
  // that maps them: fork shares them too, and the first mprotect that adds
  // PROT_WRITE gives the mapping a private copy first.
  bool cow = false;
  // Private memory that fork left shared with the other process, copy on
  // write: `prot` is what the application asked for, the stub maps it
  // without PROT_WRITE, and the first write (a fault, or the router writing
  // there) gives this process a copy of that page (a run of pages for a
  // writer walking forward), or just the write permission back for the
  // whole mapping when no other process shares the pages any more.
  bool anon_cow = false;
  std::shared_ptr<Chunk> chunk;
  uint64_t chunk_offset = 0;  // where `start` lies in the chunk
  std::string name;           // for /proc/PID/maps: a path, [heap], [stack]
};

class MemoryAddressSpace final : public platform::AddressSpace {
 public:
  MemoryAddressSpace(platform::Platform& platform, MemoryFile& file,
                     std::unique_ptr<platform::AddressSpace> inner);

  platform::AddressSpace& inner() { return *inner_; }

  // mmap (anonymous: memory-file backed), munmap, mprotect, madvise and
  // mremap are served here; other calls go to the stub unchanged.
  long Syscall(long nr, const platform::SyscallArgs& args) override;
  long MapFile(uint64_t addr, uint64_t len, int prot, int file_fd, uint64_t offset) override {
    return inner_->MapFile(addr, len, prot, file_fd, offset);
  }
  std::unique_ptr<platform::AddressSpace> Fork() override;
  ssize_t ReadMemory(uint64_t addr, void* dst, size_t len) override;
  ssize_t WriteMemory(uint64_t addr, const void* src, size_t len) override;
  bool alive() const override { return inner_->alive(); }
  pid_t stub_pid() const override { return inner_->stub_pid(); }
  size_t stub_threads() const override { return inner_->stub_threads(); }

  // Maps [chunk_offset, chunk_offset + len) of `chunk` read-only-shared at
  // [addr, addr + len), replacing what was there, as a copy-on-write mapping
  // (Vma::cow). `prot` must not include PROT_WRITE.
  long MapCow(uint64_t addr, uint64_t len, int prot, std::shared_ptr<Chunk> chunk, uint64_t chunk_offset,
              std::string name);
  // Maps [chunk_offset, chunk_offset + len) of `chunk` MAP_SHARED at addr,
  // replacing what was there (a shared mapping of a tmpfs file).
  long MapShared(uint64_t addr, uint64_t len, int prot, std::shared_ptr<Chunk> chunk, uint64_t chunk_offset,
                 std::string name);

  // Labels [addr, addr + len) for /proc/PID/maps.
  void Name(uint64_t addr, uint64_t len, const std::string& name);
  // /proc/PID/maps.
  std::string Maps() const;
  // Bytes mapped, and bytes of them that hold data.
  uint64_t mapped() const;
  uint64_t resident() const;
  const std::map<uint64_t, Vma>& vmas() const { return vmas_; }

  // A SEGV_ACCERR at `addr`: true if it was a write to copy-on-write memory
  // (Vma::anon_cow) and the page is now writable (the task retries the
  // instruction); false: a real fault.
  // *already (if given) is set when the page was made writable before this
  // fault was handled (another thread's fault on it, or a run or block that
  // covered it): nothing to do but run the instruction again.
  bool ResolveWriteFault(uint64_t addr, bool* already = nullptr);
  // Copy-on-write pages a write of [addr, addr + len) would touch, made
  // private first (the router's own writes into application memory).
  void PrepareWrite(uint64_t addr, uint64_t len);
  // Writes into application code, whatever the protection (system call
  // site patching, patch.h): only inside one private mapping, whose pages
  // become this address space's own first (a copy of a shared file page or
  // of a block fork left shared). False if [addr, addr + len) is not in one
  // private mapping or no copy could be made.
  bool PatchCode(uint64_t addr, const void* src, size_t len);
  // True if nothing is mapped in [addr, addr + len).
  bool Unmapped(uint64_t addr, uint64_t len) const;
  // The protection of the mapping at addr, or -1 if nothing is mapped there.
  int ProtAt(uint64_t addr) const;
  PatchState& patches() { return patches_; }

  // Copy-on-write pages copied, and mappings taken over whole, so far.
  uint64_t cow_copies() const { return cow_copies_; }
  uint64_t cow_takeovers() const { return cow_takeovers_; }

 private:
  long Map(uint64_t addr, uint64_t len, int prot, int flags);
  long Unmap(uint64_t addr, uint64_t len);
  long Protect(uint64_t addr, uint64_t len, int prot);
  long Remap(uint64_t old_addr, uint64_t old_len, uint64_t new_len, int flags, uint64_t new_addr);
  long Advise(uint64_t addr, uint64_t len, int advice);
  // Maps chunk pages at [addr, addr + len) in the stub, replacing what was
  // there, and records the VMA.
  long Replace(uint64_t addr, uint64_t len, int prot, std::shared_ptr<Chunk> chunk, uint64_t chunk_offset,
               bool shared, bool cow, std::string name);
  // Splits the VMA containing `at` (if any) so that one starts exactly there.
  void SplitAt(uint64_t at);
  // Maps [addr, addr+len) of `chunk` from chunk_offset into the stub and
  // records it (the range must be free in vmas_).
  long Install(uint64_t addr, uint64_t len, int prot, bool shared, std::shared_ptr<Chunk> chunk,
               uint64_t chunk_offset, std::string name);
  // Gives cow mappings in [addr, addr + len) private pages (a copy).
  long BreakCow(uint64_t addr, uint64_t len);
  // Copies the pages of [off, off+len) that hold data to dst_off.
  void CopyData(uint64_t src_off, uint64_t dst_off, uint64_t len);
  // True if every reference to v's pages is a mapping of this address space.
  bool Exclusive(const Vma& v) const;
  // Joins the VMA ending at `edge` with the one starting there when they
  // continue each other (same pages, flags and name).
  void MergeAt(uint64_t edge);
  // Gives [addr, addr + len) (page-aligned, inside one copy-on-write
  // mapping [vma_start, vma_end) and one 2 MiB block) private copies of its
  // pages, in this address space's shadow of that block.
  long CopyOnWrite(uint64_t addr, uint64_t len, uint64_t vma_start, uint64_t vma_end);
  // The shadow that holds addr's copy: a live one that covers addr, or a
  // new one for the part of [vma_start, vma_end) in addr's block that no
  // other shadow covers. *base: the address its first page stands for.
  std::shared_ptr<Chunk> ShadowFor(uint64_t addr, uint64_t vma_start, uint64_t vma_end, uint64_t* base);
  template <typename Fn>
  ssize_t Access(uint64_t addr, size_t len, int need, Fn&& fn);

  platform::Platform& platform_;
  MemoryFile& file_;
  std::unique_ptr<platform::AddressSpace> inner_;
  std::map<uint64_t, Vma> vmas_;
  // Private copies of copy-on-write pages, by the address their first page
  // stands for (a page's copy sits at its address minus that): held by the
  // VMAs that map them, forgotten here when those go, dropped at fork.
  std::map<uint64_t, std::weak_ptr<Chunk>> shadows_;
  uint64_t cow_copies_ = 0, cow_takeovers_ = 0;
  PatchState patches_;
};

// The sandbox's page cache: file contents in the memory file, one range per
// file (its size in pages), filled 64 KiB window by window as mappings need
// them. Read-only mappings of a file (executables' and libraries' text and
// rodata, whether exec or ld.so's mmap maps them) map these pages
// copy-on-write: every process that maps libc maps the same pages, a file
// is read once per sandbox, and fork copies none of it. Keyed by the file's
// identity (device, inode, size, mtime): a changed file is a new entry.
// Entries no mapping uses are dropped, oldest first, while they reserve
// more than `keep_bytes` of the memory file.
class FileCache {
 public:
  explicit FileCache(MemoryFile& file, uint64_t keep_bytes = uint64_t{64} << 20)
      : file_(file), keep_bytes_(keep_bytes) {}

  struct Key {
    uint64_t dev, ino, size;
    int64_t mtime_ns;
    auto operator<=>(const Key&) const = default;
  };
  static constexpr uint64_t kWindow = uint64_t{64} << 10;
  // Larger files are not cached (their mappings get private copies): an
  // entry reserves the file's size in the memory file.
  static constexpr uint64_t kMaxFile = uint64_t{256} << 20;

  // The file's pages (offset 0 is the file's start), with every window that
  // [offset, offset + bytes) touches filled by fill(dst, file_offset, len):
  // the bytes it wrote (fewer: the file ended) or -errno. nullptr and *err
  // when it cannot be had (-ENOMEM, -EFBIG past kMaxFile, fill's error).
  template <typename Fill>
  std::shared_ptr<Chunk> Get(const Key& key, uint64_t offset, uint64_t bytes, Fill&& fill, long* err) {
    if (key.size == 0 || key.size > kMaxFile) {
      *err = key.size == 0 ? -EINVAL : -EFBIG;
      return nullptr;
    }
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      Entry e;
      e.chunk = AllocateChunk(file_, key.size, MemKind::kFile);
      if (!e.chunk) {
        *err = -ENOMEM;
        return nullptr;
      }
      e.filled.assign((key.size + kWindow - 1) / kWindow, false);
      reserved_ += e.chunk->len;
      it = entries_.emplace(key, std::move(e)).first;
    }
    Entry& e = it->second;
    e.last_use = ++clock_;
    const uint64_t end = std::min(key.size, offset + std::min(bytes, key.size));
    bool filled_any = false;
    for (uint64_t w = offset / kWindow; w * kWindow < end;) {
      if (e.filled[w]) {
        ++w;
        continue;
      }
      // A run of windows to fill, in one call.
      uint64_t w2 = w;
      while (w2 * kWindow < end && !e.filled[w2]) ++w2;
      const uint64_t from = w * kWindow, to = std::min(key.size, w2 * kWindow);
      const long n = fill(file_.at(e.chunk->offset + from), from, to - from);
      if (n < 0) {
        *err = n;
        return nullptr;
      }
      // (Short: the file shrank under its old identity; the rest reads as
      // zeros, as the fresh pages are.)
      for (uint64_t i = w; i < w2; ++i) e.filled[i] = true;
      filled_ += to - from;
      e.filled_bytes += to - from;
      ++fills_;
      filled_any = true;
      w = w2;
    }
    if (!filled_any) ++hits_;
    auto chunk = e.chunk;
    Trim();
    return chunk;
  }
  // The sandbox changed this file: its entries go (mappings keep their
  // pages), so that the next mapping reads it afresh even when its size and
  // mtime tick did not change.
  void Forget(uint64_t dev, uint64_t ino);
  uint64_t hits() const { return hits_; }
  // Runs of windows read from files.
  uint64_t misses() const { return fills_; }
  // Bytes of file pages held (filled windows, mapped or kept for reuse).
  uint64_t cached() const { return filled_; }
  // Bytes of the memory file the entries reserve (their files' sizes):
  // what keep_bytes bounds for entries no mapping uses.
  uint64_t reserved() const { return reserved_; }

 private:
  void Trim();
  struct Entry {
    std::shared_ptr<Chunk> chunk;
    std::vector<bool> filled;  // per kWindow
    uint64_t filled_bytes = 0;
    uint64_t last_use = 0;
  };
  MemoryFile& file_;
  const uint64_t keep_bytes_;
  std::map<Key, Entry> entries_;
  uint64_t filled_ = 0, reserved_ = 0, clock_ = 0, hits_ = 0, fills_ = 0;
};

}  // namespace bulkhead::router
