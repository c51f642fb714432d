// A channel: one memfd segment shared by a client and a server, carrying
// requests one way and responses the other, each with its own bulk area.
//
// The supervisor creates segments (CreateSegment) and hands the descriptor to
// both sides; each side maps it with Channel::Attach, which checks the
// header and the file's size and seals before trusting any offset.
#pragma once

#include <capnp/message.h>

#include <memory>
#include <span>
#include <string>

#include "base/fd.h"
#include "base/mapping.h"
#include "ipc/layout.h"
#include "ipc/message.h"
#include "ipc/ring.h"
#include "ipc/stats.h"
#include "ipc/wait.h"

namespace bulkhead::ipc {

// Creates a sealed memfd holding a fresh channel. Throws on bad geometry or
// failed system calls.
UniqueFd CreateSegment(const ChannelGeometry& g, const std::string& name);

struct ChannelOptions {
  uint64_t spin_max_ns = 20000;  // adaptive spin ceiling before futex sleep; 0: never spin
  ChannelCounters* counters = nullptr;  // where to count (e.g. a shared stats block)
};

class Channel {
 public:
  enum class Role { kClient, kServer };

  // Maps `segment` and validates it. Throws std::runtime_error with a clear
  // message if the segment is not a well-formed, sealed channel.
  static std::unique_ptr<Channel> Attach(UniqueFd segment, Role role, std::string name,
                                         PeerWatch peer = {}, ChannelOptions opts = {});
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  const std::string& name() const { return name_; }
  Role role() const { return role_; }
  const ChannelGeometry& geometry() const { return geometry_; }
  uint32_t payload_capacity() const { return out_.payload_capacity(); }
  bool corrupt() const { return out_.corrupt() || in_.corrupt(); }
  const PeerWatch& peer() const { return peer_; }
  int segment_fd() const { return fd_.get(); }

  // Builds a message of root type T in the next outbound slot with
  // fill(T::Builder&) and publishes it under `id`. kTooLarge if it does not fit.
  template <typename T, typename Fill>
  Status Send(uint64_t id, Fill&& fill, uint64_t deadline = kNoDeadline,
              std::span<const uint8_t> bulk = {});

  // Like Send, with the bulk bytes produced in place (no copy):
  // produce(dst, max_bulk) writes at most max_bulk bytes at dst and returns
  // how many (negative: none, an error for fill to report); then
  // fill(T::Builder&, produced) builds the message. At most
  // bulk_capacity() bytes.
  template <typename T, typename Produce, typename Fill>
  Status SendProduced(uint64_t id, size_t max_bulk, Produce&& produce, Fill&& fill, uint64_t deadline = kNoDeadline);

  // Publishes opaque bytes (benchmarks, tests).
  Status SendRaw(uint64_t id, std::span<const uint8_t> payload, uint64_t deadline = kNoDeadline,
                 std::span<const uint8_t> bulk = {});

  // Takes the next inbound message. Its bulk bytes stay reserved until
  // ReleaseBulk(msg) (or the release of a later message).
  Status Receive(ReceivedMessage* msg, uint64_t deadline = kNoDeadline);
  Status TryReceive(ReceivedMessage* msg);
  void ReleaseBulk(const ReceivedMessage& msg) { in_.ReleaseBulk(msg); }

  // Client helper: sends a request with a fresh id and waits for the response
  // carrying that id (responses to earlier, abandoned requests are dropped).
  // `bulk`: bytes sent in the request's bulk area.
  template <typename Req, typename Resp, typename Fill>
  Status Call(Fill&& fill, ReceivedMessage* scratch, Decoded<Resp>* out, uint64_t deadline,
              std::span<const uint8_t> bulk = {});

  uint64_t NextId() { return ++last_id_; }
  // Idle: the outbound bulk area's pages go back to the host once the peer
  // released all of it (RingProducer::TrimBulk). Only from the thread that
  // sends on this channel.
  uint64_t TrimBulk() { return out_.TrimBulk(); }
  uint32_t InboundDepth() const { return in_.Depth(); }
  void Close();

 private:
  Channel() = default;
  Status ClaimWithBulk(std::span<const uint8_t> bulk, uint8_t** payload, BulkRef* ref,
                       uint64_t deadline);
  // Builds a message of root type T in the claimed slot with fill and
  // publishes it with the claimed bulk bytes `ref`.
  template <typename T, typename Fill>
  Status Publish(uint8_t* payload, uint64_t id, BulkRef ref, Fill&& fill);
  void CountOut(size_t bulk_bytes);
  void CountIn(const ReceivedMessage& m, Status st);

  UniqueFd fd_;
  Mapping map_;
  std::string name_;
  Role role_ = Role::kClient;
  ChannelGeometry geometry_;
  PeerWatch peer_;
  RingProducer out_;
  RingConsumer in_;
  SpinPolicy spin_out_;
  SpinPolicy spin_in_;
  ChannelCounters own_counters_{};
  ChannelCounters* counters_ = nullptr;
  uint64_t last_id_ = 0;
};

// ------------------------------------------------------------ templates

template <typename T, typename Produce, typename Fill>
Status Channel::SendProduced(uint64_t id, size_t max_bulk, Produce&& produce, Fill&& fill, uint64_t deadline) {
  uint8_t* payload;
  Status st = out_.Claim(&payload, deadline, &spin_out_, &peer_);
  if (st != Status::kOk) return st;
  BulkRef ref;
  uint8_t* dst = nullptr;
  if (max_bulk > 0) {
    st = out_.ClaimBulk(max_bulk, &ref, &dst, deadline, &spin_out_, &peer_);
    if (st != Status::kOk) return st;
  }
  const long produced = max_bulk > 0 ? produce(dst, max_bulk) : 0;
  out_.ShrinkBulk(&ref, produced > 0 ? std::min<uint64_t>(static_cast<uint64_t>(produced), max_bulk) : 0);
  return Publish<T>(payload, id, ref, [&](typename T::Builder& root) { fill(root, produced); });
}

template <typename T, typename Fill>
Status Channel::Send(uint64_t id, Fill&& fill, uint64_t deadline, std::span<const uint8_t> bulk) {
  uint8_t* payload;
  BulkRef ref;
  Status st = ClaimWithBulk(bulk, &payload, &ref, deadline);
  if (st != Status::kOk) return st;
  return Publish<T>(payload, id, ref, fill);
}

template <typename T, typename Fill>
Status Channel::Publish(uint8_t* payload, uint64_t id, BulkRef ref, Fill&& fill) {
  uint32_t len;
  try {
    SlotMessageBuilder builder(payload, out_.payload_capacity());
    auto root = builder.initRoot<T>();
    fill(root);
    len = builder.Finish();
  } catch (const MessageTooLarge&) {
    return Status::kTooLarge;
  } catch (const kj::Exception&) {
    return Status::kTooLarge;
  }
  out_.Publish(len, kSlotCapnp, id, ref);
  CountOut(ref.len);
  return Status::kOk;
}

template <typename Req, typename Resp, typename Fill>
Status Channel::Call(Fill&& fill, ReceivedMessage* scratch, Decoded<Resp>* out, uint64_t deadline,
                     std::span<const uint8_t> bulk) {
  const uint64_t id = NextId();
  Status st = Send<Req>(id, std::forward<Fill>(fill), deadline, bulk);
  if (st != Status::kOk) return st;
  for (;;) {
    st = Receive(scratch, deadline);
    if (st != Status::kOk && st != Status::kBadMessage) return st;
    if (scratch->id() != id) {
      ReleaseBulk(*scratch);  // a late answer to an abandoned request
      continue;
    }
    if (st == Status::kBadMessage) return st;
    return out->Decode(*scratch);
  }
}

}  // namespace bulkhead::ipc
