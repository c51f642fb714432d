// libFuzzer target: the input is a Cap'n Proto flat array (segment table and
// words) as a hostile peer would put it in a slot, fed straight to
// ipc::Decoded<T>::DecodeWords for every root type of every protocol.
//
// The words are copied into a heap buffer of exactly the input's size
// (rounded down to whole words), so that ASan catches a read past the message
// in the reads of decode_walk.cc.
#include <cstring>
#include <memory>

#include "ipc/fuzz/decode_walk.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulkhead::ipc::fuzz;
  ++Stats().inputs;
  const size_t count = size / 8;
  std::unique_ptr<uint64_t[]> words;
  if (count) {
    words.reset(new uint64_t[count]);
    std::memcpy(words.get(), data, count * 8);
  }
  DecodeAllWords(words.get(), count);
  return 0;
}
