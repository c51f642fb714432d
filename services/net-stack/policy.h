#pragma once

#include "harden/seccomp_policy.h"

namespace bulkhead::net {

// The system calls net-stack may make once hardened; anything else kills it.
harden::SyscallPolicy NetStackPolicy();

}  // namespace bulkhead::net
