#include "ipc/ring.h"

#include <sys/mman.h>

#include <cerrno>

namespace bulkhead::ipc {

const char* StatusName(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kTimeout: return "timeout";
    case Status::kPeerDead: return "peer dead";
    case Status::kClosed: return "closed by peer";
    case Status::kCorrupt: return "ring corrupted by peer";
    case Status::kBadMessage: return "malformed message";
    case Status::kTooLarge: return "message too large";
    case Status::kWouldBlock: return "would block";
  }
  return "unknown";
}

int StatusErrno(Status s) {
  switch (s) {
    case Status::kOk: return 0;
    case Status::kTimeout: return ETIMEDOUT;
    case Status::kPeerDead: return EIO;
    case Status::kClosed: return EPIPE;
    case Status::kCorrupt: return EIO;
    case Status::kBadMessage: return EBADMSG;
    case Status::kTooLarge: return EMSGSIZE;
    case Status::kWouldBlock: return EAGAIN;
  }
  return EIO;
}

namespace {

// Reads an index the consumer owns and accepts it only if it is possible:
// never going back, never passing what we produced. Otherwise the ring is
// marked corrupt.
bool AdoptPeerIndex(const std::atomic<uint64_t>& shared, uint64_t* cached, uint64_t limit, bool* corrupt) {
  uint64_t v = shared.load(std::memory_order_acquire);
  if (v < *cached || v > limit) {
    *corrupt = true;
    return false;
  }
  *cached = v;
  return true;
}

Status FromWait(WaitResult w) {
  switch (w) {
    case WaitResult::kReady: return Status::kOk;
    case WaitResult::kTimeout: return Status::kTimeout;
    case WaitResult::kPeerDead: return Status::kPeerDead;
    case WaitResult::kClosed: return Status::kClosed;
  }
  return Status::kCorrupt;
}

inline void WakeIfWaiting(std::atomic<uint32_t>* waiting, std::atomic<uint32_t>* seq) {
  // Pairs with the waiter's seq_cst store of `waiting` followed by its
  // re-check of the index (see WaitFor).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint32_t w = waiting->load(std::memory_order_relaxed);
  if (w != 0 && w == WaitTicket(seq->load(std::memory_order_relaxed))) {
    seq->fetch_add(1, std::memory_order_release);
    FutexWake(seq, 1);
  }
}
}  // namespace

// ---------------------------------------------------------------- producer

RingProducer::RingProducer(RingControl* ctl, uint8_t* slots, uint32_t slot_count,
                           uint32_t slot_size, uint8_t* bulk, uint64_t bulk_size)
    : ctl_(ctl), slots_(slots), bulk_(bulk), slot_count_(slot_count), slot_size_(slot_size),
      bulk_size_(bulk_size) {
  // A fresh segment starts at zero; a producer attaching to a used segment
  // (never done today) would adopt the shared values only after checking them.
  head_ = 0;
  cached_tail_ = 0;
}

bool RingProducer::RefreshTail() { return AdoptPeerIndex(ctl_->tail, &cached_tail_, head_, &corrupt_); }

Status RingProducer::Claim(uint8_t** payload, uint64_t deadline, SpinPolicy* spin,
                           const PeerWatch* peer) {
  if (corrupt_) return Status::kCorrupt;
  if (head_ - cached_tail_ >= slot_count_) {
    auto has_space = [&] {
      if (!RefreshTail()) return true;  // wake up to report the corruption
      return head_ - cached_tail_ < slot_count_;
    };
    auto closed = [&] { return ctl_->consumer_closed.load(std::memory_order_acquire) != 0; };
    WaitResult w = WaitFor(has_space, closed, &ctl_->space_waiting, &ctl_->space_seq, spin,
                           deadline, peer);
    if (corrupt_) return Status::kCorrupt;
    if (w != WaitResult::kReady) return FromWait(w);
  }
  uint8_t* slot = slots_ + (head_ & (slot_count_ - 1)) * static_cast<uint64_t>(slot_size_);
  *payload = slot + sizeof(SlotHeader);
  return Status::kOk;
}

bool RingProducer::RefreshBulkTail() {
  return AdoptPeerIndex(ctl_->bulk_tail, &cached_bulk_tail_, bulk_head_, &corrupt_);
}

void RingProducer::ShrinkBulk(BulkRef* ref, uint64_t len) {
  if (len >= ref->len || bulk_head_ != ref->pos + ref->len) return;  // not the last claim: keep it whole
  bulk_head_ = ref->pos + len;
  ref->len = len;
}

uint64_t RingProducer::TrimBulk() {
  if (corrupt_ || bulk_size_ == 0 || bulk_head_ == trimmed_at_) return 0;
  if (!RefreshBulkTail() || cached_bulk_tail_ != bulk_head_) return 0;  // bytes still in use
  // MADV_REMOVE: the shared memory's pages themselves go (the peer's mapping
  // reads zeros too). A failure leaves the bytes as they were: harmless.
  if (::madvise(bulk_, bulk_size_, MADV_REMOVE) != 0) return 0;
  trimmed_at_ = bulk_head_;
  return bulk_size_;
}

Status RingProducer::ClaimBulk(uint64_t len, BulkRef* ref, uint8_t** data, uint64_t deadline,
                               SpinPolicy* spin, const PeerWatch* peer) {
  if (corrupt_) return Status::kCorrupt;
  if (len == 0) {
    *ref = {bulk_head_, 0};
    *data = nullptr;
    return Status::kOk;
  }
  // At most half the area: then a contiguous range is always found once the
  // consumer has released older bytes, wherever the head stands.
  if (len > bulk_size_ / 2) return Status::kTooLarge;
  // Bulk bytes are contiguous: skip the rest of the area if `len` does not fit
  // before its end. The skipped bytes count as used until released.
  uint64_t offset = bulk_head_ % bulk_size_;
  uint64_t skip = (offset + len > bulk_size_) ? bulk_size_ - offset : 0;
  uint64_t need = skip + len;
  auto has_space = [&] {
    if (!RefreshBulkTail()) return true;
    return bulk_size_ - (bulk_head_ - cached_bulk_tail_) >= need;
  };
  if (!has_space()) {
    auto closed = [&] { return ctl_->consumer_closed.load(std::memory_order_acquire) != 0; };
    WaitResult w = WaitFor(has_space, closed, &ctl_->space_waiting, &ctl_->space_seq, spin,
                           deadline, peer);
    if (corrupt_) return Status::kCorrupt;
    if (w != WaitResult::kReady) return FromWait(w);
  }
  bulk_head_ += skip;
  ref->pos = bulk_head_;
  ref->len = len;
  *data = bulk_ + (bulk_head_ % bulk_size_);
  bulk_head_ += len;
  return Status::kOk;
}

void RingProducer::Publish(uint32_t length, uint32_t flags, uint64_t id, BulkRef bulk) {
  uint8_t* slot = slots_ + (head_ & (slot_count_ - 1)) * static_cast<uint64_t>(slot_size_);
  SlotHeader h{length, flags, id, bulk.pos, bulk.len};
  std::memcpy(slot, &h, sizeof(h));
  ++head_;
  ctl_->bulk_head.store(bulk_head_, std::memory_order_relaxed);
  ctl_->head.store(head_, std::memory_order_release);
  WakeIfWaiting(&ctl_->data_waiting, &ctl_->data_seq);
}

uint32_t RingProducer::Depth() const {
  uint64_t t = ctl_->tail.load(std::memory_order_relaxed);
  return t <= head_ && head_ - t <= slot_count_ ? static_cast<uint32_t>(head_ - t) : 0;
}

void RingProducer::Close() {
  ctl_->producer_closed.store(1, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  ctl_->data_seq.fetch_add(1, std::memory_order_release);
  FutexWake(&ctl_->data_seq, 1);
}

// ---------------------------------------------------------------- consumer

void ReceivedMessage::Reserve(uint32_t bytes) {
  if (capacity_ >= bytes) return;
  uint32_t words = (bytes + 7) / 8;
  buf_ = std::make_unique<uint64_t[]>(words);
  capacity_ = words * 8;
}

RingConsumer::RingConsumer(RingControl* ctl, uint8_t* slots, uint32_t slot_count,
                           uint32_t slot_size, uint8_t* bulk, uint64_t bulk_size)
    : ctl_(ctl), slots_(slots), bulk_(bulk), slot_count_(slot_count), slot_size_(slot_size),
      bulk_size_(bulk_size) {}

bool RingConsumer::RefreshHead() {
  uint64_t h = ctl_->head.load(std::memory_order_acquire);
  if (h < cached_head_ || h - tail_ > slot_count_) {
    corrupt_ = true;
    return false;
  }
  cached_head_ = h;
  return true;
}

Status RingConsumer::TryPop(ReceivedMessage* out) {
  if (corrupt_) return Status::kCorrupt;
  if (cached_head_ == tail_) {
    if (!RefreshHead()) return Status::kCorrupt;
    if (cached_head_ == tail_) return Status::kWouldBlock;
  }
  const uint8_t* slot = slots_ + (tail_ & (slot_count_ - 1)) * static_cast<uint64_t>(slot_size_);
  SlotHeader h;
  std::memcpy(&h, slot, sizeof(h));  // the one read of the header
  const uint32_t cap = slot_size_ - static_cast<uint32_t>(sizeof(SlotHeader));
  Status st = Status::kOk;
  out->id_ = h.id;
  out->flags_ = h.flags;
  out->bulk_ = {};
  out->bulk_ptr_ = nullptr;
  if (h.length > cap) {
    st = Status::kBadMessage;
    out->length_ = 0;
  } else {
    out->Reserve(cap);
    std::memcpy(out->buf_.get(), slot + sizeof(SlotHeader), h.length);  // the one read of the payload
    out->length_ = h.length;
  }
  if (st == Status::kOk && h.bulk_len != 0) {
    // The bulk range must lie in the area, be contiguous, and not reach back
    // before what we already released nor further than the area can hold.
    const uint64_t off = bulk_size_ ? h.bulk_pos % bulk_size_ : 0;
    if (bulk_size_ == 0 || h.bulk_len > bulk_size_ || h.bulk_pos < bulk_released_ ||
        h.bulk_pos - bulk_released_ > bulk_size_ ||
        h.bulk_pos + h.bulk_len - bulk_released_ > bulk_size_ || off + h.bulk_len > bulk_size_ ||
        h.bulk_pos + h.bulk_len < h.bulk_pos) {
      st = Status::kBadMessage;
    } else {
      out->bulk_ = {h.bulk_pos, h.bulk_len};
      out->bulk_ptr_ = bulk_ + off;
    }
  }
  ++tail_;
  ctl_->tail.store(tail_, std::memory_order_release);
  WakeIfWaiting(&ctl_->space_waiting, &ctl_->space_seq);
  return st;
}

Status RingConsumer::Pop(ReceivedMessage* out, uint64_t deadline, SpinPolicy* spin,
                         const PeerWatch* peer) {
  Status st = TryPop(out);
  if (st != Status::kWouldBlock) return st;
  auto ready = [&] {
    if (!RefreshHead()) return true;
    return cached_head_ != tail_;
  };
  auto closed = [&] { return ctl_->producer_closed.load(std::memory_order_acquire) != 0; };
  WaitResult w = WaitFor(ready, closed, &ctl_->data_waiting, &ctl_->data_seq, spin, deadline, peer);
  return w == WaitResult::kReady ? TryPop(out) : FromWait(w);
}

void RingConsumer::ReleaseBulk(const ReceivedMessage& m) {
  if (m.bulk_.len == 0) return;
  uint64_t end = m.bulk_.pos + m.bulk_.len;
  if (end <= bulk_released_) return;
  bulk_released_ = end;
  ctl_->bulk_tail.store(bulk_released_, std::memory_order_release);
  WakeIfWaiting(&ctl_->space_waiting, &ctl_->space_seq);
}

uint32_t RingConsumer::Depth() const {
  uint64_t h = ctl_->head.load(std::memory_order_relaxed);
  return h >= tail_ && h - tail_ <= slot_count_ ? static_cast<uint32_t>(h - tail_) : 0;
}

void RingConsumer::Close() {
  ctl_->consumer_closed.store(1, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  ctl_->space_seq.fetch_add(1, std::memory_order_release);
  FutexWake(&ctl_->space_seq, 1);
}

}  // namespace bulkhead::ipc
