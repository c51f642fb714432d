#include "harden/namespaces.h"

#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <stdexcept>
#include <string>

#include "base/error.h"
#include "harden/procfs.h"

namespace bulkhead::harden {
namespace {

// unshare(CLONE_NEWUSER) errors that mean "this machine does not allow it":
// EPERM (sysctl, LSM, a container runtime's seccomp profile, chroot), EINVAL
// (kernel without CONFIG_USER_NS), ENOSPC (user.max_user_namespaces reached or
// 0; also nesting deeper than 32 since 4.9), EUSERS (nesting, before 4.9).
bool MeansUserNamespacesForbidden(int err) {
  return err == EPERM || err == EINVAL || err == ENOSPC || err == EUSERS;
}

// Where the new root's tmpfs is mounted before pivot_root. Inside the private
// mount namespace this covers the directory for this process only; the host
// never sees it. Only an existing directory will do (lstat: not a symlink).
const char* PickMountPoint() {
  for (const char* dir : {"/tmp", "/mnt", "/run", "/dev"}) {
    struct stat st;
    if (::lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return dir;
  }
  throw SysError(ENOENT, "EnterEmptyMountRoot", "no directory for the new root (/tmp, /mnt, /run, /dev)");
}

}  // namespace

bool EnterUserNamespace(uid_t outside_uid, gid_t outside_gid) {
  // The kernel refuses CLONE_NEWUSER in a multi-threaded process with EINVAL,
  // which would be indistinguishable from "not supported": say so instead.
  if (std::optional<int> threads = CountThreads(); threads && *threads > 1) {
    throw std::logic_error("EnterUserNamespace: process has " + std::to_string(*threads) +
                           " threads; a user namespace needs a single-threaded caller");
  }
  const uid_t euid = ::geteuid();
  const gid_t egid = ::getegid();
  const bool switch_uid = outside_uid != euid;
  const bool switch_gid = outside_gid != egid;
  const std::string ids = "uid " + std::to_string(outside_uid) + ", gid " + std::to_string(outside_gid);

  // Supplementary groups are kept across unshare and stay effective on the
  // host (shown as 65534 inside): root's group 0 would give the sandboxed
  // process group access to host files. Drop them while we may. Unprivileged
  // callers that keep their own ids cannot (EPERM) and keep their groups.
  if (::setgroups(0, nullptr) < 0 && (errno != EPERM || switch_uid || switch_gid)) {
    throw SysError(errno, "setgroups", "clear supplementary groups");
  }
  // Switch only the effective ids (gid first, while we still have CAP_SETGID):
  // the new namespace is then owned by outside_uid and the kernel lets us map
  // exactly our effective ids. Real and saved ids stay, so this can be undone
  // if the unshare is refused.
  if (switch_gid) {
    CheckSys(::setresgid(-1, outside_gid, -1), "setresgid", "effective gid " + std::to_string(outside_gid));
  }
  if (switch_uid) {
    CheckSys(::setresuid(-1, outside_uid, -1), "setresuid", "effective uid " + std::to_string(outside_uid));
  }

  if (::unshare(CLONE_NEWUSER) < 0) {
    const int err = errno;
    if (!MeansUserNamespacesForbidden(err)) throw SysError(err, "unshare", "CLONE_NEWUSER, " + ids);
    // Undo the switch: the caller falls back to running without a user
    // namespace and needs its privileges for the remaining steps.
    if (switch_uid) CheckSys(::setresuid(-1, euid, -1), "setresuid", "restore effective uid");
    if (switch_gid) CheckSys(::setresgid(-1, egid, -1), "setresgid", "restore effective gid");
    errno = err;
    return false;
  }

  // Changing the effective uid made the process non-dumpable, which makes its
  // /proc/self files owned by global root: uid_map would not open (EACCES).
  // Make it dumpable just for the three map writes, then non-dumpable again.
  // Residual risk, a window of a few syscalls: a host process whose euid is
  // outside_uid owns the new namespace, so it has CAP_SYS_PTRACE over us and
  // could attach while we are dumpable. Production should give each sandbox a
  // dedicated outside uid that no other host process uses (not the shared
  // 65534) to close it.
  const int dumpable = CheckSys(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), "prctl", "PR_GET_DUMPABLE");
  if (dumpable != 1) CheckSys(::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl", "PR_SET_DUMPABLE=1");

  // "deny" first: required before an unprivileged gid_map write, and it stops
  // the process from dropping groups to get around negative group ACLs.
  WriteProcFile("/proc/self/setgroups", "deny");
  WriteProcFile("/proc/self/uid_map", "0 " + std::to_string(outside_uid) + " 1\n");
  WriteProcFile("/proc/self/gid_map", "0 " + std::to_string(outside_gid) + " 1\n");

  // Make real, effective and saved ids all 0 inside (= the outside ids on the
  // host). Before this, real/saved were the caller's ids (e.g. global root,
  // unmapped here). We hold CAP_SETUID/CAP_SETGID in the new namespace, and
  // since the new ids are this namespace's root, capabilities are kept.
  CheckSys(::setresgid(0, 0, 0), "setresgid", "0 in the new user namespace");
  CheckSys(::setresuid(0, 0, 0), "setresuid", "0 in the new user namespace");

  // Ids changed (or were switched): be non-dumpable, as the kernel's own
  // setuid rule would leave us. Otherwise restore what the caller had.
  const int want_dumpable = (switch_uid || switch_gid) ? 0 : dumpable;
  CheckSys(::prctl(PR_SET_DUMPABLE, want_dumpable, 0, 0, 0), "prctl", "PR_SET_DUMPABLE restore");
  return true;
}

void EnterEmptyMountRoot() {
  CheckSys(::unshare(CLONE_NEWNS), "unshare", "CLONE_NEWNS");
  // Nothing we do below may propagate back to the host's mounts (and no host
  // mount event may propagate in).
  CheckSys(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), "mount",
           "/ MS_REC|MS_PRIVATE");

  const std::string base = PickMountPoint();
  // Tiny tmpfs: enough for one directory during set-up, nothing afterwards.
  // nosuid/nodev/noexec: nothing on it could be executed or used as a device
  // even if something were created on it.
  CheckSys(::mount("bulkhead-root", base.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   "size=64k,nr_inodes=16,mode=0700"),
           "mount", "tmpfs on " + base);
  const std::string put_old = base + "/old-root";
  CheckSys(::mkdir(put_old.c_str(), 0700), "mkdir", put_old);
  CheckSys(::syscall(SYS_pivot_root, base.c_str(), put_old.c_str()), "pivot_root",
           base + ", " + put_old);
  CheckSys(::chdir("/"), "chdir", "/ (new root)");
  // Detach the whole old tree (also mounts locked by a user namespace, which
  // cannot be unmounted one by one); it disappears when the last reference
  // (an open descriptor the caller kept) goes.
  CheckSys(::umount2("/old-root", MNT_DETACH), "umount2", "/old-root MNT_DETACH");
  CheckSys(::rmdir("/old-root"), "rmdir", "/old-root");
  CheckSys(::chmod("/", 0555), "chmod", "/ 0555");
  // Read-only at the mount level; keep nosuid/nodev/noexec (a bind remount
  // sets the mount flags to exactly those given).
  CheckSys(::mount(nullptr, "/", nullptr,
                   MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr),
           "mount", "/ MS_REMOUNT|MS_BIND|MS_RDONLY");
  CheckSys(::chdir("/"), "chdir", "/");
}

void EnterPrivateNamespaces(int flags) {
  constexpr int kAllowed = CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
  if ((flags & ~kAllowed) != 0) {
    throw std::invalid_argument("EnterPrivateNamespaces: flags " + std::to_string(flags) +
                                " include more than CLONE_NEWIPC|CLONE_NEWUTS|CLONE_NEWNET");
  }
  if (flags == 0) return;
  CheckSys(::unshare(flags), "unshare", "flags " + std::to_string(flags));
}

}  // namespace bulkhead::harden
