#pragma once

#include <string>

#include "base/fd.h"

namespace bulkhead {

// Creates a sealable, close-on-exec memfd of `size` bytes, then seals its size
// (F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) so no peer can truncate it under
// a mapping (which would turn accesses into SIGBUS). Throws SysError.
UniqueFd CreateSealedMemfd(const std::string& name, size_t size);

// Size of the file behind `fd` (fstat), or -errno.
long long FdSize(int fd);

// True if `fd` carries the grow/shrink seals, so its size cannot change.
bool HasSizeSeals(int fd);

}  // namespace bulkhead
