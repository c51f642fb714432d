#pragma once

#include "harden/seccomp_policy.h"

namespace bulkhead::mem {

// The system calls mem-broker may make once hardened; anything else kills it.
harden::SyscallPolicy MemBrokerPolicy();

}  // namespace bulkhead::mem
