// Counters a service keeps in a shared segment that the supervisor maps
// read-only: plain numbers, so a lying service can only lie about itself.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace bulkhead::ipc {

inline constexpr uint64_t kStatsMagic = 0x5354415453424b48ull;  // "HKBSTATS"
inline constexpr uint32_t kStatsVersion = 2;
// syscall-router: system call numbers below this are counted when answered ENOSYS.
inline constexpr int kMaxCountedSyscall = 512;
inline constexpr int kHistogramBuckets = 40;
inline constexpr int kMaxStatsChannels = 8;

// counts[i]: samples in [2^i, 2^(i+1)) ns; bucket 0 also holds 0 and 1 ns.
struct LatencyHistogram {
  std::atomic<uint64_t> counts[kHistogramBuckets];
  void Record(uint64_t ns) {
    int b = ns < 2 ? 0 : 63 - std::countl_zero(ns);
    if (b >= kHistogramBuckets) b = kHistogramBuckets - 1;
    counts[b].fetch_add(1, std::memory_order_relaxed);
  }
};

// Upper bound (ns) of the bucket holding quantile q in [0, 1] of `counts`,
// 0 when empty. Works on a private copy of the counts.
uint64_t HistogramQuantile(const uint64_t (&counts)[kHistogramBuckets], double q);

struct ChannelCounters {
  char name[16];
  std::atomic<uint64_t> messages_in;
  std::atomic<uint64_t> messages_out;
  std::atomic<uint64_t> errors;
  std::atomic<uint64_t> bulk_in;
  std::atomic<uint64_t> bulk_out;
  std::atomic<uint32_t> ring_depth;
  void SetName(std::string_view n) {
    std::memset(name, 0, sizeof(name));
    std::memcpy(name, n.data(), n.size() < sizeof(name) - 1 ? n.size() : sizeof(name) - 1);
  }
};

struct ServiceStatsBlock {
  uint64_t magic;
  uint32_t version;
  uint32_t kind;
  std::atomic<int32_t> pid;
  std::atomic<int32_t> fatal_syscall;  // -1: none; set by the SIGSYS reporter
  std::atomic<uint64_t> start_ns;
  std::atomic<uint64_t> messages_in;
  std::atomic<uint64_t> messages_out;
  std::atomic<uint64_t> errors;
  LatencyHistogram latency;  // request service time
  ChannelCounters channels[kMaxStatsChannels];
  // syscall-router: how often each system call number was answered ENOSYS
  // (unimplemented), for `bulkhead stats`.
  std::atomic<uint64_t> unimplemented[kMaxCountedSyscall];
  // syscall-router: the sandbox's memory (bytes), as /proc/meminfo shows it.
  struct Memory {
    std::atomic<uint64_t> used;   // everything below
    std::atomic<uint64_t> limit;  // 0: none
    std::atomic<uint64_t> anon;
    std::atomic<uint64_t> file;   // file pages (the exec cache)
    std::atomic<uint64_t> shmem;  // tmpfs and System V segments
    std::atomic<uint64_t> oom_kills;
  } memory;
};

// Prepares a zeroed block (done by the supervisor before handing it over).
void InitStatsBlock(ServiceStatsBlock* b, uint32_t kind);

// A channel name read from an untrusted block: printable ASCII only.
std::string SafeChannelName(const ChannelCounters& c);

}  // namespace bulkhead::ipc
