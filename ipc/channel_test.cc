#include "ipc/channel.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "ipc/test_util.h"
#include "schemas/common.capnp.h"
#include "schemas/control.capnp.h"

namespace bulkhead::ipc {
namespace {

namespace ctl = schema::control;

TEST(Channel, CapnpRequestAndResponseInPlace) {
  auto p = testing::MakePair();
  ASSERT_EQ(p.client->Send<ctl::Request>(42, [](ctl::Request::Builder r) {
    auto ping = r.initPing();
    ping.setSeq(7);
    ping.setSentNs(123);
  }), Status::kOk);
  ReceivedMessage m;
  ASSERT_EQ(p.server->Receive(&m, DeadlineIn(0)), Status::kOk);
  EXPECT_EQ(m.id(), 42u);
  Decoded<ctl::Request> req;
  ASSERT_EQ(req.Decode(m), Status::kOk);
  ASSERT_TRUE(req.root().isPing());
  EXPECT_EQ(req.root().getPing().getSeq(), 7u);
}

TEST(Channel, CallMatchesIdsAndDropsStaleResponses) {
  auto p = testing::MakePair();
  // A stale response to an abandoned request is already waiting.
  ASSERT_EQ(p.server->Send<ctl::Response>(999, [](ctl::Response::Builder r) { r.setOk(); }), Status::kOk);
  // Serve the next request from the same thread after it was sent: send first
  // through Call's pieces by hand.
  uint64_t id = p.client->NextId();
  ASSERT_EQ(p.client->Send<ctl::Request>(id, [](ctl::Request::Builder r) { r.initPing().setSeq(5); }), Status::kOk);
  ReceivedMessage sm;
  ASSERT_EQ(p.server->Receive(&sm, DeadlineIn(0)), Status::kOk);
  ASSERT_EQ(p.server->Send<ctl::Response>(sm.id(), [](ctl::Response::Builder r) { r.initPong().setSeq(5); }), Status::kOk);
  ReceivedMessage cm;
  // The stale one comes first and must be skipped by id.
  ASSERT_EQ(p.client->Receive(&cm, DeadlineIn(0)), Status::kOk);
  EXPECT_EQ(cm.id(), 999u);
  ASSERT_EQ(p.client->Receive(&cm, DeadlineIn(0)), Status::kOk);
  EXPECT_EQ(cm.id(), id);
}

// Bulk bytes produced in place: the claim shrinks to what was produced (an
// error produces none), and an idle, fully released area goes back to the
// host (its pages read as zeros) only once per use.
TEST(Channel, ProducedBulkShrinksToItsSizeAndIdleBulkGoesBack) {
  ChannelGeometry g;
  g.bulk_size = 64 << 10;
  auto p = testing::MakePair(g);
  EXPECT_EQ(p.server->TrimBulk(), 0u);  // never used: nothing to give back
  ASSERT_EQ(p.server->SendProduced<ctl::Response>(
                7, 16 << 10,
                [](uint8_t* dst, size_t max) -> long {
                  EXPECT_EQ(max, 16u << 10);
                  std::memset(dst, 'b', 100);
                  return 100;
                },
                [](ctl::Response::Builder r, long n) { r.initPong().setSeq(static_cast<uint64_t>(n)); }),
            Status::kOk);
  ASSERT_EQ(p.server->SendProduced<ctl::Response>(
                8, 16 << 10, [](uint8_t*, size_t) -> long { return -5; },
                [](ctl::Response::Builder r, long n) { r.initPong().setSeq(static_cast<uint64_t>(-n)); }),
            Status::kOk);
  ReceivedMessage a, b;
  ASSERT_EQ(p.client->Receive(&a, DeadlineIn(0)), Status::kOk);
  EXPECT_EQ(a.bulk().size(), 100u);
  EXPECT_EQ(a.bulk()[99], 'b');
  ASSERT_EQ(p.client->Receive(&b, DeadlineIn(0)), Status::kOk);
  EXPECT_EQ(b.bulk().size(), 0u);
  const uint8_t* bytes = a.bulk().data();
  EXPECT_EQ(p.server->TrimBulk(), 0u);  // still held by the reader
  p.client->ReleaseBulk(a);
  p.client->ReleaseBulk(b);
  EXPECT_EQ(p.server->TrimBulk(), 64u << 10);
  EXPECT_EQ(bytes[0], 0);  // the pages went back
  EXPECT_EQ(p.server->TrimBulk(), 0u);  // not used since
  // Still works after: the next claim gets fresh pages.
  ASSERT_EQ(p.server->SendProduced<ctl::Response>(
                9, 1000, [](uint8_t* dst, size_t) -> long { dst[0] = 'c'; return 1; },
                [](ctl::Response::Builder r, long) { r.setOk(); }),
            Status::kOk);
  ReceivedMessage c;
  ASSERT_EQ(p.client->Receive(&c, DeadlineIn(0)), Status::kOk);
  ASSERT_EQ(c.bulk().size(), 1u);
  EXPECT_EQ(c.bulk()[0], 'c');
}

TEST(Channel, CallTimesOutWithoutServer) {
  auto p = testing::MakePair();
  ReceivedMessage scratch;
  Decoded<ctl::Response> resp;
  EXPECT_EQ((p.client->Call<ctl::Request, ctl::Response>(
                [](ctl::Request::Builder r) { r.setShutdown(); }, &scratch, &resp, DeadlineIn(2'000'000))),
            Status::kTimeout);
}

TEST(Channel, MessageLargerThanSlotIsRefusedAndNothingIsPublished) {
  auto p = testing::MakePair({8, 256, 0});
  std::vector<uint8_t> big(1000, 1);
  EXPECT_EQ(p.client->Send<ctl::Request>(1, [&](ctl::Request::Builder r) {
    r.initPing().setPayload(kj::arrayPtr(big.data(), big.size()));
  }), Status::kTooLarge);
  ReceivedMessage m;
  EXPECT_EQ(p.server->TryReceive(&m), Status::kWouldBlock);
  // The ring is still usable.
  EXPECT_EQ(p.client->Send<ctl::Request>(2, [](ctl::Request::Builder r) { r.setShutdown(); }), Status::kOk);
}

TEST(Channel, PayloadUpToTheSlotFits) {
  auto p = testing::MakePair({8, 1024, 0});
  // Ping header + Data list: leave room for pointers and the segment table.
  std::vector<uint8_t> data(1024 - 32 - 8 * 8, 0xab);
  ASSERT_EQ(p.client->Send<ctl::Request>(1, [&](ctl::Request::Builder r) {
    r.initPing().setPayload(kj::arrayPtr(data.data(), data.size()));
  }), Status::kOk);
  ReceivedMessage m;
  ASSERT_EQ(p.server->Receive(&m, DeadlineIn(0)), Status::kOk);
  Decoded<ctl::Request> req;
  ASSERT_EQ(req.Decode(m), Status::kOk);
  EXPECT_EQ(req.root().getPing().getPayload().size(), data.size());
}

TEST(Channel, GarbageCapnpIsABadMessage) {
  auto p = testing::MakePair();
  std::mt19937_64 rng(1);
  int bad = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> junk((rng() % 100) * 8);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    if (i % 3 == 0 && junk.size() >= 8) {  // plausible segment table, junk body
      uint32_t t[2] = {0, static_cast<uint32_t>(junk.size() / 8 - 1)};
      std::memcpy(junk.data(), t, 8);
    }
    ASSERT_EQ(p.client->SendRaw(i, {junk.data(), junk.size()}, DeadlineIn(0)), Status::kOk);
    ReceivedMessage m;
    ASSERT_EQ(p.server->Receive(&m, DeadlineIn(0)), Status::kOk);
    Decoded<ctl::Request> req;
    // Raw messages are never decoded as Cap'n Proto...
    EXPECT_EQ(req.Decode(m), Status::kBadMessage);
    // ...and the same bytes as a Cap'n Proto payload either decode (every
    // pointer checked) or are refused; nothing crashes (ASan run).
    std::vector<uint64_t> words(junk.size() / 8);
    if (!words.empty()) std::memcpy(words.data(), junk.data(), words.size() * 8);
    if (req.DecodeWords(words.data(), words.size()) != Status::kOk) ++bad;
  }
  EXPECT_GT(bad, 1000);
}

}  // namespace
}  // namespace bulkhead::ipc
