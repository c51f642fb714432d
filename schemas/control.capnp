# Supervisor <-> service control channel, and CLI <-> supervisor socket.
@0xb9236cbbb34d35f8;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("bulkhead::schema::control");

using Common = import "common.capnp";

struct Request {
  union {
    hello @0 :Common.Hello;
    ping @1 :Common.Ping;
    stats @2 :Common.StatsRequest;
    shutdown @3 :Void;
    # Test hook, honoured only when the service was started with --allow-test-hooks:
    # the service issues raw system call `nr`, which its seccomp policy must refuse.
    forbiddenSyscall @4 :UInt32;
    # Router only: ping every subsystem over the router's own data rings.
    pingPeers @5 :PingPeers;
    # Router only: run one application to its end (first light: one process).
    run @6 :Run;
    # syscall-router: a terminal signal (SIGINT, SIGQUIT, SIGTSTP, SIGWINCH)
    # for the running application's foreground process group.
    terminalSignal @7 :UInt32;
  }
}

struct Run {
  argv @0 :List(Text);
  env @1 :List(Text);
  cwd @2 :Text;
  hostname @3 :Text;
  mounts @4 :List(MountEntry);  # what fs-gofer serves, for /proc/mounts
  tmpfs @5 :List(TmpfsMount);   # extra tmpfs mounts the router serves
  rlimits @6 :List(Rlimit);     # the first process's resource limits
}

struct Rlimit {
  resource @0 :Int32;           # RLIMIT_*
  soft @1 :UInt64;
  hard @2 :UInt64;
}

struct TmpfsMount {
  path @0 :Text;                # absolute, normalized
  sizeBytes @1 :UInt64;         # 0: the default (256 MiB)
}

# One line of /proc/mounts.
struct MountEntry {
  source @0 :Text;
  target @1 :Text;
  fstype @2 :Text;
  options @3 :Text;
}

struct Exited {
  code @0 :Int32;            # exit status, 128 + signal for a signal death
  error @1 :Text;            # why it could not start, if it did not
  syscalls @2 :UInt64;       # system calls served
  unimplemented @3 :List(UnimplementedSyscall);
  platform @4 :Text;         # the router's platform: "trap" or "ptrace"
  oomKills @5 :UInt64;       # processes killed for the memory limit
  patchedSites @6 :UInt64;   # system call sites patched to the platform's fast entry
}

struct UnimplementedSyscall {
  nr @0 :Int32;
  count @1 :UInt64;
}

struct PingPeers {
  count @0 :UInt32;         # round trips per peer
}

struct Response {
  union {
    error @0 :Common.Error;
    hello @1 :Common.HelloReply;
    pong @2 :Common.Pong;
    stats @3 :Common.ServiceStats;
    ok @4 :Void;
    peerPings @5 :List(ServicePing);
    exited @6 :Exited;
  }
}

# What a service learns on its bootstrap socket, with the channel segments
# attached as SCM_RIGHTS descriptors in the order of `channels`.
struct Bootstrap {
  service @0 :Common.ServiceKind;
  sandboxId @1 :Text;
  channels @2 :List(ChannelGrant);
  allowTestHooks @3 :Bool;
  # fs-gofer only: a directory descriptor (O_PATH) of the sandbox root follows
  # the channels' descriptors.
  hasRootfs @4 :Bool;
  # syscall-router only: the host descriptors the sandbox's stdin, stdout and
  # stderr are, following everything else.
  hasStdio @5 :Bool;
  # syscall-router and mem-broker: the sandbox's memory file (a memfd that
  # holds all application memory), following the rootfs descriptor if any
  # and before the stdio ones.
  hasMemoryFile @6 :Bool;
}

struct ChannelGrant {
  name @0 :Text;                  # "control", "gofer", "net", "mem"
  peer @1 :Common.ServiceKind;
  role @2 :Role;
  hasPeerPidfd @3 :Bool;          # a pidfd of the peer follows the segment
  generation @4 :UInt32;          # bumped each time the peer is restarted
  enum Role { client @0; server @1; }
}

# Sent on the bootstrap socket while a service runs: a peer was restarted and
# these channels replace the old ones.
struct ChannelUpdate {
  channels @0 :List(ChannelGrant);
}

# CLI -> supervisor over <root>/<id>/control.sock (length-prefixed capnp stream).
struct CliRequest {
  union {
    stats @0 :Void;
    ping @1 :Void;                       # ping every service, report round trips
    stop @2 :Void;
    killService @3 :Common.ServiceKind;  # SIGKILL one service (tests, chaos drills)
    # Test hook (supervisor started with --allow-test-hooks): make `service`
    # issue raw system call `nr`, which its seccomp policy must refuse.
    forbiddenSyscall @4 :ForbiddenSyscall;
  }
}

struct ForbiddenSyscall {
  service @0 :Common.ServiceKind;
  nr @1 :UInt32;
}

struct ServicePing {
  service @0 :Common.ServiceKind;
  ok @1 :Bool;
  roundTripNs @2 :UInt64;   # median of the round trips
  error @3 :Text;
  p99Ns @4 :UInt64;
  count @5 :UInt32;
}

struct CliResponse {
  union {
    error @0 :Common.Error;
    stats @1 :List(Common.ServiceStats);
    pings @2 :List(ServicePing);
    ok @3 :Void;
  }
}
