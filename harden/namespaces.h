// Namespaces for a bulkhead service: its own user namespace (where the
// machine allows), an empty read-only mount root, and private IPC/UTS/network
// namespaces on request. All functions act on the calling process and are
// irreversible; on an exception the process is half set up and must exit.
#pragma once

#include <sys/types.h>

namespace bulkhead::harden {

// Moves the calling process into a new user namespace in which it is uid 0 /
// gid 0, mapped to `outside_uid` / `outside_gid` in the parent namespace
// ("0 <outside_uid> 1"), with setgroups denied. The process then holds all
// capabilities inside the new namespace (needed for the mount steps) and none
// in the parent.
//
// The kernel only lets a process map its own effective ids unless it has
// CAP_SETUID/CAP_SETGID in the *parent* namespace, which it loses the moment
// it unshares. So when the outside ids differ from the current effective ids
// (root starting a service as 65534), this first drops the supplementary
// groups and switches the *effective* gid/uid to the outside ids (real and
// saved stay, so the switch can be undone if unsharing is refused), unshares
// (the new namespace is owned by the outside uid), writes the maps, then sets
// all ids to 0 inside: real, effective and saved are then the outside ids on
// the host. This needs CAP_SETUID/CAP_SETGID; without them, pass the caller's
// own ids.
//
// Must be called while the process is single-threaded (kernel rule; throws
// std::logic_error otherwise). Returns false with errno set, having changed
// nothing but the supplementary groups, when the machine forbids user
// namespaces (unshare fails with EPERM, EINVAL, ENOSPC or EUSERS). Throws
// SysError for every other failure. Logs nothing: the caller decides.
bool EnterUserNamespace(uid_t outside_uid, gid_t outside_gid);

// Gives the calling process a new mount namespace whose root is an empty,
// read-only tmpfs (mode 0555, nosuid, nodev, noexec) with the old root
// detached, and makes "/" the working directory. Descriptors opened before
// stay usable (that is how fs-gofer keeps its rootfs dirfd); close the ones
// the service must not keep. Needs CAP_SYS_ADMIN in the process's user
// namespace. Throws SysError with the failing call and path.
void EnterEmptyMountRoot();

// unshare(flags) for any combination of CLONE_NEWIPC, CLONE_NEWUTS and
// CLONE_NEWNET. Throws std::invalid_argument for any other flag, SysError when
// unshare fails. 0 does nothing.
void EnterPrivateNamespaces(int flags);

}  // namespace bulkhead::harden
