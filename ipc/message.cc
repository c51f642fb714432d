#include "ipc/message.h"

#include <unordered_map>
#include <vector>

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

namespace {
void ValidateValue(const capnp::DynamicValue::Reader& v);

bool IsPointerField(capnp::StructSchema::Field f) {
  // A group is a struct sharing its parent's sections: walk it too.
  if (f.getProto().isGroup()) return true;
  switch (f.getType().which()) {
    case capnp::schema::Type::TEXT:
    case capnp::schema::Type::DATA:
    case capnp::schema::Type::LIST:
    case capnp::schema::Type::STRUCT:
    case capnp::schema::Type::ANY_POINTER:
    case capnp::schema::Type::INTERFACE:
      return true;
    default:
      return false;
  }
}

// The pointer fields of one struct type, found once per type and thread
// (schema walks are the costly part of validation).
struct PointerFields {
  std::vector<capnp::StructSchema::Field> plain;  // outside the union
  std::vector<bool> union_member_is_pointer;      // by Field::getIndex() (all fields)
};

const PointerFields& PointerFieldsOf(capnp::StructSchema schema) {
  thread_local std::unordered_map<uint64_t, PointerFields> cache;
  const uint64_t id = schema.getProto().getId();
  auto it = cache.find(id);
  if (it != cache.end()) return it->second;
  PointerFields pf;
  for (auto f : schema.getNonUnionFields()) {
    if (IsPointerField(f)) pf.plain.push_back(f);
  }
  if (schema.getUnionFields().size() > 0) {
    pf.union_member_is_pointer.assign(schema.getFields().size(), false);
    for (auto f : schema.getUnionFields()) pf.union_member_is_pointer[f.getIndex()] = IsPointerField(f);
  }
  return cache.emplace(id, std::move(pf)).first->second;
}

void ValidateStruct(capnp::DynamicStruct::Reader s) {
  // get() is the typed read: it checks the pointer's kind, the list element
  // size, a Text's NUL, exactly as the generated accessors do.
  // Scalars live in the data section, whose reads are bounds-checked and
  // cannot throw: only pointer fields need the typed read.
  const PointerFields& pf = PointerFieldsOf(s.getSchema());
  for (const auto& f : pf.plain) ValidateValue(s.get(f));
  if (pf.union_member_is_pointer.empty()) return;
  KJ_IF_MAYBE(f, s.which()) {
    uint32_t idx = f->getIndex();
    if (idx < pf.union_member_is_pointer.size() && pf.union_member_is_pointer[idx]) ValidateValue(s.get(*f));
  }
}

void ValidateValue(const capnp::DynamicValue::Reader& v) {
  switch (v.getType()) {
    case capnp::DynamicValue::STRUCT:
      ValidateStruct(v.as<capnp::DynamicStruct>());
      break;
    case capnp::DynamicValue::LIST: {
      auto list = v.as<capnp::DynamicList>();
      switch (list.getSchema().whichElementType()) {
        case capnp::schema::Type::TEXT:
        case capnp::schema::Type::DATA:
        case capnp::schema::Type::LIST:
        case capnp::schema::Type::STRUCT:
          for (auto e : list) ValidateValue(e);
          break;
        default:
          break;  // primitives: nothing more to check
      }
      break;
    }
    default:
      break;  // scalars; Text and Data were checked by get()
  }
}
}  // namespace

void ValidateTyped(capnp::DynamicStruct::Reader root) { ValidateStruct(root); }

capnp::ReaderOptions UntrustedReaderOptions(size_t message_words) {
  capnp::ReaderOptions o;
  // Enough to traverse the message a few times (decode-time validation plus
  // the handler's reads), never enough for an amplification attack.
  o.traversalLimitInWords = 8 * message_words + 1024;
  o.nestingLimit = 16;
  return o;
}

}  // namespace bulkhead::ipc
