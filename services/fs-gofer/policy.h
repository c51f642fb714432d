#pragma once

#include "harden/seccomp_policy.h"

namespace bulkhead::gofer {

// The system calls fs-gofer may make once hardened; anything else kills it.
harden::SyscallPolicy FsGoferPolicy();

}  // namespace bulkhead::gofer
