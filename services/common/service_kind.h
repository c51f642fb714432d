#pragma once

#include <optional>
#include <string_view>

#include "schemas/common.capnp.h"

namespace bulkhead {

using ServiceKind = schema::ServiceKind;

// "syscall-router", "fs-gofer", "net-stack", "mem-broker", "supervisor", "cli".
std::string_view ServiceName(ServiceKind k);
// Accepts the names above and the short forms "router", "gofer", "net", "mem".
std::optional<ServiceKind> ParseServiceName(std::string_view s);

}  // namespace bulkhead
