// Writes the checked-in seed corpora of the fuzz targets, built with the real
// schemas:
//
//   bazel run //ipc/fuzz:make_corpus -- "$PWD/ipc/fuzz/corpus"
//
// creates <dir>/capnp_decode/* (flat arrays) and <dir>/ring_decoder/* (peer
// operations, see ring_input.h). Deterministic: rerunning it rewrites the
// same bytes. Keep it small: seeds are a starting point, the fuzzer and the
// replay test's mutations do the rest.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "ipc/fuzz/ring_input.h"
#include "ipc/layout.h"
#include "schemas/common.capnp.h"
#include "schemas/control.capnp.h"
#include "schemas/gofer.capnp.h"

namespace bulkhead::ipc::fuzz {
namespace {

namespace ctl = schema::control;
using Bytes = std::vector<uint8_t>;

std::string g_dir;
int g_files = 0;

void Write(const std::string& sub, const std::string& name, const Bytes& b) {
  const std::string dir = g_dir + "/" + sub;
  ::mkdir(g_dir.c_str(), 0755);
  ::mkdir(dir.c_str(), 0755);
  std::ofstream f(dir + "/" + name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) {
    std::fprintf(stderr, "make_corpus: cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
  ++g_files;
}

Bytes Flat(capnp::MessageBuilder& b) {
  auto words = capnp::messageToFlatArray(b);
  auto bytes = words.asBytes();
  return Bytes(bytes.begin(), bytes.end());
}

template <typename T>
Bytes Build(const std::function<void(typename T::Builder)>& fill) {
  capnp::MallocMessageBuilder b;
  fill(b.initRoot<T>());
  return Flat(b);
}

Bytes Words(std::initializer_list<uint64_t> words) {
  Bytes b(words.size() * 8);
  std::memcpy(b.data(), std::data(words), b.size());
  return b;
}

Bytes Payload(size_t n) {
  Bytes p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(i * 37 + 11);
  return p;
}

void FillStats(schema::ServiceStats::Builder s) {
  s.setService(schema::ServiceKind::FS_GOFER);
  s.setPid(4242);
  s.setRestarts(1);
  s.setUptimeNs(123456789);
  s.setMessagesIn(10);
  s.setMessagesOut(9);
  s.setErrors(1);
  s.setLastFatalSyscall(-1);
  auto counts = s.initLatency().initCounts(4);
  for (unsigned i = 0; i < 4; ++i) counts.set(i, i * 3);
  auto ch = s.initChannels(2);
  ch[0].setName("control");
  ch[0].setMessagesIn(5);
  ch[0].setRingDepth(1);
  ch[1].setName("gofer");
  ch[1].setBulkBytesIn(4096);
}

// Valid messages of every root type (and a few broken ones).
std::vector<std::pair<std::string, Bytes>> Messages() {
  std::vector<std::pair<std::string, Bytes>> m;
  m.emplace_back("ctl_request_hello", Build<ctl::Request>([](auto r) {
                   auto h = r.initHello();
                   h.setVersion(schema::PROTOCOL_VERSION);
                   h.setService(schema::ServiceKind::SYSCALL_ROUTER);
                   h.setPid(77);
                   h.setSandboxId("sbx-0001");
                 }));
  m.emplace_back("ctl_request_ping", Build<ctl::Request>([](auto r) {
                   auto p = r.initPing();
                   p.setSeq(1);
                   p.setSentNs(1000);
                   auto pl = Payload(16);
                   p.setPayload(kj::arrayPtr(pl.data(), pl.size()));
                 }));
  m.emplace_back("ctl_request_stats", Build<ctl::Request>([](auto r) { r.initStats(); }));
  m.emplace_back("ctl_request_forbidden_syscall",
                 Build<ctl::Request>([](auto r) { r.setForbiddenSyscall(165); }));
  m.emplace_back("ctl_response_error", Build<ctl::Response>([](auto r) {
                   auto e = r.initError();
                   e.setErrno(38);
                   e.setMessage("request not implemented by this version");
                 }));
  m.emplace_back("ctl_response_pong", Build<ctl::Response>([](auto r) {
                   auto p = r.initPong();
                   p.setSeq(1);
                   auto pl = Payload(24);
                   p.setPayload(kj::arrayPtr(pl.data(), pl.size()));
                 }));
  m.emplace_back("ctl_response_stats", Build<ctl::Response>([](auto r) { FillStats(r.initStats()); }));
  m.emplace_back("ctl_bootstrap", Build<ctl::Bootstrap>([](auto b) {
                   b.setService(schema::ServiceKind::NET_STACK);
                   b.setSandboxId("sbx-0001");
                   auto ch = b.initChannels(2);
                   ch[0].setName("control");
                   ch[0].setPeer(schema::ServiceKind::SUPERVISOR);
                   ch[0].setRole(ctl::ChannelGrant::Role::SERVER);
                   ch[1].setName("net");
                   ch[1].setPeer(schema::ServiceKind::SYSCALL_ROUTER);
                   ch[1].setHasPeerPidfd(true);
                   ch[1].setGeneration(3);
                   b.setAllowTestHooks(true);
                 }));
  m.emplace_back("ctl_channel_update", Build<ctl::ChannelUpdate>([](auto u) {
                   auto ch = u.initChannels(1);
                   ch[0].setName("mem");
                   ch[0].setPeer(schema::ServiceKind::MEM_BROKER);
                   ch[0].setGeneration(2);
                 }));
  m.emplace_back("ctl_cli_request_kill", Build<ctl::CliRequest>([](auto r) {
                   r.setKillService(schema::ServiceKind::FS_GOFER);
                 }));
  m.emplace_back("ctl_cli_response_pings", Build<ctl::CliResponse>([](auto r) {
                   auto p = r.initPings(2);
                   p[0].setService(schema::ServiceKind::FS_GOFER);
                   p[0].setOk(true);
                   p[0].setRoundTripNs(5000);
                   p[1].setService(schema::ServiceKind::NET_STACK);
                   p[1].setError("timeout");
                 }));
  m.emplace_back("ctl_cli_response_stats", Build<ctl::CliResponse>([](auto r) {
                   auto s = r.initStats(1);
                   FillStats(s[0]);
                 }));
  m.emplace_back("gofer_response_hello", Build<schema::gofer::Response>([](auto r) {
                   auto h = r.initHello();
                   h.setAccepted(false);
                   h.setVersion(1);
                   h.setService(schema::ServiceKind::FS_GOFER);
                   h.setReason("protocol version 9 not supported");
                 }));
  {
    // Several segments joined by far pointers (the ring carries one, but the
    // reader accepts any framing: it must stay safe).
    capnp::MallocMessageBuilder b(1, capnp::AllocationStrategy::FIXED_SIZE);
    auto h = b.initRoot<ctl::Request>().initHello();
    h.setVersion(1);
    h.setSandboxId("far");
    m.emplace_back("multi_segment_hello", Flat(b));
  }
  m.emplace_back("empty_struct", Bytes{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  // Reproducer (see README.md, "Known bugs"): a gofer ping whose payload
  // pointer is a (zero-sized) struct pointer instead of a Data list.
  // Structurally valid, so Decoded<T> accepts it; getPing().getPayload(), as
  // services/common/service.cc calls it, then throws kj::Exception.
  m.emplace_back("repro_ping_payload_struct_pointer", Words({
                     0x0000000600000000ull,  // segment table: 1 segment, 6 words
                     0x0001000100000000ull,  // root: struct, 1 data word, 1 pointer
                     0x0000000000000001ull,  // union discriminant 1: ping
                     0x0001000200000000ull,  // ping: struct, 2 data words, 1 pointer
                     1, 2,                   // seq, sentNs
                     0x00000000fffffffcull,  // payload: struct pointer (offset -1, empty)
                 }));
  {
    Bytes ping = m[1].second;
    ping.resize(ping.size() - 16);  // the payload is cut off
    m.emplace_back("truncated_ping", ping);
  }
  return m;
}

void RingSeeds(const std::vector<std::pair<std::string, Bytes>>& msgs) {
  auto msg = [&](const std::string& name) -> const Bytes& {
    for (const auto& [n, b] : msgs) {
      if (n == name) return b;
    }
    std::fprintf(stderr, "make_corpus: no message %s\n", name.c_str());
    std::exit(1);
  };
  const uint8_t kRelease = kServeReleaseBulk;
  const uint8_t kReply = kServeReplyCapnp;
  {
    RingInputBuilder b;  // one ping, served and answered
    b.CapnpSlot(1, msg("ctl_request_ping"));
    b.Serve(1, kRelease | kReply);
    Write("ring_decoder", "ping", b.bytes());
  }
  {
    RingInputBuilder b;  // a pipeline of requests, responses consumed in between
    b.CapnpSlot(1, msg("ctl_request_hello"));
    b.CapnpSlot(2, msg("ctl_request_stats"));
    b.CapnpSlot(3, msg("ctl_cli_request_kill"));
    b.Serve(3, kRelease | kReply);
    b.ConsumeResponses();
    b.CapnpSlot(4, msg("ctl_response_stats"));
    b.CapnpSlot(5, msg("ctl_bootstrap"));
    b.Serve(2, kRelease | kReply);
    Write("ring_decoder", "pipeline", b.bytes());
  }
  {
    RingInputBuilder b;  // messages with bulk bytes, raw replies with bulk bytes
    b.Bulk(0, Payload(300));
    b.Slot(SlotHeader{0, 0, 7, 0, 300}, msg("ctl_request_ping"), kSlotAutoLength | kSlotAutoCapnp);
    b.Bulk(304, Payload(64));
    b.Slot(SlotHeader{0, 0, 8, 304, 64}, msg("gofer_response_hello"), kSlotAutoLength | kSlotAutoCapnp);
    b.Serve(2, kRelease | kServeReplyRaw | (4 << 3));
    b.ConsumeResponses();
    b.Serve(1, kRelease | kServeReplyRaw | (31 << 3));
    Write("ring_decoder", "bulk", b.bytes());
  }
  {
    RingInputBuilder b;  // the request ring wraps twice, the response ring fills up
    for (int round = 0; round < 2; ++round) {
      for (uint64_t i = 0; i < kRingFuzzGeometry.slot_count; ++i) {
        b.CapnpSlot(round * 100 + i, msg(i % 2 ? "ctl_request_stats" : "ctl_response_pong"));
      }
      b.Serve(kRingFuzzGeometry.slot_count, kRelease | kReply);
    }
    b.ConsumeResponses();
    b.CapnpSlot(300, msg("ctl_request_hello"));
    b.Serve(1, kReply);
    Write("ring_decoder", "wrap", b.bytes());
  }
  {
    RingInputBuilder b;  // a length beyond the slot, then a valid message
    b.Slot(SlotHeader{1000, kSlotCapnp, 1, 0, 0}, msg("ctl_request_ping"), 0);
    b.Serve(1, kReply);
    b.CapnpSlot(2, msg("ctl_request_ping"));
    Write("ring_decoder", "bad_length", b.bytes());
  }
  {
    RingInputBuilder b;  // bulk ranges outside the area / behind the released bytes
    b.Slot(SlotHeader{0, 0, 1, 16384 - 8, 16}, msg("ctl_request_hello"), kSlotAutoLength | kSlotAutoCapnp);
    b.Slot(SlotHeader{0, 0, 2, ~0ull - 4, 8}, msg("ctl_request_hello"), kSlotAutoLength | kSlotAutoCapnp);
    b.Slot(SlotHeader{0, 0, 3, 100, 100}, msg("ctl_request_hello"), kSlotAutoLength | kSlotAutoCapnp);
    b.Serve(3, kRelease | kReply);
    b.Slot(SlotHeader{0, 0, 4, 50, 10}, msg("ctl_request_hello"), kSlotAutoLength | kSlotAutoCapnp);
    Write("ring_decoder", "bad_bulk", b.bytes());
  }
  {
    RingInputBuilder b;  // an absurd head: corrupt, then a fresh segment
    b.CapnpSlot(1, msg("ctl_request_ping"));
    b.Head(1ull << 40);
    b.Serve(2, kReply);
    b.CapnpSlot(2, msg("ctl_request_ping"));
    Write("ring_decoder", "head_absurd", b.bytes());
  }
  {
    RingInputBuilder b;  // the head goes back after a message was taken
    b.CapnpSlot(1, msg("ctl_request_hello"));
    b.CapnpSlot(2, msg("ctl_request_hello"));
    b.Serve(1, kReply);
    b.Head(static_cast<uint64_t>(-1), true);
    b.Serve(2, kReply);
    Write("ring_decoder", "head_back", b.bytes());
  }
  {
    RingInputBuilder b;  // the peer forges the tail of the response ring
    for (int i = 0; i < 9; ++i) b.CapnpSlot(i, msg("ctl_request_stats"));
    b.Serve(9, kReply);
    b.RespTail(~0ull, 0);
    b.CapnpSlot(9, msg("ctl_request_stats"));
    b.Serve(1, kServeReplyRaw | (2 << 3));
    Write("ring_decoder", "resp_tail", b.bytes());
  }
  {
    RingInputBuilder b;  // the peer forges the bulk tail of the response ring
    b.CapnpSlot(1, msg("ctl_request_ping"));
    b.CapnpSlot(2, msg("ctl_request_ping"));
    b.Serve(1, kServeReplyRaw | (8 << 3));
    b.RespTail(1, 1ull << 50);
    b.Serve(1, kServeReplyRaw | (8 << 3));
    Write("ring_decoder", "resp_bulk_tail", b.bytes());
  }
  {
    RingInputBuilder b;  // orderly close by the peer, and a closed response ring
    b.CapnpSlot(1, msg("ctl_request_ping"));
    b.Close(false);
    b.Serve(2, kReply);
    b.Close(true);
    b.CapnpSlot(2, msg("ctl_request_ping"));
    Write("ring_decoder", "closed", b.bytes());
  }
  {
    RingInputBuilder b;  // raw bytes over a published slot, a raw (non-capnp) slot
    b.CapnpSlot(1, msg("ctl_request_hello"));
    const SegmentLayout l = ComputeLayout(kRingFuzzGeometry);
    b.Scribble(static_cast<uint32_t>(l.slots_offset[0] + 40 - kPageSize), 0xfffffffc00000001ull);
    b.Slot(SlotHeader{24, kSlotRaw, 2, 0, 0}, Payload(24), 0);
    b.Slot(SlotHeader{0, 0, 3, 0, 0}, msg("truncated_ping"), kSlotAutoLength | kSlotAutoCapnp | kSlotNoPublish);
    b.Serve(3, kReply);
    Write("ring_decoder", "scribble", b.bytes());
  }
  {
    RingInputBuilder b;  // the reproducer of README.md "Known bugs", through the ring
    b.CapnpSlot(1, msg("repro_ping_payload_struct_pointer"));
    b.Serve(1, kRelease | kReply);
    Write("ring_decoder", "repro_ping_payload_struct_pointer", b.bytes());
  }
  {
    RingInputBuilder b;  // forged headers at attach: refused, or a geometry of the same size
    b.AttachField(0, 0, false);                    // magic
    b.AttachField(3, 4, false);                    // slot_count 4: same layout, accepted
    b.AttachField(4, 100, true);                   // slot_size not a power of two
    b.AttachField(6, 1ull << 40, false);           // total_size
    b.CapnpSlot(1, msg("ctl_request_ping"));
    b.AttachField(3, 2, true);                     // a second client publishes too
    b.Serve(2, kReply);
    Write("ring_decoder", "attach", b.bytes());
  }
}

}  // namespace
}  // namespace bulkhead::ipc::fuzz

int main(int argc, char** argv) {
  using namespace bulkhead::ipc::fuzz;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR   (e.g. \"$PWD/ipc/fuzz/corpus\")\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  const auto msgs = Messages();
  for (const auto& [name, bytes] : msgs) Write("capnp_decode", name, bytes);
  RingSeeds(msgs);
  std::printf("make_corpus: wrote %d files under %s\n", g_files, g_dir.c_str());
  return 0;
}
