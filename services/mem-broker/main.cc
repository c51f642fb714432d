// mem-broker: a bulkhead service process (see services/common/service.h).
#include "services/mem-broker/policy.h"
#include "services/common/service.h"

int main(int argc, char** argv) {
  bulkhead::service::ServiceSpec spec{bulkhead::ServiceKind::MEM_BROKER, bulkhead::mem::MemBrokerPolicy()};
  return bulkhead::service::RunService(spec, argc, argv);
}
