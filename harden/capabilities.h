// Capabilities and no_new_privs, without libcap: raw prctl/capset.
#pragma once

#include <cstdint>

namespace bulkhead::harden {

// Removes every capability from the calling thread for good:
//   1. the bounding set (PR_CAPBSET_DROP for 0..last cap; the last cap comes
//      from /proc/sys/kernel/cap_last_cap or, without /proc, by probing with
//      PR_CAPBSET_READ), so no execve can ever regain one. Needs CAP_SETPCAP
//      for caps still in the set;
//   2. the ambient set (PR_CAP_AMBIENT_CLEAR_ALL);
//   3. effective, permitted and inheritable (capset, version 3), last, since
//      the steps above need CAP_SETPCAP.
// Acts on the calling thread: call it while the process is single-threaded
// (or in every thread). Throws SysError.
void DropAllCapabilities();

// The part of DropAllCapabilities that needs CAP_SETPCAP (steps 1 and 2): for
// callers that must still change ids between it and ClearCapabilitySets().
void DropBoundingAndAmbientCapabilities();

// capset with all three sets empty (step 3).
void ClearCapabilitySets();

// Step 3 keeping `mask` (bits 1 << CAP_x) in effective and permitted, none
// inheritable: for a process in a user namespace of its own, whose
// capabilities count only there (fs-gofer's file-permission ones, over
// inodes whose owner is mapped into it). The bounding set is dropped first
// as for DropAllCapabilities, so no execve can ever regain anything.
void KeepOnlyCapabilities(uint64_t mask);

// PR_SET_NO_NEW_PRIVS = 1 (then checked with PR_GET_NO_NEW_PRIVS): execve can
// no longer grant privileges (setuid bits, file capabilities), and an
// unprivileged process may load seccomp filters. Throws SysError.
void SetNoNewPrivs();

}  // namespace bulkhead::harden
