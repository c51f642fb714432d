#include "ipc/layout.h"

#include <bit>

namespace bulkhead::ipc {
namespace {
uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
}  // namespace

const char* ValidateGeometry(const ChannelGeometry& g) {
  if (g.slot_count < kMinSlots || g.slot_count > kMaxSlots || !std::has_single_bit(g.slot_count)) {
    return "slot count must be a power of two between 2 and 65536";
  }
  if (g.slot_size < kMinSlotSize || g.slot_size > kMaxSlotSize || !std::has_single_bit(g.slot_size)) {
    return "slot size must be a power of two between 128 and 65536 bytes";
  }
  if (g.bulk_size > kMaxBulkSize || g.bulk_size % kPageSize != 0) {
    return "bulk size must be a multiple of 4096 and at most 1 GiB";
  }
  return nullptr;
}

SegmentLayout ComputeLayout(const ChannelGeometry& g) {
  SegmentLayout l{};
  l.control_offset[0] = kControlOffset;
  l.control_offset[1] = kControlOffset + kControlSize;
  uint64_t off = AlignUp(kControlOffset + 2 * kControlSize, kPageSize);
  const uint64_t ring_bytes = AlignUp(uint64_t{g.slot_count} * g.slot_size, kPageSize);
  for (int d = 0; d < 2; ++d) {
    l.slots_offset[d] = off;
    off += ring_bytes;
  }
  for (int d = 0; d < 2; ++d) {
    l.bulk_offset[d] = off;
    off += g.bulk_size;
  }
  l.total_size = off;
  return l;
}

}  // namespace bulkhead::ipc
