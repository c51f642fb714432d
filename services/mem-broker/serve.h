// One request of the memory protocol (schemas/mem.capnp), applied to the
// ledger: what the broker's handler answers, with no I/O. The protocol's
// decoded, hostile input ends here (mem_broker_fuzz covers it).
#pragma once

#include <cstdint>

#include "schemas/mem.capnp.h"
#include "services/mem-broker/ledger.h"

namespace bulkhead::mem {

struct Answer {
  int err = 0;           // an errno: the answer is an error
  const char* what = "";  // and why
  bool granted = false;  // else: done
  uint32_t first = 0, count = 0;
  bool punch = false;    // the broker should punch [first, first + count) out of the file
};

Answer Serve(Ledger& ledger, schema::mem::Request::Reader r);

}  // namespace bulkhead::mem
