// The sandbox's file system tree, built by the supervisor before fs-gofer
// starts and handed to it as one directory descriptor.
//
// With the new mount API (Linux 6.15 or later for volumes) the whole tree is
// a *detached* mount tree that exists only while a descriptor refers to it:
//   root     an overlay whose lower layer is the image (--rootfs, the OCI
//            bundle's root, the host root for `bulkhead do`) and whose upper
//            and work directories live on a private tmpfs: copy-up,
//            whiteouts, opaque directories and renames of lower directories
//            (redirect_dir) are the kernel's own overlay semantics, and no
//            write ever reaches the image;
//   volumes  bind mounts of host directories or files (-v HOST:GUEST[:ro]),
//            attached below the root at GUEST, read-only ones with
//            MOUNT_ATTR_RDONLY so that the kernel refuses every write.
// The tree is in no mount namespace: nothing to unmount, no mount point on
// the host, nothing left behind after kill -9 of any process (the last
// descriptor's close frees it, tmpfs contents included). The supervisor
// holds the descriptor, so a restarted fs-gofer gets the same tree and the
// sandbox's writes survive the gofer's crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"

namespace bulkhead::runtime {

struct Volume {
  std::string host;   // absolute host path, a directory or a file
  std::string guest;  // absolute path inside the sandbox
  bool readonly = false;
};

// Parses "HOST:GUEST[:ro|:rw]". Returns an empty string or what is wrong.
std::string ParseVolume(std::string_view spec, Volume* out);

// An extra tmpfs mount of the sandbox, served by the router.
struct TmpfsSpec {
  std::string path;   // absolute, normalized
  uint64_t size = 0;  // bytes; 0: 256 MiB
};
// Parses "PATH[:SIZE]" (SIZE like 64M, 1G, or bytes).
std::string ParseTmpfs(std::string_view spec, TmpfsSpec* out);

enum class RootMode {
  kOverlay,   // image read-only below a private writable layer (default)
  kReadOnly,  // image read-only, writes get EROFS
  kWritable,  // writes go to the image directory itself (runc's behaviour)
};
// "overlay", "readonly", "writable"; false for anything else.
bool ParseRootMode(std::string_view s, RootMode* out);
const char* RootModeName(RootMode m);

struct MountTreeOptions {
  std::string rootfs = "/";
  RootMode mode = RootMode::kOverlay;
  std::vector<Volume> volumes;
  // Where the router's extra tmpfs mounts go: their directories are made in
  // the tree (overlay mode), so that listings of their parents show them.
  std::vector<std::string> mount_points;
  uint64_t upper_bytes = 0;  // size limit of the private layer (0: tmpfs's default)
};

// One line of the sandbox's /proc/mounts for what the tree serves.
struct MountLine {
  std::string source, target, fstype, options;
};
// The root first, then the volumes: what `o` builds, as /proc/mounts says it.
std::vector<MountLine> DescribeMounts(const MountTreeOptions& o);

class MountTree {
 public:
  // Throws SysError/runtime_error naming the path or option at fault.
  static MountTree Build(const MountTreeOptions& o);

  // The root directory (an O_PATH descriptor of the tree's top mount).
  int root() const { return root_.get(); }
  RootMode mode() const { return mode_; }

 private:
  UniqueFd upper_;  // the private tmpfs (overlay mode)
  UniqueFd root_;
  RootMode mode_ = RootMode::kOverlay;
};

}  // namespace bulkhead::runtime
