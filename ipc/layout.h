// The byte layout of a channel segment: one memfd shared by exactly two
// processes. Everything in here is written by an untrusted peer, so each side
// keeps its own copy of every index it relies on and only ever *reads* the
// peer's values to compare them against what is possible (see ring.h).
//
//   offset 0            SegmentHeader            (written once by the creator)
//   kControlOffset      RingControl request      (client -> server)
//   +kControlSize       RingControl response     (server -> client)
//   page aligned        request slots            slot_count * slot_size
//   page aligned        response slots
//   page aligned        request bulk area        bulk_size bytes
//   page aligned        response bulk area
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace bulkhead::ipc {

inline constexpr uint64_t kSegmentMagic = 0x4b48424c55424b48ull;  // "HKBULBHK"
inline constexpr uint32_t kSegmentVersion = 1;
inline constexpr size_t kCacheLine = 64;
inline constexpr size_t kPageSize = 4096;

// Limits a segment must respect; anything outside is refused at attach.
inline constexpr uint32_t kMinSlots = 2;
inline constexpr uint32_t kMaxSlots = 1u << 16;
inline constexpr uint32_t kMinSlotSize = 128;
inline constexpr uint32_t kMaxSlotSize = 1u << 16;
inline constexpr uint64_t kMaxBulkSize = 1ull << 30;

struct ChannelGeometry {
  uint32_t slot_count = 256;      // power of two in [kMinSlots, kMaxSlots]
  uint32_t slot_size = 1024;      // power of two in [kMinSlotSize, kMaxSlotSize], header included
  uint64_t bulk_size = 1u << 20;  // per direction; multiple of kPageSize, may be 0
  bool operator==(const ChannelGeometry&) const = default;
};

// Returns nullptr if `g` is acceptable, else a description of what is wrong.
const char* ValidateGeometry(const ChannelGeometry& g);

struct SegmentLayout {
  uint64_t control_offset[2];  // [0] request ring, [1] response ring
  uint64_t slots_offset[2];
  uint64_t bulk_offset[2];
  uint64_t total_size;
};

// A pure function of the geometry: both sides compute it themselves rather
// than trusting offsets stored in the segment.
SegmentLayout ComputeLayout(const ChannelGeometry& g);

struct SegmentHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size;
  uint32_t slot_count;
  uint32_t slot_size;
  uint64_t bulk_size;
  uint64_t total_size;
};

inline constexpr size_t kControlOffset = kPageSize;
inline constexpr size_t kControlSize = 8 * kCacheLine;

// Shared indices of one ring. Indices are free-running 64-bit counters; a
// slot is index & (slot_count - 1).
struct RingControl {
  alignas(kCacheLine) std::atomic<uint64_t> head;  // written by the producer only
  alignas(kCacheLine) std::atomic<uint64_t> tail;  // written by the consumer only
  // The consumer sets data_waiting before sleeping on data_seq; the producer
  // bumps data_seq and wakes only when it sees data_waiting.
  alignas(kCacheLine) std::atomic<uint32_t> data_waiting;
  std::atomic<uint32_t> data_seq;
  // The same for a producer that found the ring (or the bulk area) full.
  alignas(kCacheLine) std::atomic<uint32_t> space_waiting;
  std::atomic<uint32_t> space_seq;
  alignas(kCacheLine) std::atomic<uint64_t> bulk_head;  // producer: bytes handed out
  alignas(kCacheLine) std::atomic<uint64_t> bulk_tail;  // consumer: bytes released
  alignas(kCacheLine) std::atomic<uint32_t> producer_closed;
  std::atomic<uint32_t> consumer_closed;
};
static_assert(sizeof(RingControl) <= kControlSize);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// The fixed head of every slot, followed by the payload.
struct SlotHeader {
  uint32_t length;    // payload bytes
  uint32_t flags;     // SlotFlags
  uint64_t id;        // request id; a response carries its request's id
  uint64_t bulk_pos;  // free-running position of this message's bulk bytes
  uint64_t bulk_len;  // 0: no bulk bytes
};
static_assert(sizeof(SlotHeader) == 32);

enum SlotFlags : uint32_t {
  kSlotCapnp = 1u << 0,  // payload is a single-segment Cap'n Proto flat array
  kSlotRaw = 1u << 1,    // payload is opaque bytes (benchmarks, tests)
};

}  // namespace bulkhead::ipc
