#include "ipc/channel.h"

#include <sys/mman.h>

#include <stdexcept>

#include "base/error.h"
#include "base/memfd.h"

namespace bulkhead::ipc {

UniqueFd CreateSegment(const ChannelGeometry& g, const std::string& name) {
  if (const char* why = ValidateGeometry(g)) {
    throw std::invalid_argument(std::string("channel ") + name + ": " + why);
  }
  const SegmentLayout l = ComputeLayout(g);
  UniqueFd fd = CreateSealedMemfd("bulkhead-ch-" + name, l.total_size);
  Mapping m = Mapping::MapShared(fd.get(), kPageSize);
  SegmentHeader h{};
  h.magic = kSegmentMagic;
  h.version = kSegmentVersion;
  h.header_size = sizeof(SegmentHeader);
  h.slot_count = g.slot_count;
  h.slot_size = g.slot_size;
  h.bulk_size = g.bulk_size;
  h.total_size = l.total_size;
  std::memcpy(m.data(), &h, sizeof(h));
  return fd;
}

std::unique_ptr<Channel> Channel::Attach(UniqueFd segment, Role role, std::string name,
                                         PeerWatch peer, ChannelOptions opts) {
  auto fail = [&](const std::string& why) {
    return std::runtime_error("channel " + name + ": " + why);
  };
  long long size = FdSize(segment.get());
  if (size < 0) throw SysError(static_cast<int>(-size), "fstat", "channel " + name);
  if (static_cast<unsigned long long>(size) < kPageSize) throw fail("segment too small");
  // Without the size seals the peer could shrink the file under our mapping
  // and turn every access into SIGBUS.
  if (!HasSizeSeals(segment.get())) throw fail("segment is not sealed against resizing");
  SegmentHeader h;
  {
    Mapping head = Mapping::MapShared(segment.get(), kPageSize, 0, PROT_READ);
    std::memcpy(&h, head.data(), sizeof(h));  // the one read of the header
  }
  if (h.magic != kSegmentMagic) throw fail("bad magic (not a bulkhead channel)");
  if (h.header_size != sizeof(SegmentHeader)) throw fail("bad header size");
  if (h.version != kSegmentVersion) {
    throw fail("segment version " + std::to_string(h.version) + ", expected " +
               std::to_string(kSegmentVersion));
  }
  ChannelGeometry g{h.slot_count, h.slot_size, h.bulk_size};
  if (const char* why = ValidateGeometry(g)) throw fail(why);
  const SegmentLayout l = ComputeLayout(g);
  if (h.total_size != l.total_size || static_cast<unsigned long long>(size) != l.total_size) {
    throw fail("segment size does not match its geometry");
  }

  std::unique_ptr<Channel> c(new Channel());  // private constructor
  c->map_ = Mapping::MapShared(segment.get(), l.total_size);
  c->fd_ = std::move(segment);
  c->name_ = std::move(name);
  c->role_ = role;
  c->geometry_ = g;
  c->peer_ = std::move(peer);
  c->spin_out_ = SpinPolicy(opts.spin_max_ns);
  c->spin_in_ = SpinPolicy(opts.spin_max_ns);
  c->counters_ = opts.counters ? opts.counters : &c->own_counters_;
  c->counters_->SetName(c->name_);
  uint8_t* base = c->map_.data();
  const int out_dir = role == Role::kClient ? 0 : 1;
  const int in_dir = 1 - out_dir;
  auto ctl = [&](int d) { return reinterpret_cast<RingControl*>(base + l.control_offset[d]); };
  c->out_ = RingProducer(ctl(out_dir), base + l.slots_offset[out_dir], g.slot_count, g.slot_size,
                         base + l.bulk_offset[out_dir], g.bulk_size);
  c->in_ = RingConsumer(ctl(in_dir), base + l.slots_offset[in_dir], g.slot_count, g.slot_size,
                        base + l.bulk_offset[in_dir], g.bulk_size);
  return c;
}

Channel::~Channel() = default;

Status Channel::ClaimWithBulk(std::span<const uint8_t> bulk, uint8_t** payload, BulkRef* ref,
                              uint64_t deadline) {
  // The slot first: claiming it has no effect until Publish, so a bulk claim
  // that then times out leaves nothing behind.
  Status st = out_.Claim(payload, deadline, &spin_out_, &peer_);
  if (st != Status::kOk || bulk.empty()) return st;
  uint8_t* dst;
  st = out_.ClaimBulk(bulk.size(), ref, &dst, deadline, &spin_out_, &peer_);
  if (st != Status::kOk) return st;
  std::memcpy(dst, bulk.data(), bulk.size());
  return Status::kOk;
}

Status Channel::SendRaw(uint64_t id, std::span<const uint8_t> payload, uint64_t deadline,
                        std::span<const uint8_t> bulk) {
  if (payload.size() > out_.payload_capacity()) return Status::kTooLarge;
  uint8_t* dst;
  BulkRef ref;
  Status st = ClaimWithBulk(bulk, &dst, &ref, deadline);
  if (st != Status::kOk) return st;
  if (!payload.empty()) std::memcpy(dst, payload.data(), payload.size());
  out_.Publish(static_cast<uint32_t>(payload.size()), kSlotRaw, id, ref);
  CountOut(bulk.size());
  return Status::kOk;
}

Status Channel::Receive(ReceivedMessage* msg, uint64_t deadline) {
  Status st = in_.Pop(msg, deadline, &spin_in_, &peer_);
  CountIn(*msg, st);
  return st;
}

Status Channel::TryReceive(ReceivedMessage* msg) {
  Status st = in_.TryPop(msg);
  CountIn(*msg, st);
  return st;
}

void Channel::CountOut(size_t bulk_bytes) {
  counters_->messages_out.fetch_add(1, std::memory_order_relaxed);
  if (bulk_bytes) counters_->bulk_out.fetch_add(bulk_bytes, std::memory_order_relaxed);
}

void Channel::CountIn(const ReceivedMessage& m, Status st) {
  if (st == Status::kOk) {
    counters_->messages_in.fetch_add(1, std::memory_order_relaxed);
    if (m.bulk_ref().len) counters_->bulk_in.fetch_add(m.bulk_ref().len, std::memory_order_relaxed);
  } else if (st == Status::kBadMessage || st == Status::kCorrupt) {
    counters_->errors.fetch_add(1, std::memory_order_relaxed);
  }
}

void Channel::Close() {
  out_.Close();
  in_.Close();
}

}  // namespace bulkhead::ipc
