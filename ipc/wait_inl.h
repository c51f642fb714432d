// Implementation of WaitFor (a template, so the hot checks inline).
#pragma once

namespace bulkhead::ipc {

template <typename Ready, typename Closed>
WaitResult WaitFor(Ready&& ready, Closed&& closed, std::atomic<uint32_t>* waiting,
                   std::atomic<uint32_t>* seq, SpinPolicy* spin, uint64_t deadline,
                   const PeerWatch* peer) {
  if (ready()) return WaitResult::kReady;
  uint64_t start = NowNs();
  const uint64_t budget = spin->budget_ns();
  if (budget > 0) {
    uint64_t spin_end = start + budget;
    for (uint32_t i = 1;; ++i) {
      CpuRelax();
      if (ready()) {
        spin->OnSpinHit();
        return WaitResult::kReady;
      }
      if ((i & 63) == 0) {
        uint64_t now = NowNs();
        if (now >= spin_end || now >= deadline) break;
      }
    }
  }
  for (;;) {
    // Messages published before the close are still delivered.
    if (closed()) {
      spin->OnSleep();
      return ready() ? WaitResult::kReady : WaitResult::kClosed;
    }
    uint64_t now = NowNs();
    if (now >= deadline) {
      spin->OnSleep();
      return WaitResult::kTimeout;
    }
    // Announce the sleep, then re-check: the producer publishes, fences, then
    // reads `waiting`; one of the two sides is guaranteed to see the other.
    uint32_t s = seq->load(std::memory_order_seq_cst);
    waiting->store(WaitTicket(s), std::memory_order_seq_cst);
    if (ready()) {
      waiting->store(0, std::memory_order_relaxed);
      spin->OnWoken(NowNs() - start);
      return WaitResult::kReady;
    }
    uint64_t slice = deadline - now < kSleepSliceNs ? deadline - now : kSleepSliceNs;
    int rc = FutexWait(seq, s, slice);
    waiting->store(0, std::memory_order_relaxed);
    if (ready()) {
      spin->OnWoken(NowNs() - start);
      return WaitResult::kReady;
    }
    if (rc == -ETIMEDOUT && peer != nullptr && peer->Dead()) {
      spin->OnSleep();
      return WaitResult::kPeerDead;
    }
  }
}

}  // namespace bulkhead::ipc
