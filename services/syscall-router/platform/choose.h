// Picking the router's platform by name: "ptrace", "trap", or "auto" (the
// trap platform where it starts, else ptrace).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "services/syscall-router/platform/platform.h"

namespace bulkhead::router::platform {

struct PlatformChoice {
  std::unique_ptr<Platform> platform;
  // "auto" fell back to ptrace: why the trap platform could not start.
  std::string fallback_reason;
};

// `files`: the host descriptors every stub keeps (the memory file). Throws
// std::invalid_argument for an unknown name and SysError when the named
// platform cannot start. "auto" probes the trap platform by starting (and
// destroying) one stub.
PlatformChoice ChoosePlatform(std::string_view name, std::vector<int> files);

}  // namespace bulkhead::router::platform
