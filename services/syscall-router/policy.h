#pragma once

#include "harden/seccomp_policy.h"

namespace bulkhead::router {

// The system calls syscall-router may make once hardened; anything else kills it.
harden::SyscallPolicy RouterPolicy();

}  // namespace bulkhead::router
