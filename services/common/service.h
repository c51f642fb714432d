// What every bulkhead service process does around its subsystem: read its
// bootstrap from the supervisor, harden itself (user and mount namespace with
// an empty root, no capabilities, no_new_privs, its own seccomp allowlist),
// then serve its control channel and its data channels on threads of their
// own, swapping in new channels when the supervisor restarts a peer.
#pragma once

#include <sched.h>

#include <functional>
#include <string>
#include <vector>

#include "harden/seccomp_policy.h"
#include "ipc/channel.h"
#include "ipc/stats.h"
#include "schemas/control.capnp.h"
#include "schemas/gofer.capnp.h"
#include "schemas/mem.capnp.h"
#include <array>
#include "base/fd.h"
#include "services/common/channel_holder.h"
#include "services/common/service_kind.h"

namespace bulkhead::service {

// What a service's own code gets before hardening.
struct ServiceContext {
  UniqueFd rootfs;                 // fs-gofer: the sandbox root (O_PATH directory)
  std::array<UniqueFd, 3> stdio;   // syscall-router: the sandbox's stdin, stdout, stderr
  UniqueFd memory_file;            // syscall-router, mem-broker: the sandbox's memory file
  // syscall-router: its client channel to a subsystem (nullptr if none).
  std::function<ChannelHolder*(ServiceKind)> peer;
  // The service's stats block, shared with the supervisor.
  ipc::ServiceStatsBlock* stats = nullptr;
  // syscall-router: how application code runs: "ptrace", "trap", or "auto"
  // (trap where it works, else ptrace).
  std::string platform = "auto";
  // syscall-router: the CPU its kernel thread is pinned to, or -1.
  int router_cpu = -1;
  // syscall-router: the sandbox's memory limit in bytes, 0 for none.
  uint64_t memory_limit = 0;
  // Rules setup adds to the service's policy once it knows its descriptors
  // (a call allowed on one descriptor number only).
  harden::SyscallPolicy extra_policy;
};

// syscall-router: runs an application to its end and fills in how it ended.
using RunHandler = std::function<void(schema::control::Run::Reader, schema::control::Exited::Builder)>;

// syscall-router: a terminal signal for the running application (called on
// the control thread while the run handler runs on its own thread).
using SignalHandler = std::function<void(int sig)>;

// fs-gofer: answers a request beyond hello/ping/stats on a data channel.
// `bulk`: the request's bulk bytes (written data, xattr values), valid during
// the call only.
using GoferHandler =
    std::function<void(ipc::Channel&, uint64_t id, schema::gofer::Request::Reader, std::span<const uint8_t> bulk)>;
// mem-broker: the same, for the memory protocol.
using MemHandler = std::function<void(ipc::Channel&, uint64_t id, schema::mem::Request::Reader)>;

struct ServiceSpec {
  ServiceKind kind;
  harden::SyscallPolicy policy;
  // Host uid/gid the service runs as, mapped to 0 in its user namespace.
  uid_t outside_uid = 65534;
  gid_t outside_gid = 65534;
  // Namespaces of its own besides user and mount: no IPC objects, hostname or
  // network interfaces shared with the host.
  int unshare_flags = CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
  // Capabilities kept inside its own user namespace (harden::HardenOptions).
  uint64_t keep_capabilities = 0;
  // Runs after the bootstrap and before hardening: open what the subsystem
  // needs from the host here, it cannot later.
  std::function<void(ServiceContext&)> setup;
  GoferHandler gofer_handler;
  MemHandler mem_handler;
  RunHandler run_handler;
  SignalHandler signal_handler;
};

// Parses the command line the supervisor gives, runs the service; returns
// the process exit code. Never returns on a control `shutdown` (exits 0).
int RunService(const ServiceSpec& spec, int argc, char** argv);

}  // namespace bulkhead::service
