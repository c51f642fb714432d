#include "ipc/ring.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <vector>

#include "base/memfd.h"
#include "ipc/channel.h"
#include "ipc/test_util.h"

namespace bulkhead::ipc {
namespace {

using testing::MakePair;

std::span<const uint8_t> Bytes(const std::vector<uint8_t>& v) { return {v.data(), v.size()}; }

TEST(Layout, GeometryValidation) {
  EXPECT_EQ(ValidateGeometry({}), nullptr);
  EXPECT_NE(ValidateGeometry({3, 1024, 0}), nullptr);
  EXPECT_NE(ValidateGeometry({256, 100, 0}), nullptr);
  EXPECT_NE(ValidateGeometry({256, 1024, 100}), nullptr);
  EXPECT_NE(ValidateGeometry({1u << 20, 1024, 0}), nullptr);
  SegmentLayout l = ComputeLayout({256, 1024, 1 << 20});
  EXPECT_EQ(l.slots_offset[0] % kPageSize, 0u);
  EXPECT_EQ(l.total_size, l.bulk_offset[1] + (1u << 20));
}

TEST(Ring, MessagesArriveInOrderAcrossWrapAround) {
  auto p = MakePair({8, 256, 0});
  ReceivedMessage m;
  for (uint64_t i = 0; i < 1000; ++i) {
    std::vector<uint8_t> data(i % 200);
    testing::Fill(data.data(), data.size(), i);
    ASSERT_EQ(p.client->SendRaw(i, Bytes(data), DeadlineIn(0)), Status::kOk);
    ASSERT_EQ(p.server->Receive(&m, DeadlineIn(0)), Status::kOk);
    EXPECT_EQ(m.id(), i);
    ASSERT_EQ(m.payload().size(), data.size());
    EXPECT_TRUE(testing::Check(m.payload().data(), data.size(), i));
  }
}

TEST(Ring, FullRingTimesOutThenDrains) {
  auto p = MakePair({4, 256, 0});
  for (int i = 0; i < 4; ++i) ASSERT_EQ(p.client->SendRaw(i, {}, DeadlineIn(0)), Status::kOk);
  EXPECT_EQ(p.client->SendRaw(9, {}, DeadlineIn(1000000)), Status::kTimeout);
  ReceivedMessage m;
  ASSERT_EQ(p.server->Receive(&m, DeadlineIn(0)), Status::kOk);
  EXPECT_EQ(p.client->SendRaw(4, {}, DeadlineIn(0)), Status::kOk);
  EXPECT_EQ(p.server->InboundDepth(), 4u);
}

TEST(Ring, EmptyRingTimesOut) {
  auto p = MakePair();
  ReceivedMessage m;
  uint64_t t0 = NowNs();
  EXPECT_EQ(p.server->Receive(&m, DeadlineIn(5'000'000)), Status::kTimeout);
  EXPECT_GE(NowNs() - t0, 5'000'000u);
  EXPECT_EQ(p.server->TryReceive(&m), Status::kWouldBlock);
}

TEST(Ring, OversizedPayloadIsRefused) {
  auto p = MakePair({8, 256, 0});
  std::vector<uint8_t> big(300);
  EXPECT_EQ(p.client->SendRaw(1, Bytes(big)), Status::kTooLarge);
}

TEST(Ring, BulkBytesWrapAndAreReleased) {
  auto p = MakePair({16, 256, 4 * kPageSize});
  ReceivedMessage m;
  for (uint64_t i = 0; i < 200; ++i) {
    std::vector<uint8_t> bulk(1000 + (i * 997) % 5000);
    testing::Fill(bulk.data(), bulk.size(), i);
    ASSERT_EQ(p.client->SendRaw(i, {}, DeadlineIn(0), Bytes(bulk)), Status::kOk) << i;
    ASSERT_EQ(p.server->Receive(&m, DeadlineIn(0)), Status::kOk);
    ASSERT_EQ(m.bulk().size(), bulk.size());
    EXPECT_TRUE(testing::Check(m.bulk().data(), bulk.size(), i));
    p.server->ReleaseBulk(m);
  }
  // Unreleased bulk bytes hold the producer back.
  std::vector<uint8_t> bulk(2 * kPageSize);
  ASSERT_EQ(p.client->SendRaw(1, {}, DeadlineIn(0), Bytes(bulk)), Status::kOk);
  ASSERT_EQ(p.server->Receive(&m, DeadlineIn(0)), Status::kOk);
  EXPECT_EQ(p.client->SendRaw(2, {}, DeadlineIn(1'000'000), Bytes(bulk)), Status::kTimeout);
  p.server->ReleaseBulk(m);
  EXPECT_EQ(p.client->SendRaw(2, {}, DeadlineIn(0), Bytes(bulk)), Status::kOk);
  std::vector<uint8_t> huge(2 * kPageSize + 1);  // more than half the area
  EXPECT_EQ(p.client->SendRaw(3, {}, DeadlineIn(0), Bytes(huge)), Status::kTooLarge);
}

// The tests below play the hostile peer by writing into the shared control
// block and slots directly.
struct Raw {
  uint8_t* base;
  SegmentLayout l;
  RingControl* ctl(int d) { return reinterpret_cast<RingControl*>(base + l.control_offset[d]); }
  SlotHeader* slot(int d, uint32_t i, uint32_t slot_size) {
    return reinterpret_cast<SlotHeader*>(base + l.slots_offset[d] + uint64_t{i} * slot_size);
  }
};

struct HostileFixture {
  ChannelGeometry g{8, 256, kPageSize};
  UniqueFd fd = CreateSegment(g, "hostile");
  Mapping map = Mapping::MapShared(fd.get(), ComputeLayout(g).total_size);
  std::unique_ptr<Channel> server =
      Channel::Attach(UniqueFd(dup(fd.get())), Channel::Role::kServer, "victim");
  Raw raw{map.data(), ComputeLayout(g)};
};

TEST(Hostile, HeadFarAheadMarksRingCorrupt) {
  HostileFixture f;
  f.raw.ctl(0)->head.store(1000);
  ReceivedMessage m;
  EXPECT_EQ(f.server->Receive(&m, DeadlineIn(0)), Status::kCorrupt);
  EXPECT_TRUE(f.server->corrupt());
  EXPECT_EQ(f.server->Receive(&m, DeadlineIn(0)), Status::kCorrupt);  // stays refused, no hang
}

TEST(Hostile, HeadGoingBackwardsMarksRingCorrupt) {
  HostileFixture f;
  f.raw.ctl(0)->head.store(2);
  ReceivedMessage m;
  EXPECT_NE(f.server->Receive(&m, DeadlineIn(0)), Status::kCorrupt);
  EXPECT_NE(f.server->Receive(&m, DeadlineIn(0)), Status::kCorrupt);
  f.raw.ctl(0)->head.store(1);
  EXPECT_EQ(f.server->Receive(&m, DeadlineIn(0)), Status::kCorrupt);
}

TEST(Hostile, OversizedSlotLengthIsABadMessageAndTheRingGoesOn) {
  HostileFixture f;
  *f.raw.slot(0, 0, 256) = SlotHeader{100000, kSlotRaw, 7, 0, 0};
  *f.raw.slot(0, 1, 256) = SlotHeader{8, kSlotRaw, 8, 0, 0};
  f.raw.ctl(0)->head.store(2);
  ReceivedMessage m;
  EXPECT_EQ(f.server->Receive(&m, DeadlineIn(0)), Status::kBadMessage);
  EXPECT_EQ(m.id(), 7u);
  EXPECT_EQ(f.server->Receive(&m, DeadlineIn(0)), Status::kOk);
  EXPECT_EQ(m.id(), 8u);
}

TEST(Hostile, BulkRangesOutsideTheAreaAreBadMessages) {
  HostileFixture f;
  const uint64_t bad[][2] = {{0, kPageSize + 1}, {kPageSize - 8, 16}, {~0ull - 4, 8}, {5 * kPageSize, 8}};
  uint32_t i = 0;
  for (auto& b : bad) {
    *f.raw.slot(0, i % 8, 256) = SlotHeader{0, kSlotRaw, i, b[0], b[1]};
    f.raw.ctl(0)->head.store(++i);
    ReceivedMessage m;
    EXPECT_EQ(f.server->Receive(&m, DeadlineIn(0)), Status::kBadMessage) << i;
    EXPECT_TRUE(m.bulk().empty());
  }
}

TEST(Hostile, TailBeyondHeadMarksProducerCorrupt) {
  HostileFixture f;
  auto client = Channel::Attach(UniqueFd(dup(f.fd.get())), Channel::Role::kClient, "victim-client");
  for (int i = 0; i < 8; ++i) ASSERT_EQ(client->SendRaw(i, {}, DeadlineIn(0)), Status::kOk);
  f.raw.ctl(0)->tail.store(50);  // the "consumer" claims to have read more than was written
  EXPECT_EQ(client->SendRaw(9, {}, DeadlineIn(1'000'000)), Status::kCorrupt);
  EXPECT_TRUE(client->corrupt());
}

TEST(Attach, RefusesMalformedSegments) {
  auto attach = [](UniqueFd fd) {
    return Channel::Attach(std::move(fd), Channel::Role::kServer, "bad");
  };
  // Not sealed.
  {
    UniqueFd fd(memfd_create("x", MFD_CLOEXEC));
    ASSERT_EQ(ftruncate(fd.get(), 1 << 20), 0);
    EXPECT_THROW(attach(std::move(fd)), std::runtime_error);
  }
  // Sealed but zero (bad magic).
  EXPECT_THROW(attach(CreateSealedMemfd("z", 1 << 20)), std::runtime_error);
  // Geometry claims more than the file holds.
  {
    ChannelGeometry g{8, 256, kPageSize};
    UniqueFd real = CreateSegment(g, "x");
    UniqueFd fake = CreateSealedMemfd("y", ComputeLayout(g).total_size);
    Mapping a = Mapping::MapShared(real.get(), kPageSize);
    Mapping b = Mapping::MapShared(fake.get(), kPageSize);
    std::memcpy(b.data(), a.data(), kPageSize);
    reinterpret_cast<SegmentHeader*>(b.data())->slot_count = 1u << 15;
    EXPECT_THROW(attach(std::move(fake)), std::runtime_error);
  }
  // Nonsense geometry.
  {
    UniqueFd fake = CreateSealedMemfd("y", 1 << 20);
    Mapping b = Mapping::MapShared(fake.get(), kPageSize);
    SegmentHeader h{kSegmentMagic, kSegmentVersion, sizeof(SegmentHeader), 3, 77, 5, 1 << 20};
    std::memcpy(b.data(), &h, sizeof(h));
    EXPECT_THROW(attach(std::move(fake)), std::runtime_error);
  }
}

TEST(Peer, DeathIsNoticedWhileWaiting) {
  auto p = MakePair();
  pid_t child = fork();
  if (child == 0) _exit(0);
  UniqueFd pidfd = testing::PidFd(child);
  ASSERT_TRUE(pidfd.valid());
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  UniqueFd fd(dup(p.server->segment_fd()));
  auto watched = Channel::Attach(std::move(fd), Channel::Role::kServer, "w", PeerWatch(std::move(pidfd)));
  ReceivedMessage m;
  uint64_t t0 = NowNs();
  EXPECT_EQ(watched->Receive(&m, kNoDeadline), Status::kPeerDead);
  EXPECT_LT(NowNs() - t0, 200'000'000u);
}

TEST(Peer, OrderlyCloseEndsAWait) {
  auto p = MakePair();
  p.client->Close();
  ReceivedMessage m;
  EXPECT_EQ(p.server->Receive(&m, kNoDeadline), Status::kClosed);
}

TEST(Status, Errnos) {
  EXPECT_EQ(StatusErrno(Status::kTimeout), ETIMEDOUT);
  EXPECT_EQ(StatusErrno(Status::kBadMessage), EBADMSG);
  EXPECT_STREQ(StatusName(Status::kCorrupt), "ring corrupted by peer");
}

}  // namespace
}  // namespace bulkhead::ipc
