// syscall-router: a bulkhead service process (see services/common/service.h).
#include "services/syscall-router/policy.h"
#include "services/common/service.h"

int main(int argc, char** argv) {
  bulkhead::service::ServiceSpec spec{bulkhead::ServiceKind::SYSCALL_ROUTER, bulkhead::router::RouterPolicy()};
  return bulkhead::service::RunService(spec, argc, argv);
}
