// fs-gofer: a bulkhead service process (see services/common/service.h).
#include <linux/capability.h>
#include <sys/stat.h>

#include <memory>
#include <stdexcept>

#include "services/common/mains.h"
#include "services/common/service.h"
#include "services/fs-gofer/gofer_service.h"
#include "services/fs-gofer/policy.h"

int bulkhead::service::FsGoferMain(int argc, char** argv) {
  std::unique_ptr<bulkhead::gofer::FileServer> files;
  bulkhead::service::ServiceSpec spec{bulkhead::ServiceKind::FS_GOFER, bulkhead::gofer::FsGoferPolicy()};
  // Host uid/gid 0 mapped to 0 in its user namespace (and nothing else):
  // files keep their owners as the application sees them, and root-owned
  // files are reached by owner permission bits, never by a capability (the
  // gofer has none). It reaches the host only below the sandbox root's
  // descriptor: the sandbox's mount tree, whose writable layer is private.
  spec.outside_uid = 0;
  spec.outside_gid = 0;
  // The application is root inside, and root's file access ignores
  // permission bits: the gofer keeps the file-permission capabilities, which
  // count in its own user namespace only, so over files owned by root (the
  // one id mapped there) and over nothing else of the host's. (A chmod 0 of
  // "/" must not lock the sandbox out of its own root.)
  spec.keep_capabilities = (1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_DAC_READ_SEARCH) |
                           (1ull << CAP_FOWNER) | (1ull << CAP_FSETID);
  spec.setup = [&](bulkhead::service::ServiceContext& ctx) {
    if (!ctx.rootfs) throw std::runtime_error("no sandbox root was handed over");
    files = std::make_unique<bulkhead::gofer::FileServer>(std::move(ctx.rootfs));
    ::umask(0);  // the router applies the application's umask
  };
  spec.gofer_handler = [&](bulkhead::ipc::Channel& ch, uint64_t id, bulkhead::schema::gofer::Request::Reader r,
                           std::span<const uint8_t> bulk) {
    bulkhead::gofer::HandleFileRequest(*files, ch, id, r, bulk);
  };
  return bulkhead::service::RunService(spec, argc, argv);
}
