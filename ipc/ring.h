// Single-producer single-consumer ring of fixed-size slots plus a bulk byte
// area, living in a segment shared with an untrusted peer.
//
// Trust rules, enforced here and nowhere else:
//  * Each side owns one index (the producer `head`, the consumer `tail`) and
//    keeps the authoritative value in private memory; the shared copy is only
//    ever written by its owner.
//  * The peer's index is read once per check and accepted only if it is a
//    possible value (the consumer's tail never passes our head nor goes back;
//    the producer's head is never more than slot_count ahead of our tail).
//    An impossible value marks the ring corrupt: every later call fails fast
//    with kCorrupt instead of trusting anything in it.
//  * A slot is copied out once, then validated (length, flags, bulk range)
//    from the copy; the slot is released before the message is interpreted.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "ipc/layout.h"
#include "ipc/wait.h"

namespace bulkhead::ipc {

enum class Status {
  kOk = 0,
  kTimeout,     // deadline passed
  kPeerDead,    // the peer process is gone
  kClosed,      // the peer closed the ring in order
  kCorrupt,     // the peer wrote impossible indices; the ring is unusable
  kBadMessage,  // this message is malformed; the ring goes on
  kTooLarge,    // the message does not fit in a slot / the bulk area
  kWouldBlock,  // non-blocking call found no message / no space
};

const char* StatusName(Status s);
// The errno an application would see for a failed request: ETIMEDOUT, EIO, ...
int StatusErrno(Status s);

// Where the bulk bytes of one message lie in the bulk area.
struct BulkRef {
  uint64_t pos = 0;  // free-running position
  uint64_t len = 0;
};

class RingProducer {
 public:
  RingProducer() = default;
  RingProducer(RingControl* ctl, uint8_t* slots, uint32_t slot_count, uint32_t slot_size,
               uint8_t* bulk, uint64_t bulk_size);

  uint32_t payload_capacity() const { return slot_size_ - sizeof(SlotHeader); }
  uint64_t bulk_capacity() const { return bulk_size_ / 2; }
  // Gives the bulk area's pages back to the host when the consumer has
  // released every byte of it and it was used since the last time: the
  // bytes read as zeros after, which nobody reads (only this producer writes
  // there, before publishing). The bytes given back (0: nothing to do).
  uint64_t TrimBulk();

  // Returns the payload area of the next free slot, waiting for space until
  // `deadline`. The slot stays private until Publish().
  Status Claim(uint8_t** payload, uint64_t deadline, SpinPolicy* spin, const PeerWatch* peer);

  // Reserves `len` (at most half the bulk area) contiguous bulk bytes (waiting for the consumer to release
  // older ones) and returns where to write them.
  Status ClaimBulk(uint64_t len, BulkRef* ref, uint8_t** data, uint64_t deadline,
                   SpinPolicy* spin, const PeerWatch* peer);

  // Gives back the end of the last bulk claim: `ref` keeps its first `len`
  // bytes (a claim filled with fewer bytes than reserved).
  void ShrinkBulk(BulkRef* ref, uint64_t len);
  // Makes the claimed slot (and the bulk bytes of `bulk`) visible.
  void Publish(uint32_t length, uint32_t flags, uint64_t id, BulkRef bulk = {});

  // Number of published messages not yet taken by the consumer (a sample).
  uint32_t Depth() const;
  void Close();
  bool corrupt() const { return corrupt_; }

 private:
  bool RefreshTail();   // reads and checks the consumer's tail; false: corrupt
  bool RefreshBulkTail();

  RingControl* ctl_ = nullptr;
  uint8_t* slots_ = nullptr;
  uint8_t* bulk_ = nullptr;
  uint32_t slot_count_ = 0;
  uint32_t slot_size_ = 0;
  uint64_t bulk_size_ = 0;
  uint64_t head_ = 0;         // authoritative
  uint64_t cached_tail_ = 0;  // last valid tail seen
  uint64_t bulk_head_ = 0;
  uint64_t cached_bulk_tail_ = 0;
  uint64_t trimmed_at_ = 0;  // bulk_head_ when the area was last given back
  bool corrupt_ = false;
};

// A message copied out of a slot. The payload buffer is 8-byte aligned so a
// Cap'n Proto reader can use it in place. Bulk bytes stay in shared memory:
// bulk() is a bounds-checked view of untrusted bytes that the peer may still
// change; copy before interpreting them. Release bulk via the consumer.
class ReceivedMessage {
 public:
  ReceivedMessage() = default;
  uint64_t id() const { return id_; }
  uint32_t flags() const { return flags_; }
  std::span<const uint8_t> payload() const { return {buf_.get() ? reinterpret_cast<const uint8_t*>(buf_.get()) : nullptr, length_}; }
  const uint64_t* words() const { return buf_.get(); }
  size_t word_count() const { return length_ / 8; }
  std::span<const uint8_t> bulk() const { return {bulk_ptr_, bulk_.len}; }
  BulkRef bulk_ref() const { return bulk_; }

 private:
  friend class RingConsumer;
  void Reserve(uint32_t bytes);
  std::unique_ptr<uint64_t[]> buf_;
  uint32_t capacity_ = 0;
  uint32_t length_ = 0;
  uint32_t flags_ = 0;
  uint64_t id_ = 0;
  BulkRef bulk_;
  const uint8_t* bulk_ptr_ = nullptr;
};

class RingConsumer {
 public:
  RingConsumer() = default;
  RingConsumer(RingControl* ctl, uint8_t* slots, uint32_t slot_count, uint32_t slot_size,
               uint8_t* bulk, uint64_t bulk_size);

  // Takes the next message, waiting until `deadline`. On kBadMessage the
  // slot has been consumed and `out` holds its id (if it could be read).
  Status Pop(ReceivedMessage* out, uint64_t deadline, SpinPolicy* spin, const PeerWatch* peer);
  Status TryPop(ReceivedMessage* out);

  // Gives the bulk bytes of `m` (and every older message) back to the producer.
  void ReleaseBulk(const ReceivedMessage& m);

  uint32_t Depth() const;
  void Close();
  bool corrupt() const { return corrupt_; }

 private:
  bool RefreshHead();  // reads and checks the producer's head; false: corrupt

  RingControl* ctl_ = nullptr;
  uint8_t* slots_ = nullptr;
  uint8_t* bulk_ = nullptr;
  uint32_t slot_count_ = 0;
  uint32_t slot_size_ = 0;
  uint64_t bulk_size_ = 0;
  uint64_t tail_ = 0;         // authoritative
  uint64_t cached_head_ = 0;  // last valid head seen
  uint64_t bulk_released_ = 0;
  bool corrupt_ = false;
};

}  // namespace bulkhead::ipc
