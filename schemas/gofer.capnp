# syscall-router <-> fs-gofer: files. Fields are only ever added.
@0xa47d5ca2a5817140;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("bulkhead::schema::gofer");

using Common = import "common.capnp";

struct Request {
  union {
    hello @0 :Common.Hello;
    ping @1 :Common.Ping;
    stats @2 :Common.StatsRequest;
    open @3 :Open;
    pread @4 :Pread;
    fstat @5 :Handle;
    stat @6 :Stat;
    getdents @7 :Getdents;
    readlink @8 :Path;
    close @9 :Handle;
  }
}

struct Response {
  union {
    error @0 :Common.Error;
    hello @1 :Common.HelloReply;
    pong @2 :Common.Pong;
    stats @3 :Common.ServiceStats;
    opened @4 :Opened;
    read @5 :UInt32;         # pread: bytes read; the bytes are in the response's bulk area
    stat @6 :Common.Stat;
    dirents @7 :Dirents;
    target @8 :Text;         # readlink
    ok @9 :Void;
  }
}

# Paths are absolute inside the sandbox ("/etc/passwd"); the gofer resolves
# them inside the sandbox root and never outside it.
struct Path {
  path @0 :Text;
}

struct Open {
  path @0 :Text;
  flags @1 :UInt32;         # Linux O_* flags
  mode @2 :UInt32;
}

struct Opened {
  handle @0 :UInt64;
  stat @1 :Common.Stat;
}

struct Handle {
  handle @0 :UInt64;
}

struct Pread {
  handle @0 :UInt64;
  offset @1 :Int64;
  count @2 :UInt32;         # at most half the response bulk area
}

struct Stat {
  path @0 :Text;
  followLinks @1 :Bool;
}

struct Getdents {
  handle @0 :UInt64;
  count @1 :UInt32;         # buffer size the application offered
}

# linux_dirent64 records, packed as getdents64 returns them, in the bulk area.
struct Dirents {
  bytes @0 :UInt32;
}
