// The router's kernel: the sandbox's processes and threads, their signals,
// file descriptors, pipes and address spaces. Every system call of every
// task arrives here through the platform and is served here; files come from
// the fs-gofer. What it does not serve it answers ENOSYS and counts.
//
// One host thread runs the whole kernel as an event loop (kernel.cc, "The
// loop"): tasks run their user code concurrently in their stubs; the loop
// resumes every runnable task (Context::Resume), collects their events
// (Platform::WaitEvents), serves each system call, and re-tries the calls
// that had to wait (a pipe read, wait4, a futex, a sleep) whenever anything
// may have changed. A call that waits never blocks the loop.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "services/syscall-router/kernel/gofer_client.h"
#include "services/syscall-router/kernel/memory.h"
#include "ipc/stats.h"
#include "services/syscall-router/platform/platform.h"

namespace bulkhead::router {

struct RunRequest {
  std::vector<std::string> argv;  // argv[0] is the path to execute (absolute, or looked up in PATH)
  std::vector<std::string> envp;
  std::string cwd = "/";
  std::string hostname = "bulkhead";
  // The file systems fs-gofer serves (root first), for /proc/mounts.
  struct Mount {
    std::string source, target, fstype, options;
  };
  std::vector<Mount> mounts;
  // Extra tmpfs mounts (bulkhead do --tmpfs PATH[:SIZE]), served by the
  // router like /tmp.
  struct TmpfsMount {
    std::string path;
    uint64_t size = 0;
  };
  std::vector<TmpfsMount> tmpfs;
  // Resource limits of the first process (OCI process.rlimits).
  struct Rlimit {
    int resource = 0;
    uint64_t soft = 0, hard = 0;
  };
  std::vector<Rlimit> rlimits;
  // The sandbox's memory limit in bytes (0: none). Above it, a single
  // private writable mapping (mmap, brk, mremap growth) larger than the limit
  // fails with ENOMEM, as Linux's overcommit heuristic refuses a request
  // larger than all memory; and when the memory file holds more data than the
  // limit, the process with the most resident memory is killed with SIGKILL,
  // as by Linux's OOM killer in a memory cgroup. /proc/meminfo and sysinfo
  // report the limit as the total. Checked every few milliseconds.
  uint64_t memory_limit = 0;
};

struct RunResult {
  int exit_code = 0;         // 128 + signal for a signal death, as a shell reports it
  std::string error;         // set when the program could not be started
  uint64_t syscalls = 0;
  std::map<long, uint64_t> unimplemented;  // syscall number -> count (answered ENOSYS)
  uint64_t processes = 0;    // processes created (the first one included)
  uint64_t oom_kills = 0;    // processes killed for the memory limit
  uint64_t patched_sites = 0;  // system call sites patched to the fast entry (patch.h)
};

// Signals from the terminal the sandbox runs on (^C, ^\\, ^Z, a resize), posted
// by another thread (the router's control thread) for the kernel's loop,
// which sends them to the foreground process group.
class TerminalSignals {
 public:
  explicit TerminalSignals(platform::Platform& platform) : platform_(platform) {}
  void Post(int sig) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back(sig);
    }
    platform_.Wake();
  }
  std::vector<int> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(pending_, {});
  }

 private:
  platform::Platform& platform_;
  std::mutex mu_;
  std::vector<int> pending_;
};

class Kernel {
 public:
  // `stdio`: host descriptors the sandbox's fds 0, 1, 2 write to and read from.
  // `memory`: the memory file application memory lives in (its descriptor
  // must be one of the platform's files); without one, stubs hold
  // application memory as their own anonymous memory and fork is a host
  // fork of the stub.
  // `enosys_counters`: kMaxCountedSyscall counters in the router's stats
  // block, bumped for every call answered ENOSYS (bulkhead stats), or null.
  Kernel(platform::Platform& platform, GoferClient& gofer, std::array<int, 3> stdio,
         TerminalSignals* terminal = nullptr, MemoryFile* memory = nullptr,
         std::atomic<uint64_t>* enosys_counters = nullptr);

  // Where the sandbox's memory figures go (the router's stats block, for
  // `bulkhead stats`), refreshed every few milliseconds while tasks run.
  void SetMemoryStats(ipc::ServiceStatsBlock::Memory* out);
  ~Kernel();

  // Reads the host facts the sandbox's /proc and sysinfo show (CPU count,
  // memory); call before the router is hardened. Defaults otherwise.
  static void CaptureHostFacts();

  // Runs argv as the sandbox's process 1 until it exits; the others are
  // killed then, as when a pid namespace's init dies.
  RunResult Run(const RunRequest& req);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bulkhead::router
