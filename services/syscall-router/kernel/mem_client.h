// The router's side of the mem-broker protocol (schemas/mem.capnp): chunks of
// the memory file, granted and released over the router's ring to the broker.
// A ChunkSource for MemoryFile.
//
// Each request carries a sequence number. When the broker dies (kill -9, a
// crash), the call waits for the supervisor's replacement (ChannelHolder)
// and re-sends the same request with the same number: the new broker, which
// reloaded the ledger its predecessor kept in the memory file, applies it
// once and answers as before (services/mem-broker/ledger.h). The application
// never notices.
#pragma once

#include <cstdint>
#include <functional>

#include "services/common/channel_holder.h"
#include "services/syscall-router/kernel/memory.h"

namespace bulkhead::router {

class MemClient final : public ChunkSource {
 public:
  explicit MemClient(service::ChannelHolder* holder);

  // A new router: whatever an earlier one held goes back. False if the
  // broker cannot be reached (the caller then allocates without it).
  bool Reset();
  int64_t Grant(uint32_t count, MemKind kind) override;
  void Release(uint32_t first, uint32_t count) override;

  // See GoferClient::SetBusyHook.
  void SetBusyHook(std::function<void(bool)> hook) { busy_ = std::move(hook); }

  // Requests re-sent to a replaced broker (tests, stats).
  uint64_t resends() const { return resends_; }

 private:
  template <typename Fill>
  long Call(Fill&& fill, uint32_t* first);

  service::ChannelHolder* holder_;
  std::function<void(bool)> busy_;
  uint64_t seq_;
  uint64_t resends_ = 0;
};

}  // namespace bulkhead::router
