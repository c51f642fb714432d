// bulkhead: the one binary users run.
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/log.h"
#include "harden/seccomp_policy.h"
#include "ipc/stats.h"
#include "base/clock.h"
#include "runtime/client.h"
#include "runtime/oci_cli.h"
#include "runtime/sd_notify.h"
#include "runtime/format.h"
#include "runtime/selftest.h"
#include "runtime/supervisor.h"
#include "services/common/mains.h"

namespace bulkhead::runtime {
namespace {

namespace ctl = schema::control;

constexpr const char* kVersion = "0.1.0";

constexpr const char* kUsage = R"(bulkhead - a sandboxed container runtime: an application kernel split into
hardened services (syscall-router, fs-gofer, net-stack, mem-broker).

usage: bulkhead [global flags] COMMAND [flags] [args]

commands:
  do [--rootfs DIR] [--rootfs-mode MODE] [-v HOST:GUEST[:ro]]... [--tmpfs PATH[:SIZE]]... [--cwd DIR]
     [--env K=V]... [--stats] -- CMD [ARG...]
                                run CMD in a fresh sandbox: every system call it makes is
                                served by bulkhead (processes, threads, signals, pipes, a
                                terminal, files); exits with CMD's status.
                                --rootfs DIR: the image (default: the host's root)
                                --rootfs-mode overlay (default: writes go to a private
                                  layer that vanishes with the sandbox), readonly, or
                                  writable (writes change DIR itself)
                                -v, --volume HOST:GUEST[:ro]: bind a host directory or
                                  file at GUEST (ro: every write gets EROFS)
                                --tmpfs PATH[:SIZE]: a tmpfs at PATH (default 256M)
  selftest [--id ID]            start a sandbox's supervisor and four services, exchange
                                messages over every ring, kill and restart a service, print
                                stats and ring latency, stop cleanly
  supervise --id ID             run a sandbox supervisor in the foreground until SIGTERM
            [--allow-test-hooks]
  stats [--json] ID             per-service counters and latency of a running sandbox
  ping ID                       round trip to every service of a running sandbox
  stop ID                       stop a running sandbox
  kill-service ID SERVICE       SIGKILL one service (chaos drill); the supervisor restarts it
  forbidden-syscall ID SERVICE NR
                                test hook (needs --allow-test-hooks): make SERVICE issue
                                system call NR, which its seccomp allowlist must refuse
  spec [--bundle DIR]           write a default OCI config.json
  create [--bundle DIR] [--pid-file F] ID
                                an OCI container from a bundle (runc's command line): its
                                sandbox starts and waits for `start`
  start ID | state ID | kill ID [SIGNAL] | delete [--force] ID | list [--format json]
                                the container's lifecycle; state under --root/containers/
  run [--bundle DIR] [--detach] ID
                                create and start; in the foreground, exits with its status
  features                      what this runtime serves of the OCI spec (JSON)
  version                       print the version
  help                          this text

global flags:
  --root DIR            state directory (default /run/bulkhead)
  --log FILE            write logs to FILE instead of stderr
  --log-format FMT      text (default) or json
  --debug               debug logging
  --debug-log-dir DIR   each service logs to DIR/<service>.log
  --service-dir DIR     where the service binaries are (default: beside this binary)
  --platform NAME       how application code runs: trap (seccomp trap and shared
                        memory, fast), ptrace (PTRACE_SYSEMU, works everywhere), or
                        auto (default: trap, falling back to ptrace where trap cannot
                        start). The environment variable BULKHEAD_PLATFORM sets the
                        default.
  --router-cpu N        pin the syscall-router's kernel thread to CPU N (measurements,
                        noisy machines); by default it floats
  --memory-limit SIZE   the sandbox's memory limit (bytes, or with K, M, G): a larger
                        single allocation fails with ENOMEM, and above it the biggest
                        process is killed (SIGKILL) as by an OOM killer
  --restart-backoff-max MS
                        a service that dies is restarted after 0, 10, 20, 40 ... ms,
                        at most MS (default 5000)
  --max-restarts N      a service restarted N times within a minute ends the sandbox
                        instead (default 20)
)";

struct Global {
  std::string root = "/run/bulkhead";
  std::string log_file;
  LogFormat log_format = LogFormat::kText;
  bool debug = false;
  std::string debug_log_dir;
  std::string service_dir;
  std::string platform = "auto";
  int router_cpu = -1;
  uint64_t memory_limit = 0;
  int restart_backoff_max_ms = -1;  // -1: the supervisor's default
  int max_restarts = -1;
};

// "512M", "2G", "65536": bytes. False for anything else or an overflow.
bool ParseSize(const std::string& s, uint64_t* out) {
  if (s.empty() || s[0] < '0' || s[0] > '9') return false;
  size_t i = 0;
  uint64_t n = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    if (n > (UINT64_MAX - 9) / 10) return false;
    n = n * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  int shift = 0;
  if (i < s.size()) {
    switch (s[i]) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      default: return false;
    }
    ++i;
  }
  if (i != s.size()) return false;
  if (shift && n > (UINT64_MAX >> shift)) return false;
  *out = n << shift;
  return true;
}

[[noreturn]] void Die(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "bulkhead: %s\n", msg.c_str());
  std::exit(code);
}

[[noreturn]] void UsageError(const std::string& msg) {
  Die(msg + "\nRun 'bulkhead help' for usage.", 2);
}

SupervisorOptions MakeOptions(const Global& g, const std::string& id) {
  SupervisorOptions o;
  o.sandbox_id = id;
  o.root_dir = g.root;
  o.service_dir = g.service_dir;
  // By default every service is this executable (--service NAME; the
  // supervisor's child execs /proc/self/exe, which is still this binary even
  // if its file was replaced since); a --service-dir or
  // BULKHEAD_SERVICE_DIR names separate binaries instead.
  if (g.service_dir.empty() && std::getenv("BULKHEAD_SERVICE_DIR") == nullptr) o.multicall_binary = "/proc/self/exe";
  o.log_format = g.log_format;
  o.service_log_level = g.debug ? spdlog::level::debug : spdlog::level::info;
  o.debug_log_dir = g.debug_log_dir;
  o.platform = g.platform;
  o.router_cpu = g.router_cpu;
  o.memory_limit = g.memory_limit;
  if (g.restart_backoff_max_ms >= 0) o.restart_backoff_max_ms = g.restart_backoff_max_ms;
  if (g.max_restarts >= 0) o.max_restarts_per_minute = g.max_restarts;
  return o;
}

int CmdStats(const Global& g, std::vector<std::string> args) {
  bool json = false;
  std::string id;
  for (auto& a : args) {
    if (a == "--json") json = true;
    else if (!a.empty() && a[0] == '-') UsageError("stats: unknown flag " + a);
    else if (id.empty()) id = a;
    else UsageError("stats: too many arguments");
  }
  if (id.empty()) UsageError("stats: which sandbox? (bulkhead stats ID)");
  wire::Received<ctl::CliResponse> resp;
  CallSupervisor(g.root, id, [](ctl::CliRequest::Builder r) { r.setStats(); }, &resp);
  if (!resp.root().isStats()) Die("unexpected answer from the supervisor");
  auto list = resp.root().getStats();
  if (json) {
    std::printf("[");
    bool first = true;
    for (auto s : list) {
      std::printf("%s\n {\"service\":\"%s\",\"pid\":%d,\"restarts\":%u,\"uptime_ns\":%llu,\"messages_in\":%llu,"
                  "\"messages_out\":%llu,\"errors\":%llu,\"last_fatal_syscall\":%d,\"latency_log2_ns\":[",
                  first ? "" : ",", std::string(ServiceName(s.getService())).c_str(), s.getPid(), s.getRestarts(),
                  (unsigned long long)s.getUptimeNs(), (unsigned long long)s.getMessagesIn(),
                  (unsigned long long)s.getMessagesOut(), (unsigned long long)s.getErrors(), s.getLastFatalSyscall());
      first = false;
      auto c = s.getLatency().getCounts();
      for (unsigned i = 0; i < c.size(); ++i) std::printf("%s%llu", i ? "," : "", (unsigned long long)c[i]);
      std::printf("],\"channels\":[");
      unsigned n = 0;
      for (auto ch : s.getChannels()) {
        std::printf("%s{\"name\":\"%s\",\"in\":%llu,\"out\":%llu,\"errors\":%llu,\"ring_depth\":%u,\"bulk_in\":%llu,\"bulk_out\":%llu}",
                    n++ ? "," : "", JsonEscape(ch.getName().cStr()).c_str(), (unsigned long long)ch.getMessagesIn(),
                    (unsigned long long)ch.getMessagesOut(), (unsigned long long)ch.getErrors(), ch.getRingDepth(),
                    (unsigned long long)ch.getBulkBytesIn(), (unsigned long long)ch.getBulkBytesOut());
      }
      auto m = s.getMemory();
      std::printf("],\"memory\":{\"used\":%llu,\"limit\":%llu,\"anon\":%llu,\"file\":%llu,\"shmem\":%llu,"
                  "\"oom_kills\":%llu",
                  (unsigned long long)m.getUsed(), (unsigned long long)m.getLimit(), (unsigned long long)m.getAnon(),
                  (unsigned long long)m.getFile(), (unsigned long long)m.getShmem(), (unsigned long long)m.getOomKills());
      std::printf("},\"unimplemented\":{");
      n = 0;
      for (auto u : s.getUnimplemented()) {
        std::printf("%s\"%s\":%llu", n++ ? "," : "", JsonEscape(harden::SyscallName(u.getNr())).c_str(),
                    (unsigned long long)u.getCount());
      }
      std::printf("}}");
    }
    std::printf("\n]\n");
    return 0;
  }
  std::printf("%-15s %7s %8s %10s %10s %10s %7s %11s %11s\n", "SERVICE", "PID", "RESTARTS", "UPTIME", "MSGS IN",
              "MSGS OUT", "ERRORS", "P50", "P99");
  for (auto s : list) {
    uint64_t h[ipc::kHistogramBuckets] = {};
    auto c = s.getLatency().getCounts();
    for (unsigned i = 0; i < c.size() && i < ipc::kHistogramBuckets; ++i) h[i] = c[i];
    std::printf("%-15s %7d %8u %10s %10llu %10llu %7llu %11s %11s\n", std::string(ServiceName(s.getService())).c_str(),
                s.getPid(), s.getRestarts(), FormatNs(s.getUptimeNs()).c_str(), (unsigned long long)s.getMessagesIn(),
                (unsigned long long)s.getMessagesOut(), (unsigned long long)s.getErrors(),
                ("<" + FormatNs(ipc::HistogramQuantile(h, 0.5))).c_str(),
                ("<" + FormatNs(ipc::HistogramQuantile(h, 0.99))).c_str());
    for (auto ch : s.getChannels()) {
      std::printf("  ring %-10s in %llu out %llu errors %llu depth %u bulk in %s out %s\n", ch.getName().cStr(),
                  (unsigned long long)ch.getMessagesIn(), (unsigned long long)ch.getMessagesOut(),
                  (unsigned long long)ch.getErrors(), ch.getRingDepth(), FormatBytes(ch.getBulkBytesIn()).c_str(),
                  FormatBytes(ch.getBulkBytesOut()).c_str());
    }
    if (s.getService() == ServiceKind::SYSCALL_ROUTER && s.getMemory().getUsed() > 0) {
      auto m = s.getMemory();
      std::printf("  sandbox memory %s (anon %s, file %s, shmem %s) of %s; oom kills %llu\n",
                  FormatBytes(m.getUsed()).c_str(), FormatBytes(m.getAnon()).c_str(), FormatBytes(m.getFile()).c_str(),
                  FormatBytes(m.getShmem()).c_str(), m.getLimit() ? FormatBytes(m.getLimit()).c_str() : "no limit",
                  (unsigned long long)m.getOomKills());
    }
    if (s.getLastFatalSyscall() >= 0) {
      std::printf("  last death: seccomp refused %s\n", harden::SyscallName(s.getLastFatalSyscall()).c_str());
    }
    if (s.getUnimplemented().size() > 0) {
      std::printf("  unimplemented (answered ENOSYS):");
      for (auto u : s.getUnimplemented()) {
        std::printf(" %s x%llu", harden::SyscallName(u.getNr()).c_str(), (unsigned long long)u.getCount());
      }
      std::printf("\n");
    }
  }
  return 0;
}

int CmdDo(const Global& g, std::vector<std::string> args) {
  std::string rootfs = "/", cwd = "/";
  RootMode rootfs_mode = RootMode::kOverlay;
  std::vector<Volume> volumes;
  std::vector<TmpfsSpec> tmpfs;
  std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                                  "TERM=" + std::string(std::getenv("TERM") ? std::getenv("TERM") : "xterm")};
  bool stats = false;
  size_t k = 0;
  for (; k < args.size(); ++k) {
    const std::string& a = args[k];
    if (a == "--") {
      ++k;
      break;
    }
    auto value = [&]() -> std::string {
      if (k + 1 >= args.size()) UsageError("do: " + a + " needs a value");
      return args[++k];
    };
    if (a == "--rootfs") rootfs = value();
    else if (a == "--rootfs-mode") {
      std::string m = value();
      if (!ParseRootMode(m, &rootfs_mode)) UsageError("do: --rootfs-mode is overlay, readonly or writable, not " + m);
    } else if (a == "--tmpfs") {
      TmpfsSpec t;
      if (std::string err = ParseTmpfs(value(), &t); !err.empty()) UsageError("do: " + err);
      tmpfs.push_back(t);
    } else if (a == "-v" || a == "--volume") {
      Volume v;
      if (std::string err = ParseVolume(value(), &v); !err.empty()) UsageError("do: " + err);
      volumes.push_back(v);
    } else if (a == "--cwd") cwd = value();
    else if (a == "--env") {
      std::string kv = value();
      if (kv.find('=') == std::string::npos) UsageError("do: --env wants KEY=VALUE");
      env.push_back(kv);
    } else if (a == "--stats") stats = true;
    else if (a == "--network=none") {
    } else if (!a.empty() && a[0] == '-') UsageError("do: unknown flag " + a);
    else break;
  }
  std::vector<std::string> cmd(args.begin() + static_cast<long>(k), args.end());
  if (cmd.empty()) UsageError("do: which command? (bulkhead do -- CMD [ARG...])");
  SupervisorOptions o = MakeOptions(g, "do-" + std::to_string(getpid()));
  o.rootfs = rootfs;
  o.rootfs_mode = rootfs_mode;
  o.volumes = volumes;
  o.tmpfs = tmpfs;
  o.pass_stdio = true;
  o.forward_terminal_signals = true;
  if (!g.debug) {
    spdlog::set_level(spdlog::level::warn);
    o.service_log_level = spdlog::level::warn;
  }
  Supervisor sup(o);
  sup.Start();
  AppResult r = sup.RunApp(cmd, env, cwd);
  sup.Stop();
  if (!r.error.empty()) std::fprintf(stderr, "bulkhead: %s\n", r.error.c_str());
  if (stats || g.debug) {
    std::fprintf(stderr, "bulkhead: %llu system calls served", static_cast<unsigned long long>(r.syscalls));
    if (!r.platform.empty()) std::fprintf(stderr, " on the %s platform", r.platform.c_str());
    if (r.patched_sites) std::fprintf(stderr, " (%llu call sites patched)", static_cast<unsigned long long>(r.patched_sites));
    if (r.oom_kills) std::fprintf(stderr, "; %llu processes killed for the memory limit", static_cast<unsigned long long>(r.oom_kills));
    if (!r.unimplemented.empty()) std::fprintf(stderr, "; unimplemented (answered ENOSYS):");
    for (auto& [nr, n] : r.unimplemented) {
      std::fprintf(stderr, " %s x%llu", harden::SyscallName(nr).c_str(), static_cast<unsigned long long>(n));
    }
    std::fprintf(stderr, "\n");
  }
  return r.exit_code;
}

std::string OneArg(const std::vector<std::string>& args, const char* verb) {
  if (args.size() != 1 || args[0].empty() || args[0][0] == '-') UsageError(std::string(verb) + ": expected one sandbox id");
  return args[0];
}

int Main(int argc, char** argv) {
  Global g;
  if (const char* p = std::getenv("BULKHEAD_PLATFORM"); p != nullptr && *p != 0) g.platform = p;
  int i = 1;
  auto value = [&](const char* flag) -> std::string {
    if (i + 1 >= argc) UsageError(std::string(flag) + " needs a value");
    return argv[++i];
  };
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a.empty() || a[0] != '-') break;
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version" || a == "-v") {
      std::printf("bulkhead version %s\n", kVersion);
      return 0;
    } else if (a == "--root") g.root = value("--root");
    else if (a == "--log") g.log_file = value("--log");
    else if (a == "--log-format") {
      if (!ParseLogFormat(value("--log-format"), &g.log_format)) UsageError("--log-format must be text or json");
    } else if (a == "--debug") g.debug = true;
    else if (a == "--debug-log-dir") g.debug_log_dir = value("--debug-log-dir");
    else if (a == "--service-dir") g.service_dir = value("--service-dir");
    else if (a == "--platform") g.platform = value("--platform");
    else if (a == "--memory-limit") {
      const std::string v = value("--memory-limit");
      uint64_t n = 0;
      if (!ParseSize(v, &n) || n < (uint64_t{1} << 20)) {
        UsageError("--memory-limit wants a size of at least 1M (bytes, or a number with K, M or G), not '" + v + "'");
      }
      g.memory_limit = n;
    } else if (a == "--router-cpu") {
      const std::string v = value("--router-cpu");
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != 0 || n < 0 || n >= CPU_SETSIZE) UsageError("--router-cpu wants a CPU number");
      g.router_cpu = static_cast<int>(n);
    } else if (a == "--restart-backoff-max" || a == "--max-restarts") {
      const std::string v = value(a.c_str());
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != 0 || n < (a == "--max-restarts" ? 1 : 0) || n > 3600000) {
        UsageError(a + " wants a number (" + (a == "--max-restarts" ? "1" : "0") + " to 3600000), not '" + v + "'");
      }
      (a == "--max-restarts" ? g.max_restarts : g.restart_backoff_max_ms) = static_cast<int>(n);
    }
    else if (a.rfind("--platform=", 0) == 0) g.platform = a.substr(11);
    else if (a == "--systemd-cgroup" || a == "--rootless=false") {
      // runc's flags engines pass; no cgroup of our own yet: accepted.
    }
    else UsageError("unknown global flag " + a);
  }
  if (i >= argc) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string verb = argv[i++];
  std::vector<std::string> args(argv + i, argv + argc);

  LogOptions lo;
  lo.format = g.log_format;
  lo.level = g.debug ? spdlog::level::debug : spdlog::level::info;
  lo.file = g.log_file;
  InitLogging(lo);
  if (g.root.empty() || g.root[0] != '/') UsageError("--root must be an absolute path");
  if (g.platform != "ptrace" && g.platform != "trap" && g.platform != "auto") {
    UsageError("--platform must be ptrace, trap or auto (got '" + g.platform + "')");
  }

  if (verb == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (verb == "version") {
    std::printf("bulkhead version %s\n", kVersion);
    return 0;
  }
  if (verb == "selftest") {
    std::string id = "selftest-" + std::to_string(getpid());
    for (size_t k = 0; k < args.size(); ++k) {
      if (args[k] == "--id" && k + 1 < args.size()) id = args[++k];
      else UsageError("selftest: unknown argument " + args[k]);
    }
    SupervisorOptions o = MakeOptions(g, id);
    if (g.log_file.empty() && !g.debug) {  // keep the report readable; --debug shows everything
      spdlog::set_level(spdlog::level::warn);
      o.service_log_level = spdlog::level::warn;
    }
    return RunSelftest(o);
  }
  if (verb == "supervise") {
    std::string id;
    bool hooks = false;
    for (size_t k = 0; k < args.size(); ++k) {
      if (args[k] == "--id" && k + 1 < args.size()) id = args[++k];
      else if (args[k] == "--allow-test-hooks") hooks = true;
      else UsageError("supervise: unknown argument " + args[k]);
    }
    if (id.empty()) UsageError("supervise: --id is required");
    SupervisorOptions o = MakeOptions(g, id);
    o.allow_test_hooks = hooks;
    // Under systemd (Type=notify): READY=1 once the services answer,
    // WATCHDOG=1 from the event loop, STOPPING=1 on the way out.
    const Notifier notify = Notifier::FromEnvironment();
    Supervisor sup(o);
    sup.Start();
    notify.Send("READY=1\nSTATUS=sandbox " + id + ": 4 services running\nMAINPID=" + std::to_string(getpid()));
    const int tick = notify.watchdog_ms() > 0 ? static_cast<int>(std::max<int64_t>(notify.watchdog_ms() / 2, 1)) : -1;
    uint64_t next_ping = MonotonicNs();
    for (;;) {
      if (tick > 0 && MonotonicNs() >= next_ping) {
        notify.Send("WATCHDOG=1");
        next_ping = MonotonicNs() + static_cast<uint64_t>(tick) * 1'000'000;
      }
      if (!sup.PollOnce(tick)) break;
    }
    notify.Send("STOPPING=1\nSTATUS=sandbox " + id + " stopping");
    sup.Stop();
    return sup.exit_code();
  }
  if (verb == "do") return CmdDo(g, args);
  if (verb == "stats") return CmdStats(g, args);
  if (verb == "ping") {
    wire::Received<ctl::CliResponse> resp;
    CallSupervisor(g.root, OneArg(args, "ping"), [](ctl::CliRequest::Builder r) { r.setPing(); }, &resp);
    int bad = 0;
    for (auto p : resp.root().getPings()) {
      if (p.getOk()) {
        std::printf("%-15s ok  median %s  p99 %s  (%u round trips)\n", std::string(ServiceName(p.getService())).c_str(),
                    FormatNs(p.getRoundTripNs()).c_str(), FormatNs(p.getP99Ns()).c_str(), p.getCount());
      } else {
        ++bad;
        std::printf("%-15s FAIL %s\n", std::string(ServiceName(p.getService())).c_str(), p.getError().cStr());
      }
    }
    return bad ? 1 : 0;
  }
  if (IsOciCommand(verb)) {
    SupervisorOptions o = MakeOptions(g, "");
    if (!g.debug) {  // engines read stderr for errors; --log/--debug for the rest
      spdlog::set_level(spdlog::level::warn);
      o.service_log_level = spdlog::level::warn;
    }
    return OciCommand(verb, args, o);
  }
  if (verb == "stop") {
    wire::Received<ctl::CliResponse> resp;
    std::string id = OneArg(args, "stop");
    CallSupervisor(g.root, id, [](ctl::CliRequest::Builder r) { r.setStop(); }, &resp);
    // Wait for the state directory to go: stop returns when the sandbox is gone.
    for (int k = 0; k < 100 && access((g.root + "/" + id).c_str(), F_OK) == 0; ++k) usleep(50000);
    return 0;
  }
  if (verb == "kill-service" || verb == "forbidden-syscall") {
    size_t want = verb == "kill-service" ? 2 : 3;
    if (args.size() != want) UsageError(verb + ": expected " + (want == 2 ? "ID SERVICE" : "ID SERVICE NR"));
    auto kind = ParseServiceName(args[1]);
    if (!kind) UsageError("unknown service '" + args[1] + "' (syscall-router, fs-gofer, net-stack, mem-broker)");
    wire::Received<ctl::CliResponse> resp;
    if (verb == "kill-service") {
      CallSupervisor(g.root, args[0], [&](ctl::CliRequest::Builder r) { r.setKillService(*kind); }, &resp);
    } else {
      char* end = nullptr;
      unsigned long nr = std::strtoul(args[2].c_str(), &end, 10);
      if (args[2].empty() || *end != 0 || nr > 1023) UsageError("NR must be a system call number");
      CallSupervisor(g.root, args[0], [&](ctl::CliRequest::Builder r) {
        auto f = r.initForbiddenSyscall();
        f.setService(*kind);
        f.setNr(static_cast<uint32_t>(nr));
      }, &resp);
    }
    return 0;
  }
  UsageError("unknown command '" + verb + "'");
}

}  // namespace
}  // namespace bulkhead::runtime

int main(int argc, char** argv) {
  // `bulkhead --service NAME FLAGS...`: this executable as one of the
  // sandbox's services (how the supervisor starts them).
  if (argc >= 3 && std::string_view(argv[1]) == "--service") {
    bulkhead::service::ServiceMain run = bulkhead::service::ServiceMainFor(argv[2]);
    if (run == nullptr) {
      std::fprintf(stderr, "bulkhead: --service: no service called '%s'\n", argv[2]);
      return 2;
    }
    ::prctl(PR_SET_NAME, argv[2]);  // ps and the logs name the service
    return run(argc - 2, argv + 2);
  }
  try {
    return bulkhead::runtime::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bulkhead: %s\n", e.what());
    return 1;
  }
}
