#include "services/common/service.h"

#include <malloc.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>
#include <type_traits>

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mapping.h"
#include "base/memfd.h"
#include "harden/harden.h"
#include "schemas/common.capnp.h"
#include "schemas/control.capnp.h"
#include "schemas/gofer.capnp.h"
#include "schemas/mem.capnp.h"
#include "schemas/net.capnp.h"
#include "services/common/wire.h"

namespace bulkhead::service {
namespace {

namespace ctl = schema::control;
using ipc::Channel;
using ipc::Decoded;
using ipc::ReceivedMessage;
using ipc::Status;

constexpr uint64_t kPollNs = 100'000'000;  // how often idle servers look for replaced channels

template <typename Req, typename Resp>
struct Proto {
  using Request = Req;
  using Response = Resp;
};
using GoferProto = Proto<schema::gofer::Request, schema::gofer::Response>;
using NetProto = Proto<schema::net::Request, schema::net::Response>;
using MemProto = Proto<schema::mem::Request, schema::mem::Response>;

struct Flags {
  std::string sandbox_id;
  int bootstrap_fd = 3;
  int log_fd = -1;
  LogFormat log_format = LogFormat::kText;
  spdlog::level::level_enum log_level = spdlog::level::info;
  std::string platform = "auto";
  int router_cpu = -1;
  uint64_t memory_limit = 0;
};

[[noreturn]] void Usage(std::string_view name, int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: %.*s --sandbox-id ID [--bootstrap-fd N] [--log-fd N] [--log-format text|json]\n"
               "           [--log-level trace|debug|info|warn|error] [--platform ptrace|trap|auto]\n"
               "           [--router-cpu N] [--memory-limit BYTES]\n"
               "A bulkhead service. It is started by the bulkhead supervisor, which passes its\n"
               "channels on the bootstrap descriptor; it is not meant to be run by hand.\n",
               static_cast<int>(name.size()), name.data());
  std::exit(code);
}

int ParseFd(std::string_view name, const char* v) {
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (*v == 0 || *end != 0 || n < 0 || n > 1 << 20) {
    std::fprintf(stderr, "invalid %.*s: %s\n", static_cast<int>(name.size()), name.data(), v);
    std::exit(2);
  }
  return static_cast<int>(n);
}

Flags ParseFlags(std::string_view name, int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") Usage(name, 0);
    else if (a == "--sandbox-id") f.sandbox_id = value();
    else if (a == "--bootstrap-fd") f.bootstrap_fd = ParseFd(a, value());
    else if (a == "--log-fd") f.log_fd = ParseFd(a, value());
    else if (a == "--log-format") {
      if (!ParseLogFormat(value(), &f.log_format)) {
        std::fprintf(stderr, "--log-format must be text or json\n");
        std::exit(2);
      }
    } else if (a == "--log-level") {
      if (!ParseLogLevel(value(), &f.log_level)) {
        std::fprintf(stderr, "unknown --log-level\n");
        std::exit(2);
      }
    } else if (a == "--router-cpu") {
      f.router_cpu = ParseFd(a, value());  // a small non-negative number
      if (f.router_cpu >= CPU_SETSIZE) {
        std::fprintf(stderr, "--router-cpu must be below %d\n", CPU_SETSIZE);
        std::exit(2);
      }
    } else if (a == "--memory-limit") {
      const char* v = value();
      char* end = nullptr;
      errno = 0;
      const unsigned long long n = std::strtoull(v, &end, 10);
      if (*v == 0 || *end != 0 || errno != 0 || *v == '-') {
        std::fprintf(stderr, "invalid --memory-limit: %s (bytes)\n", v);
        std::exit(2);
      }
      f.memory_limit = n;
    } else if (a == "--platform") {
      f.platform = value();
      if (f.platform != "ptrace" && f.platform != "trap" && f.platform != "auto") {
        std::fprintf(stderr, "--platform must be ptrace, trap or auto\n");
        std::exit(2);
      }
    } else {
      std::fprintf(stderr, "unknown flag: %s (see --help)\n", argv[i]);
      std::exit(2);
    }
  }
  if (f.sandbox_id.empty()) Usage(name, 2);
  return f;
}

struct PeerChannel {
  std::string name;
  ServiceKind peer;
  bool server;  // this service answers requests on it
  ChannelHolder holder;
};

class Service {
 public:
  Service(const ServiceSpec& spec, Flags flags) : spec_(spec), flags_(std::move(flags)) {}

  int Run();

 private:
  void ReadBootstrap();
  std::unique_ptr<Channel> AttachGrant(ctl::ChannelGrant::Reader g, std::vector<UniqueFd>& fds,
                                       size_t* next_fd, int counter_index);
  void ServeControl();
  void ServeData(PeerChannel* pc);
  void WatchUpdates();
  template <typename Proto>
  void HandleData(Channel& ch, const ReceivedMessage& m);
  void FillStats(schema::ServiceStats::Builder s);
  void PingPeers(uint32_t count, capnp::List<ctl::ServicePing>::Builder out);
  template <typename Proto>
  bool PingOne(PeerChannel* pc, uint32_t count, ctl::ServicePing::Builder out);
  template <typename Proto>
  void SayHello(PeerChannel* pc);
  int CounterIndexFor(const std::string& name);
  void Record(uint64_t t0, bool error);

  const ServiceSpec& spec_;
  Flags flags_;
  std::string name_;
  UniqueFd stats_fd_;
  Mapping stats_map_;
  ipc::ServiceStatsBlock* stats_ = nullptr;
  ChannelHolder control_;
  std::mutex control_send_mu_;       // the control thread and the application's thread both reply
  std::thread app_thread_;           // runs spec_.run_handler
  std::atomic<bool> app_running_{false};
  ServiceContext context_;
  std::vector<std::unique_ptr<PeerChannel>> peers_;
  bool allow_test_hooks_ = false;
  std::map<std::string, int> counter_slots_;
};

int Service::CounterIndexFor(const std::string& name) {
  auto it = counter_slots_.find(name);
  if (it != counter_slots_.end()) return it->second;
  int idx = static_cast<int>(counter_slots_.size());
  if (idx >= ipc::kMaxStatsChannels) return -1;
  counter_slots_[name] = idx;
  return idx;
}

std::unique_ptr<Channel> Service::AttachGrant(ctl::ChannelGrant::Reader g, std::vector<UniqueFd>& fds,
                                              size_t* next_fd, int counter_index) {
  if (*next_fd >= fds.size()) throw std::runtime_error("bootstrap: missing descriptor for a channel");
  UniqueFd seg = std::move(fds[(*next_fd)++]);
  ipc::PeerWatch peer;
  if (g.getHasPeerPidfd()) {
    if (*next_fd >= fds.size()) throw std::runtime_error("bootstrap: missing peer pidfd");
    peer = ipc::PeerWatch(std::move(fds[(*next_fd)++]));
  }
  ipc::ChannelOptions o;
  // Service-to-service traffic comes in bursts a system call apart (tens of
  // microseconds under ptrace): a waiter that spins that long answers the
  // next request without a futex wake-up (~40 µs on a VM). Adaptive: idle
  // channels shrink back to a short spin (ipc::SpinPolicy).
  o.spin_max_ns = 100000;
  if (counter_index >= 0) o.counters = &stats_->channels[counter_index];
  auto role = g.getRole() == ctl::ChannelGrant::Role::SERVER ? Channel::Role::kServer : Channel::Role::kClient;
  return Channel::Attach(std::move(seg), role, g.getName().cStr(), std::move(peer), o);
}

void Service::ReadBootstrap() {
  wire::Received<ctl::Bootstrap> b;
  int rc = wire::ReceiveMessage(flags_.bootstrap_fd, &b);
  if (rc < 0) throw SysError(-rc, "recvmsg", "bootstrap descriptor " + std::to_string(flags_.bootstrap_fd));
  auto root = b.root();
  if (root.getService() != spec_.kind) {
    throw std::runtime_error("bootstrap is for " + std::string(ServiceName(root.getService())) +
                             ", this is " + name_);
  }
  allow_test_hooks_ = root.getAllowTestHooks();
  if (b.fds.empty()) throw std::runtime_error("bootstrap: no stats segment");
  stats_fd_ = std::move(b.fds[0]);
  long long size = FdSize(stats_fd_.get());
  if (size < static_cast<long long>(sizeof(ipc::ServiceStatsBlock)) || !HasSizeSeals(stats_fd_.get())) {
    throw std::runtime_error("bootstrap: stats segment too small or not sealed");
  }
  stats_map_ = Mapping::MapShared(stats_fd_.get(), sizeof(ipc::ServiceStatsBlock));
  stats_ = reinterpret_cast<ipc::ServiceStatsBlock*>(stats_map_.data());
  stats_->pid.store(getpid());
  stats_->start_ns.store(MonotonicNs());
  size_t next = 1;
  for (auto g : root.getChannels()) {
    std::string cname = g.getName().cStr();
    auto ch = AttachGrant(g, b.fds, &next, CounterIndexFor(cname));
    if (cname == "control") {
      control_.Replace(std::move(ch), g.getGeneration());
      continue;
    }
    auto pc = std::make_unique<PeerChannel>();
    pc->name = cname;
    pc->peer = g.getPeer();
    pc->server = g.getRole() == ctl::ChannelGrant::Role::SERVER;
    pc->holder.Replace(std::move(ch), g.getGeneration());
    peers_.push_back(std::move(pc));
  }
  if (!control_.Get()) throw std::runtime_error("bootstrap: no control channel");
  if (root.getHasRootfs()) {
    if (next >= b.fds.size()) throw std::runtime_error("bootstrap: missing rootfs descriptor");
    context_.rootfs = std::move(b.fds[next++]);
  }
  if (root.getHasMemoryFile()) {
    if (next >= b.fds.size()) throw std::runtime_error("bootstrap: missing memory file descriptor");
    context_.memory_file = std::move(b.fds[next++]);
  }
  if (root.getHasStdio()) {
    if (next + 3 > b.fds.size()) throw std::runtime_error("bootstrap: missing stdio descriptors");
    for (auto& fd : context_.stdio) fd = std::move(b.fds[next++]);
  }
  context_.peer = [this](ServiceKind k) -> ChannelHolder* {
    for (auto& p : peers_) if (p->peer == k && !p->server) return &p->holder;
    return nullptr;
  };
}

void Service::Record(uint64_t t0, bool error) {
  stats_->messages_in.fetch_add(1, std::memory_order_relaxed);
  stats_->messages_out.fetch_add(1, std::memory_order_relaxed);
  if (error) stats_->errors.fetch_add(1, std::memory_order_relaxed);
  stats_->latency.Record(MonotonicNs() - t0);
}

void Service::FillStats(schema::ServiceStats::Builder s) {
  s.setService(spec_.kind);
  s.setPid(getpid());
  s.setUptimeNs(MonotonicNs() - stats_->start_ns.load());
  s.setMessagesIn(stats_->messages_in.load());
  s.setMessagesOut(stats_->messages_out.load());
  s.setErrors(stats_->errors.load());
  s.setLastFatalSyscall(-1);
  auto counts = s.initLatency().initCounts(ipc::kHistogramBuckets);
  for (int i = 0; i < ipc::kHistogramBuckets; ++i) counts.set(i, stats_->latency.counts[i].load());
  auto chans = s.initChannels(static_cast<unsigned>(counter_slots_.size()));
  unsigned i = 0;
  for (auto& [name, idx] : counter_slots_) {
    auto& c = stats_->channels[idx];
    auto o = chans[i++];
    o.setName(name);
    o.setMessagesIn(c.messages_in.load());
    o.setMessagesOut(c.messages_out.load());
    o.setErrors(c.errors.load());
    o.setBulkBytesIn(c.bulk_in.load());
    o.setBulkBytesOut(c.bulk_out.load());
    o.setRingDepth(c.ring_depth.load());
  }
}

template <typename Reply>
void FillHello(Reply r, schema::Hello::Reader h, ServiceKind me) {
  const uint32_t v = h.getVersion();
  const bool ok = v >= schema::MIN_PROTOCOL_VERSION && v <= schema::PROTOCOL_VERSION;
  r.setAccepted(ok);
  r.setVersion(schema::PROTOCOL_VERSION);
  r.setService(me);
  if (!ok) r.setReason("protocol version " + std::to_string(v) + " not supported");
}

void Service::ServeControl() {
  ReceivedMessage m;
  for (;;) {
    auto ch = control_.Get();
    Status st = ch->Receive(&m, ipc::DeadlineIn(kPollNs));
    if (st == Status::kTimeout) continue;
    if (st == Status::kPeerDead || st == Status::kClosed || st == Status::kCorrupt) {
      spdlog::error("control channel lost ({}); exiting", ipc::StatusName(st));
      _exit(1);
    }
    const uint64_t t0 = MonotonicNs();
    Decoded<ctl::Request> req;
    if (st != Status::kOk || req.Decode(m) != Status::kOk) {
      spdlog::warn("control: malformed request {} dropped", m.id());
      ch->Send<ctl::Response>(m.id(), [](ctl::Response::Builder r) {
        r.initError().setErrno(EBADMSG);
      });
      Record(t0, true);
      continue;
    }
    auto r = req.root();
    bool exit_after = false;
    Status sent = Status::kOk;
    // The application's thread sends its one reply on this channel too.
    std::unique_lock<std::mutex> send_lock(control_send_mu_);
    switch (r.which()) {
      case ctl::Request::HELLO:
        sent = ch->Send<ctl::Response>(m.id(), [&](ctl::Response::Builder b) {
          FillHello(b.initHello(), r.getHello(), spec_.kind);
        });
        break;
      case ctl::Request::PING:
        sent = ch->Send<ctl::Response>(m.id(), [&](ctl::Response::Builder b) {
          auto p = b.initPong();
          p.setSeq(r.getPing().getSeq());
          p.setSentNs(r.getPing().getSentNs());
          p.setPayload(r.getPing().getPayload());
        });
        break;
      case ctl::Request::STATS:
        sent = ch->Send<ctl::Response>(m.id(), [&](ctl::Response::Builder b) { FillStats(b.initStats()); });
        break;
      case ctl::Request::SHUTDOWN:
        spdlog::info("shutdown requested");
        sent = ch->Send<ctl::Response>(m.id(), [](ctl::Response::Builder b) { b.setOk(); });
        exit_after = true;
        break;
      case ctl::Request::FORBIDDEN_SYSCALL:
        if (!allow_test_hooks_) {
          ch->Send<ctl::Response>(m.id(), [](ctl::Response::Builder b) {
            auto e = b.initError();
            e.setErrno(EPERM);
            e.setMessage("test hooks are disabled");
          });
          break;
        }
        spdlog::warn("test hook: issuing forbidden system call {}", r.getForbiddenSyscall());
        ::syscall(static_cast<long>(r.getForbiddenSyscall()), 0, 0, 0, 0, 0, 0);
        ch->Send<ctl::Response>(m.id(), [](ctl::Response::Builder b) {
          auto e = b.initError();
          e.setErrno(EACCES);
          e.setMessage("the forbidden system call was allowed");
        });
        break;
      case ctl::Request::PING_PEERS: {
        // Measure first into a scratch message, then copy the small result
        // into the reply slot.
        uint32_t count = std::clamp<uint32_t>(r.getPingPeers().getCount(), 1, 100000);
        capnp::MallocMessageBuilder tmp;
        auto list = tmp.initRoot<ctl::Response>().initPeerPings(static_cast<unsigned>(peers_.size()));
        PingPeers(count, list);
        sent = ch->Send<ctl::Response>(m.id(), [&](ctl::Response::Builder b) {
          b.setPeerPings(tmp.getRoot<ctl::Response>().asReader().getPeerPings());
        });
        break;
      }
      case ctl::Request::RUN: {
        if (!spec_.run_handler || app_running_.load()) {
          const bool busy = app_running_.load();
          sent = ch->Send<ctl::Response>(m.id(), [&](ctl::Response::Builder b) {
            auto e = b.initError();
            e.setErrno(busy ? EBUSY : ENOSYS);
            e.setMessage(busy ? "an application is running already" : "this service runs no applications");
          });
          break;
        }
        // On a thread of its own, so that this thread keeps answering
        // (stats, ping, terminal signals) while the application runs.
        if (app_thread_.joinable()) app_thread_.join();
        auto copy = std::make_shared<capnp::MallocMessageBuilder>();
        copy->setRoot(r.getRun());
        app_running_.store(true);
        const uint64_t id = m.id();
        app_thread_ = std::thread([this, copy, id] {
          capnp::MallocMessageBuilder tmp;
          auto exited = tmp.initRoot<ctl::Exited>();
          spec_.run_handler(copy->getRoot<ctl::Run>().asReader(), exited);
          std::lock_guard<std::mutex> lock(control_send_mu_);
          auto out = control_.Get();
          Status st = out->Send<ctl::Response>(id, [&](ctl::Response::Builder b) { b.setExited(exited.asReader()); });
          if (st == Status::kTooLarge) {
            exited.initUnimplemented(0);
            st = out->Send<ctl::Response>(id, [&](ctl::Response::Builder b) { b.setExited(exited.asReader()); });
          }
          if (st != Status::kOk) spdlog::warn("control: reply to run {} failed: {}", id, ipc::StatusName(st));
          app_running_.store(false);
        });
        break;
      }
      case ctl::Request::TERMINAL_SIGNAL: {
        const uint32_t sig = r.getTerminalSignal();
        const bool ok = spec_.signal_handler && (sig == SIGINT || sig == SIGQUIT || sig == SIGTSTP || sig == SIGWINCH);
        if (ok) spec_.signal_handler(static_cast<int>(sig));
        sent = ch->Send<ctl::Response>(m.id(), [&](ctl::Response::Builder b) {
          if (ok) {
            b.setOk();
          } else {
            auto e = b.initError();
            e.setErrno(EINVAL);
            e.setMessage("not a terminal signal, or no application here");
          }
        });
        break;
      }
      default:
        sent = ch->Send<ctl::Response>(m.id(), [](ctl::Response::Builder b) {
          auto e = b.initError();
          e.setErrno(ENOSYS);
          e.setMessage("unknown control request");
        });
    }
    if (sent != Status::kOk) spdlog::warn("control: reply to {} failed: {}", m.id(), ipc::StatusName(sent));
    Record(t0, false);
    if (exit_after) {
      spdlog::default_logger()->flush();
      _exit(0);
    }
  }
}

template <typename Proto>
void Service::HandleData(Channel& ch, const ReceivedMessage& m) {
  using Req = typename Proto::Request;
  using Resp = typename Proto::Response;
  const uint64_t t0 = MonotonicNs();
  Decoded<Req> req;
  if (req.Decode(m) != Status::kOk) {
    ch.Send<Resp>(m.id(), [](typename Resp::Builder b) { b.initError().setErrno(EBADMSG); });
    Record(t0, true);
    return;
  }
  auto r = req.root();
  switch (r.which()) {
    case Req::HELLO:
      ch.Send<Resp>(m.id(), [&](typename Resp::Builder b) { FillHello(b.initHello(), r.getHello(), spec_.kind); });
      break;
    case Req::PING:
      ch.Send<Resp>(m.id(), [&](typename Resp::Builder b) {
        auto p = b.initPong();
        p.setSeq(r.getPing().getSeq());
        p.setSentNs(r.getPing().getSentNs());
        p.setPayload(r.getPing().getPayload());
      });
      break;
    case Req::STATS:
      ch.Send<Resp>(m.id(), [&](typename Resp::Builder b) { FillStats(b.initStats()); });
      break;
    default:
      if constexpr (std::is_same_v<Req, schema::gofer::Request>) {
        if (spec_.gofer_handler) {
          spec_.gofer_handler(ch, m.id(), r, m.bulk());
          break;
        }
      }
      if constexpr (std::is_same_v<Req, schema::mem::Request>) {
        if (spec_.mem_handler) {
          spec_.mem_handler(ch, m.id(), r);
          break;
        }
      }
      ch.Send<Resp>(m.id(), [](typename Resp::Builder b) {
        auto e = b.initError();
        e.setErrno(ENOSYS);
        e.setMessage("request not implemented by this version");
      });
  }
  Record(t0, false);
}

void Service::ServeData(PeerChannel* pc) {
  ReceivedMessage m;
  uint64_t version;
  auto ch = pc->holder.Get(&version);
  int counter = CounterIndexFor(pc->name);
  for (;;) {
    Status st = ch->Receive(&m, ipc::DeadlineIn(kPollNs));
    if (counter >= 0) stats_->channels[counter].ring_depth.store(ch->InboundDepth(), std::memory_order_relaxed);
    if (st == Status::kOk || st == Status::kBadMessage) {
      switch (spec_.kind) {
        case ServiceKind::FS_GOFER: HandleData<GoferProto>(*ch, m); break;
        case ServiceKind::NET_STACK: HandleData<NetProto>(*ch, m); break;
        case ServiceKind::MEM_BROKER: HandleData<MemProto>(*ch, m); break;
        default:
          spdlog::warn("channel {}: {} serves no data protocol; request dropped", pc->name, name_);
      }
      ch->ReleaseBulk(m);
      continue;
    }
    if (st == Status::kTimeout && pc->holder.version() == version) {
      // Idle for a poll period: the response bulk area (file data the
      // router has copied out long since) goes back to the host.
      if (const uint64_t n = ch->TrimBulk(); n > 0) spdlog::debug("channel {}: {} bulk bytes given back", pc->name, n);
      continue;
    }
    if (st != Status::kTimeout) {
      spdlog::warn("channel {}: {}; waiting for the supervisor to replace it", pc->name, ipc::StatusName(st));
    }
    // Replaced, or broken: wait for the replacement.
    for (;;) {
      auto next = pc->holder.WaitNewer(version, 1000, &version);
      if (next && next != ch) {
        ch = next;
        spdlog::info("channel {}: switched to a new segment", pc->name);
        break;
      }
    }
  }
}

template <typename P>
bool Service::PingOne(PeerChannel* pc, uint32_t count, ctl::ServicePing::Builder out) {
  std::lock_guard<std::mutex> l(pc->holder.call_mutex());
  auto ch = pc->holder.Get();
  std::vector<uint64_t> rtts;
  rtts.reserve(count);
  ReceivedMessage scratch;
  for (uint32_t i = 0; i < count; ++i) {
    Decoded<typename P::Response> resp;
    const uint64_t t0 = MonotonicNs();
    Status st = ch->Call<typename P::Request, typename P::Response>(
        [&](typename P::Request::Builder b) {
          auto p = b.initPing();
          p.setSeq(i);
          p.setSentNs(t0);
        },
        &scratch, &resp, ipc::DeadlineIn(500'000'000));
    if (st != Status::kOk || !resp.root().isPong() || resp.root().getPong().getSeq() != i) {
      out.setOk(false);
      out.setError(st != Status::kOk ? ipc::StatusName(st) : "unexpected reply");
      return false;
    }
    rtts.push_back(MonotonicNs() - t0);
  }
  std::sort(rtts.begin(), rtts.end());
  out.setOk(true);
  out.setCount(count);
  out.setRoundTripNs(rtts[rtts.size() / 2]);
  out.setP99Ns(rtts[std::min(rtts.size() - 1, rtts.size() * 99 / 100)]);
  return true;
}

void Service::PingPeers(uint32_t count, capnp::List<ctl::ServicePing>::Builder out) {
  unsigned i = 0;
  for (auto& pc : peers_) {
    auto o = out[i++];
    o.setService(pc->peer);
    if (pc->server) {
      o.setOk(false);
      o.setError("this service is the server on that channel");
      continue;
    }
    switch (pc->peer) {
      case ServiceKind::FS_GOFER: PingOne<GoferProto>(pc.get(), count, o); break;
      case ServiceKind::NET_STACK: PingOne<NetProto>(pc.get(), count, o); break;
      case ServiceKind::MEM_BROKER: PingOne<MemProto>(pc.get(), count, o); break;
      default: o.setOk(false); o.setError("no data protocol with that peer");
    }
  }
}

template <typename P>
void Service::SayHello(PeerChannel* pc) {
  std::lock_guard<std::mutex> l(pc->holder.call_mutex());
  auto ch = pc->holder.Get();
  ReceivedMessage scratch;
  Decoded<typename P::Response> resp;
  Status st = ch->Call<typename P::Request, typename P::Response>(
      [&](typename P::Request::Builder b) {
        auto h = b.initHello();
        h.setVersion(schema::PROTOCOL_VERSION);
        h.setService(spec_.kind);
        h.setPid(getpid());
        h.setSandboxId(flags_.sandbox_id);
      },
      &scratch, &resp, ipc::DeadlineIn(2'000'000'000));
  if (st != Status::kOk || !resp.root().isHello()) {
    spdlog::error("channel {}: handshake failed: {}", pc->name, st != Status::kOk ? ipc::StatusName(st) : "unexpected reply");
    return;
  }
  auto h = resp.root().getHello();
  if (!h.getAccepted()) {
    spdlog::error("channel {}: {} refused protocol version {}: {}", pc->name, ServiceName(h.getService()),
                  schema::PROTOCOL_VERSION, h.getReason().cStr());
    return;
  }
  spdlog::debug("channel {}: handshake with {} done (version {})", pc->name, ServiceName(h.getService()), h.getVersion());
}

void Service::WatchUpdates() {
  for (;;) {
    wire::Received<ctl::ChannelUpdate> u;
    int rc = wire::ReceiveMessage(flags_.bootstrap_fd, &u);
    if (rc == -ECONNRESET) {
      spdlog::info("supervisor closed the bootstrap socket; exiting");
      spdlog::default_logger()->flush();
      _exit(0);
    }
    if (rc < 0) {
      spdlog::warn("bootstrap socket: bad update ({})", ErrnoName(-rc));
      if (rc != -EBADMSG && rc != -EMSGSIZE) _exit(1);
      continue;
    }
    size_t next = 0;
    for (auto g : u.root().getChannels()) {
      std::string cname = g.getName().cStr();
      auto it = std::find_if(peers_.begin(), peers_.end(), [&](auto& p) { return p->name == cname; });
      try {
        auto ch = AttachGrant(g, u.fds, &next, CounterIndexFor(cname));
        if (it == peers_.end()) {
          spdlog::warn("update for unknown channel {} ignored", cname);
          continue;
        }
        {
          std::lock_guard<std::mutex> l((*it)->holder.call_mutex());
          (*it)->holder.Replace(std::move(ch), g.getGeneration());
        }
        spdlog::info("channel {}: new segment from the supervisor (peer generation {})", cname, g.getGeneration());
        if (!(*it)->server) {
          switch ((*it)->peer) {
            case ServiceKind::FS_GOFER: SayHello<GoferProto>(it->get()); break;
            case ServiceKind::NET_STACK: SayHello<NetProto>(it->get()); break;
            case ServiceKind::MEM_BROKER: SayHello<MemProto>(it->get()); break;
            default: break;
          }
        }
      } catch (const std::exception& e) {
        spdlog::error("channel {}: update refused: {}", cname, e.what());
      }
    }
  }
}

int Service::Run() {
  name_ = std::string(ServiceName(spec_.kind));
  ReadBootstrap();
  context_.stats = stats_;
  context_.platform = flags_.platform;
  context_.router_cpu = flags_.router_cpu;
  context_.memory_limit = flags_.memory_limit;
  if (spec_.setup) spec_.setup(context_);
  harden::HardenOptions ho;
  ho.outside_uid = spec_.outside_uid;
  ho.outside_gid = spec_.outside_gid;
  ho.keep_capabilities = spec_.keep_capabilities;
  // Attaching a replacement channel checks the segment's seals.
  harden::SyscallPolicy policy = spec_.policy;
  policy.Append(context_.extra_policy);
  policy.Allow(SYS_fcntl, {harden::ArgCondition::Equal(1, F_GET_SEALS)});
#if defined(__SANITIZE_ADDRESS__)
  // Sanitizer builds only: ASan's runtime probes memory readability with a
  // pipe when threads start. Release builds never allow it.
  policy.Allow(SYS_pipe2);
  // ...and, to print a report at all, reads its own executable's name and
  // checks whether stderr is a terminal. Without these a sanitizer finding in
  // a service shows up only as a seccomp death.
  policy.Allow(SYS_readlink);
  policy.Allow(SYS_openat);
  policy.Allow(SYS_open);
  policy.Allow(SYS_ioctl);
#endif
  ho.policy = &policy;
  ho.fatal_syscall_slot = &stats_->fatal_syscall;
  ho.extra_unshare_flags = spec_.unshare_flags;
  harden::HardenReport rep = harden::HardenProcess(ho);
  spdlog::info("started (pid {}, sandbox {}): {}", getpid(), flags_.sandbox_id, rep.Summary());
  std::vector<std::thread> threads;
  for (auto& pc : peers_) {
    if (pc->server) threads.emplace_back([this, p = pc.get()] { ServeData(p); });
  }
  threads.emplace_back([this] { WatchUpdates(); });
  for (auto& pc : peers_) {
    if (pc->server) continue;
    switch (pc->peer) {
      case ServiceKind::FS_GOFER: SayHello<GoferProto>(pc.get()); break;
      case ServiceKind::NET_STACK: SayHello<NetProto>(pc.get()); break;
      case ServiceKind::MEM_BROKER: SayHello<MemProto>(pc.get()); break;
      default: break;
    }
  }
  ServeControl();  // never returns
  return 0;
}

}  // namespace

int RunService(const ServiceSpec& spec, int argc, char** argv) {
  // One malloc arena for every thread, set before any thread exists. glibc
  // shrinks a thread's own arena (heap_trim) after reading
  // /proc/sys/vm/overcommit_memory, an open that no service's seccomp list
  // allows: a service that freed enough on a second thread was killed by
  // SIGSYS. The main arena trims with brk instead. (It also saves each
  // extra arena's resident pages: the services' threads are few and mostly
  // idle.)
  if (::mallopt(M_ARENA_MAX, 1) != 1) spdlog::warn("mallopt(M_ARENA_MAX, 1) refused");
  std::string_view name = ServiceName(spec.kind);
  Flags f = ParseFlags(name, argc, argv);
  LogOptions lo;
  lo.name = std::string(name);
  lo.format = f.log_format;
  lo.level = f.log_level;
  lo.fd = f.log_fd >= 0 ? f.log_fd : 2;
  InitLogging(lo);
  try {
    Service s(spec, f);
    return s.Run();
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}

}  // namespace bulkhead::service
