// HardenProcess: the one call a bulkhead service makes, after its set-up
// (logging initialised, descriptors received, threads NOT yet started) and
// before it serves anything. Applies, in order:
//   1. user namespace, mapped to the outside ids (without one, because it
//      was not requested or the machine forbids it, the process instead
//      switches all its ids to the outside ids on the host, after the mount
//      steps; that needs CAP_SETUID/CAP_SETGID unless they are already its
//      ids);
//   2. private IPC/UTS/network namespaces requested in extra_unshare_flags;
//   3. an empty read-only mount root;
//   4. no capabilities (bounding, ambient, effective, permitted, inheritable);
//   5. no_new_privs;
//   6. the seccomp allowlist (InstallPolicy).
// Irreversible; on an exception the process is half hardened and must exit.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "harden/seccomp_policy.h"

namespace bulkhead::harden {

struct HardenOptions {
  bool user_namespace = true;   // try a user namespace (falls back if forbidden)
  uid_t outside_uid = 65534;    // host ids the service runs as
  gid_t outside_gid = 65534;
  bool empty_root = true;       // EnterEmptyMountRoot
  int extra_unshare_flags = 0;  // CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET
  // Capabilities (bits 1 << CAP_x) kept in effective and permitted, and only
  // when the process got a user namespace of its own (they count there only);
  // without one everything is dropped.
  uint64_t keep_capabilities = 0;
  const SyscallPolicy* policy = nullptr;               // required
  std::atomic<int32_t>* fatal_syscall_slot = nullptr;  // may be null
};

// Which steps applied. Log Summary() after HardenProcess returns.
struct HardenReport {
  bool user_namespace = false;     // in a new user namespace
  int user_namespace_errno = 0;    // why not, when one was requested but refused
  bool ids_switched_on_host = false;  // no user namespace: setresuid/gid to outside ids
  int unshared_flags = 0;          // private namespaces entered
  bool empty_root = false;
  bool capabilities_dropped = false;
  uint64_t capabilities_kept = 0;  // what keep_capabilities left, in the user namespace
  bool no_new_privs = false;
  bool seccomp = false;
  std::string policy_name;
  uid_t outside_uid = 0;           // the host ids the process now runs as
  gid_t outside_gid = 0;           // (when userns or ids_switched_on_host)

  // One line for the log, e.g. "userns=yes outside=65534:65534 ns=ipc,net
  // root=empty caps=none nnp=yes seccomp=fs-gofer".
  std::string Summary() const;
};

// Throws std::invalid_argument when policy is null, std::logic_error when the
// process is multi-threaded and a user namespace is requested, SysError for
// failing calls.
HardenReport HardenProcess(const HardenOptions& options);

}  // namespace bulkhead::harden
