#include "services/mem-broker/ledger.h"

#include <cerrno>
#include <random>
#include <map>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace bulkhead::mem {
namespace {

constexpr uint64_t kFile = 256 * kChunk;  // 512 MiB: 255 chunks to hand out

struct Shared {
  std::vector<uint8_t> bytes = std::vector<uint8_t>(kLedgerBytes, 0);
  uint8_t* mem() { return bytes.data(); }
};

TEST(Ledger, GrantsReleasesAndRefusesWhatIsNotTheRouters) {
  Shared s;
  std::string note;
  Ledger l(s.mem(), kFile, &note);
  EXPECT_EQ(note, "fresh ledger");
  EXPECT_EQ(l.chunks(), 256u);
  auto a = l.Grant(1, 4);
  ASSERT_EQ(a.err, 0);
  EXPECT_EQ(a.first, 1u);  // chunk 0 is the ledger
  auto b = l.Grant(2, 2);
  ASSERT_EQ(b.err, 0);
  EXPECT_EQ(b.first, 5u);
  EXPECT_EQ(l.granted(), 6u);
  EXPECT_EQ(l.Release(3, 2, 2).err, 0);
  EXPECT_EQ(l.Release(4, 2, 1).err, EINVAL);    // no longer the router's
  EXPECT_EQ(l.Release(5, 0, 1).err, EINVAL);    // the ledger itself
  EXPECT_EQ(l.Release(6, 250, 100).err, EINVAL);  // past the end
  auto c = l.Grant(7, 2);                   // first fit: the hole
  ASSERT_EQ(c.err, 0);
  EXPECT_EQ(c.first, 2u);
  EXPECT_EQ(l.Grant(8, 0).err, EINVAL);
  EXPECT_EQ(l.Grant(9, 4000000000u).err, EINVAL);
  EXPECT_EQ(l.Grant(10, 255).err, ENOMEM);  // no run that long is free any more
  EXPECT_EQ(l.Grant(3, 1).err, EALREADY);   // an old request
  EXPECT_EQ(l.Reset(1000), 0);              // a new router
  EXPECT_EQ(l.granted(), 0u);
  EXPECT_EQ(l.Grant(1001, 255).first, 1u);
}

TEST(Ledger, AReSentRequestGetsTheSameAnswer) {
  Shared s;
  Ledger l(s.mem(), kFile);
  auto a = l.Grant(1, 3);
  auto again = l.Grant(1, 3);
  EXPECT_EQ(again.err, 0);
  EXPECT_EQ(again.first, a.first);
  EXPECT_EQ(l.granted(), 3u);  // applied once
  EXPECT_EQ(l.Release(2, a.first, 3).err, 0);
  EXPECT_EQ(l.Release(2, a.first, 3).err, 0);  // replay: fine, nothing more
  EXPECT_EQ(l.granted(), 0u);
  // A replay with another range answers with the recorded one: a forged
  // replay cannot have other chunks punched.
  auto forged = l.Release(2, 10, 5);
  EXPECT_EQ(forged.err, 0);
  EXPECT_EQ(forged.first, a.first);
  EXPECT_EQ(forged.count, 3u);
}

TEST(Ledger, GarbageStartsAfreshInsteadOfCrashing) {
  Shared s;
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    for (size_t i = 0; i < 4200; ++i) s.bytes[i] = static_cast<uint8_t>(rng());
    if (round % 2) {  // a valid header over garbage owners and op record
      Shared good;
      Ledger(good.mem(), kFile);
      std::copy(good.bytes.begin(), good.bytes.begin() + 16, s.bytes.begin());
    }
    std::string note;
    Ledger l(s.mem(), kFile, &note);
    EXPECT_NE(note, "reloaded");
    auto g = l.Grant(l.last_seq() + 1, 1);
    EXPECT_EQ(g.err, 0);
  }
}

// The broker is killed between every pair of steps of random operations;
// each successor attaches to the same bytes and the router re-sends what had
// no answer. A shadow map of what the router holds must agree with every
// answer: nothing handed out twice, nothing lost.
TEST(Ledger, KilledAtEveryStepNothingIsHandedOutTwiceOrLost) {
  Shared s;
  std::mt19937_64 rng(42);
  auto broker = std::make_unique<Ledger>(s.mem(), kFile);
  std::map<uint32_t, ChunkKind> shadow;  // chunks the router holds, and their kind
  std::vector<std::pair<uint32_t, uint32_t>> runs;
  uint64_t seq = 1;
  int crashes = 0;
  for (int op = 0; op < 3000; ++op) {
    const bool grant = runs.empty() || rng() % 3 != 0;
    const uint32_t n = 1 + static_cast<uint32_t>(rng() % 5);
    const ChunkKind kind = kAllKinds[rng() % 4];
    size_t victim = runs.empty() ? 0 : rng() % runs.size();
    const int crash_at = static_cast<int>(rng() % 4);  // 0: none; 1, 2: inside; 3: after (reply lost)
    if (crash_at == 1 || crash_at == 2) broker->CrashAfter(crash_at);
    for (int attempt = 0;; ++attempt) {
      ASSERT_LT(attempt, 3);
      try {
        if (grant) {
          auto r = broker->Grant(seq, n, kind);
          if (crash_at == 3 && attempt == 0) throw Ledger::Crash{};
          if (r.err == ENOMEM) break;
          ASSERT_EQ(r.err, 0) << "op " << op;
          for (uint32_t c = r.first; c < r.first + r.count; ++c) {
            ASSERT_TRUE(shadow.emplace(c, kind).second) << "chunk " << c << " handed out twice (op " << op << ")";
          }
          runs.emplace_back(r.first, r.count);
        } else {
          auto [first, count] = runs[victim];
          auto rc = broker->Release(seq, first, count);
          if (crash_at == 3 && attempt == 0) throw Ledger::Crash{};
          ASSERT_EQ(rc.err, 0) << "op " << op;
          ASSERT_EQ(rc.first, first);
          for (uint32_t c = first; c < first + count; ++c) ASSERT_EQ(shadow.erase(c), 1u);
          runs.erase(runs.begin() + static_cast<long>(victim));
        }
        break;
      } catch (const Ledger::Crash&) {
        ++crashes;
        broker = std::make_unique<Ledger>(s.mem(), kFile);  // the successor
      }
    }
    ++seq;
    // The ledger and the shadow agree, chunk by chunk.
    if (op % 100 == 0) {
      for (uint32_t c = 1; c < broker->chunks(); ++c) {
        ASSERT_EQ(broker->owned(c), shadow.count(c) == 1) << c;
        if (shadow.count(c)) {
          ASSERT_EQ(broker->kind(c), static_cast<int>(shadow[c])) << "chunk " << c << " changed kind";
        }
      }
    }
  }
  EXPECT_GT(crashes, 1000);
  EXPECT_EQ(broker->granted(), shadow.size());
  for (ChunkKind k : kAllKinds) {
    uint32_t n = 0;
    for (auto& [c, kk] : shadow) n += kk == k;
    EXPECT_EQ(broker->granted(k), n) << KindName(k);
  }
}

// Each grant records its kind: replays keep it, releases take any kind
// back, a kind that is none is refused, and the broker's accounts by kind
// survive a successor.
TEST(Ledger, ChunksAreGrantedByKind) {
  Shared s;
  Ledger l(s.mem(), kFile);
  auto a = l.Grant(1, 3, ChunkKind::kPageCache);
  ASSERT_EQ(a.err, 0);
  auto again = l.Grant(1, 3, ChunkKind::kAnonymous);  // a replay: the recorded answer and kind
  EXPECT_EQ(again.first, a.first);
  EXPECT_EQ(l.kind(a.first), static_cast<int>(ChunkKind::kPageCache));
  auto b = l.Grant(2, 2, ChunkKind::kTmpfs);
  ASSERT_EQ(b.err, 0);
  EXPECT_EQ(l.Grant(3, 1, static_cast<ChunkKind>(2)).err, EINVAL);  // the ledger's own value
  EXPECT_EQ(l.Grant(4, 1, static_cast<ChunkKind>(9)).err, EINVAL);
  EXPECT_EQ(l.granted(ChunkKind::kPageCache), 3u);
  EXPECT_EQ(l.granted(ChunkKind::kTmpfs), 2u);
  EXPECT_EQ(l.granted(ChunkKind::kAnonymous), 0u);
  Ledger successor(s.mem(), kFile);
  EXPECT_EQ(successor.granted(ChunkKind::kPageCache), 3u);
  EXPECT_EQ(successor.Release(5, a.first, 3).err, 0);
  EXPECT_EQ(successor.granted(ChunkKind::kPageCache), 0u);
  EXPECT_EQ(successor.kind(a.first), 0);
  EXPECT_EQ(successor.kind(b.first), static_cast<int>(ChunkKind::kTmpfs));
}

}  // namespace
}  // namespace bulkhead::mem
