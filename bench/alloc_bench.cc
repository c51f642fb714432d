// The memory file's allocators at two scales: does finding free space stay
// fast as the sandbox's memory grows? (issue 6: "show with a benchmark at
// 1 GiB and 16 GiB of address space")
//
// Contenders, in one run: the router's MemoryFile (best-fit page ranges)
// drawing 2 MiB chunks from the mem-broker's Ledger (the real code, in
// process, no ring), filled to 1 GiB and to 16 GiB of live allocations of
// random sizes (4 KiB to 2 MiB, fragmented by random frees), then churned:
// free a random allocation, allocate a random size. Reported: ns per
// allocate+free pair (it includes the fallocate that returns freed pages to
// the host), free ranges and chunks held, and the 16 GiB / 1 GiB ratio.
//
//   bazel build -c opt //bench:alloc_bench && bazel-bin/bench/alloc_bench [--ops N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "services/mem-broker/ledger.h"
#include "services/syscall-router/kernel/memory.h"

namespace {

using bulkhead::router::ChunkSource;
using bulkhead::router::MemoryFile;

// The broker's ledger behind a ChunkSource, as MemClient would reach it.
class LedgerSource : public ChunkSource {
 public:
  LedgerSource(MemoryFile& f) : ledger_(f.at(0), f.size()) {}
  int64_t Grant(uint32_t count, bulkhead::router::MemKind) override {
    auto r = ledger_.Grant(++seq_, count);
    return r.err == 0 ? r.first : -1;
  }
  void Release(uint32_t first, uint32_t count) override { ledger_.Release(++seq_, first, count); }

 private:
  bulkhead::mem::Ledger ledger_;
  uint64_t seq_ = 0;
};

struct Result {
  double ns_per_pair = 0;
  uint64_t live = 0, chunks = 0;
};

Result Measure(uint64_t live_bytes, long ops) {
  // The file: room for the live set and its fragmentation.
  MemoryFile file(live_bytes * 4 + (uint64_t{64} << 20));  // sparse, as the 64 GiB production file
  LedgerSource source(file);
  file.SetChunkSource(&source);
  std::mt19937_64 rng(1);
  auto size = [&] { return uint64_t{4096} << (rng() % 10); };  // 4 KiB ... 2 MiB
  std::vector<std::pair<int64_t, uint64_t>> live;
  uint64_t total = 0;
  while (total < live_bytes) {
    const uint64_t n = size();
    const int64_t off = file.Allocate(n);
    if (off < 0) {
      std::fprintf(stderr, "alloc_bench: filling stopped at %llu MiB (chunks %llu)\n", (unsigned long long)(total >> 20), (unsigned long long)file.granted_chunks());
      break;
    }
    live.emplace_back(off, n);
    total += n;
    if (rng() % 4 == 0 && !live.empty()) {  // fragment as it fills
      const size_t i = rng() % live.size();
      file.Free(static_cast<uint64_t>(live[i].first), live[i].second);
      total -= live[i].second;
      live[i] = live.back();
      live.pop_back();
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (long k = 0; k < ops; ++k) {
    const size_t i = rng() % live.size();
    file.Free(static_cast<uint64_t>(live[i].first), live[i].second);
    const uint64_t n = size();
    const int64_t off = file.Allocate(n);
    if (off < 0) {
      std::fprintf(stderr, "alloc_bench: allocation of %llu bytes failed\n", static_cast<unsigned long long>(n));
      std::exit(1);
    }
    live[i] = {off, n};
  }
  const auto t1 = std::chrono::steady_clock::now();
  Result r;
  r.ns_per_pair = std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(ops);
  for (auto& [o, n] : live) r.live += n;
  r.chunks = file.granted_chunks();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  long ops = 200000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--ops") == 0 && i + 1 < argc) {
      ops = std::atol(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: alloc_bench [--ops N]\n");
      return 2;
    }
  }
  if (ops <= 0) ops = 1;
  std::printf("%-10s %14s %14s %10s\n", "live", "ns/alloc+free", "live MiB", "chunks");
  Result small = Measure(uint64_t{1} << 30, ops);
  std::printf("%-10s %14.1f %14llu %10llu\n", "1 GiB", small.ns_per_pair, (unsigned long long)(small.live >> 20),
              (unsigned long long)small.chunks);
  Result big = Measure(uint64_t{16} << 30, ops);
  std::printf("%-10s %14.1f %14llu %10llu\n", "16 GiB", big.ns_per_pair, (unsigned long long)(big.live >> 20),
              (unsigned long long)big.chunks);
  std::printf("16 GiB / 1 GiB: %.2fx per allocate+free (%ld pairs each, after filling and fragmenting)\n",
              big.ns_per_pair / small.ns_per_pair, ops);
  return 0;
}
