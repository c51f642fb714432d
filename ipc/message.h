// Cap'n Proto messages in ring slots: built in place in the slot, read from
// the private copy the consumer made of it.
//
// Slot payload of a kSlotCapnp message: the standard flat-array framing of a
// single-segment message, [u32 segment_count - 1 = 0][u32 words][words].
#pragma once

#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <optional>
#include <stdexcept>

#include "ipc/ring.h"

namespace bulkhead::ipc {

// Thrown (through Cap'n Proto's builder) when a message outgrows its slot.
struct MessageTooLarge : std::length_error {
  MessageTooLarge() : std::length_error("message does not fit in a ring slot") {}
};

// A MessageBuilder whose one and only segment is the slot's payload area.
class SlotMessageBuilder final : public capnp::MessageBuilder {
 public:
  // `space` must be 8-byte aligned; it is zeroed here (Cap'n Proto requires
  // zeroed segments).
  SlotMessageBuilder(uint8_t* space, size_t bytes);
  kj::ArrayPtr<capnp::word> allocateSegment(capnp::uint minimumSize) override;
  // Writes the segment table; returns the payload length in bytes.
  uint32_t Finish();

 private:
  uint8_t* base_;
  kj::ArrayPtr<capnp::word> segment_;
  bool allocated_ = false;
};

// Reader limits for messages from an untrusted peer.
capnp::ReaderOptions UntrustedReaderOptions(size_t message_words);

// Reads every field of `root` that its schema knows, recursively, with the
// field's declared type. Throws kj::Exception where a typed accessor would.
void ValidateTyped(capnp::DynamicStruct::Reader root);

// A decoded message: the reader and its root, valid while `msg` is unchanged.
template <typename T>
class Decoded {
 public:
  typename T::Reader root() const { return root_; }

  // Decodes `msg` and traverses it once completely, so that every pointer is
  // checked here and later accesses cannot fail. kBadMessage on any error.
  Status Decode(const ReceivedMessage& msg) {
    reader_.reset();
    if ((msg.flags() & kSlotCapnp) == 0) return Status::kBadMessage;
    return DecodeWords(msg.words(), msg.word_count());
  }

  // Decodes a flat array of `count` words in private memory.
  Status DecodeWords(const uint64_t* data, size_t count) {
    reader_.reset();
    if (data == nullptr || count < 2) return Status::kBadMessage;
    try {
      auto words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(data), count);
      {
        // Validated on a throw-away reader with a tight budget, so that the
        // handler's reader below starts with its whole budget.
        capnp::ReaderOptions o = UntrustedReaderOptions(count);
        o.traversalLimitInWords = 2 * count + 64;
        capnp::FlatArrayMessageReader check(words, o);
        // Structure: every pointer, fields unknown to this schema included.
        // More words than the message holds means aliased pointers.
        if (check.getRoot<capnp::AnyPointer>().targetSize().wordCount > count) {
          return Status::kBadMessage;
        }
        // Types: a pointer of the wrong kind, a list of the wrong element
        // size, a Text without its NUL pass targetSize() but throw in the
        // typed accessors.
        ValidateTyped(check.getRoot<capnp::DynamicStruct>(capnp::Schema::from<T>()));
      }
      reader_.emplace(words, UntrustedReaderOptions(count));
      root_ = reader_->template getRoot<T>();
      return Status::kOk;
    } catch (const kj::Exception&) {
      reader_.reset();
      return Status::kBadMessage;
    } catch (const std::exception&) {
      reader_.reset();
      return Status::kBadMessage;
    }
  }

 private:
  std::optional<capnp::FlatArrayMessageReader> reader_;
  typename T::Reader root_;
};

}  // namespace bulkhead::ipc
