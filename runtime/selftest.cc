#include "runtime/selftest.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/clock.h"
#include "runtime/format.h"

namespace bulkhead::runtime {
namespace {

void PrintStats(const std::vector<ServiceSnapshot>& stats) {
  std::printf("  %-15s %7s %8s %10s %10s %7s %12s %12s\n", "service", "pid", "restarts", "msgs in", "msgs out",
              "errors", "p50 service", "p99 service");
  for (const auto& s : stats) {
    uint64_t h[ipc::kHistogramBuckets];
    for (int i = 0; i < ipc::kHistogramBuckets; ++i) h[i] = s.latency[i];
    std::printf("  %-15s %7d %8u %10llu %10llu %7llu %12s %12s\n", std::string(ServiceName(s.kind)).c_str(), s.pid,
                s.restarts, (unsigned long long)s.messages_in, (unsigned long long)s.messages_out,
                (unsigned long long)s.errors, ("<" + FormatNs(ipc::HistogramQuantile(h, 0.5))).c_str(),
                ("<" + FormatNs(ipc::HistogramQuantile(h, 0.99))).c_str());
  }
}

}  // namespace

int RunSelftest(SupervisorOptions opts) {
  const std::string id = opts.sandbox_id;
  std::printf("bulkhead selftest: sandbox %s, state in %s/%s\n", id.c_str(), opts.root_dir.c_str(), id.c_str());
  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    std::printf("  [%s] %s\n", ok ? " ok " : "FAIL", what.c_str());
    if (!ok) ++failures;
  };
  {
    opts.handle_signals = false;
    Supervisor sup(opts);
    const uint64_t t0 = MonotonicNs();
    sup.Start();
    std::printf("\n1. start: supervisor + 4 hardened services in %s\n", FormatNs(MonotonicNs() - t0).c_str());
    for (ServiceKind k : Supervisor::kServices) {
      std::printf("     %-15s pid %d\n", std::string(ServiceName(k)).c_str(), sup.Pid(k));
    }

    std::printf("\n2. control rings: supervisor -> service Ping round trips (10000 each)\n");
    for (ServiceKind k : Supervisor::kServices) {
      PingReport r = sup.Ping(k, 10000);
      check(r.ok, std::string(ServiceName(k)) + ": median " + FormatNs(r.median_ns) + ", p99 " + FormatNs(r.p99_ns) +
                      ", min " + FormatNs(r.min_ns) + (r.ok ? "" : " (" + r.error + ")"));
    }
    PingReport big = sup.Ping(ServiceKind::FS_GOFER, 1000, 3000);
    check(big.ok, "fs-gofer with a 3000-byte payload: median " + FormatNs(big.median_ns));

    std::printf("\n3. data rings: syscall-router -> subsystem Ping round trips (10000 each)\n");
    std::vector<ServiceKind> kinds;
    auto peers = sup.PingPeers(10000, &kinds);
    check(peers.size() == 3, "router reports its 3 data rings");
    for (size_t i = 0; i < peers.size(); ++i) {
      check(peers[i].ok, "router -> " + std::string(ServiceName(kinds[i])) + ": median " + FormatNs(peers[i].median_ns) +
                             ", p99 " + FormatNs(peers[i].p99_ns) + (peers[i].ok ? "" : " (" + peers[i].error + ")"));
    }

    std::printf("\n4. crash containment: kill -9 fs-gofer\n");
    const pid_t old = sup.Pid(ServiceKind::FS_GOFER);
    const pid_t others[] = {sup.Pid(ServiceKind::SYSCALL_ROUTER), sup.Pid(ServiceKind::NET_STACK),
                            sup.Pid(ServiceKind::MEM_BROKER)};
    sup.Kill(ServiceKind::FS_GOFER, SIGKILL);
    uint64_t back = sup.WaitAnswering(ServiceKind::FS_GOFER, old, 5000);
    check(back > 0, "fs-gofer (pid " + std::to_string(old) + ") restarted as pid " +
                        std::to_string(sup.Pid(ServiceKind::FS_GOFER)) + ", answering again after " + FormatNs(back));
    check(sup.Pid(ServiceKind::SYSCALL_ROUTER) == others[0] && sup.Pid(ServiceKind::NET_STACK) == others[1] &&
              sup.Pid(ServiceKind::MEM_BROKER) == others[2],
          "the other services kept running (same pids)");
    // The router is re-wired to the new gofer ring.
    bool rewired = false;
    for (int attempt = 0; attempt < 50 && !rewired; ++attempt) {
      kinds.clear();
      auto again = sup.PingPeers(100, &kinds);
      rewired = again.size() == 3 && again[0].ok && again[1].ok && again[2].ok;
      if (!rewired) sup.PollOnce(20);
    }
    check(rewired, "router -> fs-gofer works over the new segment");

    std::printf("\n5. per-service stats\n");
    PrintStats(sup.Stats());

    std::printf("\n6. stop\n");
    sup.Stop();
    bool no_state = !std::filesystem::exists(sup.state_dir());
    check(no_state, "state directory " + sup.state_dir() + " removed");
  }
  auto left = SandboxProcesses(id);
  check(left.empty(), left.empty() ? "no process of the sandbox left" : std::to_string(left.size()) + " processes left behind");
  std::printf("\nselftest %s\n", failures == 0 ? "passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}

}  // namespace bulkhead::runtime
