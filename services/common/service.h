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
#include "services/common/channel_holder.h"
#include "services/common/service_kind.h"

namespace bulkhead::service {

struct ServiceSpec {
  ServiceKind kind;
  harden::SyscallPolicy policy;
  // Host uid/gid the service runs as, mapped to 0 in its user namespace.
  uid_t outside_uid = 65534;
  gid_t outside_gid = 65534;
  // Namespaces of its own besides user and mount: no IPC objects, hostname or
  // network interfaces shared with the host.
  int unshare_flags = CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
};

// Parses the command line the supervisor gives, runs the service; returns
// the process exit code. Never returns on a control `shutdown` (exits 0).
int RunService(const ServiceSpec& spec, int argc, char** argv);

}  // namespace bulkhead::service
