// Multi-process stress: a client process and a server process exchange
// millions of messages of random sizes (payload up to the slot, bulk up to
// half the bulk area) in both directions; every message is checked for loss,
// duplication, reordering and content.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>

#include "ipc/channel.h"
#include "ipc/test_util.h"

namespace bulkhead::ipc {
namespace {

using testing::Check;
using testing::Fill;
using testing::Mix;

constexpr ChannelGeometry kGeometry{256, 512, 256 * 1024};

uint64_t MessageCount() {
#if defined(__SANITIZE_ADDRESS__)
  return 1'000'000;  // ASan makes every byte check ~10x slower
#else
  if (const char* e = std::getenv("BULKHEAD_STRESS_MESSAGES")) return std::strtoull(e, nullptr, 10);
  return 10'000'000;
#endif
}

size_t PayloadSize(uint64_t seq, uint32_t cap) { return Mix(seq) % (cap + 1); }
size_t BulkSize(uint64_t seq, uint64_t cap) {
  uint64_t r = Mix(seq ^ 0xb01c);
  return (r & 511) == 0 ? (r >> 12) % (cap + 1) : 0;  // one message in 512 carries bulk bytes
}

// The server echoes each request with a response of its own random size.
int Serve(UniqueFd seg, uint64_t n) {
  auto ch = Channel::Attach(std::move(seg), Channel::Role::kServer, "stress-server");
  ReceivedMessage m;
  std::vector<uint8_t> out(ch->payload_capacity()), bulk(kGeometry.bulk_size / 2);
  for (uint64_t seq = 0; seq < n; ++seq) {
    Status st = ch->Receive(&m, DeadlineIn(30'000'000'000ull));
    if (st != Status::kOk) return 10;
    if (m.id() != seq) return 11;  // lost, duplicated or reordered
    if (m.payload().size() != PayloadSize(seq, ch->payload_capacity())) return 12;
    if (!Check(m.payload().data(), m.payload().size(), seq)) return 13;
    size_t bl = BulkSize(seq, kGeometry.bulk_size / 2);
    if (m.bulk().size() != bl || !Check(m.bulk().data(), bl, seq ^ 1)) return 14;
    ch->ReleaseBulk(m);
    uint64_t rseq = seq + (1ull << 40);
    size_t len = PayloadSize(rseq, ch->payload_capacity());
    Fill(out.data(), len, rseq);
    size_t rbl = BulkSize(rseq, kGeometry.bulk_size / 2);
    Fill(bulk.data(), rbl, rseq ^ 1);
    if (ch->SendRaw(seq, {out.data(), len}, DeadlineIn(30'000'000'000ull), {bulk.data(), rbl}) != Status::kOk) return 15;
  }
  return 0;
}

TEST(Stress, MillionsOfMessagesBothWaysNoneLostDuplicatedOrReordered) {
  const uint64_t n = MessageCount();
  UniqueFd seg = CreateSegment(kGeometry, "stress");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(Serve(UniqueFd(dup(seg.get())), n));
  auto ch = Channel::Attach(std::move(seg), Channel::Role::kClient, "stress-client",
                            PeerWatch(testing::PidFd(child)));
  std::vector<uint8_t> out(ch->payload_capacity()), bulk(kGeometry.bulk_size / 2);
  ReceivedMessage m;
  uint64_t sent = 0, received = 0, bulk_bytes = 0;
  const uint64_t window = kGeometry.slot_count;  // never more in flight than a ring holds
  const uint64_t t0 = NowNs();
  while (received < n) {
    while (sent < n && sent - received < window) {
      size_t len = PayloadSize(sent, ch->payload_capacity());
      Fill(out.data(), len, sent);
      size_t bl = BulkSize(sent, kGeometry.bulk_size / 2);
      Fill(bulk.data(), bl, sent ^ 1);
      // Never block on a full ring or bulk area while responses wait to be
      // drained: the server may itself be waiting for us to release them.
      Status st = ch->SendRaw(sent, {out.data(), len}, 0, {bulk.data(), bl});
      if (st == Status::kTimeout) break;
      ASSERT_EQ(st, Status::kOk) << "send " << sent << ": " << StatusName(st);
      bulk_bytes += bl;
      ++sent;
    }
    Status st = ch->Receive(&m, DeadlineIn(30'000'000'000ull));
    ASSERT_EQ(st, Status::kOk) << "receive " << received << ": " << StatusName(st);
    ASSERT_EQ(m.id(), received) << "response lost, duplicated or reordered";
    uint64_t rseq = received + (1ull << 40);
    ASSERT_EQ(m.payload().size(), PayloadSize(rseq, ch->payload_capacity()));
    ASSERT_TRUE(Check(m.payload().data(), m.payload().size(), rseq)) << "corrupt response " << received;
    size_t rbl = BulkSize(rseq, kGeometry.bulk_size / 2);
    ASSERT_EQ(m.bulk().size(), rbl);
    ASSERT_TRUE(Check(m.bulk().data(), rbl, rseq ^ 1));
    bulk_bytes += rbl;
    ch->ReleaseBulk(m);
    ++received;
  }
  const double secs = (NowNs() - t0) / 1e9;
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "server died: signal " << WTERMSIG(status);
  ASSERT_EQ(WEXITSTATUS(status), 0) << "server saw a bad request (see Serve for codes)";
  std::printf("%llu requests + %llu responses, %.1f MiB bulk, in %.2f s (%.2f M round trips/s)\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(n),
              bulk_bytes / 1048576.0, secs, n / secs / 1e6);
}

}  // namespace
}  // namespace bulkhead::ipc
