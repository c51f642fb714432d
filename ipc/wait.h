// Waiting on a shared-memory ring: spin for a bounded, adaptive time, then
// sleep on a futex in the segment. Sleeps are cut into slices so that a dead
// peer, a closed ring or a passed deadline is noticed even if no wake comes.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>

#include "base/fd.h"

namespace bulkhead::ipc {

inline constexpr uint64_t kNoDeadline = std::numeric_limits<uint64_t>::max();

// Absolute CLOCK_MONOTONIC deadline `timeout_ns` from now (saturating).
uint64_t DeadlineIn(uint64_t timeout_ns);

// Cross-process futex on a word of a MAP_SHARED mapping.
// Returns 0 when woken or the value differed, -ETIMEDOUT, -EINTR.
int FutexWait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ns);
void FutexWake(std::atomic<uint32_t>* word, int count);

// Adaptive spin budget: grows while data keeps arriving within the spin,
// shrinks when the waiter has to sleep anyway. max_ns == 0 never spins.
class SpinPolicy {
 public:
  explicit SpinPolicy(uint64_t max_ns = 20000, uint64_t min_ns = 500)
      : max_ns_(max_ns), min_ns_(max_ns == 0 ? 0 : (min_ns < max_ns ? min_ns : max_ns)),
        budget_ns_(max_ns) {}
  uint64_t budget_ns() const { return budget_ns_; }
  void OnSpinHit() { budget_ns_ = budget_ns_ * 2 > max_ns_ ? max_ns_ : budget_ns_ * 2; }
  void OnSleep() { budget_ns_ = budget_ns_ / 2 < min_ns_ ? min_ns_ : budget_ns_ / 2; }
  // After a sleep that ended with data, `waited_ns` after the wait began:
  // had the spin lasted that long it would have hit, so the budget grows
  // (to cover twice that wait); a long idle wait shrinks it.
  void OnWoken(uint64_t waited_ns) {
    if (max_ns_ == 0) return;
    if (waited_ns >= max_ns_) {
      OnSleep();
      return;
    }
    uint64_t want = waited_ns * 2 > budget_ns_ * 2 ? waited_ns * 2 : budget_ns_ * 2;
    budget_ns_ = want > max_ns_ ? max_ns_ : want;
  }

 private:
  uint64_t max_ns_;
  uint64_t min_ns_;
  uint64_t budget_ns_;
};

// Watches the peer process through a pidfd (may be empty: then the peer is
// assumed alive and only deadlines and close flags end a wait).
class PeerWatch {
 public:
  PeerWatch() = default;
  explicit PeerWatch(UniqueFd pidfd) : pidfd_(std::move(pidfd)) {}
  bool Dead() const;
  int fd() const { return pidfd_.get(); }
  bool valid() const { return pidfd_.valid(); }

 private:
  UniqueFd pidfd_;
};

enum class WaitResult { kReady, kTimeout, kPeerDead, kClosed };

// How long one futex sleep lasts before liveness is re-checked.
inline constexpr uint64_t kSleepSliceNs = 20'000'000;  // 20 ms

// What a sleeper stores in its ring's `waiting` word: the futex value it is
// about to sleep on, tagged. A waker wakes only while the ticket names the
// current value: once per sleep, not once per message published meanwhile.
inline constexpr uint32_t kWaitingBit = 0x80000000u;
inline uint32_t WaitTicket(uint32_t seq) { return kWaitingBit | (seq & ~kWaitingBit); }

inline void CpuRelax() { __builtin_ia32_pause(); }

// Waits until ready() is true. `waiting` and `seq` are the ring's announce
// flag and futex word; `closed()` reports an orderly close by the peer.
template <typename Ready, typename Closed>
WaitResult WaitFor(Ready&& ready, Closed&& closed, std::atomic<uint32_t>* waiting,
                   std::atomic<uint32_t>* seq, SpinPolicy* spin, uint64_t deadline,
                   const PeerWatch* peer);

uint64_t NowNs();

}  // namespace bulkhead::ipc

#include "ipc/wait_inl.h"
