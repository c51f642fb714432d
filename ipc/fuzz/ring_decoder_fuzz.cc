// libFuzzer target: the input is what a hostile client writes into a live
// channel segment (see ring_input.h for the format). This process plays the
// server: it receives with deadline 0, decodes every message with every
// protocol's types, replies, and checks what it can of the ring's promises
// against the peer's own view of the same memory.
//
// One segment is created once and reused. Each input starts from a zeroed
// segment and a freshly attached server endpoint, so an input's outcome does
// not depend on earlier inputs (crash reproducers reproduce). When the ring
// reports kCorrupt the channel is thrown away and a fresh segment created,
// as a real server does.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

#include "base/fd.h"
#include "base/mapping.h"
#include "ipc/channel.h"
#include "ipc/fuzz/decode_walk.h"
#include "ipc/fuzz/ring_input.h"
#include "schemas/control.capnp.h"

namespace bulkhead::ipc::fuzz {
namespace {

namespace ctl = schema::control;

constexpr ChannelGeometry kGeom = kRingFuzzGeometry;
constexpr int kReq = 0;   // client -> server ring
constexpr int kResp = 1;  // server -> client ring

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "FUZZ: ring invariant broken: %s\n", what);
  std::abort();
}
#define FUZZ_CHECK(cond)              \
  do {                                \
    if (!(cond)) Die(#cond);          \
  } while (0)

class World {
 public:
  World() : layout_(ComputeLayout(kGeom)) { NewSegment(); }

  // Back to a pristine channel on the same segment.
  void Reset() {
    server_.reset();
    std::memset(peer_.data() + kPageSize, 0, layout_.total_size - kPageSize);
    std::memcpy(peer_.data(), &header_, sizeof(header_));
    AttachServer();
  }

  // A fresh segment, as after a peer corrupted the old one.
  void NewSegment() {
    server_.reset();
    peer_.Reset();
    seg_ = CreateSegment(kGeom, "fuzz");
    peer_ = Mapping::MapShared(seg_.get(), layout_.total_size);
    std::memcpy(&header_, peer_.data(), sizeof(header_));
    AttachServer();
  }

  void Run(const uint8_t* data, size_t size) {
    ByteReader in(data, size);
    int ops = 0;
    while (!in.empty() && ops++ < 256) Step(in);
    Serve(kGeom.slot_count + 2, kServeReleaseBulk | kServeReplyCapnp);
  }

 private:
  void AttachServer() {
    ChannelOptions o;
    o.spin_max_ns = 0;  // deadline 0 everywhere: never spin, never sleep
    server_ = Channel::Attach(UniqueFd(::dup(seg_.get())), Channel::Role::kServer, "fuzz-server",
                              {}, o);
    peer_head_ = 0;
  }

  RingControl* Ctl(int dir) {
    return reinterpret_cast<RingControl*>(peer_.data() + layout_.control_offset[dir]);
  }
  uint8_t* Slot(int dir, uint64_t index) {
    return peer_.data() + layout_.slots_offset[dir] +
           (index & (kGeom.slot_count - 1)) * uint64_t{kGeom.slot_size};
  }
  uint8_t* BulkArea(int dir) { return peer_.data() + layout_.bulk_offset[dir]; }

  void Step(ByteReader& in) {
    const uint8_t op = in.Get<uint8_t>();
    switch (op & 7) {
      case kOpSlot: {
        SlotHeader h = in.Get<SlotHeader>();
        auto payload = in.Bytes(in.Get<uint16_t>());
        payload = payload.first(std::min<size_t>(payload.size(), kGeom.slot_size - sizeof(SlotHeader)));
        if (op & kSlotAutoLength) h.length = static_cast<uint32_t>(payload.size());
        if (op & kSlotAutoCapnp) h.flags = kSlotCapnp;
        if (op & kSlotNoBulk) h.bulk_len = 0;
        uint8_t* slot = Slot(kReq, peer_head_);
        std::memcpy(slot, &h, sizeof(h));
        if (!payload.empty()) std::memcpy(slot + sizeof(h), payload.data(), payload.size());
        if (!(op & kSlotNoPublish)) {
          Ctl(kReq)->bulk_head.store(h.bulk_pos + h.bulk_len, std::memory_order_relaxed);
          Ctl(kReq)->head.store(++peer_head_, std::memory_order_release);
        }
        break;
      }
      case kOpHead: {
        const uint64_t v = in.Get<uint64_t>();
        peer_head_ = (op & kHeadRelative) ? peer_head_ + static_cast<int8_t>(v) : v;
        Ctl(kReq)->head.store(peer_head_, std::memory_order_release);
        break;
      }
      case kOpBulk: {
        const uint64_t off = in.Get<uint16_t>() % kGeom.bulk_size;
        auto bytes = in.Bytes(in.Get<uint16_t>());
        const size_t n = std::min<uint64_t>(bytes.size(), kGeom.bulk_size - off);
        if (n) std::memcpy(BulkArea(kReq) + off, bytes.data(), n);
        break;
      }
      case kOpScribble: {
        const uint64_t off = kPageSize + in.Get<uint32_t>() % (layout_.total_size - kPageSize);
        const uint64_t v = in.Get<uint64_t>();
        std::memcpy(peer_.data() + off, &v, std::min<uint64_t>(8, layout_.total_size - off));
        break;
      }
      case kOpRespTail: {
        RingControl* c = Ctl(kResp);
        if (op & kRespConsumeAll) {
          c->tail.store(c->head.load(std::memory_order_acquire), std::memory_order_release);
          c->bulk_tail.store(c->bulk_head.load(std::memory_order_acquire), std::memory_order_release);
        } else {
          c->tail.store(in.Get<uint64_t>(), std::memory_order_release);
          c->bulk_tail.store(in.Get<uint64_t>(), std::memory_order_release);
        }
        break;
      }
      case kOpServe:
        Serve(1 + (op >> 3), in.Get<uint8_t>());
        break;
      case kOpClose: {
        const uint32_t v = in.Get<uint32_t>();
        if (op & kCloseResponse) {
          Ctl(kResp)->consumer_closed.store(v, std::memory_order_release);
        } else {
          Ctl(kReq)->producer_closed.store(v, std::memory_order_release);
        }
        break;
      }
      case kOpAttach:
        ForgedAttach(op, in);
        break;
    }
  }

  // The server side: what services/common/service.cc does with each message.
  void Serve(unsigned max_messages, uint8_t mode) {
    ReceivedMessage m;
    for (unsigned i = 0; i < max_messages; ++i) {
      const Status st = server_->Receive(&m, 0);
      switch (st) {
        case Status::kOk:
          ++Stats().received_ok;
          CheckReceived(m);
          DecodeAll(m);
          break;
        case Status::kBadMessage:
          ++Stats().received_bad;
          DecodeAll(m);  // the services decode these too (and fail)
          break;
        case Status::kCorrupt:
          ++Stats().corrupt;
          FUZZ_CHECK(server_->Receive(&m, 0) == Status::kCorrupt);  // corrupt stays corrupt
          FUZZ_CHECK(server_->corrupt());
          NewSegment();
          return;
        case Status::kClosed:
          ++Stats().closed;
          Reset();
          return;
        case Status::kTimeout:
          return;  // nothing (more) to take
        default:
          Die("Receive(deadline 0) returned an unexpected status");
      }
      if (mode & kServeReleaseBulk) server_->ReleaseBulk(m);
      if (!Reply(m.id(), mode)) return;
    }
  }

  // What the ring promised about a message it returned kOk for, checked
  // against the peer's view of the same memory (single-threaded: nothing
  // changed in between).
  void CheckReceived(const ReceivedMessage& m) {
    FUZZ_CHECK(m.payload().size() <= server_->payload_capacity());
    TouchBytes(m.payload().data(), m.payload().size());
    // The shared tail is the server's own, just written by Receive.
    const uint64_t tail = Ctl(kReq)->tail.load(std::memory_order_acquire);
    const uint8_t* slot = Slot(kReq, tail - 1);
    SlotHeader h;
    std::memcpy(&h, slot, sizeof(h));
    FUZZ_CHECK(h.id == m.id() && h.flags == m.flags() && h.length == m.payload().size());
    FUZZ_CHECK(m.payload().empty() ||
               std::memcmp(m.payload().data(), slot + sizeof(h), m.payload().size()) == 0);
    const BulkRef ref = m.bulk_ref();
    FUZZ_CHECK(ref.len == m.bulk().size());
    if (ref.len) {
      FUZZ_CHECK(ref.len <= kGeom.bulk_size && ref.pos % kGeom.bulk_size + ref.len <= kGeom.bulk_size);
      // The view must be the peer's bulk bytes at that position, i.e. inside
      // the request bulk area of the server's own mapping.
      FUZZ_CHECK(std::memcmp(m.bulk().data(), BulkArea(kReq) + ref.pos % kGeom.bulk_size, ref.len) == 0);
      TouchBytes(m.bulk().data(), m.bulk().size());
    }
  }

  // Returns false when the channel had to be replaced.
  bool Reply(uint64_t id, uint8_t mode) {
    Status st = Status::kOk;
    std::vector<uint8_t> bulk;
    if (mode & kServeReplyRaw) {
      bulk.resize((mode >> 3) * 256u);
      for (size_t i = 0; i < bulk.size(); ++i) bulk[i] = static_cast<uint8_t>(i * 7 + id);
      const uint8_t payload[24] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
      st = server_->SendRaw(id, payload, 0, bulk);
      if (st == Status::kOk) CheckPublished(id, kSlotRaw, sizeof(payload), bulk);
    } else if (mode & kServeReplyCapnp) {
      st = server_->Send<ctl::Response>(id, [](ctl::Response::Builder r) { r.setOk(); }, 0);
      if (st == Status::kOk) CheckPublished(id, kSlotCapnp, 0, bulk);
    } else {
      return true;
    }
    switch (st) {
      case Status::kOk: ++Stats().replies_ok; return true;
      case Status::kTimeout:     // response ring or bulk area full: the peer does not consume
      case Status::kTooLarge:    // bulk bytes over half the area
        return true;
      case Status::kClosed:
        ++Stats().closed;
        Reset();
        return false;
      case Status::kCorrupt:
        ++Stats().corrupt;
        FUZZ_CHECK(server_->Send<ctl::Response>(id, [](ctl::Response::Builder r) { r.setOk(); }, 0) ==
                   Status::kCorrupt);
        NewSegment();
        return false;
      default:
        Die("Send(deadline 0) returned an unexpected status");
    }
  }

  // The reply the server just published, as the peer sees it.
  void CheckPublished(uint64_t id, uint32_t flags, uint32_t raw_len, const std::vector<uint8_t>& bulk) {
    const uint64_t head = Ctl(kResp)->head.load(std::memory_order_acquire);
    const uint8_t* slot = Slot(kResp, head - 1);
    SlotHeader h;
    std::memcpy(&h, slot, sizeof(h));
    FUZZ_CHECK(h.id == id && h.flags == flags);
    FUZZ_CHECK(h.length <= kGeom.slot_size - sizeof(SlotHeader));
    if (flags == kSlotRaw) FUZZ_CHECK(h.length == raw_len);
    FUZZ_CHECK(h.bulk_len == bulk.size());
    if (!bulk.empty()) {
      FUZZ_CHECK(h.bulk_pos % kGeom.bulk_size + h.bulk_len <= kGeom.bulk_size);
      FUZZ_CHECK(std::memcmp(BulkArea(kResp) + h.bulk_pos % kGeom.bulk_size, bulk.data(), bulk.size()) == 0);
    }
    if (flags == kSlotCapnp) {
      std::vector<uint64_t> words(h.length / 8 + 1);
      std::memcpy(words.data(), slot + sizeof(SlotHeader), h.length);
      Decoded<ctl::Response> r;
      FUZZ_CHECK(r.DecodeWords(words.data(), h.length / 8) == Status::kOk);
      FUZZ_CHECK(r.root().isOk());
    }
  }

  // A second endpoint attaching to the segment after the header was forged:
  // it must be refused with an exception, or work within the mapping.
  void ForgedAttach(uint8_t op, ByteReader& in) {
    SegmentHeader h = header_;
    if (op & kAttachField) {
      const uint8_t field = in.Get<uint8_t>() % 7;
      const uint64_t v = in.Get<uint64_t>();
      switch (field) {
        case 0: h.magic = v; break;
        case 1: h.version = static_cast<uint32_t>(v); break;
        case 2: h.header_size = static_cast<uint32_t>(v); break;
        case 3: h.slot_count = static_cast<uint32_t>(v); break;
        case 4: h.slot_size = static_cast<uint32_t>(v); break;
        case 5: h.bulk_size = v; break;
        case 6: h.total_size = v; break;
      }
    } else {
      h = in.Get<SegmentHeader>();
    }
    std::memcpy(peer_.data(), &h, sizeof(h));
    const auto role = (op & kAttachClient) ? Channel::Role::kClient : Channel::Role::kServer;
    std::unique_ptr<Channel> other;
    try {
      other = Channel::Attach(UniqueFd(::dup(seg_.get())), role, "fuzz-forged", {}, {0, nullptr});
    } catch (const std::runtime_error&) {
      ++Stats().attach_refused;
    }
    std::memcpy(peer_.data(), &header_, sizeof(header_));
    if (!other) return;
    ++Stats().attach_ok;
    const ChannelGeometry& g = other->geometry();
    FUZZ_CHECK(ValidateGeometry(g) == nullptr);
    FUZZ_CHECK(ComputeLayout(g).total_size == layout_.total_size);
    ReceivedMessage m;
    if (other->TryReceive(&m) == Status::kOk) {
      TouchBytes(m.payload().data(), m.payload().size());
      TouchBytes(m.bulk().data(), m.bulk().size());
      DecodeAll(m);
    }
    const uint8_t payload[8] = {};
    (void)other->SendRaw(1, payload, 0);
    // The second endpoint's traffic went through the shared indices: from
    // here on the main server may well see them as corrupt, which is fine.
  }

  SegmentLayout layout_;
  UniqueFd seg_;
  Mapping peer_;  // the hostile client's view of the whole segment
  SegmentHeader header_{};
  std::unique_ptr<Channel> server_;
  uint64_t peer_head_ = 0;
};

World& GetWorld() {
  static World* w = new World();  // lives for the whole process, like the fuzzer
  return *w;
}

}  // namespace
}  // namespace bulkhead::ipc::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulkhead::ipc::fuzz;
  World& w = GetWorld();
  ++Stats().inputs;
  w.Reset();
  w.Run(data, size);
  return 0;
}
