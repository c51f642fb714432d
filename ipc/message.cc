#include "ipc/message.h"

namespace bulkhead::ipc {

SlotMessageBuilder::SlotMessageBuilder(uint8_t* space, size_t bytes) : base_(space) {
  size_t words = bytes / sizeof(capnp::word);
  if (words < 2) throw MessageTooLarge();
  std::memset(space, 0, words * sizeof(capnp::word));
  // The first word holds the segment table.
  segment_ = kj::arrayPtr(reinterpret_cast<capnp::word*>(space) + 1, words - 1);
}

kj::ArrayPtr<capnp::word> SlotMessageBuilder::allocateSegment(capnp::uint minimumSize) {
  if (allocated_ || minimumSize > segment_.size()) throw MessageTooLarge();
  allocated_ = true;
  return segment_;
}

uint32_t SlotMessageBuilder::Finish() {
  auto segments = getSegmentsForOutput();
  if (segments.size() != 1) throw MessageTooLarge();
  uint32_t table[2] = {0, static_cast<uint32_t>(segments[0].size())};
  std::memcpy(base_, table, sizeof(table));
  return static_cast<uint32_t>(sizeof(capnp::word) * (1 + segments[0].size()));
}

capnp::ReaderOptions UntrustedReaderOptions(size_t message_words) {
  capnp::ReaderOptions o;
  // Enough to traverse the message a few times (decode-time validation plus
  // the handler's reads), never enough for an amplification attack.
  o.traversalLimitInWords = 8 * message_words + 1024;
  o.nestingLimit = 16;
  return o;
}

}  // namespace bulkhead::ipc
