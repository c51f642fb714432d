#include "services/common/service_kind.h"

namespace bulkhead {

std::string_view ServiceName(ServiceKind k) {
  switch (k) {
    case ServiceKind::SUPERVISOR: return "supervisor";
    case ServiceKind::SYSCALL_ROUTER: return "syscall-router";
    case ServiceKind::FS_GOFER: return "fs-gofer";
    case ServiceKind::NET_STACK: return "net-stack";
    case ServiceKind::MEM_BROKER: return "mem-broker";
    case ServiceKind::CLI: return "cli";
  }
  return "unknown";
}

std::optional<ServiceKind> ParseServiceName(std::string_view s) {
  if (s == "syscall-router" || s == "router") return ServiceKind::SYSCALL_ROUTER;
  if (s == "fs-gofer" || s == "gofer") return ServiceKind::FS_GOFER;
  if (s == "net-stack" || s == "net") return ServiceKind::NET_STACK;
  if (s == "mem-broker" || s == "mem") return ServiceKind::MEM_BROKER;
  return std::nullopt;
}

}  // namespace bulkhead
