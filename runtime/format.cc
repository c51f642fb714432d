#include "runtime/format.h"

#include <cstdio>

namespace bulkhead::runtime {

std::string FormatNs(uint64_t ns) {
  char buf[32];
  if (ns < 1000) std::snprintf(buf, sizeof(buf), "%llu ns", static_cast<unsigned long long>(ns));
  else if (ns < 1000000) std::snprintf(buf, sizeof(buf), "%.2f µs", ns / 1e3);
  else if (ns < 1000000000) std::snprintf(buf, sizeof(buf), "%.2f ms", ns / 1e6);
  else std::snprintf(buf, sizeof(buf), "%.2f s", ns / 1e9);
  return buf;
}

std::string FormatBytes(uint64_t b) {
  char buf[32];
  if (b < 1024) std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(b));
  else if (b < (1u << 20)) std::snprintf(buf, sizeof(buf), "%.1f KiB", b / 1024.0);
  else if (b < (1u << 30)) std::snprintf(buf, sizeof(buf), "%.1f MiB", b / 1048576.0);
  else std::snprintf(buf, sizeof(buf), "%.2f GiB", b / 1073741824.0);
  return buf;
}

}  // namespace bulkhead::runtime
