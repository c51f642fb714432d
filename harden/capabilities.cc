#include "harden/capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <string>

#include "base/error.h"
#include "harden/procfs.h"

namespace bulkhead::harden {
namespace {

// The running kernel's highest capability number. /proc/sys/kernel/cap_last_cap
// when readable; otherwise probe: PR_CAPBSET_READ returns EINVAL for a number
// the kernel does not know, and kernel capability numbers are dense.
int KernelLastCap() {
  try {
    std::string s = ReadSmallFile("/proc/sys/kernel/cap_last_cap", 64);
    int v = -1;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && v >= 0 && v < 64) return v;
  } catch (const SysError&) {
    // No /proc (e.g. after EnterEmptyMountRoot): probe below.
  }
  int last = -1;
  for (int cap = 0; cap < 64; ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break;
      throw SysError(errno, "prctl", "PR_CAPBSET_READ " + std::to_string(cap));
    }
    last = cap;
  }
  if (last < 0) throw SysError(EINVAL, "prctl", "PR_CAPBSET_READ knows no capability");
  return last;
}

}  // namespace

void DropBoundingAndAmbientCapabilities() {
  const int kernel_last = KernelLastCap();
  // Also walk up to the last cap these headers know, in case the kernel is
  // older than them; numbers above the kernel's last are EINVAL, which is fine
  // (the kernel has no such capability to grant).
  const int last = std::max(kernel_last, static_cast<int>(CAP_LAST_CAP));
  for (int cap = 0; cap <= last; ++cap) {
    int in_set = ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (in_set < 0) {
      if (errno == EINVAL && cap > kernel_last) continue;
      throw SysError(errno, "prctl", "PR_CAPBSET_READ " + std::to_string(cap));
    }
    // Already gone: skip, so a caller without CAP_SETPCAP whose bounding set is
    // already empty does not fail.
    if (in_set == 0) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL && cap > kernel_last) continue;
      throw SysError(errno, "prctl", "PR_CAPBSET_DROP " + std::to_string(cap));
    }
  }
  // Ambient capabilities survive execve of unprivileged programs: clear them.
  CheckSys(::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl",
           "PR_CAP_AMBIENT_CLEAR_ALL");
}

void ClearCapabilitySets() {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;  // the calling thread
  // Version 3 takes two 32-bit words per set (capabilities 0..63).
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  CheckSys(::syscall(SYS_capset, &header, data), "capset", "effective=permitted=inheritable=0");
}

void KeepOnlyCapabilities(uint64_t mask) {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(mask);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(mask >> 32);
  CheckSys(::syscall(SYS_capset, &header, data), "capset", "keep only the requested capabilities");
}

void DropAllCapabilities() {
  DropBoundingAndAmbientCapabilities();
  ClearCapabilitySets();
}

void SetNoNewPrivs() {
  CheckSys(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl", "PR_SET_NO_NEW_PRIVS");
  int v = CheckSys(::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), "prctl", "PR_GET_NO_NEW_PRIVS");
  if (v != 1) throw SysError(EPERM, "prctl", "PR_SET_NO_NEW_PRIVS did not stick");
}

}  // namespace bulkhead::harden
