#include "harden/harden.h"

#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string>
#include <utility>

#include "base/error.h"
#include "harden/capabilities.h"
#include "harden/namespaces.h"

namespace bulkhead::harden {
namespace {

// Without a user namespace (the machine forbids it), a root service would
// still be uid 0 on the host: able to signal every root process and to own
// whatever it can reach. Become the outside ids instead. The bounding and
// ambient sets are dropped before (that needs CAP_SETPCAP), the other sets
// after (the switch itself needs CAP_SETUID/CAP_SETGID).
void SwitchIdsOnHost(uid_t uid, gid_t gid) {
  // KEEPCAPS off (a caller may have set it): moving all uids away from 0 then
  // clears the permitted and effective sets, as we want.
  CheckSys(::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "prctl", "PR_SET_KEEPCAPS=0");
  CheckSys(::setgroups(0, nullptr), "setgroups", "clear supplementary groups");
  CheckSys(::setresgid(gid, gid, gid), "setresgid", std::to_string(gid));
  CheckSys(::setresuid(uid, uid, uid), "setresuid", std::to_string(uid));
}

bool AllIdsAre(uid_t uid, gid_t gid) {
  uid_t r, e, s;
  gid_t rg, eg, sg;
  CheckSys(::getresuid(&r, &e, &s), "getresuid");
  CheckSys(::getresgid(&rg, &eg, &sg), "getresgid");
  return r == uid && e == uid && s == uid && rg == gid && eg == gid && sg == gid;
}

}  // namespace

std::string HardenReport::Summary() const {
  std::string s = "userns=";
  if (user_namespace) {
    s += "yes";
  } else if (user_namespace_errno != 0) {
    s += "refused(";
    s += ErrnoName(user_namespace_errno);
    s += ")";
  } else {
    s += "no";
  }
  if (user_namespace || ids_switched_on_host) {
    s += " outside=" + std::to_string(outside_uid) + ":" + std::to_string(outside_gid);
  }
  s += " ns=";
  if (unshared_flags == 0) s += "-";
  const char* sep = "";
  for (auto [flag, name] : {std::pair{CLONE_NEWIPC, "ipc"}, std::pair{CLONE_NEWUTS, "uts"},
                            std::pair{CLONE_NEWNET, "net"}}) {
    if (unshared_flags & flag) {
      s += sep;
      s += name;
      sep = ",";
    }
  }
  s += empty_root ? " root=empty" : " root=host";
  if (capabilities_dropped && capabilities_kept) {
    char b[48];
    std::snprintf(b, sizeof b, " caps=userns-only:%#llx", static_cast<unsigned long long>(capabilities_kept));
    s += b;
  } else {
    s += capabilities_dropped ? " caps=none" : " caps=kept";
  }
  s += no_new_privs ? " nnp=yes" : " nnp=no";
  s += " seccomp=" + (seccomp ? policy_name : std::string("off"));
  return s;
}

HardenReport HardenProcess(const HardenOptions& o) {
  // Everything that can be checked is checked before the first irreversible
  // step.
  if (o.policy == nullptr) throw std::invalid_argument("HardenProcess: no seccomp policy");
  if ((o.extra_unshare_flags & ~(CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)) != 0) {
    throw std::invalid_argument("HardenProcess: extra_unshare_flags beyond IPC|UTS|NET");
  }
  HardenReport r;
  r.policy_name = o.policy->name;
  r.outside_uid = o.outside_uid;
  r.outside_gid = o.outside_gid;

  // glibc reads the timezone file on first use of localtime (spdlog's
  // timestamps). After the root is emptied it could not, and under seccomp the
  // open would kill the service: load it now, it is not re-read later.
  ::tzset();

  // 1. User namespace first: the later steps then use capabilities of the new
  // namespace only, and the process is never root on the host again.
  if (o.user_namespace) {
    if (EnterUserNamespace(o.outside_uid, o.outside_gid)) {
      r.user_namespace = true;
    } else {
      r.user_namespace_errno = errno;  // Fall back: the caller logs Summary().
    }
  }
  // 2. Private namespaces: created by (and owned by) the new user namespace.
  EnterPrivateNamespaces(o.extra_unshare_flags);
  r.unshared_flags = o.extra_unshare_flags;
  // 3. Empty root: needs CAP_SYS_ADMIN, so before the capabilities go.
  if (o.empty_root) {
    EnterEmptyMountRoot();
    r.empty_root = true;
  }
  // 4. Capabilities. Without a user namespace, also leave uid 0 on the host.
  if (!r.user_namespace && !AllIdsAre(o.outside_uid, o.outside_gid)) {
    DropBoundingAndAmbientCapabilities();
    SwitchIdsOnHost(o.outside_uid, o.outside_gid);
    r.ids_switched_on_host = true;
    ClearCapabilitySets();
  } else if (r.user_namespace && o.keep_capabilities != 0) {
    DropBoundingAndAmbientCapabilities();
    KeepOnlyCapabilities(o.keep_capabilities);
    r.capabilities_kept = o.keep_capabilities;
  } else {
    DropAllCapabilities();
  }
  r.capabilities_dropped = true;
  // 5. no_new_privs (InstallPolicy would set it too; explicit and reported).
  SetNoNewPrivs();
  r.no_new_privs = true;
  // 6. Seccomp last: every step above uses calls the allowlist does not have.
  InstallPolicy(*o.policy, o.fatal_syscall_slot);
  r.seccomp = true;
  return r;
}

}  // namespace bulkhead::harden
