#include "runtime/supervisor.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <linux/limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/error.h"
#include "base/memfd.h"
#include "harden/seccomp_policy.h"
#include "services/common/wire.h"

namespace bulkhead::runtime {

namespace ctl = schema::control;
namespace fs = std::filesystem;
using ipc::Channel;
using ipc::Status;

namespace {

// Text from a service (untrusted): printable ASCII, at most `max` bytes.
std::string SafeText(const char* s, size_t max) {
  std::string out;
  for (; *s && out.size() < max; ++s) {
    if (*s >= 0x20 && *s < 0x7f) out += *s;
  }
  return out;
}

constexpr ipc::ChannelGeometry kControlGeometry{64, 4096, 0};
constexpr uint64_t kHandshakeNs = 5'000'000'000ull;
constexpr uint64_t kEventPidfd = 1ull << 32;
constexpr uint64_t kEventSignal = 2ull << 32;
constexpr uint64_t kEventCliListen = 3ull << 32;
constexpr uint64_t kEventCliConn = 4ull << 32;

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSendSignal(int pidfd, int sig) { return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0)); }

std::string ShortName(ServiceKind k) {
  switch (k) {
    case ServiceKind::FS_GOFER: return "gofer";
    case ServiceKind::NET_STACK: return "net";
    case ServiceKind::MEM_BROKER: return "mem";
    case ServiceKind::SYSCALL_ROUTER: return "router";
    default: return "other";
  }
}

std::string ExeDir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  return fs::path(buf).parent_path().string();
}

bool IsExecutable(const std::string& p) { return ::access(p.c_str(), X_OK) == 0; }

}  // namespace

std::vector<pid_t> SandboxProcesses(const std::string& id) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
    if (pid <= 0 || pid == ::getpid()) continue;
    // read(2), not a stream: a process that exits meanwhile makes the read
    // fail (ESRCH), which libstdc++'s stream buffer would throw.
    std::string cmd;
    {
      UniqueFd fd(::open(("/proc/" + name + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) continue;
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) cmd.append(buf, static_cast<size_t>(n));
    }
    // A zombie has an empty command line, so everything listed is alive.
    if (cmd.find(std::string("--sandbox-id") + '\0' + id + '\0') != std::string::npos ||
        cmd.find(std::string("--id") + '\0' + id + '\0') != std::string::npos) {
      out.push_back(pid);
    }
  }
  return out;
}

bool ValidSandboxId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  if (!std::isalnum(static_cast<unsigned char>(id[0]))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

std::string FindServiceBinary(const std::string& dir, ServiceKind kind) {
  const std::string name(ServiceName(kind));
  std::vector<std::string> candidates;
  if (!dir.empty()) {
    candidates.push_back(dir + "/" + name);
  } else {
    if (const char* env = std::getenv("BULKHEAD_SERVICE_DIR")) candidates.push_back(std::string(env) + "/" + name);
    const std::string exe_dir = ExeDir();
    candidates.push_back(exe_dir + "/" + name);
    candidates.push_back(exe_dir + "/../libexec/bulkhead/" + name);
    // Bazel: bazel-bin/runtime/bulkhead and bazel-bin/services/<name>/<name>,
    // or the runfiles tree of a test.
    candidates.push_back(exe_dir + "/../services/" + name + "/" + name);
    char self[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
      self[n] = 0;
      candidates.push_back(std::string(self) + ".runfiles/bulkhead/services/" + name + "/" + name);
    }
    if (const char* srcdir = std::getenv("TEST_SRCDIR")) {
      candidates.push_back(std::string(srcdir) + "/bulkhead/services/" + name + "/" + name);
    }
  }
  for (const auto& c : candidates) {
    if (IsExecutable(c)) return fs::weakly_canonical(c).string();
  }
  std::string tried;
  for (const auto& c : candidates) tried += "\n  " + c;
  throw std::runtime_error("cannot find the " + name + " binary; looked at:" + tried +
                           "\n(set --service-dir or BULKHEAD_SERVICE_DIR)");
}

struct Supervisor::Proc {
  ServiceKind kind;
  std::string name;
  std::string binary;
  pid_t pid = 0;
  UniqueFd pidfd;
  UniqueFd bootstrap;  // our end of the bootstrap socket
  UniqueFd stats_fd;
  Mapping stats_map;
  ipc::ServiceStatsBlock* stats = nullptr;
  UniqueFd control_seg;
  std::unique_ptr<Channel> control;
  UniqueFd link_seg;       // non-router services: the router <-> this service segment
  uint32_t generation = 0;
  uint32_t restarts = 0;
  bool alive = false;
  uint64_t restart_at_ns = 0;  // 0: none scheduled
  std::deque<uint64_t> recent_restarts;
  int32_t last_fatal_syscall = -1;
};

Supervisor::Supervisor(SupervisorOptions opts) : o_(std::move(opts)) {
  if (!ValidSandboxId(o_.sandbox_id)) {
    throw std::invalid_argument("invalid sandbox id '" + o_.sandbox_id +
                                "': use letters, digits, '_', '.', '-' (at most 128, starting with a letter or digit)");
  }
  if (const char* why = ipc::ValidateGeometry(o_.geometry)) throw std::invalid_argument(std::string("ring geometry: ") + why);
  for (ServiceKind k : kServices) {
    auto p = std::make_unique<Proc>();
    p->kind = k;
    p->name = std::string(ServiceName(k));
    procs_.push_back(std::move(p));
  }
  state_dir_ = o_.root_dir + "/" + o_.sandbox_id;
}

Supervisor::~Supervisor() {
  try {
    Stop();
  } catch (const std::exception& e) {
    spdlog::error("stopping sandbox {}: {}", o_.sandbox_id, e.what());
  }
}

Supervisor::Proc& Supervisor::P(ServiceKind k) {
  for (auto& p : procs_) if (p->kind == k) return *p;
  throw std::invalid_argument("not a service: " + std::string(ServiceName(k)));
}
const Supervisor::Proc& Supervisor::P(ServiceKind k) const {
  for (auto& p : procs_) if (p->kind == k) return *p;
  throw std::invalid_argument("not a service: " + std::string(ServiceName(k)));
}

pid_t Supervisor::Pid(ServiceKind k) const { return P(k).alive ? P(k).pid : 0; }
uint32_t Supervisor::Restarts(ServiceKind k) const { return P(k).restarts; }

void Supervisor::Spawn(Proc& p) {
  // Fresh shared state for the new process: counters, control ring.
  const size_t stats_size = (sizeof(ipc::ServiceStatsBlock) + ipc::kPageSize - 1) & ~(ipc::kPageSize - 1);
  p.stats_map.Reset();
  p.stats_fd = CreateSealedMemfd("bulkhead-stats-" + p.name, stats_size);
  p.stats_map = Mapping::MapShared(p.stats_fd.get(), stats_size);
  p.stats = reinterpret_cast<ipc::ServiceStatsBlock*>(p.stats_map.data());
  ipc::InitStatsBlock(p.stats, static_cast<uint32_t>(p.kind));
  p.control_seg = ipc::CreateSegment(kControlGeometry, "control-" + p.name);

  int sv[2];
  CheckSys(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), "socketpair", "bootstrap " + p.name);
  UniqueFd ours(sv[0]), theirs(sv[1]);
  UniqueFd log_fd;
  if (!o_.debug_log_dir.empty()) {
    std::string path = o_.debug_log_dir + "/" + p.name + ".log";
    log_fd.Reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
    if (!log_fd) throw SysError(errno, "open", path);
  } else {
    log_fd.Reset(::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0));
    if (!log_fd) log_fd.Reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  }
  UniqueFd devnull(CheckSys(::open("/dev/null", O_RDONLY | O_CLOEXEC), "open", "/dev/null"));

  const std::string fmt = o_.log_format == LogFormat::kJson ? "json" : "text";
  const std::string lvl(spdlog::level::to_string_view(o_.service_log_level).data());
  const bool multicall = p.binary == o_.multicall_binary;
  // (The multi-call binary runs as `bulkhead --service NAME`: what ps shows.)
  std::vector<std::string> args = {multicall ? std::string("bulkhead") : p.binary};
  if (multicall) {
    args.push_back("--service");
    args.push_back(p.name);
  }
  for (const char* a : {"--sandbox-id", o_.sandbox_id.c_str(), "--bootstrap-fd", "3", "--log-fd", "4", "--log-format",
                        fmt.c_str(), "--log-level", lvl.c_str()}) {
    args.emplace_back(a);
  }
  if (p.kind == ServiceKind::SYSCALL_ROUTER) {
    args.push_back("--platform");
    args.push_back(o_.platform);
    if (o_.memory_limit > 0) {
      args.push_back("--memory-limit");
      args.push_back(std::to_string(o_.memory_limit));
    }
    if (o_.router_cpu >= 0) {
      args.push_back("--router-cpu");
      args.push_back(std::to_string(o_.router_cpu));
    }
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};  // services get no environment

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw SysError(errno, "fork", p.name);
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(1);
    int b = ::fcntl(theirs.get(), F_DUPFD, 10);
    int l = ::fcntl(log_fd.get(), F_DUPFD, 10);
    int n = ::fcntl(devnull.get(), F_DUPFD, 10);
    if (b < 0 || l < 0 || n < 0) _exit(126);
    if (::dup2(n, 0) < 0 || ::dup2(l, 1) < 0 || ::dup2(l, 2) < 0 || ::dup2(b, 3) < 0 || ::dup2(l, 4) < 0) _exit(126);
    ::syscall(SYS_close_range, 5, ~0u, 0);
    ::execve(p.binary.c_str(), argv.data(), envp);
    _exit(127);
  }
  p.pid = pid;
  p.pidfd.Reset(PidfdOpen(pid));
  if (!p.pidfd) throw SysError(errno, "pidfd_open", p.name);
  p.bootstrap = std::move(ours);
  p.alive = true;
  ++p.generation;
  p.control = Channel::Attach(UniqueFd(::dup(p.control_seg.get())), Channel::Role::kClient,
                              "control-" + p.name, ipc::PeerWatch(UniqueFd(::dup(p.pidfd.get()))),
                              ipc::ChannelOptions{50000, nullptr});
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kEventPidfd | static_cast<uint64_t>(p.kind);
  CheckSys(::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, p.pidfd.get(), &ev), "epoll_ctl", "pidfd " + p.name);
  spdlog::info("started {} (pid {})", p.name, pid);
}

void Supervisor::SendBootstrap(Proc& p) {
  capnp::MallocMessageBuilder mb;
  auto b = mb.initRoot<ctl::Bootstrap>();
  b.setService(p.kind);
  b.setSandboxId(o_.sandbox_id);
  b.setAllowTestHooks(o_.allow_test_hooks);
  std::vector<int> fds = {p.stats_fd.get(), p.control_seg.get()};
  std::vector<Proc*> links;
  if (p.kind == ServiceKind::SYSCALL_ROUTER) {
    for (auto& q : procs_) if (q->kind != ServiceKind::SYSCALL_ROUTER) links.push_back(q.get());
  } else {
    links.push_back(&p);
  }
  auto chans = b.initChannels(static_cast<unsigned>(1 + links.size()));
  chans[0].setName("control");
  chans[0].setPeer(ServiceKind::SUPERVISOR);
  chans[0].setRole(ctl::ChannelGrant::Role::SERVER);
  chans[0].setGeneration(p.generation);
  unsigned i = 1;
  for (Proc* l : links) {
    Proc& peer = p.kind == ServiceKind::SYSCALL_ROUTER ? *l : P(ServiceKind::SYSCALL_ROUTER);
    auto g = chans[i++];
    g.setName(p.kind == ServiceKind::SYSCALL_ROUTER ? ShortName(l->kind) : "router");
    g.setPeer(peer.kind);
    g.setRole(p.kind == ServiceKind::SYSCALL_ROUTER ? ctl::ChannelGrant::Role::CLIENT : ctl::ChannelGrant::Role::SERVER);
    g.setGeneration(peer.generation);
    fds.push_back(l->link_seg.get());
    g.setHasPeerPidfd(peer.alive && peer.pidfd.valid());
    if (peer.alive && peer.pidfd.valid()) fds.push_back(peer.pidfd.get());
  }
  if (p.kind == ServiceKind::FS_GOFER) {
    b.setHasRootfs(true);
    fds.push_back(mounts_->root());
  }
  if ((p.kind == ServiceKind::SYSCALL_ROUTER || p.kind == ServiceKind::MEM_BROKER) && memory_file_) {
    b.setHasMemoryFile(true);
    fds.push_back(memory_file_.get());
  }
  if (p.kind == ServiceKind::SYSCALL_ROUTER && o_.pass_stdio) {
    b.setHasStdio(true);
    for (int fd = 0; fd < 3; ++fd) fds.push_back(fd);
  }
  int rc = wire::SendMessage(p.bootstrap.get(), mb, fds);
  if (rc < 0) throw SysError(-rc, "sendmsg", "bootstrap of " + p.name);
}

void Supervisor::Handshake(Proc& p) {
  ipc::ReceivedMessage scratch;
  ipc::Decoded<ctl::Response> resp;
  Status st = p.control->Call<ctl::Request, ctl::Response>(
      [&](ctl::Request::Builder r) {
        auto h = r.initHello();
        h.setVersion(schema::PROTOCOL_VERSION);
        h.setService(ServiceKind::SUPERVISOR);
        h.setPid(::getpid());
        h.setSandboxId(o_.sandbox_id);
      },
      &scratch, &resp, ipc::DeadlineIn(kHandshakeNs));
  if (st != Status::kOk) {
    throw std::runtime_error(p.name + " did not answer the handshake: " + ipc::StatusName(st));
  }
  if (!resp.root().isHello() || !resp.root().getHello().getAccepted()) {
    throw std::runtime_error(p.name + " refused the handshake" +
                             (resp.root().isHello() ? std::string(": ") + resp.root().getHello().getReason().cStr() : ""));
  }
}

void Supervisor::Start() {
  if (started_) return;
  epoll_.Reset(CheckSys(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1"));
  // State directory: refuse a live sandbox of the same id, clean a stale one.
  fs::create_directories(o_.root_dir);
  ::chmod(o_.root_dir.c_str(), 0711);
  if (fs::exists(state_dir_)) {
    std::ifstream in(state_dir_ + "/supervisor.pid");
    pid_t old = 0;
    if (in >> old && old > 0 && ::kill(old, 0) == 0) {
      throw std::runtime_error("sandbox " + o_.sandbox_id + " already exists (supervisor pid " +
                               std::to_string(old) + ")");
    }
    spdlog::warn("removing stale state of sandbox {} at {}", o_.sandbox_id, state_dir_);
    fs::remove_all(state_dir_);
  }
  CheckSys(::mkdir(state_dir_.c_str(), 0700), "mkdir", state_dir_);
  started_ = true;
  try {
    {
      std::ofstream pidf(state_dir_ + "/supervisor.pid");
      pidf << ::getpid() << "\n";
    }
    if (o_.handle_signals) {
      sigset_t set = HandledSignals();
      CheckSys(::sigprocmask(SIG_BLOCK, &set, nullptr), "sigprocmask");
      signal_fd_.Reset(CheckSys(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK), "signalfd"));
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kEventSignal;
      CheckSys(::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signal_fd_.get(), &ev), "epoll_ctl", "signalfd");
    }
    // CLI socket, owner-only. Bound through /proc/self/fd/<dirfd>/ so that a
    // long --root never hits the 108-byte limit of sun_path.
    std::string sock_path = state_dir_ + "/control.sock";
    UniqueFd dir(CheckSys(::open(state_dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC), "open", state_dir_));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/control.sock", dir.get());
    cli_listen_.Reset(CheckSys(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), "socket", "cli"));
    CheckSys(::bind(cli_listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), "bind", sock_path);
    CheckSys(::chmod(sock_path.c_str(), 0600), "chmod", sock_path);
    CheckSys(::listen(cli_listen_.get(), 16), "listen", sock_path);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kEventCliListen;
    CheckSys(::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, cli_listen_.get(), &ev), "epoll_ctl", "cli");

    {
      MountTreeOptions mo;
      mo.rootfs = o_.rootfs;
      mo.mode = o_.rootfs_mode;
      mo.volumes = o_.volumes;
      for (const auto& t : o_.tmpfs) mo.mount_points.push_back(t.path);
      mo.upper_bytes = o_.memory_limit;
      mounts_ = std::make_unique<MountTree>(MountTree::Build(mo));
    }
    // The memory file: sparse, nothing committed until the application
    // touches memory. The mem-broker owns it (allocation and accounting move
    // there with issue 6); the router maps it whole; stubs map ranges.
    memory_file_.Reset(CheckSys(static_cast<int>(::syscall(SYS_memfd_create, "bulkhead.memory", MFD_CLOEXEC)),
                                "memfd_create", "the sandbox's memory file"));
    CheckSys(::ftruncate(memory_file_.get(), static_cast<off_t>(o_.memory_file_bytes)), "ftruncate",
             "the sandbox's memory file");
    const uint64_t t0 = MonotonicNs();
    for (auto& p : procs_) {
      p->binary = o_.service_dir.empty() && !o_.multicall_binary.empty() ? o_.multicall_binary
                                                                          : FindServiceBinary(o_.service_dir, p->kind);
    }
    for (auto& p : procs_) {
      if (p->kind != ServiceKind::SYSCALL_ROUTER) p->link_seg = ipc::CreateSegment(o_.geometry, "router-" + ShortName(p->kind));
    }
    for (auto& p : procs_) Spawn(*p);
    for (auto& p : procs_) SendBootstrap(*p);
    for (auto& p : procs_) Handshake(*p);
    WriteStateFile();
    spdlog::info("sandbox {} ready: 4 services in {:.1f} ms", o_.sandbox_id, (MonotonicNs() - t0) / 1e6);
  } catch (...) {
    Stop();
    throw;
  }
}

void Supervisor::OnDeath(Proc& p) {
  siginfo_t si{};
  int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(p.pidfd.get()), &si, WEXITED | WNOHANG);
  if (rc < 0 || si.si_pid == 0) return;  // not dead yet (spurious wake-up)
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, p.pidfd.get(), nullptr);
  p.alive = false;
  p.last_fatal_syscall = p.stats ? p.stats->fatal_syscall.load() : -1;
  std::string why;
  if (si.si_code == CLD_EXITED) {
    why = "exited with status " + std::to_string(si.si_status);
  } else {
    why = std::string("killed by SIG") + sigabbrev_np(si.si_status);
    if (si.si_status == SIGSYS && p.last_fatal_syscall >= 0) {
      why += " (seccomp: forbidden system call " + harden::SyscallName(p.last_fatal_syscall) + ", nr " +
             std::to_string(p.last_fatal_syscall) + ")";
    }
  }
  last_death_ = p.name + " (pid " + std::to_string(p.pid) + ") " + why;
  if (stopping_) {
    spdlog::debug("{}", last_death_);
    return;
  }
  // Crash-loop guard and backoff.
  const uint64_t now = MonotonicNs();
  while (!p.recent_restarts.empty() && now - p.recent_restarts.front() > 60'000'000'000ull) p.recent_restarts.pop_front();
  if (static_cast<int>(p.recent_restarts.size()) >= o_.max_restarts_per_minute) {
    spdlog::critical("{}; it was restarted {} times in the last minute: stopping sandbox {}", last_death_,
                     p.recent_restarts.size(), o_.sandbox_id);
    exit_code_ = 1;
    stopping_ = true;
    return;
  }
  const size_t n = p.recent_restarts.size();
  uint64_t backoff_ms = n == 0 ? 0 : std::min<uint64_t>(o_.restart_backoff_max_ms, 10ull << std::min<size_t>(n - 1, 20));
  p.restart_at_ns = now + backoff_ms * 1'000'000ull + 1;
  spdlog::error("{}; restarting in {} ms", last_death_, backoff_ms);
}

void Supervisor::Restart(Proc& p) {
  p.restart_at_ns = 0;
  p.recent_restarts.push_back(MonotonicNs());
  ++p.restarts;
  try {
    // New segments for every channel this service is part of: nothing a dead
    // process half-wrote is ever read again.
    std::vector<Proc*> others;
    if (p.kind == ServiceKind::SYSCALL_ROUTER) {
      for (auto& q : procs_) {
        if (q->kind == ServiceKind::SYSCALL_ROUTER) continue;
        q->link_seg = ipc::CreateSegment(o_.geometry, "router-" + ShortName(q->kind));
        others.push_back(q.get());
      }
    } else {
      p.link_seg = ipc::CreateSegment(o_.geometry, "router-" + ShortName(p.kind));
      others.push_back(&P(ServiceKind::SYSCALL_ROUTER));
    }
    Spawn(p);
    SendBootstrap(p);
    for (Proc* q : others) {
      if (!q->alive) continue;  // it gets the new segment in its own bootstrap
      capnp::MallocMessageBuilder mb;
      auto g = mb.initRoot<ctl::ChannelUpdate>().initChannels(1)[0];
      const bool router_side = q->kind == ServiceKind::SYSCALL_ROUTER;
      Proc& link_owner = router_side ? p : *q;
      g.setName(router_side ? ShortName(p.kind) : "router");
      g.setPeer(p.kind);
      g.setRole(router_side ? ctl::ChannelGrant::Role::CLIENT : ctl::ChannelGrant::Role::SERVER);
      g.setGeneration(p.generation);
      g.setHasPeerPidfd(true);
      int fds[] = {link_owner.link_seg.get(), p.pidfd.get()};
      int rc = wire::SendMessage(q->bootstrap.get(), mb, fds);
      if (rc < 0) spdlog::error("re-wiring {} to the new {}: {}", q->name, p.name, ErrnoMessage(-rc, "sendmsg"));
    }
    Handshake(p);
    WriteStateFile();
    spdlog::info("{} restarted as pid {} (restart {})", p.name, p.pid, p.restarts);
  } catch (const std::exception& e) {
    spdlog::error("restarting {} failed: {}", p.name, e.what());
    if (p.alive) PidfdSendSignal(p.pidfd.get(), SIGKILL);  // its death schedules the next try
    else p.restart_at_ns = MonotonicNs() + 100'000'000ull;
  }
}

int Supervisor::NextTimeoutMs() const {
  uint64_t next = 0;
  for (auto& p : procs_) {
    if (p->restart_at_ns && (next == 0 || p->restart_at_ns < next)) next = p->restart_at_ns;
  }
  if (next == 0) return -1;
  uint64_t now = MonotonicNs();
  return next <= now ? 0 : static_cast<int>((next - now + 999'999) / 1'000'000);
}

void Supervisor::RunDueRestarts() {
  const uint64_t now = MonotonicNs();
  for (auto& p : procs_) {
    if (!stopping_ && p->restart_at_ns && p->restart_at_ns <= now) Restart(*p);
  }
}

sigset_t Supervisor::HandledSignals() const {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (o_.forward_terminal_signals) {
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTSTP);
    sigaddset(&set, SIGWINCH);
  }
  return set;
}

// The router passes it to the kernel's loop; its reply is not waited for
// (RunApp skips replies to other requests).
void Supervisor::ForwardTerminalSignal(int sig) {
  Proc& r = P(ServiceKind::SYSCALL_ROUTER);
  if (!r.alive || !r.control) return;
  Status st = r.control->Send<ctl::Request>(r.control->NextId(), [&](ctl::Request::Builder b) {
    b.setTerminalSignal(static_cast<uint32_t>(sig));
  }, ipc::DeadlineIn(100'000'000));
  if (st != Status::kOk) spdlog::warn("forwarding SIG{} to the application: {}", sigabbrev_np(sig), ipc::StatusName(st));
}

bool Supervisor::PollOnce(int timeout_ms) {
  if (stopping_) return false;
  int t = NextTimeoutMs();
  if (t < 0 || (timeout_ms >= 0 && timeout_ms < t)) t = timeout_ms;
  epoll_event evs[16];
  int n = ::epoll_wait(epoll_.get(), evs, 16, t);
  if (n < 0 && errno != EINTR) throw SysError(errno, "epoll_wait");
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = evs[i].data.u64 & ~0xffffffffull;
    const uint32_t low = static_cast<uint32_t>(evs[i].data.u64);
    if (tag == kEventPidfd) {
      OnDeath(P(static_cast<ServiceKind>(low)));
    } else if (tag == kEventSignal) {
      signalfd_siginfo si;
      while (::read(signal_fd_.get(), &si, sizeof(si)) == sizeof(si)) {
        const int sig = static_cast<int>(si.ssi_signo);
        if (o_.forward_terminal_signals && sig != SIGTERM) {
          if (app_running_) ForwardTerminalSignal(sig);
          if (app_running_ || sig != SIGINT) continue;
        }
        spdlog::info("received SIG{}: stopping sandbox {}", sigabbrev_np(sig), o_.sandbox_id);
        stopping_ = true;
      }
    } else if (tag == kEventCliListen) {
      AcceptCli();
    } else if (tag == kEventCliConn) {
      HandleCli(static_cast<int>(low));
    }
  }
  RunDueRestarts();
  return !stopping_;
}

int Supervisor::Run() {
  while (PollOnce(-1)) {
  }
  Stop();
  return exit_code_;
}

void Supervisor::Stop() {
  if (!started_) return;
  stopping_ = true;
  // Ask each service to exit, router first (it fronts the application).
  for (auto& p : procs_) {
    if (!p->alive || !p->control) continue;
    p->control->Send<ctl::Request>(p->control->NextId(), [](ctl::Request::Builder r) { r.setShutdown(); },
                                   ipc::DeadlineIn(100'000'000));
  }
  const uint64_t deadline = MonotonicNs() + 2'000'000'000ull;
  for (auto& p : procs_) {
    if (!p->alive) continue;
    pollfd pfd{p->pidfd.get(), POLLIN, 0};
    uint64_t now = MonotonicNs();
    int left = now >= deadline ? 0 : static_cast<int>((deadline - now) / 1'000'000);
    if (::poll(&pfd, 1, left) <= 0) {
      spdlog::warn("{} (pid {}) did not stop in time; killing it", p->name, p->pid);
      PidfdSendSignal(p->pidfd.get(), SIGKILL);
    }
    siginfo_t si{};
    ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(p->pidfd.get()), &si, WEXITED);
    p->alive = false;
  }
  for (auto& p : procs_) {
    p->control.reset();
    p->control_seg.Reset();
    p->link_seg.Reset();
    p->bootstrap.Reset();
    p->pidfd.Reset();
    p->stats = nullptr;
    p->stats_map.Reset();
    p->stats_fd.Reset();
  }
  cli_conns_.clear();
  cli_listen_.Reset();
  mounts_.reset();
  memory_file_.Reset();
  RemoveState();
  if (signal_fd_) {
    signal_fd_.Reset();
    sigset_t set = HandledSignals();
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  }
  started_ = false;
  spdlog::info("sandbox {} stopped", o_.sandbox_id);
}

void Supervisor::RemoveState() {
  std::error_code ec;
  fs::remove_all(state_dir_, ec);
  if (ec) spdlog::warn("removing {}: {}", state_dir_, ec.message());
}

void Supervisor::WriteStateFile() {
  nlohmann::json j;
  j["id"] = o_.sandbox_id;
  j["pid"] = ::getpid();
  j["status"] = "running";
  for (auto& p : procs_) {
    j["services"][p->name] = {{"pid", p->alive ? p->pid : 0}, {"restarts", p->restarts}};
  }
  const std::string tmp = state_dir_ + "/state.json.tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
    if (!out) throw std::runtime_error("writing " + tmp + " failed");
  }
  CheckSys(::rename(tmp.c_str(), (state_dir_ + "/state.json").c_str()), "rename", tmp);
}

AppResult Supervisor::RunApp(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                             const std::string& cwd) {
  AppResult res;
  Proc& r = P(ServiceKind::SYSCALL_ROUTER);
  app_running_ = true;
  struct Clear {
    bool& b;
    ~Clear() { b = false; }
  } clear{app_running_};
  if (!r.alive) {
    res.exit_code = 125;
    res.error = "the syscall-router is not running";
    return res;
  }
  const uint64_t id = r.control->NextId();
  Status st = r.control->Send<ctl::Request>(id, [&](ctl::Request::Builder b) {
    auto run = b.initRun();
    auto a = run.initArgv(static_cast<unsigned>(argv.size()));
    for (unsigned i = 0; i < argv.size(); ++i) a.set(i, argv[i]);
    auto e = run.initEnv(static_cast<unsigned>(env.size()));
    for (unsigned i = 0; i < env.size(); ++i) e.set(i, env[i]);
    run.setCwd(cwd);
    run.setHostname(o_.hostname.empty() ? o_.sandbox_id : o_.hostname);
    MountTreeOptions mo;
    mo.rootfs = o_.rootfs;
    mo.mode = o_.rootfs_mode;
    mo.volumes = o_.volumes;
    const auto lines = DescribeMounts(mo);
    auto rl = run.initRlimits(static_cast<unsigned>(o_.rlimits.size()));
    for (unsigned i = 0; i < o_.rlimits.size(); ++i) {
      rl[i].setResource(o_.rlimits[i].resource);
      rl[i].setSoft(o_.rlimits[i].soft);
      rl[i].setHard(o_.rlimits[i].hard);
    }
    auto tm = run.initTmpfs(static_cast<unsigned>(o_.tmpfs.size()));
    for (unsigned i = 0; i < o_.tmpfs.size(); ++i) {
      tm[i].setPath(o_.tmpfs[i].path);
      tm[i].setSizeBytes(o_.tmpfs[i].size);
    }
    auto m = run.initMounts(static_cast<unsigned>(lines.size()));
    for (unsigned i = 0; i < lines.size(); ++i) {
      m[i].setSource(lines[i].source);
      m[i].setTarget(lines[i].target);
      m[i].setFstype(lines[i].fstype);
      m[i].setOptions(lines[i].options);
    }
  }, ipc::DeadlineIn(1'000'000'000));
  if (st != Status::kOk) {
    res.exit_code = 125;
    res.error = std::string("sending the command to the syscall-router: ") + ipc::StatusName(st) +
                (st == Status::kTooLarge ? " (argument list too long for one message)" : "");
    return res;
  }
  ipc::ReceivedMessage m;
  const pid_t router_pid = r.pid;
  for (;;) {
    st = r.control->Receive(&m, ipc::DeadlineIn(20'000'000));
    if (st == Status::kOk && m.id() == id) break;
    if (st == Status::kOk || st == Status::kBadMessage) continue;  // a late reply to something else
    if (st != Status::kTimeout || !PollOnce(0) || !r.alive || r.pid != router_pid) {
      // Let the death be reaped so that its cause can be reported.
      for (int i = 0; i < 50 && r.alive && r.pid == router_pid && !stopping_; ++i) PollOnce(10);
      res.exit_code = stopping_ ? 128 + SIGTERM : 125;
      res.error = stopping_ ? "the sandbox was stopped" : "the syscall-router died: " + last_death_;
      return res;
    }
  }
  ipc::Decoded<ctl::Response> resp;
  if (resp.Decode(m) != Status::kOk || !resp.root().isExited()) {
    res.exit_code = 125;
    res.error = resp.Decode(m) == Status::kOk && resp.root().isError()
                    ? resp.root().getError().getMessage().cStr()
                    : "malformed answer from the syscall-router";
    return res;
  }
  auto x = resp.root().getExited();
  res.exit_code = x.getCode();
  res.error = x.getError().cStr();
  res.syscalls = x.getSyscalls();
  for (auto u : x.getUnimplemented()) res.unimplemented.emplace_back(u.getNr(), u.getCount());
  if (x.hasPlatform()) res.platform = SafeText(x.getPlatform().cStr(), 16);
  res.oom_kills = x.getOomKills();
  res.patched_sites = x.getPatchedSites();
  return res;
}

PingReport Supervisor::Ping(ServiceKind kind, uint32_t count, size_t payload_bytes) {
  PingReport rep;
  Proc& p = P(kind);
  if (!p.alive || !p.control) {
    rep.error = "not running";
    return rep;
  }
  std::vector<uint8_t> payload(payload_bytes, 0x5a);
  std::vector<uint64_t> rtts;
  ipc::ReceivedMessage scratch;
  for (uint32_t i = 0; i < count; ++i) {
    ipc::Decoded<ctl::Response> resp;
    const uint64_t seq = ++next_ping_seq_;
    const uint64_t t0 = MonotonicNs();
    Status st = p.control->Call<ctl::Request, ctl::Response>(
        [&](ctl::Request::Builder r) {
          auto ping = r.initPing();
          ping.setSeq(seq);
          ping.setSentNs(t0);
          if (!payload.empty()) ping.setPayload(kj::arrayPtr(payload.data(), payload.size()));
        },
        &scratch, &resp, ipc::DeadlineIn(1'000'000'000));
    if (st != Status::kOk) {
      rep.error = ipc::StatusName(st);
      return rep;
    }
    if (!resp.root().isPong() || resp.root().getPong().getSeq() != seq ||
        resp.root().getPong().getPayload().size() != payload.size()) {
      rep.error = "unexpected reply";
      return rep;
    }
    rtts.push_back(MonotonicNs() - t0);
  }
  std::sort(rtts.begin(), rtts.end());
  rep.ok = true;
  rep.count = count;
  if (!rtts.empty()) {
    rep.median_ns = rtts[rtts.size() / 2];
    rep.p99_ns = rtts[std::min(rtts.size() - 1, rtts.size() * 99 / 100)];
    rep.min_ns = rtts.front();
  }
  return rep;
}

std::vector<PingReport> Supervisor::PingPeers(uint32_t count, std::vector<ServiceKind>* kinds) {
  std::vector<PingReport> out;
  Proc& r = P(ServiceKind::SYSCALL_ROUTER);
  if (!r.alive) return out;
  ipc::ReceivedMessage scratch;
  ipc::Decoded<ctl::Response> resp;
  Status st = r.control->Call<ctl::Request, ctl::Response>(
      [&](ctl::Request::Builder b) { b.initPingPeers().setCount(count); }, &scratch, &resp,
      ipc::DeadlineIn(10'000'000'000ull));
  if (st != Status::kOk || !resp.root().isPeerPings()) return out;
  for (auto pp : resp.root().getPeerPings()) {
    PingReport rep;
    rep.ok = pp.getOk();
    rep.error = pp.getError().cStr();
    rep.count = pp.getCount();
    rep.median_ns = pp.getRoundTripNs();
    rep.p99_ns = pp.getP99Ns();
    kinds->push_back(pp.getService());
    out.push_back(rep);
  }
  return out;
}

std::vector<ServiceSnapshot> Supervisor::Stats() const {
  std::vector<ServiceSnapshot> out;
  for (auto& p : procs_) {
    ServiceSnapshot s;
    s.kind = p->kind;
    s.pid = p->alive ? p->pid : 0;
    s.restarts = p->restarts;
    s.last_fatal_syscall = p->last_fatal_syscall;
    if (p->stats) {
      // Plain numbers from a block the service writes: a lying service can
      // only misreport itself.
      const auto* b = p->stats;
      uint64_t start = b->start_ns.load(std::memory_order_relaxed);
      uint64_t now = MonotonicNs();
      s.uptime_ns = start && start <= now ? now - start : 0;
      s.messages_in = b->messages_in.load(std::memory_order_relaxed);
      s.messages_out = b->messages_out.load(std::memory_order_relaxed);
      s.errors = b->errors.load(std::memory_order_relaxed);
      for (int i = 0; i < ipc::kHistogramBuckets; ++i) s.latency[i] = b->latency.counts[i].load(std::memory_order_relaxed);
      for (int nr = 0; nr < ipc::kMaxCountedSyscall; ++nr) {
        const uint64_t n = b->unimplemented[nr].load(std::memory_order_relaxed);
        if (n) s.unimplemented.emplace_back(nr, n);
      }
      s.memory.used = b->memory.used.load(std::memory_order_relaxed);
      s.memory.limit = b->memory.limit.load(std::memory_order_relaxed);
      s.memory.anon = b->memory.anon.load(std::memory_order_relaxed);
      s.memory.file = b->memory.file.load(std::memory_order_relaxed);
      s.memory.shmem = b->memory.shmem.load(std::memory_order_relaxed);
      s.memory.oom_kills = b->memory.oom_kills.load(std::memory_order_relaxed);
      for (int i = 0; i < ipc::kMaxStatsChannels; ++i) {
        const auto& c = b->channels[i];
        std::string name = ipc::SafeChannelName(c);
        if (name.empty()) continue;
        s.channels.push_back({name, c.messages_in.load(), c.messages_out.load(), c.errors.load(), c.bulk_in.load(),
                              c.bulk_out.load(), c.ring_depth.load()});
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

void Supervisor::Kill(ServiceKind kind, int sig) {
  Proc& p = P(kind);
  if (!p.alive) throw std::runtime_error(p.name + " is not running");
  if (PidfdSendSignal(p.pidfd.get(), sig) < 0) throw SysError(errno, "pidfd_send_signal", p.name);
  spdlog::warn("sent SIG{} to {} (pid {})", sigabbrev_np(sig), p.name, p.pid);
}

std::string Supervisor::ForbiddenSyscall(ServiceKind kind, uint32_t nr) {
  Proc& p = P(kind);
  if (!o_.allow_test_hooks) return "test hooks are disabled (start with --allow-test-hooks)";
  if (!p.alive) return p.name + " is not running";
  p.control->Send<ctl::Request>(p.control->NextId(), [&](ctl::Request::Builder r) { r.setForbiddenSyscall(nr); },
                                ipc::DeadlineIn(100'000'000));
  return "";
}

uint64_t Supervisor::WaitAnswering(ServiceKind kind, pid_t old_pid, int timeout_ms) {
  const uint64_t t0 = MonotonicNs();
  const uint64_t deadline = t0 + static_cast<uint64_t>(timeout_ms) * 1'000'000ull;
  while (MonotonicNs() < deadline) {
    Proc& p = P(kind);
    if (p.alive && p.pid != old_pid) {
      PingReport r = Ping(kind, 1);
      if (r.ok) return MonotonicNs() - t0;
    }
    if (!PollOnce(5)) return 0;
  }
  return 0;
}

void Supervisor::AcceptCli() {
  for (;;) {
    UniqueFd c(::accept4(cli_listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) return;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        (cred.uid != 0 && cred.uid != ::geteuid())) {
      spdlog::warn("refused a control connection from uid {}", cred.uid);
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kEventCliConn | static_cast<uint32_t>(c.get());
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.get(), &ev) < 0) continue;
    cli_conns_.push_back(std::move(c));
  }
}

void Supervisor::HandleCli(int fd) {
  auto drop = [&] {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    cli_conns_.erase(std::remove_if(cli_conns_.begin(), cli_conns_.end(), [&](auto& c) { return c.get() == fd; }),
                     cli_conns_.end());
  };
  wire::Received<ctl::CliRequest> req;
  int rc = wire::ReceiveMessage(fd, &req);
  if (rc == -ECONNRESET || (rc < 0 && rc != -EBADMSG)) {
    drop();
    return;
  }
  capnp::MallocMessageBuilder mb;
  auto resp = mb.initRoot<ctl::CliResponse>();
  auto error = [&](int err, const std::string& msg) {
    auto e = resp.initError();
    e.setErrno(err);
    e.setMessage(msg);
  };
  bool stop_after = false;
  if (rc == -EBADMSG) {
    error(EBADMSG, "malformed request");
  } else {
    auto r = req.root();
    switch (r.which()) {
      case ctl::CliRequest::STATS: {
        auto snaps = Stats();
        auto list = resp.initStats(static_cast<unsigned>(snaps.size()));
        for (unsigned i = 0; i < snaps.size(); ++i) {
          const auto& s = snaps[i];
          auto o = list[i];
          o.setService(s.kind);
          o.setPid(s.pid);
          o.setRestarts(s.restarts);
          o.setUptimeNs(s.uptime_ns);
          o.setMessagesIn(s.messages_in);
          o.setMessagesOut(s.messages_out);
          o.setErrors(s.errors);
          o.setLastFatalSyscall(s.last_fatal_syscall);
          auto un = o.initUnimplemented(static_cast<unsigned>(s.unimplemented.size()));
          for (unsigned u = 0; u < s.unimplemented.size(); ++u) {
            un[u].setNr(s.unimplemented[u].first);
            un[u].setCount(s.unimplemented[u].second);
          }
          auto mem = o.initMemory();
          mem.setUsed(s.memory.used);
          mem.setLimit(s.memory.limit);
          mem.setAnon(s.memory.anon);
          mem.setFile(s.memory.file);
          mem.setShmem(s.memory.shmem);
          mem.setOomKills(s.memory.oom_kills);
          auto counts = o.initLatency().initCounts(ipc::kHistogramBuckets);
          for (int b = 0; b < ipc::kHistogramBuckets; ++b) counts.set(b, s.latency[b]);
          auto chans = o.initChannels(static_cast<unsigned>(s.channels.size()));
          for (unsigned c = 0; c < s.channels.size(); ++c) {
            auto& src = s.channels[c];
            chans[c].setName(src.name);
            chans[c].setMessagesIn(src.in);
            chans[c].setMessagesOut(src.out);
            chans[c].setErrors(src.errors);
            chans[c].setBulkBytesIn(src.bulk_in);
            chans[c].setBulkBytesOut(src.bulk_out);
            chans[c].setRingDepth(src.depth);
          }
        }
        break;
      }
      case ctl::CliRequest::PING: {
        auto list = resp.initPings(static_cast<unsigned>(kServices.size()));
        for (unsigned i = 0; i < kServices.size(); ++i) {
          PingReport rep = Ping(kServices[i], 100);
          list[i].setService(kServices[i]);
          list[i].setOk(rep.ok);
          list[i].setRoundTripNs(rep.median_ns);
          list[i].setP99Ns(rep.p99_ns);
          list[i].setCount(rep.count);
          list[i].setError(rep.error);
        }
        break;
      }
      case ctl::CliRequest::STOP:
        resp.setOk();
        stop_after = true;
        break;
      case ctl::CliRequest::KILL_SERVICE:
        try {
          Kill(r.getKillService(), SIGKILL);
          resp.setOk();
        } catch (const std::exception& e) {
          error(ESRCH, e.what());
        }
        break;
      case ctl::CliRequest::FORBIDDEN_SYSCALL: {
        std::string why = ForbiddenSyscall(r.getForbiddenSyscall().getService(), r.getForbiddenSyscall().getNr());
        if (why.empty()) resp.setOk();
        else error(EPERM, why);
        break;
      }
      default:
        error(ENOSYS, "unknown request");
    }
  }
  rc = wire::SendMessage(fd, mb);
  if (rc < 0) drop();
  if (stop_after) {
    spdlog::info("stop requested over the control socket");
    stopping_ = true;
  }
}

}  // namespace bulkhead::runtime
