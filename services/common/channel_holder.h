// The current channel to one peer, replaced when the supervisor restarts that
// peer and hands over a fresh segment.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "ipc/channel.h"

namespace bulkhead::service {

class ChannelHolder {
 public:
  void Replace(std::unique_ptr<ipc::Channel> ch, uint32_t generation) {
    {
      std::lock_guard<std::mutex> l(mu_);
      ch_ = std::shared_ptr<ipc::Channel>(std::move(ch));
      generation_ = generation;
      ++version_;
    }
    cv_.notify_all();
  }
  // The channel now, and a version that changes at every replacement.
  std::shared_ptr<ipc::Channel> Get(uint64_t* version = nullptr) const {
    std::lock_guard<std::mutex> l(mu_);
    if (version) *version = version_;
    return ch_;
  }
  uint64_t version() const {
    std::lock_guard<std::mutex> l(mu_);
    return version_;
  }
  // Waits up to `timeout_ms` for a channel newer than `version`.
  std::shared_ptr<ipc::Channel> WaitNewer(uint64_t version, int timeout_ms, uint64_t* new_version) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return version_ != version; });
    *new_version = version_;
    return ch_;
  }
  // Serialises the use of a client channel between threads.
  std::mutex& call_mutex() { return call_mu_; }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<ipc::Channel> ch_;
  uint32_t generation_ = 0;
  uint64_t version_ = 0;
  std::mutex call_mu_;
};

}  // namespace bulkhead::service
