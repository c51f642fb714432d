#include "services/syscall-router/platform/choose.h"

#include <stdexcept>

#include "services/syscall-router/platform/ptrace_platform.h"
#include "services/syscall-router/platform/trap_platform.h"

namespace bulkhead::router::platform {

PlatformChoice ChoosePlatform(std::string_view name, std::vector<int> files) {
  PlatformChoice c;
  if (name == "ptrace") {
    c.platform = NewPtracePlatform({.files = std::move(files)});
    return c;
  }
  if (name == "trap") {
    c.platform = NewTrapPlatform({.files = std::move(files)});
    return c;
  }
  if (name != "auto") {
    throw std::invalid_argument("unknown platform '" + std::string(name) + "' (ptrace, trap or auto)");
  }
  try {
    auto trap = NewTrapPlatform({.files = files});
    trap->NewAddressSpace();  // a stub that boots, loads its filter and reports
    c.platform = std::move(trap);
  } catch (const std::exception& e) {
    c.fallback_reason = e.what();
    c.platform = NewPtracePlatform({.files = std::move(files)});
  }
  return c;
}

}  // namespace bulkhead::router::platform
