// The OCI runtime spec (1.0-1.1) as bulkhead serves it: config.json parsed
// into what a sandbox needs, and the container state that `bulkhead
// create/start/state/kill/delete` keep under --root (runc's command line;
// runtime/oci_cli.cc).
//
// A bundle is hostile input: every field is checked, and an error names the
// field ("process.args: must be a non-empty array of strings").
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/mount_tree.h"

namespace bulkhead::runtime {

struct OciRlimit {
  std::string type;  // RLIMIT_NOFILE ...
  int resource = 0;  // its number
  uint64_t soft = 0, hard = 0;
};

// One lifecycle hook: a host program the runtime runs with the container's
// state as JSON on its standard input.
struct OciHook {
  std::string path;  // absolute
  std::vector<std::string> args;  // args[0] is argv[0], as in execve
  std::vector<std::string> env;
  int timeout_s = 0;  // 0: none (bulkhead still bounds it: kHookMaxSeconds)
};
inline constexpr int kHookMaxSeconds = 120;

struct OciSpec {
  std::string oci_version;
  // process
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  bool terminal = false;
  uint32_t uid = 0, gid = 0;
  std::vector<OciRlimit> rlimits;
  bool no_new_privileges = false;
  // root
  std::string rootfs;  // absolute (relative paths are resolved against the bundle)
  bool root_readonly = false;
  std::string hostname;
  std::vector<Volume> volumes;     // bind mounts
  std::vector<TmpfsSpec> tmpfs;    // tmpfs mounts
  std::vector<std::string> ignored_mounts;  // proc, sysfs, devpts, mqueue, cgroup: the router's own
  std::string network_namespace;  // linux.namespaces network path, if any
  std::map<std::string, std::string> annotations;
  // hooks, by stage: prestart, createRuntime, createContainer,
  // startContainer, poststart, poststop.
  std::map<std::string, std::vector<OciHook>> hooks;
};

// Runs the hooks of one stage in order with `state_json` on their standard
// input. Returns "" or what failed ("hook createRuntime[0] /x: exit status
// 3", "... timed out after 5 s"); a hung hook is killed.
std::string RunHooks(const std::vector<OciHook>& hooks, const std::string& stage, const std::string& state_json);

// Parses config.json's text for the bundle directory `bundle` (absolute).
// Returns "" or what is wrong, naming the field.
std::string ParseOciSpec(const std::string& json, const std::string& bundle, OciSpec* out);

// The default config.json of `bulkhead spec` (runc's, trimmed to what
// bulkhead serves): sh in a read-only root of "rootfs".
std::string DefaultOciSpec();

// Container state under <root>/containers/<id>/.
struct OciState {
  std::string id;
  std::string bundle;
  pid_t pid = 0;             // the sandbox's supervisor (the container's init, for engines)
  std::string status;        // creating, created, running, stopped
  int64_t created_ns = 0;    // CLOCK_REALTIME
  std::map<std::string, std::string> annotations;
  int exit_code = -1;        // once stopped
};
// The state JSON as `bulkhead state` prints it (the OCI state schema).
std::string OciStateJson(const OciState& s);
// Container ids: [A-Za-z0-9][A-Za-z0-9_.+-]*, at most 1024 bytes (runc's rule).
bool ValidContainerId(const std::string& id);

}  // namespace bulkhead::runtime
