// The input format of ring_decoder_fuzz: a hostile peer's writes to a live
// channel segment, as a sequence of operations. Shared by the fuzz target
// (which reads it), the seed generator (which writes it) and the replay test.
//
//   input := op*            ; at the end the server drains the ring once more
//   op    := opcode:u8 body ; opcode & 7 selects the kind, the high bits are flags
//
// Every read past the end of the input yields zeros, so any byte string is a
// valid input: the fuzzer never wastes executions on a parse error.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "ipc/layout.h"

namespace bulkhead::ipc::fuzz {

// The segment every ring input is played against: small, so that wrapping the
// ring and the bulk area happens within a few operations.
inline constexpr ChannelGeometry kRingFuzzGeometry{8, 512, 16384};

enum RingOp : uint8_t {
  // Writes a slot of the request ring at the peer's head and (unless
  // kSlotNoPublish) publishes it by bumping the shared head.
  //   body: SlotHeader (32 raw bytes), payload_len:u16, payload bytes
  //   (the payload is clamped to the slot; the header is written as given
  //   unless the fix-up flags below rewrite some of its fields)
  kOpSlot = 0,
  // Forges the request ring's head.   body: value:u64
  //   absolute, or with kHeadRelative: head = peer head + (int8)value
  kOpHead = 1,
  // Writes bytes into the request bulk area.   body: offset:u16, len:u16, bytes
  kOpBulk = 2,
  // Writes 8 bytes anywhere past the segment header.   body: offset:u32, value:u64
  kOpScribble = 3,
  // Acts as the consumer of the response ring: with kRespConsumeAll, releases
  // everything the server published; else   body: tail:u64, bulk_tail:u64
  kOpRespTail = 4,
  // The server takes up to 1 + (opcode >> 3) messages (deadline 0), decodes
  // each with every protocol's types and maybe replies.   body: mode:u8 (kServe*)
  kOpServe = 5,
  // Sets the request ring's producer_closed (or, with kCloseResponse, the
  // response ring's consumer_closed).   body: value:u32
  kOpClose = 6,
  // Forges the segment header and attaches a second endpoint to the segment;
  // the header is restored afterwards.
  //   with kAttachField: body: field:u8 (index into SegmentHeader's 7 fields), value:u64
  //   else:              body: 48 raw bytes of SegmentHeader
  kOpAttach = 7,
};

// Flags of kOpSlot.
inline constexpr uint8_t kSlotAutoLength = 0x08;  // header.length = payload bytes given
inline constexpr uint8_t kSlotAutoCapnp = 0x10;   // header.flags = kSlotCapnp
inline constexpr uint8_t kSlotNoBulk = 0x20;      // header.bulk_len = 0
inline constexpr uint8_t kSlotNoPublish = 0x40;   // write the slot, leave the head alone
// Flag of kOpHead.
inline constexpr uint8_t kHeadRelative = 0x08;
// Flag of kOpRespTail.
inline constexpr uint8_t kRespConsumeAll = 0x08;
// Flag of kOpClose.
inline constexpr uint8_t kCloseResponse = 0x08;
// Flags of kOpAttach.
inline constexpr uint8_t kAttachField = 0x08;
inline constexpr uint8_t kAttachClient = 0x10;

// Modes of kOpServe (a bit set).
inline constexpr uint8_t kServeReleaseBulk = 0x01;  // release each message's bulk bytes
inline constexpr uint8_t kServeReplyCapnp = 0x02;   // reply with a control Response{ok}
inline constexpr uint8_t kServeReplyRaw = 0x04;     // reply raw; bulk bytes: (mode >> 3) * 256

// Reads an input; past its end every value is zero.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  size_t remaining() const { return n_; }

  template <typename T>
  T Get() {
    T v{};
    const size_t k = std::min(sizeof(T), n_);
    if (k) std::memcpy(&v, p_, k);
    Skip(k);
    return v;
  }
  // Up to `n` bytes (fewer at the end of the input).
  std::span<const uint8_t> Bytes(size_t n) {
    n = std::min(n, n_);
    std::span<const uint8_t> s(p_, n);
    Skip(n);
    return s;
  }

 private:
  void Skip(size_t k) {
    p_ += k;
    n_ -= k;
  }
  const uint8_t* p_;
  size_t n_;
};

// Writes an input (seed generator, tests).
class RingInputBuilder {
 public:
  const std::vector<uint8_t>& bytes() const { return out_; }

  void Slot(const SlotHeader& h, std::span<const uint8_t> payload, uint8_t flags = 0) {
    Op(kOpSlot | flags);
    Put(h);
    Put(static_cast<uint16_t>(payload.size()));
    out_.insert(out_.end(), payload.begin(), payload.end());
  }
  // A well-formed Cap'n Proto slot: length and flags fixed up by the target.
  void CapnpSlot(uint64_t id, std::span<const uint8_t> payload) {
    Slot(SlotHeader{0, 0, id, 0, 0}, payload, kSlotAutoLength | kSlotAutoCapnp | kSlotNoBulk);
  }
  void Head(uint64_t value, bool relative = false) {
    Op(kOpHead | (relative ? kHeadRelative : 0));
    Put(value);
  }
  void Bulk(uint16_t offset, std::span<const uint8_t> data) {
    Op(kOpBulk);
    Put(offset);
    Put(static_cast<uint16_t>(data.size()));
    out_.insert(out_.end(), data.begin(), data.end());
  }
  void Scribble(uint32_t offset, uint64_t value) {
    Op(kOpScribble);
    Put(offset);
    Put(value);
  }
  void ConsumeResponses() { Op(kOpRespTail | kRespConsumeAll); }
  void RespTail(uint64_t tail, uint64_t bulk_tail) {
    Op(kOpRespTail);
    Put(tail);
    Put(bulk_tail);
  }
  void Serve(unsigned max_messages, uint8_t mode) {
    Op(static_cast<uint8_t>(kOpServe | ((std::clamp(max_messages, 1u, 32u) - 1) << 3)));
    Put(mode);
  }
  void Close(bool response_ring, uint32_t value = 1) {
    Op(kOpClose | (response_ring ? kCloseResponse : 0));
    Put(value);
  }
  void AttachField(uint8_t field, uint64_t value, bool client) {
    Op(kOpAttach | kAttachField | (client ? kAttachClient : 0));
    Put(field);
    Put(value);
  }

 private:
  void Op(uint8_t op) { out_.push_back(op); }
  template <typename T>
  void Put(const T& v) {
    const auto* b = reinterpret_cast<const uint8_t*>(&v);
    out_.insert(out_.end(), b, b + sizeof(T));
  }
  std::vector<uint8_t> out_;
};

}  // namespace bulkhead::ipc::fuzz
