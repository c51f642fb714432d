// Helpers shared by the ipc tests.
#pragma once

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <utility>

#include "base/fd.h"
#include "ipc/channel.h"

namespace bulkhead::ipc::testing {

// A client and a server endpoint of one fresh segment, in this process.
struct Pair {
  std::unique_ptr<Channel> client;
  std::unique_ptr<Channel> server;
};

inline Pair MakePair(ChannelGeometry g = {}, uint64_t spin_max_ns = 2000) {
  UniqueFd fd = CreateSegment(g, "test");
  UniqueFd dup(::dup(fd.get()));
  ChannelOptions o;
  o.spin_max_ns = spin_max_ns;
  Pair p;
  p.client = Channel::Attach(std::move(fd), Channel::Role::kClient, "test-client", {}, o);
  p.server = Channel::Attach(std::move(dup), Channel::Role::kServer, "test-server", {}, o);
  return p;
}

inline UniqueFd PidFd(pid_t pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); }

// Deterministic content for message `seq`: cheap to make and to check.
inline uint64_t Pattern(uint64_t seq, uint64_t i) { return (seq * 0x9E3779B97F4A7C15ull) ^ (i * 0xBF58476D1CE4E5B9ull); }

inline void Fill(uint8_t* p, size_t len, uint64_t seq) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v = Pattern(seq, i);
    std::memcpy(p + i, &v, 8);
  }
  for (; i < len; ++i) p[i] = static_cast<uint8_t>(Pattern(seq, i));
}

inline bool Check(const uint8_t* p, size_t len, uint64_t seq) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    if (v != Pattern(seq, i)) return false;
  }
  for (; i < len; ++i) {
    if (p[i] != static_cast<uint8_t>(Pattern(seq, i))) return false;
  }
  return true;
}

// splitmix64: a small deterministic generator for sizes.
inline uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace bulkhead::ipc::testing
