# syscall-router <-> mem-broker: the memory file. First version: handshake, ping and stats;
# the subsystem's own requests are added as new union members.
@0x903acb4b75248550;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("bulkhead::schema::mem");

using Common = import "common.capnp";

struct Request {
  union {
    hello @0 :Common.Hello;
    ping @1 :Common.Ping;
    stats @2 :Common.StatsRequest;
    grant @3 :Grant;
    release @4 :Release;
    reset @5 :Reset;
  }
}

struct Response {
  union {
    error @0 :Common.Error;
    hello @1 :Common.HelloReply;
    pong @2 :Common.Pong;
    stats @3 :Common.ServiceStats;
    granted @4 :Chunks;   # the answer to grant
    done @5 :Void;        # the answer to release and reset
  }
}

# The size of a chunk: the broker's ledger and the router's allocator both
# take it from here.
const chunkBytes :UInt64 = 2097152;

# Chunks are 2 MiB pieces of the memory file, by index (chunk 0 is the
# broker's ledger). `seq` numbers the router's requests: a request re-sent
# after the broker was replaced carries the same number and gets the same
# answer (services/mem-broker/ledger.h).
struct Grant {
  seq @0 :UInt64;
  count @1 :UInt32;     # contiguous chunks wanted
  kind @2 :ChunkKind;   # what they will hold (the ledger records it)
}

enum ChunkKind {
  anonymous @0;         # application memory (and what a router before kinds asked for)
  pageCache @1;         # file pages (the router's page cache)
  tmpfs @2;             # tmpfs files, POSIX and System V shared memory
  metadata @3;          # the router's own bookkeeping in the file
}

struct Release {
  seq @0 :UInt64;
  first @1 :UInt32;
  count @2 :UInt32;
}

struct Reset {
  seq @0 :UInt64;       # a new router's first request: everything the old one had is free
}

struct Chunks {
  first @0 :UInt32;
  count @1 :UInt32;
}
