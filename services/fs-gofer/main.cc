// fs-gofer: a bulkhead service process (see services/common/service.h).
#include <memory>
#include <stdexcept>

#include "services/common/service.h"
#include "services/fs-gofer/gofer_service.h"
#include "services/fs-gofer/policy.h"

int main(int argc, char** argv) {
  std::unique_ptr<bulkhead::gofer::FileServer> files;
  bulkhead::service::ServiceSpec spec{bulkhead::ServiceKind::FS_GOFER, bulkhead::gofer::FsGoferPolicy()};
  spec.setup = [&](bulkhead::service::ServiceContext& ctx) {
    if (!ctx.rootfs) throw std::runtime_error("no sandbox root was handed over");
    files = std::make_unique<bulkhead::gofer::FileServer>(std::move(ctx.rootfs));
  };
  spec.gofer_handler = [&](bulkhead::ipc::Channel& ch, uint64_t id, bulkhead::schema::gofer::Request::Reader r) {
    bulkhead::gofer::HandleFileRequest(*files, ch, id, r);
  };
  return bulkhead::service::RunService(spec, argc, argv);
}
