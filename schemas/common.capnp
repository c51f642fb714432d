# Types shared by every bulkhead protocol. Fields are only ever added; a reader
# ignores what it does not know.
@0xc0c7dd7752299b21;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("bulkhead::schema");

# Bumped when a protocol change is not backward compatible. A peer sends its
# version in Hello; the server accepts versions in [minProtocolVersion, protocolVersion].
const protocolVersion :UInt32 = 1;
const minProtocolVersion :UInt32 = 1;

enum ServiceKind {
  supervisor @0;
  syscallRouter @1;
  fsGofer @2;
  netStack @3;
  memBroker @4;
  cli @5;
}

struct Error {
  errno @0 :Int32;        # a Linux errno value, positive
  message @1 :Text;       # for people and logs; never parsed
}

struct Timespec {
  sec @0 :Int64;
  nsec @1 :UInt32;
}

struct Stat {
  dev @0 :UInt64;
  ino @1 :UInt64;
  mode @2 :UInt32;
  nlink @3 :UInt64;
  uid @4 :UInt32;
  gid @5 :UInt32;
  rdev @6 :UInt64;
  size @7 :Int64;
  blksize @8 :Int64;
  blocks @9 :Int64;
  atime @10 :Timespec;
  mtime @11 :Timespec;
  ctime @12 :Timespec;
}

struct Hello {
  version @0 :UInt32;
  service @1 :ServiceKind;    # who is speaking
  pid @2 :Int32;              # host pid of the speaker, for logs
  sandboxId @3 :Text;
}

struct HelloReply {
  accepted @0 :Bool;
  version @1 :UInt32;         # the version the server will speak
  service @2 :ServiceKind;
  reason @3 :Text;            # why not accepted
}

struct Ping {
  seq @0 :UInt64;
  sentNs @1 :UInt64;          # sender's CLOCK_MONOTONIC, echoed back
  payload @2 :Data;           # echoed back; used by tests and benchmarks
}

struct Pong {
  seq @0 :UInt64;
  sentNs @1 :UInt64;
  payload @2 :Data;
}

struct StatsRequest {}

# Latency histogram: counts[i] holds samples below 2^(i+1) ns (bucket 0: < 2 ns).
struct Histogram {
  counts @0 :List(UInt64);
}

struct ChannelStats {
  name @0 :Text;
  messagesIn @1 :UInt64;
  messagesOut @2 :UInt64;
  errors @3 :UInt64;
  ringDepth @4 :UInt32;       # requests waiting in the inbound ring when sampled
  bulkBytesIn @5 :UInt64;
  bulkBytesOut @6 :UInt64;
}

struct ServiceStats {
  service @0 :ServiceKind;
  pid @1 :Int32;
  restarts @2 :UInt32;
  uptimeNs @3 :UInt64;
  messagesIn @4 :UInt64;
  messagesOut @5 :UInt64;
  errors @6 :UInt64;
  latency @7 :Histogram;      # request service time inside the service
  channels @8 :List(ChannelStats);
  lastFatalSyscall @9 :Int32; # -1 if none
  unimplemented @10 :List(SyscallCount);  # syscall-router: answered ENOSYS, by number
  memory @11 :SandboxMemory;               # syscall-router: the sandbox's memory
}

struct SandboxMemory {
  used @0 :UInt64;       # bytes: anon + file + shmem
  limit @1 :UInt64;      # 0: no limit
  anon @2 :UInt64;
  file @3 :UInt64;       # file pages (the exec cache)
  shmem @4 :UInt64;      # tmpfs and System V segments
  oomKills @5 :UInt64;   # processes killed for the limit
}

struct SyscallCount {
  nr @0 :Int32;
  count @1 :UInt64;
}
