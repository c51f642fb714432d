// A hostile peer scribbles random bytes over a live segment (header, ring
// indices, slots, bulk area) and publishes forged slots, while this process
// keeps serving and calling on it. Nothing may crash (run under ASan), hang
// past its deadline, or read outside the mapping; errors are reported.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <random>

#include "ipc/channel.h"
#include "ipc/test_util.h"
#include "schemas/control.capnp.h"

namespace bulkhead::ipc {
namespace {

namespace ctl = schema::control;
constexpr ChannelGeometry kGeometry{64, 512, 64 * 1024};

[[noreturn]] void Scribble(int fd, uint64_t millis, bool break_header) {
  const SegmentLayout l = ComputeLayout(kGeometry);
  Mapping m = Mapping::MapShared(fd, l.total_size);
  std::mt19937_64 rng(getpid());
  const uint64_t end = NowNs() + millis * 1'000'000ull;
  uint64_t forged = 0;
  bool header_hit = false;
  while (NowNs() < end) {
    if (break_header && !header_hit && NowNs() > end - millis * 500'000ull) {
      // Late in the run, break the header too: re-attaching must then be refused.
      uint64_t v = rng();
      std::memcpy(m.data() + 8 * (rng() % 5), &v, 8);
      header_hit = true;
    }
    uint64_t dice = rng() % 1000;
    int action = dice < 300 ? 0 : dice < 302 ? 1 : dice < 997 ? 2 : 3;
    switch (action) {
      case 0: {  // random bytes anywhere past the header
        uint64_t off = kPageSize + rng() % (l.total_size - kPageSize - 8);
        uint64_t v = rng();
        std::memcpy(m.data() + off, &v, 8);
        break;
      }
      case 1: {  // a plausible or absurd head index for the request ring
        auto* c = reinterpret_cast<RingControl*>(m.data() + l.control_offset[0]);
        c->head.store(rng() % 3 == 0 ? rng() : forged + rng() % 4, std::memory_order_release);
        c->data_seq.fetch_add(1);
        break;
      }
      case 2: {  // a forged slot: random header, random payload that looks like Cap'n Proto
        forged = reinterpret_cast<RingControl*>(m.data() + l.control_offset[0])->tail.load();
        uint32_t idx = static_cast<uint32_t>(forged % kGeometry.slot_count);
        uint8_t* slot = m.data() + l.slots_offset[0] + uint64_t{idx} * kGeometry.slot_size;
        SlotHeader h{static_cast<uint32_t>(rng() % 600), kSlotCapnp, forged, rng() % (1 << 20), rng() % 70000};
        if (rng() % 2) h.bulk_len = 0;
        std::memcpy(slot, &h, sizeof(h));
        uint32_t table[2] = {0, static_cast<uint32_t>(rng() % 80)};
        std::memcpy(slot + sizeof(h), table, 8);
        for (int i = 8; i < 480; i += 8) {
          uint64_t v = rng();
          std::memcpy(slot + sizeof(h) + i, &v, 8);
        }
        if (rng() % 5 == 0) {  // now and then a well-formed empty message
          h = SlotHeader{16, kSlotCapnp, forged, 0, 0};
          std::memcpy(slot, &h, sizeof(h));
          uint32_t ok_table[2] = {0, 1};
          std::memcpy(slot + sizeof(h), ok_table, 8);
          std::memset(slot + sizeof(h) + 8, 0, 8);
        }
        auto* c = reinterpret_cast<RingControl*>(m.data() + l.control_offset[0]);
        c->head.store(++forged, std::memory_order_release);
        for (int spin = 0; spin < 200; ++spin) CpuRelax();  // let the victim read some
        break;
      }
      case 3: {  // the tail of the response ring, as if consumed oddly
        auto* c = reinterpret_cast<RingControl*>(m.data() + l.control_offset[1]);
        c->tail.store(rng() % 3 == 0 ? rng() : rng() % 200, std::memory_order_release);
        c->bulk_tail.store(rng(), std::memory_order_release);
        break;
      }
    }
  }
  _exit(0);
}

struct Tally {
  uint64_t ok = 0, decoded = 0, bad = 0, corrupt = 0, attach_refused = 0;
};

// One round: a fresh segment, a scribbler for `millis`, and this process
// serving on it until the ring is found corrupt or the round ends.
void Round(uint64_t millis, bool break_header, Tally* t) {
  UniqueFd seg = CreateSegment(kGeometry, "garbage");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) Scribble(seg.get(), millis, break_header);
  auto ch = Channel::Attach(UniqueFd(dup(seg.get())), Channel::Role::kServer, "victim",
                            PeerWatch(testing::PidFd(child)));
  ReceivedMessage m;
  for (;;) {
    const uint64_t t0 = NowNs();
    Status st = ch->Receive(&m, DeadlineIn(5'000'000));
    ASSERT_LT(NowNs() - t0, 200'000'000u) << "a receive overran its deadline";
    if (st == Status::kPeerDead || st == Status::kClosed) break;  // scribbled close flags count too
    if (st == Status::kOk) {
      ++t->ok;
      Decoded<ctl::Request> req;
      if (req.Decode(m) == Status::kOk) {
        ++t->decoded;
        if (req.root().isPing()) (void)req.root().getPing().getPayload().size();
      }
      // Bulk bytes are bounds-checked: reading them all must stay in the mapping.
      volatile uint8_t sink = 0;
      for (uint8_t b : m.bulk()) sink ^= b;
      ch->ReleaseBulk(m);
    } else if (st == Status::kBadMessage) {
      ++t->bad;
    } else if (st == Status::kCorrupt) {
      ++t->corrupt;  // a real server reports the peer, which gets a new segment
      EXPECT_EQ(ch->Receive(&m, kNoDeadline), Status::kCorrupt) << "corrupt must stay refused";
      break;
    }
    if (st == Status::kOk || st == Status::kBadMessage) {
      Status s2 = ch->Send<ctl::Response>(m.id(), [](ctl::Response::Builder r) { r.setOk(); },
                                          DeadlineIn(1'000'000));
      if (s2 == Status::kCorrupt) {
        ++t->corrupt;
        break;
      }
    }
  }
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  if (break_header) {
    try {
      Channel::Attach(std::move(seg), Channel::Role::kServer, "late");
    } catch (const std::runtime_error&) {
      ++t->attach_refused;
    }
  }
}

TEST(Garbage, HostilePeerIsSurvived) {
  Tally t;
  for (int round = 0; round < 20; ++round) Round(100, round == 19, &t);
  std::printf("ok %llu (decoded %llu), bad %llu, corrupt %llu, attach refused %llu\n",
              (unsigned long long)t.ok, (unsigned long long)t.decoded, (unsigned long long)t.bad,
              (unsigned long long)t.corrupt, (unsigned long long)t.attach_refused);
  EXPECT_GT(t.bad, 0u);
  EXPECT_GT(t.corrupt, 0u);
  EXPECT_EQ(t.attach_refused, 1u) << "a scribbled header must be refused";
}

}  // namespace
}  // namespace bulkhead::ipc
