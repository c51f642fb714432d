#include "base/mapping.h"

#include <string>

#include "base/error.h"

namespace bulkhead {

Mapping Mapping::MapShared(int fd, size_t len, size_t offset, int prot) {
  void* p = ::mmap(nullptr, len, prot, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    throw SysError(errno, "mmap", "fd " + std::to_string(fd) + ", " + std::to_string(len) + " bytes");
  }
  return Mapping(p, len);
}

}  // namespace bulkhead
