// The platform's Busy hint around a round trip to another service: `hook`
// (if set) is called with true now and with false when the guard goes
// (GoferClient::SetBusyHook, MemClient::SetBusyHook).
#pragma once

#include <functional>

namespace bulkhead::router {

class BusyGuard {
 public:
  explicit BusyGuard(const std::function<void(bool)>& hook) : hook_(hook) {
    if (hook_) hook_(true);
  }
  ~BusyGuard() {
    if (hook_) hook_(false);
  }
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;

 private:
  const std::function<void(bool)>& hook_;
};

}  // namespace bulkhead::router
