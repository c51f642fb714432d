# syscall-router <-> fs-gofer: files. First version: handshake, ping and stats;
# the subsystem's own requests are added as new union members.
@0xa47d5ca2a5817140;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("bulkhead::schema::gofer");

using Common = import "common.capnp";

struct Request {
  union {
    hello @0 :Common.Hello;
    ping @1 :Common.Ping;
    stats @2 :Common.StatsRequest;
  }
}

struct Response {
  union {
    error @0 :Common.Error;
    hello @1 :Common.HelloReply;
    pong @2 :Common.Pong;
    stats @3 :Common.ServiceStats;
  }
}
