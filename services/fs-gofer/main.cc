// fs-gofer: a bulkhead service process (see services/common/service.h).
#include "services/fs-gofer/policy.h"
#include "services/common/service.h"

int main(int argc, char** argv) {
  bulkhead::service::ServiceSpec spec{bulkhead::ServiceKind::FS_GOFER, bulkhead::gofer::FsGoferPolicy()};
  return bulkhead::service::RunService(spec, argc, argv);
}
