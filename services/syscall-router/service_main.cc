// syscall-router: a bulkhead service process (see services/common/service.h).
// It runs the application: the platform's stubs (trap or ptrace), the kernel
// that serves their system calls, the fs-gofer for files.
#include <sched.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <spdlog/spdlog.h>

#include "harden/seccomp_policy.h"
#include "services/common/mains.h"
#include "services/common/service.h"
#include "services/syscall-router/kernel/kernel.h"
#include "services/syscall-router/kernel/mem_client.h"
#include "services/syscall-router/platform/ptrace_platform.h"
#include "services/syscall-router/platform/choose.h"
#include "services/syscall-router/policy.h"

namespace ctl = bulkhead::schema::control;

int bulkhead::service::SyscallRouterMain(int argc, char** argv) {
  using namespace bulkhead;
  // The kernel learns of its stubs' stops through SIGCHLD on a signalfd
  // (Platform::WaitEvents): blocked here, before any thread starts, so that
  // every thread inherits the mask and none swallows the signal.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  // A write to the sandbox's stdout after its reader went away must be an
  // EPIPE for the router (which sends SIGPIPE to the writing task), never a
  // SIGPIPE that kills the router.
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<router::platform::Platform> platform;
  std::unique_ptr<router::GoferClient> gofer;
  std::array<UniqueFd, 3> stdio;
  std::unique_ptr<router::TerminalSignals> terminal;
  std::unique_ptr<router::MemoryFile> memory;
  std::unique_ptr<router::MemClient> mem_client;
  bool chunks_from_broker = false;
  std::atomic<uint64_t>* enosys = nullptr;
  int router_cpu = -1;
  bulkhead::ipc::ServiceStatsBlock* stats_block = nullptr;
  uint64_t memory_limit = 0;
  service::ServiceSpec spec{ServiceKind::SYSCALL_ROUTER, router::RouterPolicy()};
  spec.setup = [&](service::ServiceContext& ctx) {
    router::Kernel::CaptureHostFacts();
    // Before hardening: the platform reserves the stub pages every stub inherits.
    // The memory file all application memory lives in (the sandbox's, from
    // the supervisor; the mem-broker holds it too); every stub keeps its
    // descriptor to map ranges of it.
    const bool shared_memory_file = static_cast<bool>(ctx.memory_file);
    memory = ctx.memory_file ? std::make_unique<router::MemoryFile>(std::move(ctx.memory_file))
                             : std::make_unique<router::MemoryFile>();
    // Copies into the memory file (copy-on-write, kernel/memory.cc) are
    // pwrite()s: on that descriptor only.
    // (The low 32 bits: an int argument's upper half is not defined.)
    ctx.extra_policy.Allow(SYS_pwrite64, {harden::ArgCondition::MaskedEqual(
                                              0, 0xffffffffu, static_cast<uint64_t>(memory->fd()))});
    auto choice = router::platform::ChoosePlatform(ctx.platform, {memory->fd()});
    platform = std::move(choice.platform);
    if (!choice.fallback_reason.empty()) {
      spdlog::warn("trap platform unavailable, using ptrace: {}", choice.fallback_reason);
    }
    spdlog::info("platform: {}", platform->name());
    router_cpu = ctx.router_cpu;
    memory_limit = ctx.memory_limit;
    terminal = std::make_unique<router::TerminalSignals>(*platform);
    if (auto* h = ctx.peer(ServiceKind::MEM_BROKER); h && shared_memory_file) {
      mem_client = std::make_unique<router::MemClient>(h);
      mem_client->SetBusyHook([p = platform.get()](bool busy) { p->Busy(busy); });
    }
    if (auto* h = ctx.peer(ServiceKind::FS_GOFER)) {
      gofer = std::make_unique<router::GoferClient>(h);
      gofer->SetBusyHook([p = platform.get()](bool busy) { p->Busy(busy); });
    }
    stdio = std::move(ctx.stdio);
    if (ctx.stats) {
      enosys = ctx.stats->unimplemented;
      stats_block = ctx.stats;
    }
  };
  spec.signal_handler = [&](int sig) {
    if (terminal) terminal->Post(sig);
  };
  spec.run_handler = [&](ctl::Run::Reader r, ctl::Exited::Builder out) {
    if (router_cpu >= 0) {
      // The kernel's event loop runs on this thread: keep it on one CPU.
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(router_cpu, &set);
      if (::sched_setaffinity(0, sizeof set, &set) != 0) {
        spdlog::warn("--router-cpu {}: sched_setaffinity: {}", router_cpu, std::strerror(errno));
      }
    }
    if (!gofer) {
      out.setCode(126);
      out.setError("no fs-gofer channel");
      return;
    }
    if (mem_client && !chunks_from_broker) {
      // The mem-broker owns allocation: this router's space comes in chunks
      // from it (after a reset: a new router holds nothing).
      chunks_from_broker = mem_client->Reset();
      if (chunks_from_broker) memory->SetChunkSource(mem_client.get());
    }
    router::RunRequest req;
    for (auto a : r.getArgv()) req.argv.emplace_back(a.cStr(), a.size());
    for (auto e : r.getEnv()) req.envp.emplace_back(e.cStr(), e.size());
    if (r.hasCwd()) req.cwd = r.getCwd().cStr();
    if (r.hasHostname()) req.hostname = r.getHostname().cStr();
    for (auto m : r.getTmpfs()) req.tmpfs.push_back({m.getPath().cStr(), m.getSizeBytes()});
    for (auto l : r.getRlimits()) req.rlimits.push_back({l.getResource(), l.getSoft(), l.getHard()});
    for (auto m : r.getMounts()) {
      req.mounts.push_back({m.getSource().cStr(), m.getTarget().cStr(), m.getFstype().cStr(), m.getOptions().cStr()});
    }
    req.memory_limit = memory_limit;
    // Without stdio from the supervisor the application writes nowhere.
    std::array<int, 3> fds;
    int devnull = -1;
    for (int i = 0; i < 3; ++i) fds[i] = stdio[i] ? stdio[i].get() : devnull;
    router::Kernel kernel(*platform, *gofer, fds, terminal.get(), memory.get(), enosys);
    if (stats_block) kernel.SetMemoryStats(&stats_block->memory);
    router::RunResult res = kernel.Run(req);
    out.setCode(res.exit_code);
    out.setError(res.error);
    out.setSyscalls(res.syscalls);
    out.setPlatform(std::string(platform->name()));
    out.setOomKills(res.oom_kills);
    out.setPatchedSites(res.patched_sites);
    auto list = out.initUnimplemented(static_cast<unsigned>(res.unimplemented.size()));
    unsigned i = 0;
    for (auto& [nr, count] : res.unimplemented) {
      list[i].setNr(static_cast<int32_t>(nr));
      list[i].setCount(count);
      ++i;
    }
  };
  return service::RunService(spec, argc, argv);
}
