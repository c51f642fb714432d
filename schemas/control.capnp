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
  }
}

struct Response {
  union {
    error @0 :Common.Error;
    hello @1 :Common.HelloReply;
    pong @2 :Common.Pong;
    stats @3 :Common.ServiceStats;
    ok @4 :Void;
  }
}

# What a service learns on its bootstrap socket, with the channel segments
# attached as SCM_RIGHTS descriptors in the order of `channels`.
struct Bootstrap {
  service @0 :Common.ServiceKind;
  sandboxId @1 :Text;
  channels @2 :List(ChannelGrant);
  allowTestHooks @3 :Bool;
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
  }
}

struct ServicePing {
  service @0 :Common.ServiceKind;
  ok @1 :Bool;
  roundTripNs @2 :UInt64;
  error @3 :Text;
}

struct CliResponse {
  union {
    error @0 :Common.Error;
    stats @1 :List(Common.ServiceStats);
    pings @2 :List(ServicePing);
    ok @3 :Void;
  }
}
