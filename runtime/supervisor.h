// The supervisor of one sandbox: creates the channel segments, spawns the four
// services as separate hardened processes, hands each its segments over
// SCM_RIGHTS, watches them through pidfds, restarts a dead one (with backoff)
// and re-wires its peers to fresh segments, serves the CLI on a control
// socket in the state directory, and on stop leaves no process, segment or
// state file behind.
#pragma once

#include <signal.h>

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/log.h"
#include "base/mapping.h"
#include "ipc/channel.h"
#include "ipc/stats.h"
#include "schemas/control.capnp.h"
#include "runtime/mount_tree.h"
#include "services/common/service_kind.h"

namespace bulkhead::runtime {

struct SupervisorOptions {
  std::string sandbox_id;
  std::string root_dir = "/run/bulkhead";  // state lives in <root_dir>/<sandbox_id>/
  std::string service_dir;                 // empty: found next to the bulkhead binary
  // An executable that runs every service as `<it> --service <name> ...`
  // (the bulkhead binary itself, services/common/mains.h); when set and
  // service_dir is empty, it is used instead of the services' own binaries.
  std::string multicall_binary;
  bool pass_stdio = false;                 // give the sandbox our stdin/stdout/stderr (bulkhead do)
  std::string rootfs = "/";                // the sandbox's image (runtime/mount_tree.h)
  RootMode rootfs_mode = RootMode::kOverlay;
  std::vector<Volume> volumes;
  std::vector<TmpfsSpec> tmpfs;            // extra tmpfs mounts (the router's)
  std::string hostname;                    // the sandbox's hostname (empty: its id)
  struct Rlimit {
    int resource = 0;
    uint64_t soft = 0, hard = 0;
  };
  std::vector<Rlimit> rlimits;             // the application's first process's limits
  LogFormat log_format = LogFormat::kText;
  spdlog::level::level_enum service_log_level = spdlog::level::info;
  std::string debug_log_dir;               // per-service logs <dir>/<service>.log; empty: stderr
  bool allow_test_hooks = false;
  // The syscall-router's platform: ptrace, trap, or auto (trap where it
  // works, else ptrace).
  std::string platform = "auto";
  // Pin the syscall-router's kernel thread to this CPU (-1: no pinning).
  int router_cpu = -1;
  // The sandbox's memory limit in bytes (0: none); see RunRequest.
  uint64_t memory_limit = 0;
  bool handle_signals = true;              // SIGTERM/SIGINT stop the sandbox (via signalfd)
  // bulkhead do: while the application runs, SIGINT, SIGQUIT, SIGTSTP and
  // SIGWINCH (what a terminal sends) go to its foreground process group.
  bool forward_terminal_signals = false;
  // Size of the sandbox's memory file (sparse: a ceiling, not a commitment).
  uint64_t memory_file_bytes = uint64_t{64} << 30;
  ipc::ChannelGeometry geometry{256, 1024, 1u << 20};
  int restart_backoff_max_ms = 5000;
  int max_restarts_per_minute = 20;        // beyond this a crash-looping service ends the sandbox
};

struct PingReport {
  bool ok = false;
  std::string error;
  uint32_t count = 0;
  uint64_t median_ns = 0;
  uint64_t p99_ns = 0;
  uint64_t min_ns = 0;
};

struct AppResult {
  int exit_code = 0;   // 128 + signal for a signal death
  std::string error;   // set when it could not be started or the sandbox failed
  uint64_t syscalls = 0;
  std::vector<std::pair<int, uint64_t>> unimplemented;  // syscall number, count
  std::string platform;    // how the application ran: "trap" or "ptrace"
  uint64_t oom_kills = 0;  // processes killed for the memory limit
  uint64_t patched_sites = 0;  // system call sites patched to the fast entry
};

struct ServiceSnapshot {
  std::vector<std::pair<int, uint64_t>> unimplemented;  // syscall-router: nr -> times answered ENOSYS
  struct {
    uint64_t used = 0, limit = 0, anon = 0, file = 0, shmem = 0, oom_kills = 0;
  } memory;  // syscall-router: the sandbox's memory
  ServiceKind kind;
  pid_t pid = 0;
  uint32_t restarts = 0;
  uint64_t uptime_ns = 0;
  uint64_t messages_in = 0, messages_out = 0, errors = 0;
  uint64_t latency[ipc::kHistogramBuckets] = {};
  int32_t last_fatal_syscall = -1;
  struct Chan {
    std::string name;
    uint64_t in = 0, out = 0, errors = 0, bulk_in = 0, bulk_out = 0;
    uint32_t depth = 0;
  };
  std::vector<Chan> channels;
};

// Where to find the service binaries: `dir` if set, else $BULKHEAD_SERVICE_DIR,
// else next to the running executable, its Bazel runfiles, or ../libexec/bulkhead.
std::string FindServiceBinary(const std::string& dir, ServiceKind kind);

// Live processes of sandbox `id`: the services (`--sandbox-id ID` on their
// command line) and a `bulkhead supervise --id ID`. Used to prove that a stop
// left nothing behind.
std::vector<pid_t> SandboxProcesses(const std::string& id);

// Sandbox ids name directories: [A-Za-z0-9][A-Za-z0-9_.-]{0,127}.
bool ValidSandboxId(const std::string& id);

class Supervisor {
 public:
  static constexpr std::array<ServiceKind, 4> kServices = {
      ServiceKind::SYSCALL_ROUTER, ServiceKind::FS_GOFER, ServiceKind::NET_STACK, ServiceKind::MEM_BROKER};

  explicit Supervisor(SupervisorOptions opts);
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Creates the state directory, spawns and handshakes all services.
  // Throws (after cleaning up) on failure.
  void Start();
  // Runs the event loop until SIGTERM/SIGINT, a CLI stop, or a fatal
  // condition; then stops. Returns the exit code for the process.
  int Run();
  // What Run returns (after Stop): 0, or why the sandbox ended.
  int exit_code() const { return exit_code_; }
  // One event-loop step, waiting at most `timeout_ms`. False once stopping.
  bool PollOnce(int timeout_ms);
  // Shuts every service down (Shutdown request, then SIGKILL after a grace
  // period), reaps them, removes the state directory. Idempotent.
  void Stop();

  // Runs one application in the sandbox to its end while the event loop
  // keeps watching the services. A stop request (SIGTERM, SIGINT) ends it.
  AppResult RunApp(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                   const std::string& cwd);

  PingReport Ping(ServiceKind kind, uint32_t count, size_t payload_bytes = 0);
  // Asks the router to ping each subsystem over its own data rings.
  std::vector<PingReport> PingPeers(uint32_t count, std::vector<ServiceKind>* kinds);
  std::vector<ServiceSnapshot> Stats() const;
  void Kill(ServiceKind kind, int sig);
  // Test hook: makes `kind` issue system call `nr` (needs allow_test_hooks).
  std::string ForbiddenSyscall(ServiceKind kind, uint32_t nr);
  // Runs the event loop until `kind` is a process other than `old_pid` that
  // answers a Ping, or `timeout_ms` passes. Returns the time it took (ns), or 0.
  uint64_t WaitAnswering(ServiceKind kind, pid_t old_pid, int timeout_ms);

  pid_t Pid(ServiceKind kind) const;
  uint32_t Restarts(ServiceKind kind) const;
  const std::string& state_dir() const { return state_dir_; }
  const std::string& last_death() const { return last_death_; }

 private:
  struct Proc;
  struct DataLink;
  Proc& P(ServiceKind k);
  const Proc& P(ServiceKind k) const;
  void Spawn(Proc& p);
  void SendBootstrap(Proc& p);
  void Handshake(Proc& p);
  void OnDeath(Proc& p);
  void Restart(Proc& p);
  void RewirePeers(Proc& restarted);
  void HandleCli(int fd);
  void AcceptCli();
  void WriteStateFile();
  void RemoveState();
  int NextTimeoutMs() const;
  void RunDueRestarts();

  SupervisorOptions o_;
  std::string state_dir_;
  std::vector<std::unique_ptr<Proc>> procs_;
  UniqueFd epoll_;
  UniqueFd signal_fd_;
  UniqueFd cli_listen_;
  std::unique_ptr<MountTree> mounts_;  // the sandbox's file tree, handed to each fs-gofer
  std::vector<UniqueFd> cli_conns_;
  bool started_ = false;
  bool stopping_ = false;
  bool app_running_ = false;  // inside RunApp
  UniqueFd memory_file_;      // the sandbox's memory file (memfd)

  sigset_t HandledSignals() const;
  void ForwardTerminalSignal(int sig);
  int exit_code_ = 0;
  std::string last_death_;
  uint64_t next_ping_seq_ = 0;
};

}  // namespace bulkhead::runtime
