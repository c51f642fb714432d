#include "base/memfd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

namespace bulkhead {

UniqueFd CreateSealedMemfd(const std::string& name, size_t size) {
  UniqueFd fd(CheckSys(::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING),
                       "memfd_create", name));
  CheckSys(::ftruncate(fd.get(), static_cast<off_t>(size)), "ftruncate", name);
  CheckSys(::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL),
           "fcntl(F_ADD_SEALS)", name);
  return fd;
}

long long FdSize(int fd) {
  struct stat st;
  if (::fstat(fd, &st) < 0) return -errno;
  return static_cast<long long>(st.st_size);
}

bool HasSizeSeals(int fd) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  return seals >= 0 && (seals & F_SEAL_GROW) && (seals & F_SEAL_SHRINK);
}

}  // namespace bulkhead
