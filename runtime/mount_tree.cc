#include "runtime/mount_tree.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "base/error.h"
#include "base/log.h"

namespace bulkhead::runtime {
namespace {

int FsOpen(const char* name) { return static_cast<int>(::syscall(SYS_fsopen, name, FSOPEN_CLOEXEC)); }
int FsConfig(int fd, unsigned cmd, const char* key, const void* value, int aux) {
  return static_cast<int>(::syscall(SYS_fsconfig, fd, cmd, key, value, aux));
}
int FsMount(int fd) { return static_cast<int>(::syscall(SYS_fsmount, fd, FSMOUNT_CLOEXEC, 0)); }

// The kernel's own words when fsconfig refuses (the context's log).
std::string FsLog(int fs) {
  char buf[512];
  std::string out;
  for (int i = 0; i < 8; ++i) {
    ssize_t n = ::read(fs, buf, sizeof(buf) - 1);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    out += "; ";
  }
  return out;
}

void Config(int fs, unsigned cmd, const char* key, const void* value, int aux, const std::string& what) {
  if (FsConfig(fs, cmd, key, value, aux) < 0) {
    const int e = errno;
    throw SysError(e, "fsconfig", what + (key ? std::string(" ") + key : std::string()) + " " + FsLog(fs));
  }
}

// A directory (or file) inside the tree, resolved as the sandbox would see
// it: symlinks in a hostile image stay inside the root.
int OpenIn(int root, const std::string& rel, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (int i = 0; i < 64; ++i) {
    long fd = ::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof(how));
    if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
  }
  return -1;
}

// Creates the mount point of a volume (directories on the way, the last one
// a directory or an empty file like its source) and opens it.
UniqueFd MountPoint(int root, const std::string& guest, bool directory) {
  std::string rel;
  size_t pos = 0;
  while (pos < guest.size()) {
    size_t next = guest.find('/', pos);
    if (next == std::string::npos) next = guest.size();
    std::string part = guest.substr(pos, next - pos);
    pos = next + 1;
    if (part.empty() || part == ".") continue;
    const bool last = pos >= guest.size();
    const std::string parent = rel.empty() ? "." : rel;
    rel += (rel.empty() ? "" : "/") + part;
    if (UniqueFd probe(OpenIn(root, rel, O_PATH)); probe) continue;
    if (errno != ENOENT) throw SysError(errno, "openat2", "volume mount point " + guest);
    UniqueFd dir(OpenIn(root, parent, O_PATH | O_DIRECTORY));
    if (!dir) throw SysError(errno, "openat2", "volume mount point " + guest);
    if (!last || directory) {
      if (::mkdirat(dir.get(), part.c_str(), 0755) < 0 && errno != EEXIST) {
        throw SysError(errno, "mkdirat", "volume mount point " + guest);
      }
    } else if (::mknodat(dir.get(), part.c_str(), S_IFREG | 0644, 0) < 0 && errno != EEXIST) {
      throw SysError(errno, "mknodat", "volume mount point " + guest);
    }
  }
  UniqueFd fd(OpenIn(root, rel.empty() ? "." : rel, O_PATH | O_NOFOLLOW));
  if (!fd) throw SysError(errno, "openat2", "volume mount point " + guest);
  return fd;
}

}  // namespace

std::string ParseVolume(std::string_view spec, Volume* out) {
  const size_t a = spec.find(':');
  if (a == std::string_view::npos) return "a volume is HOST:GUEST[:ro], got \"" + std::string(spec) + "\"";
  const size_t b = spec.find(':', a + 1);
  out->host = std::string(spec.substr(0, a));
  out->guest = std::string(spec.substr(a + 1, b == std::string_view::npos ? std::string_view::npos : b - a - 1));
  out->readonly = false;
  if (b != std::string_view::npos) {
    const std::string_view opt = spec.substr(b + 1);
    if (opt == "ro") out->readonly = true;
    else if (opt != "rw") return "volume option must be ro or rw, got \"" + std::string(opt) + "\"";
  }
  if (out->host.empty() || out->host[0] != '/') return "volume host path must be absolute: \"" + out->host + "\"";
  if (out->guest.empty() || out->guest[0] != '/') return "volume guest path must be absolute: \"" + out->guest + "\"";
  if (out->guest.find_first_not_of('/') == std::string::npos) return "a volume cannot replace the sandbox root";
  for (size_t pos = 0; pos <= out->guest.size();) {
    size_t next = out->guest.find('/', pos);
    if (next == std::string::npos) next = out->guest.size();
    if (out->guest.compare(pos, next - pos, "..") == 0) return "volume guest path may not contain \"..\": " + out->guest;
    pos = next + 1;
  }
  if (out->guest.size() >= 4096 || out->host.size() >= 4096) return "volume path too long";
  return "";
}

std::string ParseTmpfs(std::string_view spec, TmpfsSpec* out) {
  const size_t colon = spec.find(':');
  out->path = std::string(spec.substr(0, colon));
  out->size = 0;
  if (out->path.empty() || out->path[0] != '/') return "a tmpfs path must be absolute: \"" + out->path + "\"";
  while (out->path.size() > 1 && out->path.back() == '/') out->path.pop_back();
  if (out->path == "/") return "a tmpfs cannot replace the sandbox root";
  for (size_t pos = 1; pos <= out->path.size();) {
    size_t next = out->path.find('/', pos);
    if (next == std::string::npos) next = out->path.size();
    const std::string part = out->path.substr(pos, next - pos);
    if (part.empty() || part == "." || part == "..") return "a tmpfs path must be normalized: " + out->path;
    pos = next + 1;
  }
  for (const char* v : {"/proc", "/sys", "/dev"}) {
    const size_t n = std::strlen(v);
    if (out->path.compare(0, n, v) == 0 && (out->path.size() == n || out->path[n] == '/')) {
      return std::string("a tmpfs cannot go below ") + v + " (the router's own)";
    }
  }
  if (colon != std::string_view::npos) {
    const std::string sz(spec.substr(colon + 1));
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(sz.c_str(), &end, 10);
    if (sz.empty() || end == sz.c_str() || errno != 0) return "bad tmpfs size \"" + sz + "\"";
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K') shift = 10;
    else if (*end == 'm' || *end == 'M') shift = 20;
    else if (*end == 'g' || *end == 'G') shift = 30;
    else if (*end != 0) return "bad tmpfs size \"" + sz + "\" (a number with K, M or G)";
    if (shift && end[1] != 0) return "bad tmpfs size \"" + sz + "\"";
    if (v == 0 || v > (uint64_t{1} << (40 - shift))) return "tmpfs size out of range: " + sz;
    out->size = static_cast<uint64_t>(v) << shift;
  }
  return "";
}

bool ParseRootMode(std::string_view s, RootMode* out) {
  if (s == "overlay") *out = RootMode::kOverlay;
  else if (s == "readonly") *out = RootMode::kReadOnly;
  else if (s == "writable") *out = RootMode::kWritable;
  else return false;
  return true;
}

const char* RootModeName(RootMode m) {
  switch (m) {
    case RootMode::kOverlay: return "overlay";
    case RootMode::kReadOnly: return "readonly";
    case RootMode::kWritable: return "writable";
  }
  return "?";
}

namespace {

// The name /proc/mounts gives a host file system (a volume's source).
std::string FsTypeOf(const std::string& path) {
  struct statfs sf;
  if (::statfs(path.c_str(), &sf) != 0) return "none";
  switch (static_cast<uint64_t>(sf.f_type)) {
    case 0xEF53: return "ext4";
    case 0x01021994: return "tmpfs";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x794C7630: return "overlay";
    case 0x6969: return "nfs";
    case 0x65735546: return "fuse";
    default: return "none";
  }
}

}  // namespace

std::vector<MountLine> DescribeMounts(const MountTreeOptions& o) {
  std::vector<MountLine> out;
  switch (o.mode) {
    case RootMode::kOverlay:
      out.push_back({"overlay", "/", "overlay", "rw,relatime,lowerdir=" + o.rootfs + ",redirect_dir=on"});
      break;
    case RootMode::kReadOnly:
      out.push_back({o.rootfs, "/", FsTypeOf(o.rootfs), "ro,relatime"});
      break;
    case RootMode::kWritable:
      out.push_back({o.rootfs, "/", FsTypeOf(o.rootfs), "rw,relatime"});
      break;
  }
  for (const Volume& v : o.volumes) {
    out.push_back({v.host, v.guest, FsTypeOf(v.host), std::string(v.readonly ? "ro" : "rw") + ",relatime"});
  }
  return out;
}

MountTree MountTree::Build(const MountTreeOptions& o) {
  MountTree t;
  t.mode_ = o.mode;
  UniqueFd image(::open(o.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!image) throw SysError(errno, "open", "sandbox root " + o.rootfs);

  if (o.mode == RootMode::kOverlay) {
    // The private layer.
    UniqueFd fs(FsOpen("tmpfs"));
    if (!fs) throw SysError(errno, "fsopen", "tmpfs for the sandbox's writable layer");
    Config(fs.get(), FSCONFIG_SET_STRING, "mode", "0755", 0, "tmpfs");
    if (o.upper_bytes > 0) {
      const std::string size = std::to_string(o.upper_bytes);
      Config(fs.get(), FSCONFIG_SET_STRING, "size", size.c_str(), 0, "tmpfs");
    }
    Config(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0, "tmpfs");
    t.upper_.Reset(FsMount(fs.get()));
    if (!t.upper_) throw SysError(errno, "fsmount", "tmpfs for the sandbox's writable layer");
    for (const char* d : {"upper", "work"}) {
      if (::mkdirat(t.upper_.get(), d, 0755) < 0) throw SysError(errno, "mkdirat", std::string("writable layer ") + d);
    }
    UniqueFd upper(CheckSys(::openat(t.upper_.get(), "upper", O_PATH | O_DIRECTORY | O_CLOEXEC), "openat", "upper"));
    UniqueFd work(CheckSys(::openat(t.upper_.get(), "work", O_PATH | O_DIRECTORY | O_CLOEXEC), "openat", "work"));
    // Upper's root takes the image root's mode and owner, as a copy-up would.
    struct stat st;
    CheckSys(::fstat(image.get(), &st), "fstat", o.rootfs);
    CheckSys(::fchmodat(t.upper_.get(), "upper", st.st_mode & 07777, 0), "fchmodat", "upper");
    CheckSys(::fchownat(t.upper_.get(), "upper", st.st_uid, st.st_gid, 0), "fchownat", "upper");
    const timespec times[2] = {st.st_atim, st.st_mtim};
    CheckSys(::utimensat(t.upper_.get(), "upper", times, 0), "utimensat", "upper");

    UniqueFd ovl(FsOpen("overlay"));
    if (!ovl) throw SysError(errno, "fsopen", "overlay (is the overlay module available?)");
    Config(ovl.get(), FSCONFIG_SET_FD, "lowerdir+", nullptr, image.get(), "overlay lower layer " + o.rootfs);
    Config(ovl.get(), FSCONFIG_SET_FD, "upperdir", nullptr, upper.get(), "overlay");
    Config(ovl.get(), FSCONFIG_SET_FD, "workdir", nullptr, work.get(), "overlay");
    // Renaming a directory of the image works as on any file system (the
    // kernel records the redirect instead of answering EXDEV).
    Config(ovl.get(), FSCONFIG_SET_STRING, "redirect_dir", "on", 0, "overlay");
    Config(ovl.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0, "overlay over " + o.rootfs);
    t.root_.Reset(FsMount(ovl.get()));
    if (!t.root_) throw SysError(errno, "fsmount", "overlay over " + o.rootfs);
  } else {
    t.root_.Reset(static_cast<int>(
        ::syscall(SYS_open_tree, image.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE)));
    if (!t.root_) throw SysError(errno, "open_tree", "sandbox root " + o.rootfs);
  }

  for (const Volume& v : o.volumes) {
    UniqueFd src(static_cast<int>(
        ::syscall(SYS_open_tree, AT_FDCWD, v.host.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
    if (!src) throw SysError(errno, "open_tree", "volume " + v.host);
    if (v.readonly) {
      mount_attr attr{};
      attr.attr_set = MOUNT_ATTR_RDONLY;
      if (::syscall(SYS_mount_setattr, src.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
        throw SysError(errno, "mount_setattr", "read-only volume " + v.host);
      }
    }
    struct stat st;
    CheckSys(::fstat(src.get(), &st), "fstat", "volume " + v.host);
    UniqueFd at = MountPoint(t.root_.get(), v.guest, S_ISDIR(st.st_mode));
    if (::syscall(SYS_move_mount, src.get(), "", at.get(), "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
      throw SysError(errno, "move_mount", "volume " + v.host + " at " + v.guest + " (volumes need Linux 6.15 or later)");
    }
  }

  for (const std::string& p : o.mount_points) {
    if (o.mode == RootMode::kOverlay) MountPoint(t.root_.get(), p, true);
  }

  if (o.mode == RootMode::kReadOnly) {
    // Last, so that volume mount points could still be made above; the
    // volumes keep their own flag (not recursive).
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (::syscall(SYS_mount_setattr, t.root_.get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
      throw SysError(errno, "mount_setattr", "read-only root " + o.rootfs);
    }
  }
  return t;
}

}  // namespace bulkhead::runtime
