// Shared by the fuzz targets: decode a message as every root type of every
// protocol with ipc::Decoded<T>, then read it the way a handler would.
//
// ipc::Decoded promises that a message it accepted "cannot fail" on later
// accesses. Every read here is therefore outside any try block of the
// handler's own; a kj::Exception thrown by a read after a successful Decode
// is a broken promise and is reported as a crash (abort), unless
// BULKHEAD_FUZZ_ALLOW_READ_ERRORS=1 is set, in which case it is only counted
// (to look for other bugs while a known one is unfixed).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ipc/ring.h"

namespace bulkhead::ipc::fuzz {

struct FuzzStats {
  uint64_t inputs = 0;
  uint64_t received_ok = 0;      // kOk from Receive
  uint64_t received_bad = 0;     // kBadMessage from Receive
  uint64_t corrupt = 0;          // kCorrupt: the channel was re-created
  uint64_t closed = 0;           // kClosed
  uint64_t decode_attempts = 0;  // Decoded<T>::Decode/DecodeWords calls
  uint64_t decoded_ok = 0;       // ... that returned kOk
  uint64_t read_errors = 0;      // reads that threw after a successful decode
  uint64_t replies_ok = 0;       // replies published by the server
  uint64_t attach_ok = 0;        // forged headers that were accepted
  uint64_t attach_refused = 0;   // ... refused
};

FuzzStats& Stats();

// Decodes `m` with Decoded<T>::Decode for every root type and walks each one
// that decodes. Returns how many types accepted it.
int DecodeAll(const ReceivedMessage& m);
// The same through Decoded<T>::DecodeWords.
int DecodeAllWords(const uint64_t* words, size_t count);

// Reads every byte of `data` (so that ASan sees an out-of-bounds view).
void TouchBytes(const uint8_t* data, size_t size);

}  // namespace bulkhead::ipc::fuzz
