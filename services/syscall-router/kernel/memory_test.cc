// The memory file and the memory layer of an address space: allocation,
// protections, splits, fork (private copied, shared shared), mremap, and that
// the stub sees exactly what the router wrote.
#include "services/syscall-router/kernel/memory.h"

#include <sys/mman.h>
#include <sys/syscall.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "services/syscall-router/platform/ptrace_platform.h"

namespace bulkhead::router {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = 0x10000000;

TEST(MemoryFile, AllocatesFreesAndCoalesces) {
  MemoryFile f(64 * kPage);
  int64_t a = f.Allocate(1);  // rounded up to a page
  int64_t b = f.Allocate(2 * kPage);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(b, a + static_cast<int64_t>(kPage));
  EXPECT_EQ(f.allocated(), 3 * kPage);
  std::memset(f.at(static_cast<uint64_t>(a)), 'x', kPage);
  f.Free(static_cast<uint64_t>(a), kPage);
  f.Free(static_cast<uint64_t>(b), 2 * kPage);
  EXPECT_EQ(f.allocated(), 0u);
  // Queued for release, not handed out before: a request that does not fit
  // otherwise gives the queue back first (one punch for the neighbours).
  EXPECT_EQ(f.pending_release(), 3 * kPage);
  EXPECT_EQ(f.Allocate(64 * kPage), 0);  // the whole file is one free range again
  EXPECT_EQ(f.pending_release(), 0u);
  EXPECT_EQ(f.release_batches(), 1u);
  EXPECT_EQ(f.released_bytes(), 3 * kPage);
  // Freed pages read as zeros.
  EXPECT_EQ(f.at(static_cast<uint64_t>(a))[0], 0);
  EXPECT_EQ(f.Allocate(kPage), -1);  // full
}

class MemoryAs : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = std::make_unique<MemoryFile>(uint64_t{1} << 30);
    platform::PtracePlatformOptions o;
    o.files = {file_->fd()};
    platform_ = platform::NewPtracePlatform(o);
    as_ = std::make_unique<MemoryAddressSpace>(*platform_, *file_, platform_->NewAddressSpace());
  }
  long Mmap(MemoryAddressSpace& as, uint64_t addr, uint64_t len, int prot, int share = MAP_PRIVATE) {
    return as.Mmap(addr, len, prot, share | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
  }
  std::unique_ptr<MemoryFile> file_;
  std::unique_ptr<platform::Platform> platform_;
  std::unique_ptr<MemoryAddressSpace> as_;
};

TEST_F(MemoryAs, RouterWritesAreWhatTheStubSees) {
  ASSERT_EQ(Mmap(*as_, kBase, 2 * kPage, PROT_READ | PROT_WRITE), static_cast<long>(kBase));
  ASSERT_TRUE(as_->CopyOut(kBase + 10, "hello", 6));
  char seen[6] = {};
  // Read back through the stub itself (process_vm_readv), not the file.
  ASSERT_EQ(as_->inner().ReadMemory(kBase + 10, seen, 6), 6);
  EXPECT_STREQ(seen, "hello");
  EXPECT_EQ(as_->ReadCString(kBase + 10, 16), "hello");
  EXPECT_EQ(as_->vmas().size(), 1u);
}

TEST_F(MemoryAs, ProtectionsAndHolesGiveEfault) {
  ASSERT_EQ(Mmap(*as_, kBase, 3 * kPage, PROT_READ | PROT_WRITE), static_cast<long>(kBase));
  ASSERT_EQ(as_->Mprotect(kBase + kPage, kPage, PROT_READ), 0);
  EXPECT_EQ(as_->vmas().size(), 3u);
  EXPECT_FALSE(as_->CopyOut(kBase + kPage, "x", 1));  // read-only
  char c;
  EXPECT_TRUE(as_->CopyIn(kBase + kPage, &c, 1));
  // A write across into the read-only page stops short.
  EXPECT_EQ(as_->WriteMemory(kBase + kPage - 2, "abcd", 4), 2);
  ASSERT_EQ(as_->Mprotect(kBase + kPage, kPage, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(as_->vmas().size(), 1u);  // merged back
  ASSERT_EQ(as_->Munmap(kBase + kPage, kPage), 0);
  EXPECT_EQ(as_->vmas().size(), 2u);
  EXPECT_FALSE(as_->CopyIn(kBase + kPage, &c, 1));
  EXPECT_EQ(as_->ReadMemory(0x1000, &c, 1), -EFAULT);
  EXPECT_EQ(as_->Mprotect(kBase, 3 * kPage, PROT_READ), -ENOMEM);  // the hole
}

TEST_F(MemoryAs, ForkCopiesPrivateAndSharesShared) {
  ASSERT_EQ(Mmap(*as_, kBase, kPage, PROT_READ | PROT_WRITE), static_cast<long>(kBase));
  ASSERT_EQ(Mmap(*as_, kBase + 16 * kPage, kPage, PROT_READ | PROT_WRITE, MAP_SHARED),
            static_cast<long>(kBase + 16 * kPage));
  // A large untouched mapping: fork must not make it resident.
  ASSERT_EQ(Mmap(*as_, kBase + 64 * kPage, 4096 * kPage, PROT_READ | PROT_WRITE), static_cast<long>(kBase + 64 * kPage));
  ASSERT_TRUE(as_->CopyOut(kBase, "private", 8));
  ASSERT_TRUE(as_->CopyOut(kBase + 16 * kPage, "shared", 7));
  const uint64_t before = file_->resident();
  auto child_base = as_->Fork();
  auto* child = dynamic_cast<MemoryAddressSpace*>(child_base.get());
  ASSERT_NE(child, nullptr);
  EXPECT_LE(file_->resident() - before, 2 * kPage);
  EXPECT_EQ(child->ReadCString(kBase, 16), "private");
  ASSERT_TRUE(child->CopyOut(kBase, "childs", 7));
  EXPECT_EQ(as_->ReadCString(kBase, 16), "private");
  ASSERT_TRUE(child->CopyOut(kBase + 16 * kPage, "SHARED", 7));
  EXPECT_EQ(as_->ReadCString(kBase + 16 * kPage, 16), "SHARED");
  char seen[8] = {};
  ASSERT_EQ(child->inner().ReadMemory(kBase, seen, 7), 7);
  EXPECT_STREQ(seen, "childs");
  // The child's private pages go back when it goes.
  const uint64_t allocated = file_->allocated();
  child_base.reset();
  EXPECT_LT(file_->allocated(), allocated);
}

// Copy-on-write after fork is per page: a write copies the page it falls in
// (runs that double for a writer walking forward), the copies of one block
// sit together in the file so that neighbouring copies merge into one
// mapping, and the side left alone takes its pages back without a copy.
TEST_F(MemoryAs, ForkCopiesOnlyThePagesWritten) {
  constexpr uint64_t kLen = 1024 * kPage;  // 4 MiB: two blocks
  ASSERT_EQ(Mmap(*as_, kBase, kLen, PROT_READ | PROT_WRITE), static_cast<long>(kBase));
  std::vector<char> page(kPage);
  for (uint64_t i = 0; i < kLen / kPage; ++i) {
    std::snprintf(page.data(), kPage, "page %llu", static_cast<unsigned long long>(i));
    ASSERT_TRUE(as_->CopyOut(kBase + i * kPage, page.data(), 16));
  }
  auto child_base = as_->Fork();
  auto* child = dynamic_cast<MemoryAddressSpace*>(child_base.get());
  ASSERT_NE(child, nullptr);
  const uint64_t resident = file_->resident();
  // One write in the middle of the first block: one page copied.
  ASSERT_TRUE(child->ResolveWriteFault(kBase + 100 * kPage + 7));
  EXPECT_EQ(child->cow_copies(), 1u);
  EXPECT_LE(file_->resident(), resident + 2 * kPage);
  ASSERT_TRUE(child->CopyOut(kBase + 100 * kPage, "child 100", 10));
  EXPECT_EQ(as_->ReadCString(kBase + 100 * kPage, 16), "page 100");
  EXPECT_EQ(child->ReadCString(kBase + 101 * kPage, 16), "page 101");  // still shared, still right
  // The stub maps the copy: it reads what the router wrote.
  char seen[10] = {};
  ASSERT_EQ(child->inner().ReadMemory(kBase + 100 * kPage, seen, 10), 10);
  EXPECT_STREQ(seen, "child 100");
  // A writer walking forward through the second block: far fewer faults
  // than pages, every page right on both sides, and the copies one mapping.
  const uint64_t copies = child->cow_copies();
  int faults = 0;
  for (uint64_t i = 512; i < 1024; ++i) {
    char c;
    ASSERT_TRUE(child->CopyIn(kBase + i * kPage, &c, 1));
    if (child->ProtAt(kBase + i * kPage) == (PROT_READ | PROT_WRITE) &&
        child->vmas().upper_bound(kBase + i * kPage) != child->vmas().begin()) {
      auto it = std::prev(child->vmas().upper_bound(kBase + i * kPage));
      if (it->second.anon_cow) {
        ASSERT_TRUE(child->ResolveWriteFault(kBase + i * kPage));
        ++faults;
      }
    }
  }
  EXPECT_EQ(child->cow_copies() - copies, 512u);
  EXPECT_LT(faults, 20) << "no fault-around";
  for (uint64_t i = 512; i < 1024; i += 37) {
    std::snprintf(page.data(), kPage, "page %llu", static_cast<unsigned long long>(i));
    EXPECT_EQ(child->ReadCString(kBase + i * kPage, 16), page.data());
    EXPECT_EQ(as_->ReadCString(kBase + i * kPage, 16), page.data());
  }
  // first block: shared, copy, shared; second block: one run of copies.
  EXPECT_EQ(child->vmas().size(), 4u);
  // The parent's writes copy too while the child lives...
  ASSERT_TRUE(as_->CopyOut(kBase + 5 * kPage, "parent 5", 9));
  EXPECT_EQ(child->ReadCString(kBase + 5 * kPage, 16), "page 5");
  EXPECT_EQ(as_->cow_takeovers(), 0u);
  // ... and take the pages back, no copy, once it is gone.
  child_base.reset();
  const uint64_t parent_copies = as_->cow_copies();
  ASSERT_TRUE(as_->CopyOut(kBase + 700 * kPage, "parent 700", 11));
  EXPECT_EQ(as_->cow_copies(), parent_copies);
  EXPECT_EQ(as_->cow_takeovers(), 1u);
  EXPECT_EQ(as_->ReadCString(kBase + 700 * kPage, 16), "parent 700");
  EXPECT_EQ(as_->ReadCString(kBase + 5 * kPage, 16), "parent 5");
  EXPECT_EQ(as_->ReadCString(kBase + 100 * kPage, 16), "page 100");
}

// Two threads writing to one copy-on-write page: the first fault makes it
// private; the second, handled after, finds it writable and only retries.
TEST_F(MemoryAs, ASecondFaultOnAPageMadePrivateJustRetries) {
  ASSERT_EQ(Mmap(*as_, kBase, 16 * kPage, PROT_READ | PROT_WRITE), static_cast<long>(kBase));
  ASSERT_TRUE(as_->CopyOut(kBase, "x", 2));
  auto child = as_->Fork();
  bool already = true;
  ASSERT_TRUE(as_->ResolveWriteFault(kBase + 3 * kPage, &already));
  EXPECT_FALSE(already);
  ASSERT_TRUE(as_->ResolveWriteFault(kBase + 3 * kPage + 8, &already));
  EXPECT_TRUE(already);
  // Not for pages that are not writable at all.
  ASSERT_EQ(as_->Mprotect(kBase + 8 * kPage, kPage, PROT_READ), 0);
  EXPECT_FALSE(as_->ResolveWriteFault(kBase + 8 * kPage, &already));
}

// Scattered writes leave copies and shared pages interleaved; a second fork
// must not let either process see the other's later writes through an old
// shadow.
TEST_F(MemoryAs, CopiesStayPrivateAcrossASecondFork) {
  constexpr uint64_t kLen = 64 * kPage;
  ASSERT_EQ(Mmap(*as_, kBase, kLen, PROT_READ | PROT_WRITE), static_cast<long>(kBase));
  ASSERT_TRUE(as_->CopyOut(kBase, "zero", 5));
  auto c1 = as_->Fork();
  ASSERT_TRUE(as_->CopyOut(kBase + 2 * kPage, "p2", 3));  // a copy in the parent's shadow
  auto c2 = as_->Fork();  // shares that copy with c2
  ASSERT_TRUE(as_->CopyOut(kBase + 2 * kPage, "P2", 3));
  ASSERT_TRUE(as_->CopyOut(kBase + 4 * kPage, "P4", 3));
  auto* m2 = dynamic_cast<MemoryAddressSpace*>(c2.get());
  auto* m1 = dynamic_cast<MemoryAddressSpace*>(c1.get());
  EXPECT_EQ(m2->ReadCString(kBase + 2 * kPage, 8), "p2");
  EXPECT_EQ(m2->ReadCString(kBase + 4 * kPage, 8), "");
  EXPECT_EQ(m1->ReadCString(kBase + 2 * kPage, 8), "");
  ASSERT_TRUE(m2->CopyOut(kBase + 3 * kPage, "c3", 3));
  EXPECT_EQ(as_->ReadCString(kBase + 3 * kPage, 8), "");
  EXPECT_EQ(m1->ReadCString(kBase, 8), "zero");
  EXPECT_EQ(as_->ReadCString(kBase + 2 * kPage, 8), "P2");
}

TEST_F(MemoryAs, RemapGrowsInPlaceOrMovesWithTheData) {
  ASSERT_EQ(Mmap(*as_, kBase, kPage, PROT_READ | PROT_WRITE), static_cast<long>(kBase));
  ASSERT_TRUE(as_->CopyOut(kBase, "keep", 5));
  EXPECT_EQ(as_->Syscall(SYS_mremap, {kBase, kPage, 4 * kPage, 0, 0, 0}), static_cast<long>(kBase));
  EXPECT_TRUE(as_->CopyOut(kBase + 3 * kPage, "end", 4));
  ASSERT_EQ(Mmap(*as_, kBase + 4 * kPage, kPage, PROT_READ), static_cast<long>(kBase + 4 * kPage));
  // Blocked by the next mapping: without MAYMOVE it fails, with FIXED it moves.
  EXPECT_EQ(as_->Syscall(SYS_mremap, {kBase, 4 * kPage, 8 * kPage, 0, 0, 0}), -ENOMEM);
  const uint64_t to = kBase + 64 * kPage;
  EXPECT_EQ(as_->Syscall(SYS_mremap, {kBase, 4 * kPage, 8 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, to, 0}),
            static_cast<long>(to));
  EXPECT_EQ(as_->ReadCString(to, 8), "keep");
  EXPECT_EQ(as_->ReadCString(to + 3 * kPage, 8), "end");
  char c;
  EXPECT_FALSE(as_->CopyIn(kBase, &c, 1));  // the old place is gone
}

TEST_F(MemoryAs, MadviseDontneedZeroesPrivateMemory) {
  ASSERT_EQ(Mmap(*as_, kBase, 2 * kPage, PROT_READ | PROT_WRITE), static_cast<long>(kBase));
  ASSERT_TRUE(as_->CopyOut(kBase, "gone", 5));
  ASSERT_TRUE(as_->CopyOut(kBase + kPage, "kept", 5));
  EXPECT_EQ(as_->Syscall(SYS_madvise, {kBase, kPage, MADV_DONTNEED, 0, 0, 0}), 0);
  EXPECT_EQ(as_->ReadCString(kBase, 8), "");
  EXPECT_EQ(as_->ReadCString(kBase + kPage, 8), "kept");
}

TEST_F(MemoryAs, MapsListsNamedMappings) {
  ASSERT_EQ(Mmap(*as_, kBase, 2 * kPage, PROT_READ | PROT_EXEC), static_cast<long>(kBase));
  as_->Name(kBase, 2 * kPage, "/bin/prog");
  const std::string maps = as_->Maps();
  EXPECT_NE(maps.find("10000000-10002000 r-xp"), std::string::npos) << maps;
  EXPECT_NE(maps.find("/bin/prog"), std::string::npos) << maps;
}

TEST_F(MemoryAs, CachedFilePagesAreSharedUntilMadeWritable) {
  FileCache cache(*file_);
  int fills = 0;
  auto fill = [&](uint8_t* dst, uint64_t, uint64_t len) -> long {
    ++fills;
    std::memset(dst, 'T', len);
    return static_cast<long>(len);
  };
  const FileCache::Key key{1, 2, 2 * kPage + 100, 4};
  long err = 0;
  auto chunk = cache.Get(key, 0, 2 * kPage + 100, fill, &err);
  ASSERT_NE(chunk, nullptr);
  ASSERT_EQ(cache.Get(key, kPage, kPage, fill, &err), chunk);  // a hit: filled once
  EXPECT_EQ(fills, 1);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(chunk->len, 3 * kPage);
  EXPECT_EQ(file_->at(chunk->offset)[2 * kPage + 100], 0);  // the rest of the last page is zero

  ASSERT_EQ(as_->MapCow(kBase, 3 * kPage, PROT_READ | PROT_EXEC, chunk, 0, "/lib/x"), static_cast<long>(kBase));
  EXPECT_EQ(as_->MapCow(kBase, kPage, PROT_READ | PROT_WRITE, chunk, 0, "/lib/x"), -EINVAL);
  EXPECT_EQ(as_->MapCow(kBase, kPage, PROT_READ, chunk, 3 * kPage, "/lib/x"), -EINVAL);  // past the file
  EXPECT_EQ(as_->MapCow(kBase, kPage, PROT_READ, chunk, 100, "/lib/x"), -EINVAL);        // unaligned
  char c = 0;
  ASSERT_TRUE(as_->CopyIn(kBase + 5, &c, 1));
  EXPECT_EQ(c, 'T');
  EXPECT_FALSE(as_->CopyOut(kBase, "w", 1));  // read-only
  // fork shares the cached pages: nothing is allocated for them.
  const uint64_t allocated = file_->allocated();
  auto child_base = as_->Fork();
  auto* child = dynamic_cast<MemoryAddressSpace*>(child_base.get());
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(file_->allocated(), allocated);
  // Made writable: a private copy first; the cache and the other process
  // keep the original.
  ASSERT_EQ(child->Mprotect(kBase, kPage, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(file_->allocated(), allocated + kPage);
  ASSERT_TRUE(child->CopyOut(kBase, "W", 1));
  ASSERT_TRUE(as_->CopyIn(kBase, &c, 1));
  EXPECT_EQ(c, 'T');
  ASSERT_TRUE(child->CopyIn(kBase, &c, 1));
  EXPECT_EQ(c, 'W');
  char seen = 0;
  ASSERT_EQ(child->inner().ReadMemory(kBase, &seen, 1), 1);  // the stub sees its copy
  EXPECT_EQ(seen, 'W');
  // DONTNEED never discards cached pages.
  EXPECT_EQ(as_->Syscall(SYS_madvise, {kBase, kPage, MADV_DONTNEED, 0, 0, 0}), 0);
  ASSERT_TRUE(as_->CopyIn(kBase, &c, 1));
  EXPECT_EQ(c, 'T');
}

TEST_F(MemoryAs, PatchingCodeCopiesOnlyThatPageOutOfTheCache) {
  FileCache cache(*file_);
  auto fill = [&](uint8_t* dst, uint64_t, uint64_t len) -> long {
    std::memset(dst, 0x90, len);
    return static_cast<long>(len);
  };
  long err = 0;
  auto chunk = cache.Get({1, 2, 3 * kPage, 4}, 0, 3 * kPage, fill, &err);
  ASSERT_NE(chunk, nullptr);
  ASSERT_EQ(as_->MapCow(kBase, 3 * kPage, PROT_READ | PROT_EXEC, chunk, 0, "/lib/x"), static_cast<long>(kBase));
  const uint8_t jump[7] = {0xff, 0x24, 0x25, 1, 2, 0x0f, 0x0b};
  const uint64_t allocated = file_->allocated();
  ASSERT_TRUE(as_->PatchCode(kBase + kPage + 10, jump, sizeof jump));  // read-only text: still patched
  EXPECT_EQ(file_->allocated(), allocated + kPage);                   // one page copied
  uint8_t got[7];
  ASSERT_TRUE(as_->CopyIn(kBase + kPage + 10, got, sizeof got));
  EXPECT_EQ(std::memcmp(got, jump, sizeof jump), 0);
  uint8_t seen[7];
  ASSERT_EQ(as_->inner().ReadMemory(kBase + kPage + 10, seen, sizeof seen), 7);  // the stub runs the new bytes
  EXPECT_EQ(std::memcmp(seen, jump, sizeof jump), 0);
  EXPECT_EQ(file_->at(chunk->offset)[kPage + 10], 0x90);  // the cache keeps the file's bytes
  EXPECT_EQ(as_->ProtAt(kBase + kPage), PROT_READ | PROT_EXEC);
  // Still one line in /proc/PID/maps.
  const std::string maps = as_->Maps();
  EXPECT_NE(maps.find("10000000-10003000 r-xp"), std::string::npos) << maps;
  // Never across a mapping's end, never into shared or unmapped memory.
  EXPECT_FALSE(as_->PatchCode(kBase + 3 * kPage - 3, jump, sizeof jump));
  EXPECT_FALSE(as_->PatchCode(kBase + 8 * kPage, jump, sizeof jump));
  EXPECT_TRUE(as_->Unmapped(kBase + 3 * kPage, kPage));
  EXPECT_FALSE(as_->Unmapped(kBase - kPage, 2 * kPage));
  EXPECT_EQ(as_->ProtAt(kBase + 3 * kPage), -1);
}

// The page cache fills a file window by window, only where mappings need
// it, one range per file however many mappings of it there are; an entry no
// mapping uses goes once the cache holds more than it keeps.
TEST(FileCacheTest, FillsOnlyTheWindowsMappedAndSharesOneRangePerFile) {
  MemoryFile f(uint64_t{64} << 20);
  FileCache cache(f, /*keep_bytes=*/256 << 10);
  std::vector<std::pair<uint64_t, uint64_t>> reads;
  auto fill = [&](uint8_t* dst, uint64_t from, uint64_t len) -> long {
    reads.emplace_back(from, len);
    for (uint64_t i = 0; i < len; ++i) dst[i] = static_cast<uint8_t>((from + i) / kPage);
    return static_cast<long>(len);
  };
  const uint64_t size = 10 * FileCache::kWindow + 123;  // 11 windows, the last one short
  const FileCache::Key key{7, 8, size, 9};
  long err = 0;
  auto a = cache.Get(key, 3 * FileCache::kWindow + kPage, kPage, fill, &err);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0], std::make_pair(3 * FileCache::kWindow, FileCache::kWindow));
  EXPECT_EQ(cache.cached(), FileCache::kWindow);
  EXPECT_EQ(f.at(a->offset + 3 * FileCache::kWindow + kPage)[0], (3 * FileCache::kWindow + kPage) / kPage);
  // A mapping across windows 2..5: 2, then 4..5 in one read; 3 is there.
  auto b = cache.Get(key, 2 * FileCache::kWindow, 4 * FileCache::kWindow, fill, &err);
  ASSERT_EQ(b, a);
  ASSERT_EQ(reads.size(), 3u);
  EXPECT_EQ(reads[1], std::make_pair(2 * FileCache::kWindow, FileCache::kWindow));
  EXPECT_EQ(reads[2], std::make_pair(4 * FileCache::kWindow, 2 * FileCache::kWindow));
  // The whole file (the short last window is read to the file's end).
  ASSERT_EQ(cache.Get(key, 0, size + 5000, fill, &err), a);
  EXPECT_EQ(reads.back(), std::make_pair(6 * FileCache::kWindow, 4 * FileCache::kWindow + 123));
  EXPECT_EQ(cache.cached(), size);
  EXPECT_EQ(a->len, 11 * FileCache::kWindow - FileCache::kWindow + kPage);  // the size in pages
  // A read error is the caller's error; empty and huge files are refused.
  auto bad = [](uint8_t*, uint64_t, uint64_t) -> long { return -EIO; };
  EXPECT_EQ(cache.Get({7, 9, kPage, 9}, 0, kPage, bad, &err), nullptr);
  EXPECT_EQ(err, -EIO);
  EXPECT_EQ(cache.Get({7, 10, 0, 9}, 0, kPage, fill, &err), nullptr);
  EXPECT_EQ(cache.Get({7, 11, FileCache::kMaxFile + 1, 9}, 0, kPage, fill, &err), nullptr);
  EXPECT_EQ(err, -EFBIG);
  // Entries nobody maps are bounded by what they reserve (their files'
  // sizes), not by what was read: many large files touched once cannot fill
  // the memory file.
  {
    MemoryFile g(uint64_t{256} << 20);
    FileCache big(g);  // keeps 64 MiB
    for (uint64_t ino = 1; ino <= 8; ++ino) {
      ASSERT_NE(big.Get({1, ino, uint64_t{32} << 20, 1}, 0, kPage, fill, &err), nullptr);
    }
    EXPECT_LE(big.reserved(), uint64_t{64} << 20);
    EXPECT_GE(g.Allocate(uint64_t{64} << 20), 0);  // room left for everything else
  }
  // Nothing maps the file any more: above keep_bytes it goes.
  a.reset();
  b.reset();
  ASSERT_NE(cache.Get({7, 12, kPage, 9}, 0, kPage, fill, &err), nullptr);
  EXPECT_LE(cache.cached(), 256u << 10);
}

// Space from a chunk source (the mem-broker): granted in runs with a
// reserve, whole free chunks beyond the reserve given back, chunk 0 (the
// broker's ledger) never used.
class FakeSource : public ChunkSource {
 public:
  explicit FakeSource(uint32_t chunks) : owned_(chunks, false) { owned_[0] = true; }
  int64_t Grant(uint32_t count, MemKind kind) override {
    ++grants;
    ++grants_of[static_cast<int>(kind)];
    for (uint32_t i = 1; i + count <= owned_.size(); ++i) {
      bool free = true;
      for (uint32_t j = i; j < i + count && free; ++j) free = !owned_[j];
      if (!free) continue;
      for (uint32_t j = i; j < i + count; ++j) owned_[j] = true;
      return i;
    }
    return -1;
  }
  void Release(uint32_t first, uint32_t count) override {
    ++releases;
    for (uint32_t j = first; j < first + count; ++j) {
      EXPECT_TRUE(owned_[j]) << "chunk " << j << " released twice";
      owned_[j] = false;
    }
  }
  uint32_t held() const {
    uint32_t n = 0;
    for (size_t i = 1; i < owned_.size(); ++i) n += owned_[i];
    return n;
  }
  int grants = 0, releases = 0;
  int grants_of[kMemKinds] = {};

 private:
  std::vector<bool> owned_;
};

TEST(MemoryFile, SpaceComesInChunksFromTheSourceAndSpareChunksGoBack) {
  constexpr uint64_t kChunk = ChunkSource::kChunk;
  MemoryFile f(64 * kChunk);
  FakeSource src(64);
  f.SetChunkSource(&src);
  const int64_t a = f.Allocate(kPage);
  ASSERT_GE(a, static_cast<int64_t>(kChunk));  // never in chunk 0
  EXPECT_EQ(src.grants, 1);
  EXPECT_EQ(f.granted_chunks(), 9u);  // one, and a reserve of eight
  // Served from the reserve: no more round trips.
  std::vector<int64_t> small;
  for (int i = 0; i < 50; ++i) small.push_back(f.Allocate(64 * kPage));
  EXPECT_EQ(src.grants, 1);
  // A large one that does not fit: a contiguous run of its own.
  const int64_t big = f.Allocate(20 * kChunk);
  ASSERT_GE(big, 0);
  EXPECT_EQ(src.grants, 2);
  f.Free(static_cast<uint64_t>(big), 20 * kChunk);
  EXPECT_EQ(src.releases, 0);  // queued: nothing went back yet
  EXPECT_EQ(f.ReleasePending(), 20 * kChunk);
  EXPECT_GE(src.releases, 1);  // whole free chunks went back, all but the reserve
  EXPECT_LE(f.granted_chunks() * kChunk, f.allocated() + 10 * kChunk);
  for (int64_t x : small) f.Free(static_cast<uint64_t>(x), 64 * kPage);
  f.Free(static_cast<uint64_t>(a), kPage);
  EXPECT_EQ(f.allocated(), 0u);
  // The loop gives the queue back in slices.
  while (f.pending_release() > 0) ASSERT_GT(f.ReleasePending(MemoryFile::kReleaseSlice), 0u);
  EXPECT_LE(f.granted_chunks(), 9u);  // the reserve, at most
  EXPECT_EQ(src.held(), f.granted_chunks());
  // Kinds never share a chunk: page-cache pages come from chunks granted as
  // such (a reserve of two), and go back as such.
  const int64_t cached = f.Allocate(3 * kPage, MemKind::kFile);
  ASSERT_GE(cached, 0);
  EXPECT_EQ(src.grants_of[static_cast<int>(MemKind::kFile)], 1);
  EXPECT_EQ(f.granted_chunks(MemKind::kFile), 3u);
  EXPECT_EQ(f.allocated(MemKind::kFile), 3 * kPage);
  EXPECT_EQ(f.allocated(MemKind::kAnon), 0u);
  const int64_t anon = f.Allocate(kPage);
  ASSERT_GE(anon, 0);
  EXPECT_NE(static_cast<uint64_t>(anon) / kChunk, static_cast<uint64_t>(cached) / kChunk);
  f.Free(static_cast<uint64_t>(cached), 3 * kPage, MemKind::kFile);
  f.Free(static_cast<uint64_t>(anon), kPage);
  f.ReleasePending();
  EXPECT_EQ(f.allocated(), 0u);
  EXPECT_LE(f.granted_chunks(MemKind::kFile), 3u);
  EXPECT_EQ(src.held(), f.granted_chunks());
  // Nothing left at the source: the allocation fails, nothing breaks.
  FakeSource empty(1);
  MemoryFile g(4 * kChunk);
  g.SetChunkSource(&empty);
  EXPECT_EQ(g.Allocate(kPage), -1);
}

}  // namespace
}  // namespace bulkhead::router
