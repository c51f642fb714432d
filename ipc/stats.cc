#include "ipc/stats.h"

namespace bulkhead::ipc {

uint64_t HistogramQuantile(const uint64_t (&counts)[kHistogramBuckets], double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total));
  if (rank >= total) rank = total - 1;
  uint64_t seen = 0;
  for (int i = 0; i < kHistogramBuckets; ++i) {
    seen += counts[i];
    if (seen > rank) return 2ull << i;
  }
  return 2ull << (kHistogramBuckets - 1);
}

void InitStatsBlock(ServiceStatsBlock* b, uint32_t kind) {
  std::memset(static_cast<void*>(b), 0, sizeof(*b));
  b->magic = kStatsMagic;
  b->version = kStatsVersion;
  b->kind = kind;
  b->fatal_syscall.store(-1);
}

std::string SafeChannelName(const ChannelCounters& c) {
  char copy[sizeof(c.name)];
  std::memcpy(copy, c.name, sizeof(copy));
  std::string out;
  for (char ch : copy) {
    if (ch == 0) break;
    out += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  }
  return out;
}

}  // namespace bulkhead::ipc
