// net-stack: a bulkhead service process (see services/common/service.h).
#include "services/net-stack/policy.h"
#include "services/common/mains.h"
#include "services/common/service.h"

int bulkhead::service::NetStackMain(int argc, char** argv) {
  bulkhead::service::ServiceSpec spec{bulkhead::ServiceKind::NET_STACK, bulkhead::net::NetStackPolicy()};
  return bulkhead::service::RunService(spec, argc, argv);
}
