// ring_bench: the shared-memory rings of //ipc against the kernel's IPC
// primitives, cross-process (every measurement forks a fresh peer process),
// all contenders interleaved round-robin in one run; the figure reported for
// each is the median over the rounds.
//
//   roundtrip_small   8-byte ping-pong, microseconds per round trip
//                     ring-spin, ring-sleep, ring-spin-capnp, pipe, unix-socket, eventfd
//   throughput_small  64-byte messages one way, messages per second
//                     ring-spin, ring-spin-capnp, pipe, unix-socket
//   throughput_bulk   64 KiB transfers one way, MiB per second
//                     ring-spin (bulk area), pipe, unix-socket
//
// Fairness rules (see bench/RESULTS.md for the discussion):
//  * Every message carries a sequence number that the receiver checks, so
//    loss, duplication or reordering fails the run; throughput runs also
//    check that exactly the expected count arrived and nothing after it.
//  * One copy on each side for every contender: write()/read() copy into and
//    out of the kernel, the ring copies into the slot / bulk area and the
//    consumer copies the message out (Receive copies the slot; the bulk bench
//    memcpy()s the 64 KiB out of the bulk area before releasing it).
//  * Kernel contenders get the buffering the ring gets: the bulk benchmark
//    gives the pipe and the socket 1 MiB buffers, like the ring's bulk area.
//    Stream readers read as much as is there (a framed stream reader would),
//    which favours them, not the ring.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/fd.h"
#include "ipc/channel.h"
#include "schemas/control.capnp.h"

namespace bulkhead::bench {
namespace {

using ipc::Channel;
using ipc::ChannelGeometry;
using ipc::ChannelOptions;
using ipc::DeadlineIn;
using ipc::ReceivedMessage;
using ipc::Status;
using ipc::kCacheLine;
namespace control = bulkhead::schema::control;

// ------------------------------------------------------------ parameters

// Spin ceiling of the spinning ring contenders. It must comfortably exceed
// the peer's turnaround (a round trip is well under a microsecond) so that
// the steady state never reaches the futex, yet stay far below a scheduler
// slice (~1 ms or more): with only 2 cores a waiter that spins longer than
// that steals the core its descheduled peer needs to make progress.
constexpr uint64_t kSpinNs = 50'000;
// Every measurement (a fraction of a second) must end within this; the ring
// calls get it as their absolute deadline, computed once so that the timed
// loops read no clock of their own.
constexpr uint64_t kMeasureTimeoutNs = 60'000'000'000ull;
constexpr int kReapTimeoutMs = 10'000;

constexpr size_t kSmallRt = 8;          // round-trip payload bytes
constexpr size_t kSmallMsg = 64;        // one-way message bytes
constexpr size_t kBulkChunk = 64 << 10;  // one-way bulk transfer bytes
constexpr uint64_t kBulkArea = 1 << 20;  // ring bulk area; pipe and socket buffers too

// Round trips: one message in flight, 256-byte slots (the capnp Ping fits).
constexpr ChannelGeometry kRtGeometry{64, 256, 0};
// Small messages one way: 1024 slots, like a 64 KiB pipe holds 1024 messages.
constexpr ChannelGeometry kSmallGeometry{1024, 256, 0};
// Bulk: the data travels in the bulk area, the slot only names it.
constexpr ChannelGeometry kBulkGeometry{256, 128, kBulkArea};

struct Options {
  enum class Format { kText, kTsv } format = Format::kText;
  int rounds = 5;
  bool quick = false;
  std::string only;  // substring filter on "benchmark/contender"
};

// ------------------------------------------------------------ small helpers

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

UniqueFd PidFd(pid_t pid) {
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

// Writes all of `len` bytes; false on error (EPIPE when the peer is gone).
bool WriteAll(int fd, const void* p, size_t len) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (len > 0) {
    ssize_t n = ::write(fd, b, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    b += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly `len` bytes; false on error or end of file.
bool ReadAll(int fd, void* p, size_t len) {
  auto* b = static_cast<uint8_t*>(p);
  while (len > 0) {
    ssize_t n = ::read(fd, b, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    b += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
void Store64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

long ContextSwitches(const rusage& r) { return r.ru_nvcsw + r.ru_nivcsw; }

double Seconds(const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; }

// How busy the machine was with work other than ours: /proc/stat's busy
// time of all CPUs minus the CPU time of this process and its reaped peers.
// On 2 cores a spinning pair needs both: other work shows up in the figures.
class LoadMonitor {
 public:
  LoadMonitor() { Sample(&busy0_, &steal0_, &ours0_); wall0_ = ipc::NowNs(); }
  // Cores' worth of other work on average, and the share stolen by the host.
  void Read(double* other_cores, double* steal_share) const {
    double busy, steal, ours;
    Sample(&busy, &steal, &ours);
    double wall = static_cast<double>(ipc::NowNs() - wall0_) / 1e9;
    long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    *other_cores = std::max(0.0, (busy - busy0_) - (ours - ours0_)) / std::max(wall, 1e-9);
    *steal_share = (steal - steal0_) / std::max(wall * static_cast<double>(cpus), 1e-9);
  }

 private:
  static void Sample(double* busy, double* steal, double* ours) {
    *busy = *steal = 0;
    if (FILE* f = std::fopen("/proc/stat", "r")) {
      unsigned long long v[8] = {};
      if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                      &v[4], &v[5], &v[6], &v[7]) == 8) {
        const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
        *busy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6]) / tick;  // not idle, iowait, steal
        *steal = static_cast<double>(v[7]) / tick;
      }
      std::fclose(f);
    }
    rusage self, kids;
    ::getrusage(RUSAGE_SELF, &self);
    ::getrusage(RUSAGE_CHILDREN, &kids);
    *ours = Seconds(self.ru_utime) + Seconds(self.ru_stime) + Seconds(kids.ru_utime) +
            Seconds(kids.ru_stime);
  }

  double busy0_, steal0_, ours0_;
  uint64_t wall0_;
};

// ------------------------------------------------------------ peer process

// A forked peer. The child dies with us (PR_SET_PDEATHSIG) and is always
// reaped: by Reap() on the normal path, by the destructor otherwise.
class Peer {
 public:
  // Runs body() in a child process; its return value is the exit code.
  template <typename Body>
  explicit Peer(Body&& body) {
    const pid_t parent = ::getpid();
    std::fflush(stdout);
    std::fflush(stderr);
    pid_ = ::fork();
    if (pid_ < 0) Fail(Errno("fork"));
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(97);
      int rc = 98;
      try {
        rc = body();
      } catch (...) {
        rc = 98;
      }
      ::_exit(rc);
    }
    pidfd_ = PidFd(pid_);
    if (!pidfd_.valid()) {
      Kill();
      Fail(Errno("pidfd_open"));
    }
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer() { Kill(); }

  pid_t pid() const { return pid_; }
  UniqueFd WatchFd() const { return UniqueFd(::dup(pidfd_.get())); }

  // Waits for the child to exit on its own (SIGKILL after a timeout) and
  // returns an error text, empty if it exited with status 0.
  std::string Reap() {
    if (pid_ <= 0) return "peer already reaped";
    pollfd p{pidfd_.get(), POLLIN, 0};
    int rc;
    do rc = ::poll(&p, 1, kReapTimeoutMs);
    while (rc < 0 && errno == EINTR);
    std::string err;
    if (rc == 0) {
      ::kill(pid_, SIGKILL);
      err = "peer did not exit (killed)";
    }
    int status = 0;
    pid_t w;
    do w = ::wait4(pid_, &status, 0, &usage_);
    while (w < 0 && errno == EINTR);
    pid_ = -1;
    if (!err.empty()) return err;
    if (w < 0) return Errno("wait4");
    if (WIFSIGNALED(status)) return "peer killed by signal " + std::to_string(WTERMSIG(status));
    if (WEXITSTATUS(status) != 0) {
      return "peer failed with exit code " + std::to_string(WEXITSTATUS(status));
    }
    return {};
  }
  const rusage& usage() const { return usage_; }

 private:
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  rusage usage_{};
};

// What one measurement produced.
struct Sample {
  uint64_t ops = 0;         // timed operations (round trips, messages, chunks)
  uint64_t elapsed_ns = 0;  // wall time of the timed operations
  double csw_per_op = 0;    // context switches of both processes per operation
};

// How much one measurement does: `warm` untimed operations, then `n` timed
// ones, cut short if they take longer than `cap_ns` (the machine can turn
// several times slower in the middle of a run; the cap keeps the run short).
struct Limits {
  uint64_t warm = 0;
  uint64_t n = 0;
  uint64_t cap_ns = 0;
};

// A page shared with the peer for the end of a one-way stream: the parent
// raises `stop`, the producer finishes the message in hand, records how many
// it sent in all and closes its end; the parent drains the rest and checks
// that it received exactly that many, in order.
struct StopBlock {
  alignas(kCacheLine) std::atomic<uint32_t> stop;
  alignas(kCacheLine) std::atomic<uint64_t> produced;
};

class SharedStop {
 public:
  SharedStop() {
    void* p = ::mmap(nullptr, sizeof(StopBlock), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) Fail(Errno("mmap"));
    block_ = new (p) StopBlock{};
  }
  ~SharedStop() { ::munmap(block_, sizeof(StopBlock)); }
  SharedStop(const SharedStop&) = delete;
  SharedStop& operator=(const SharedStop&) = delete;
  StopBlock* operator->() const { return block_; }

 private:
  StopBlock* block_;
};

bool StopRequested(const SharedStop& s) { return s->stop.load(std::memory_order_relaxed) != 0; }

// The common shape of every measurement, run in the parent: op(i) performs
// operation i (and checks it); end(count) is called with the number of
// operations done in all, tells the peer to finish and checks the remains.
// Both return nullptr on success, else what went wrong. Then the peer is
// reaped; any failure throws (and the Peer kills and reaps the child).
template <typename Op, typename End>
Sample Measure(Peer& peer, const Limits& l, Op&& op, End&& end) {
  rusage r0, r1;
  ::getrusage(RUSAGE_SELF, &r0);
  uint64_t i = 0;
  for (; i < l.warm; ++i) {
    if (const char* e = op(i)) Fail(std::string(e) + " (warm-up op " + std::to_string(i) + ")");
  }
  const uint64_t t0 = ipc::NowNs();
  const uint64_t last = l.warm + l.n;
  while (i < last) {
    if (const char* e = op(i)) Fail(std::string(e) + " (op " + std::to_string(i) + ")");
    ++i;
    if ((i & 31) == 0 && ipc::NowNs() - t0 > l.cap_ns) break;
  }
  const uint64_t t1 = ipc::NowNs();
  ::getrusage(RUSAGE_SELF, &r1);
  if (const char* e = end(i)) Fail(e);
  if (std::string e = peer.Reap(); !e.empty()) Fail(e);
  Sample s;
  s.ops = i - l.warm;
  s.elapsed_ns = t1 > t0 ? t1 - t0 : 1;
  s.csw_per_op = static_cast<double>(ContextSwitches(r1) - ContextSwitches(r0) +
                                     ContextSwitches(peer.usage())) /
                 static_cast<double>(i);
  return s;
}

ChannelOptions Spin(bool spin) {
  ChannelOptions o;
  o.spin_max_ns = spin ? kSpinNs : 0;
  return o;
}

// Both ends of a fresh channel: the parent's attached, the child's as an fd.
struct RingPair {
  UniqueFd child_fd;
  std::unique_ptr<Channel> parent;
  UniqueFd parent_fd;  // attached after the fork, with the peer's pidfd
};

RingPair MakeRing(const ChannelGeometry& g, const char* name) {
  RingPair p;
  p.parent_fd = ipc::CreateSegment(g, name);
  p.child_fd = UniqueFd(::dup(p.parent_fd.get()));
  if (!p.child_fd.valid()) Fail(Errno("dup"));
  return p;
}

// Error texts of the measured operations: static strings (no allocation in
// the timed loops), or this buffer for the rare composed one.
thread_local std::string g_error;

const char* RingError(const char* what, Status st) {
  g_error = std::string(what) + ": " + ipc::StatusName(st);
  return g_error.c_str();
}

const char* ErrnoMsg(const char* what) {
  g_error = Errno(what);
  return g_error.c_str();
}

const char* CountError(uint64_t received, uint64_t sent) {
  g_error = "received " + std::to_string(received) + " messages, the peer sent " +
            std::to_string(sent);
  return g_error.c_str();
}

// Drains a channel whose producer was asked to stop: every message until
// the producer's close must carry the next id. Returns the count in all.
// (Receive may report the close while the last messages are still in the
// ring, hence the TryReceive sweep after it.)
template <typename OnMessage>
const char* DrainRing(Channel& ch, uint64_t deadline, uint64_t* next, OnMessage&& on_message) {
  ReceivedMessage m;
  for (;;) {
    Status st = ch.Receive(&m, deadline);
    if (st == Status::kClosed) break;
    if (st != Status::kOk) return RingError("drain", st);
    if (m.id() != *next) return "message lost or reordered (drain)";
    on_message(m);
    ++*next;
  }
  for (;;) {
    Status st = ch.TryReceive(&m);
    if (st == Status::kWouldBlock) return nullptr;
    if (st != Status::kOk) return RingError("drain", st);
    if (m.id() != *next) return "message lost or reordered (drain)";
    on_message(m);
    ++*next;
  }
}

// ============================================================ round trips

// A round trip's end: the client sends this id (ring) or value (fds); the
// server exits without answering.
constexpr uint64_t kStopId = ~0ull;
constexpr uint64_t kStopValue = 0xfffffffffffffffeull;  // the largest an eventfd takes

// Ring, raw 8-byte payloads. Parent = client, child = echo server.
Sample RtRing(const Limits& l, bool spin) {
  RingPair rp = MakeRing(kRtGeometry, "bench-rt");
  const uint64_t deadline = DeadlineIn(kMeasureTimeoutNs);
  Peer peer([&]() -> int {
    rp.parent_fd.Reset();
    auto ch = Channel::Attach(std::move(rp.child_fd), Channel::Role::kServer, "rt-server",
                              ipc::PeerWatch(PidFd(getppid())), Spin(spin));
    ReceivedMessage m;
    for (uint64_t i = 0;; ++i) {
      if (ch->Receive(&m, deadline) != Status::kOk) return 10;
      if (m.id() == kStopId) return 0;
      if (m.id() != i || m.payload().size() != kSmallRt) return 11;
      if (ch->SendRaw(m.id(), m.payload(), deadline) != Status::kOk) return 12;
    }
  });
  rp.child_fd.Reset();
  auto ch = Channel::Attach(std::move(rp.parent_fd), Channel::Role::kClient, "rt-client",
                            ipc::PeerWatch(peer.WatchFd()), Spin(spin));
  ReceivedMessage m;
  uint8_t buf[kSmallRt];
  auto op = [&](uint64_t i) -> const char* {
    Store64(buf, i * 3 + 1);
    Status st = ch->SendRaw(i, {buf, sizeof(buf)}, deadline);
    if (st != Status::kOk) return RingError("send", st);
    st = ch->Receive(&m, deadline);
    if (st != Status::kOk) return RingError("receive", st);
    if (m.id() != i || m.payload().size() != kSmallRt || Load64(m.payload().data()) != i * 3 + 1) {
      return "wrong echo";
    }
    return nullptr;
  };
  auto end = [&](uint64_t) -> const char* {
    Status st = ch->SendRaw(kStopId, {}, deadline);
    return st == Status::kOk ? nullptr : RingError("send stop", st);
  };
  return Measure(peer, l, op, end);
}

// Ring, a real control.Request{ping} built in place, decoded by the server,
// answered with a control.Response{pong} that the client decodes.
Sample RtRingCapnp(const Limits& l) {
  RingPair rp = MakeRing(kRtGeometry, "bench-rt-capnp");
  const uint64_t deadline = DeadlineIn(kMeasureTimeoutNs);
  Peer peer([&]() -> int {
    rp.parent_fd.Reset();
    auto ch = Channel::Attach(std::move(rp.child_fd), Channel::Role::kServer, "rtc-server",
                              ipc::PeerWatch(PidFd(getppid())), Spin(true));
    ReceivedMessage m;
    ipc::Decoded<control::Request> req;
    for (uint64_t i = 0;; ++i) {
      if (ch->Receive(&m, deadline) != Status::kOk) return 10;
      if (m.id() == kStopId) return 0;
      if (req.Decode(m) != Status::kOk) return 11;
      auto r = req.root();
      if (!r.isPing()) return 12;
      auto ping = r.getPing();
      if (ping.getSeq() != i) return 13;
      Status st = ch->Send<control::Response>(
          m.id(),
          [&](control::Response::Builder& resp) {
            auto pong = resp.initPong();
            pong.setSeq(ping.getSeq());
            pong.setSentNs(ping.getSentNs());
            pong.setPayload(ping.getPayload());
          },
          deadline);
      if (st != Status::kOk) return 14;
    }
  });
  rp.child_fd.Reset();
  auto ch = Channel::Attach(std::move(rp.parent_fd), Channel::Role::kClient, "rtc-client",
                            ipc::PeerWatch(peer.WatchFd()), Spin(true));
  ReceivedMessage m;
  ipc::Decoded<control::Response> resp;
  uint8_t payload[kSmallRt];
  auto op = [&](uint64_t i) -> const char* {
    Store64(payload, i * 3 + 1);
    Status st = ch->Send<control::Request>(
        i,
        [&](control::Request::Builder& req) {
          auto ping = req.initPing();
          ping.setSeq(i);
          ping.setSentNs(i);  // a real ping would stamp the clock; not what is measured here
          ping.setPayload(capnp::Data::Reader(payload, sizeof(payload)));
        },
        deadline);
    if (st != Status::kOk) return RingError("send", st);
    st = ch->Receive(&m, deadline);
    if (st != Status::kOk) return RingError("receive", st);
    if (resp.Decode(m) != Status::kOk) return "undecodable response";
    auto r = resp.root();
    if (!r.isPong()) return "response is not a pong";
    auto pong = r.getPong();
    auto data = pong.getPayload();
    if (pong.getSeq() != i || data.size() != kSmallRt || Load64(data.begin()) != i * 3 + 1) {
      return "wrong pong";
    }
    return nullptr;
  };
  auto end = [&](uint64_t) -> const char* {
    Status st = ch->SendRaw(kStopId, {}, deadline);
    return st == Status::kOk ? nullptr : RingError("send stop", st);
  };
  return Measure(peer, l, op, end);
}

// Two descriptors each way (pipes, eventfds) or one (a socketpair): the
// client writes 8 bytes to `c2s_w` and reads them back from `s2c_r`.
struct FdPair {
  UniqueFd c2s_r, c2s_w, s2c_r, s2c_w;
};

// With an eventfd the 8 bytes are the counter value: nonzero, and read back
// whole, since there is only ever one write outstanding.
Sample RtFds(const Limits& l, FdPair fds) {
  Peer peer([&]() -> int {
    // Keep only the server's ends (for a socketpair c2s_r == s2c_w).
    fds.c2s_w.Reset();
    fds.s2c_r.Reset();
    const int in = fds.c2s_r.get();
    const int out = fds.s2c_w.valid() ? fds.s2c_w.get() : in;
    uint8_t buf[kSmallRt];
    for (uint64_t i = 0;; ++i) {
      if (!ReadAll(in, buf, sizeof(buf))) return 10;
      if (Load64(buf) == kStopValue) return 0;
      if (Load64(buf) != i + 1) return 11;
      if (!WriteAll(out, buf, sizeof(buf))) return 12;
    }
  });
  fds.c2s_r.Reset();
  fds.s2c_w.Reset();
  const int out = fds.c2s_w.get();
  const int in = fds.s2c_r.valid() ? fds.s2c_r.get() : out;
  uint8_t buf[kSmallRt];
  auto op = [&](uint64_t i) -> const char* {
    Store64(buf, i + 1);
    if (!WriteAll(out, buf, sizeof(buf))) return ErrnoMsg("write");
    if (!ReadAll(in, buf, sizeof(buf))) return ErrnoMsg("read");
    if (Load64(buf) != i + 1) return "wrong echo";
    return nullptr;
  };
  auto end = [&](uint64_t) -> const char* {
    Store64(buf, kStopValue);
    return WriteAll(out, buf, sizeof(buf)) ? nullptr : ErrnoMsg("write stop");
  };
  return Measure(peer, l, op, end);
}

FdPair MakePipes() {
  int a[2], b[2];
  if (::pipe2(a, O_CLOEXEC) != 0) Fail(Errno("pipe2"));
  if (::pipe2(b, O_CLOEXEC) != 0) Fail(Errno("pipe2"));
  return {UniqueFd(a[0]), UniqueFd(a[1]), UniqueFd(b[0]), UniqueFd(b[1])};
}

// Client end in c2s_w, server end in c2s_r; the other two stay empty.
FdPair MakeSocketPair() {
  int s[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) Fail(Errno("socketpair"));
  FdPair p;
  p.c2s_w = UniqueFd(s[0]);
  p.c2s_r = UniqueFd(s[1]);
  return p;
}

FdPair MakeEventFds() {
  int a = ::eventfd(0, EFD_CLOEXEC);
  int b = ::eventfd(0, EFD_CLOEXEC);
  if (a < 0 || b < 0) Fail(Errno("eventfd"));
  // An eventfd is one object read and written through one descriptor; dup
  // it so each side owns (and closes) its own.
  return {UniqueFd(a), UniqueFd(::dup(a)), UniqueFd(b), UniqueFd(::dup(b))};
}

// ============================================================ one way

// The child produces until told to stop; the parent consumes: the timer
// runs over `n` messages taken from a stream already in its steady state.

Sample TpRing(const Limits& l, bool capnp) {
  SharedStop stop;
  RingPair rp = MakeRing(kSmallGeometry, "bench-tp");
  const uint64_t deadline = DeadlineIn(kMeasureTimeoutNs);
  Peer peer([&]() -> int {
    rp.parent_fd.Reset();
    auto ch = Channel::Attach(std::move(rp.child_fd), Channel::Role::kClient, "tp-producer",
                              ipc::PeerWatch(PidFd(getppid())), Spin(true));
    uint8_t msg[kSmallMsg] = {};
    uint64_t i = 0;
    for (; !StopRequested(stop); ++i) {
      Store64(msg, i);
      Status st;
      if (capnp) {
        st = ch->Send<control::Request>(
            i,
            [&](control::Request::Builder& req) {
              auto ping = req.initPing();
              ping.setSeq(i);
              ping.setSentNs(i);
              ping.setPayload(capnp::Data::Reader(msg, sizeof(msg)));
            },
            deadline);
      } else {
        st = ch->SendRaw(i, {msg, sizeof(msg)}, deadline);
      }
      if (st != Status::kOk) return 10;
    }
    stop->produced.store(i, std::memory_order_release);
    ch->Close();
    return 0;
  });
  rp.child_fd.Reset();
  auto ch = Channel::Attach(std::move(rp.parent_fd), Channel::Role::kServer, "tp-consumer",
                            ipc::PeerWatch(peer.WatchFd()), Spin(true));
  ReceivedMessage m;
  ipc::Decoded<control::Request> req;
  auto op = [&](uint64_t i) -> const char* {
    Status st = ch->Receive(&m, deadline);
    if (st != Status::kOk) return RingError("receive", st);
    if (m.id() != i) return "message lost or reordered";
    if (capnp) {
      if (req.Decode(m) != Status::kOk) return "undecodable message";
      auto r = req.root();
      if (!r.isPing()) return "not a ping";
      auto ping = r.getPing();
      auto data = ping.getPayload();
      if (ping.getSeq() != i || data.size() != kSmallMsg || Load64(data.begin()) != i) {
        return "wrong message";
      }
    } else if (m.payload().size() != kSmallMsg || Load64(m.payload().data()) != i) {
      return "wrong message";
    }
    return nullptr;
  };
  auto end = [&](uint64_t next) -> const char* {
    stop->stop.store(1, std::memory_order_relaxed);
    if (const char* e = DrainRing(*ch, deadline, &next, [](const ReceivedMessage&) {})) return e;
    const uint64_t sent = stop->produced.load(std::memory_order_acquire);
    return next == sent ? nullptr : CountError(next, sent);
  };
  return Measure(peer, l, op, end);
}

// Pipe or stream socket: one write() per 64-byte message; the reader takes
// whatever is there (up to 64 KiB) and walks the messages in it.
Sample TpStream(const Limits& l, UniqueFd rd, UniqueFd wr) {
  SharedStop stop;
  Peer peer([&]() -> int {
    rd.Reset();
    uint8_t msg[kSmallMsg] = {};
    uint64_t i = 0;
    for (; !StopRequested(stop); ++i) {
      Store64(msg, i);
      if (!WriteAll(wr.get(), msg, sizeof(msg))) return 10;
    }
    stop->produced.store(i, std::memory_order_release);
    return 0;  // exiting closes the stream
  });
  wr.Reset();
  std::vector<uint8_t> buf(64 << 10);
  size_t have = 0, pos = 0;  // bytes in buf, next unread byte
  bool eof = false;
  // Makes the next message available; false at the end of the stream.
  auto next_message = [&]() -> bool {
    if (have - pos >= kSmallMsg) return true;
    std::memmove(buf.data(), buf.data() + pos, have - pos);
    have -= pos;
    pos = 0;
    while (have < kSmallMsg) {
      ssize_t r = ::read(rd.get(), buf.data() + have, buf.size() - have);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        eof = r == 0;
        return false;
      }
      have += static_cast<size_t>(r);
    }
    return true;
  };
  auto op = [&](uint64_t i) -> const char* {
    if (!next_message()) return eof ? "end of stream before the last message" : ErrnoMsg("read");
    if (Load64(buf.data() + pos) != i) return "message lost or reordered";
    pos += kSmallMsg;
    return nullptr;
  };
  auto end = [&](uint64_t next) -> const char* {
    stop->stop.store(1, std::memory_order_relaxed);
    while (next_message()) {
      if (Load64(buf.data() + pos) != next) return "message lost or reordered (drain)";
      pos += kSmallMsg;
      ++next;
    }
    if (!eof) return ErrnoMsg("read (drain)");
    if (have != pos) return "a partial message at the end of the stream";
    const uint64_t sent = stop->produced.load(std::memory_order_acquire);
    return next == sent ? nullptr : CountError(next, sent);
  };
  return Measure(peer, l, op, end);
}

Sample TpPipe(const Limits& l) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) Fail(Errno("pipe2"));
  return TpStream(l, UniqueFd(p[0]), UniqueFd(p[1]));
}

Sample TpSocket(const Limits& l) {
  int s[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) Fail(Errno("socketpair"));
  return TpStream(l, UniqueFd(s[1]), UniqueFd(s[0]));
}

// ------------------------------------------------------------ bulk

// Chunk `i` carries i in its first and last 8 bytes; the rest is filler
// that is copied like any data but not checked.
void StampChunk(uint8_t* chunk, uint64_t i) {
  Store64(chunk, i);
  Store64(chunk + kBulkChunk - 8, ~i);
}
bool ChunkIs(const uint8_t* chunk, uint64_t i) {
  return Load64(chunk) == i && Load64(chunk + kBulkChunk - 8) == ~i;
}

std::vector<uint8_t> FillerChunk() {
  std::vector<uint8_t> c(kBulkChunk);
  for (size_t k = 0; k < c.size(); ++k) c[k] = static_cast<uint8_t>(k * 131 + 7);
  return c;
}

Sample BulkRing(const Limits& l) {
  SharedStop stop;
  RingPair rp = MakeRing(kBulkGeometry, "bench-bulk");
  const uint64_t deadline = DeadlineIn(kMeasureTimeoutNs);
  Peer peer([&]() -> int {
    rp.parent_fd.Reset();
    auto ch = Channel::Attach(std::move(rp.child_fd), Channel::Role::kClient, "bulk-producer",
                              ipc::PeerWatch(PidFd(getppid())), Spin(true));
    std::vector<uint8_t> chunk = FillerChunk();
    uint8_t hdr[8];
    uint64_t i = 0;
    for (; !StopRequested(stop); ++i) {
      StampChunk(chunk.data(), i);
      Store64(hdr, i);
      // SendRaw copies the chunk into the bulk area (like write() into a pipe).
      Status st = ch->SendRaw(i, {hdr, sizeof(hdr)}, deadline, {chunk.data(), chunk.size()});
      if (st != Status::kOk) return 10;
    }
    stop->produced.store(i, std::memory_order_release);
    ch->Close();
    return 0;
  });
  rp.child_fd.Reset();
  auto ch = Channel::Attach(std::move(rp.parent_fd), Channel::Role::kServer, "bulk-consumer",
                            ipc::PeerWatch(peer.WatchFd()), Spin(true));
  ReceivedMessage m;
  std::vector<uint8_t> chunk(kBulkChunk);
  auto op = [&](uint64_t i) -> const char* {
    Status st = ch->Receive(&m, deadline);
    if (st != Status::kOk) return RingError("receive", st);
    if (m.id() != i || m.bulk().size() != kBulkChunk) return "wrong bulk message";
    // Read the bytes: copy them out of shared memory (like read() from a
    // pipe), then give the area back.
    std::memcpy(chunk.data(), m.bulk().data(), kBulkChunk);
    ch->ReleaseBulk(m);
    if (!ChunkIs(chunk.data(), i)) return "chunk lost, reordered or corrupt";
    return nullptr;
  };
  auto end = [&](uint64_t next) -> const char* {
    stop->stop.store(1, std::memory_order_relaxed);
    if (const char* e = DrainRing(*ch, deadline, &next,
                                  [&](const ReceivedMessage& msg) { ch->ReleaseBulk(msg); })) {
      return e;
    }
    const uint64_t sent = stop->produced.load(std::memory_order_acquire);
    return next == sent ? nullptr : CountError(next, sent);
  };
  return Measure(peer, l, op, end);
}

// Reads one whole chunk: 1, or 0 at a clean end of stream, or -1.
int ReadChunk(int fd, uint8_t* chunk) {
  size_t have = 0;
  while (have < kBulkChunk) {
    ssize_t r = ::read(fd, chunk + have, kBulkChunk - have);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) return have == 0 ? 0 : -1;
    have += static_cast<size_t>(r);
  }
  return 1;
}

Sample BulkStream(const Limits& l, UniqueFd rd, UniqueFd wr) {
  SharedStop stop;
  Peer peer([&]() -> int {
    rd.Reset();
    std::vector<uint8_t> chunk = FillerChunk();
    uint64_t i = 0;
    for (; !StopRequested(stop); ++i) {
      StampChunk(chunk.data(), i);
      if (!WriteAll(wr.get(), chunk.data(), chunk.size())) return 10;
    }
    stop->produced.store(i, std::memory_order_release);
    return 0;
  });
  wr.Reset();
  std::vector<uint8_t> chunk(kBulkChunk);
  auto op = [&](uint64_t i) -> const char* {
    if (ReadChunk(rd.get(), chunk.data()) != 1) return "short read";
    if (!ChunkIs(chunk.data(), i)) return "chunk lost, reordered or corrupt";
    return nullptr;
  };
  auto end = [&](uint64_t next) -> const char* {
    stop->stop.store(1, std::memory_order_relaxed);
    for (;;) {
      int r = ReadChunk(rd.get(), chunk.data());
      if (r == 0) break;
      if (r < 0) return "short read (drain)";
      if (!ChunkIs(chunk.data(), next)) return "chunk lost, reordered or corrupt (drain)";
      ++next;
    }
    const uint64_t sent = stop->produced.load(std::memory_order_acquire);
    return next == sent ? nullptr : CountError(next, sent);
  };
  return Measure(peer, l, op, end);
}

Sample BulkPipe(const Limits& l) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) Fail(Errno("pipe2"));
  // As much buffering as the ring's bulk area (1 MiB is the default pipe-max-size).
  if (::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(kBulkArea)) < 0) Fail(Errno("F_SETPIPE_SZ"));
  return BulkStream(l, UniqueFd(p[0]), UniqueFd(p[1]));
}

Sample BulkSocket(const Limits& l) {
  int s[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) Fail(Errno("socketpair"));
  // As much buffering as the ring's bulk area (root may pass net.core.wmem_max).
  int size = static_cast<int>(kBulkArea);
  for (int fd : s) {
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
  }
  return BulkStream(l, UniqueFd(s[1]), UniqueFd(s[0]));
}

// ============================================================ the table

enum class Kind { kLatency, kRate, kBandwidth };

struct Contender {
  const char* bench = "";
  const char* name = "";
  Kind kind = Kind::kLatency;
  std::function<Sample(const Limits&)> run;
  uint64_t n = 0;  // operations the next round aims at
  std::vector<double> values;  // one figure per round
  std::vector<double> csw;
  std::vector<double> ops;  // timed operations per round
};

const char* Unit(Kind k) {
  switch (k) {
    case Kind::kLatency: return "us";
    case Kind::kRate: return "msg/s";
    case Kind::kBandwidth: return "MiB/s";
  }
  return "?";
}

double Value(Kind k, const Sample& s) {
  const double secs = static_cast<double>(s.elapsed_ns) / 1e9;
  switch (k) {
    case Kind::kLatency: return static_cast<double>(s.elapsed_ns) / 1e3 / static_cast<double>(s.ops);
    case Kind::kRate: return static_cast<double>(s.ops) / secs;
    case Kind::kBandwidth: return static_cast<double>(s.ops) * kBulkChunk / 1048576.0 / secs;
  }
  return 0;
}

std::vector<Contender> AllContenders() {
  std::vector<Contender> c;
  auto add = [&](const char* b, const char* n, Kind k, std::function<Sample(const Limits&)> f) {
    Contender x;
    x.bench = b;
    x.name = n;
    x.kind = k;
    x.run = std::move(f);
    c.push_back(std::move(x));
  };
  const Kind lat = Kind::kLatency, rate = Kind::kRate, bw = Kind::kBandwidth;
  add("roundtrip_small", "ring-spin", lat, [](const Limits& l) { return RtRing(l, true); });
  add("roundtrip_small", "ring-sleep", lat, [](const Limits& l) { return RtRing(l, false); });
  add("roundtrip_small", "ring-spin-capnp", lat, [](const Limits& l) { return RtRingCapnp(l); });
  add("roundtrip_small", "pipe", lat, [](const Limits& l) { return RtFds(l, MakePipes()); });
  add("roundtrip_small", "unix-socket", lat, [](const Limits& l) { return RtFds(l, MakeSocketPair()); });
  add("roundtrip_small", "eventfd", lat, [](const Limits& l) { return RtFds(l, MakeEventFds()); });
  add("throughput_small", "ring-spin", rate, [](const Limits& l) { return TpRing(l, false); });
  add("throughput_small", "ring-spin-capnp", rate, [](const Limits& l) { return TpRing(l, true); });
  add("throughput_small", "pipe", rate, [](const Limits& l) { return TpPipe(l); });
  add("throughput_small", "unix-socket", rate, [](const Limits& l) { return TpSocket(l); });
  add("throughput_bulk", "ring-spin", bw, [](const Limits& l) { return BulkRing(l); });
  add("throughput_bulk", "pipe", bw, [](const Limits& l) { return BulkPipe(l); });
  add("throughput_bulk", "unix-socket", bw, [](const Limits& l) { return BulkSocket(l); });
  return c;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

// Counts per measurement: a short calibration run per contender gives its
// cost per operation; each round then aims at ~target_ns of timed work, and
// re-aims from what the previous round measured (the machine's speed can
// change within a run). No measurement runs longer than Limits::cap_ns.
struct Plan {
  uint64_t calib_ops;
  uint64_t min_ops;
  uint64_t max_ops;
};

Plan PlanFor(Kind k, bool quick) {
  switch (k) {
    case Kind::kLatency: return quick ? Plan{200, 200, 20'000} : Plan{2'000, 2'000, 5'000'000};
    case Kind::kRate: return quick ? Plan{5'000, 5'000, 200'000} : Plan{100'000, 50'000, 50'000'000};
    case Kind::kBandwidth: return quick ? Plan{32, 32, 512} : Plan{256, 128, 200'000};
  }
  return {};
}

Limits LimitsFor(Kind k, uint64_t n, uint64_t cap_ns) {
  Limits l;
  l.n = n;
  l.cap_ns = cap_ns;
  // Enough to fill the buffers and let the adaptive spin settle.
  switch (k) {
    case Kind::kLatency: l.warm = std::clamp<uint64_t>(n / 10, 50, 10'000); break;
    case Kind::kRate: l.warm = std::clamp<uint64_t>(n / 10, 2'048, 200'000); break;
    case Kind::kBandwidth: l.warm = std::clamp<uint64_t>(n / 10, 16, 256); break;
  }
  return l;
}

uint64_t Aim(const Sample& s, uint64_t target_ns, const Plan& p) {
  const double per_op = static_cast<double>(s.elapsed_ns) / static_cast<double>(std::max<uint64_t>(s.ops, 1));
  const double n = static_cast<double>(target_ns) / std::max(per_op, 0.5);
  return std::clamp(static_cast<uint64_t>(n), p.min_ops, p.max_ops);
}

// ============================================================ output

const Contender* Find(const std::vector<Contender>& cs, const char* bench, const char* name) {
  for (const auto& c : cs) {
    if (std::strcmp(c.bench, bench) == 0 && std::strcmp(c.name, name) == 0 && !c.values.empty()) {
      return &c;
    }
  }
  return nullptr;
}

std::string FormatValue(Kind k, double v) {
  char b[64];
  if (k == Kind::kLatency) {
    std::snprintf(b, sizeof(b), "%.3f", v);
  } else {
    std::snprintf(b, sizeof(b), "%.0f", v);
  }
  return b;
}

// Human form: rates in millions.
std::string Pretty(Kind k, double v) {
  char b[64];
  switch (k) {
    case Kind::kLatency: std::snprintf(b, sizeof(b), "%.3f us", v); break;
    case Kind::kRate: std::snprintf(b, sizeof(b), "%.2f M msg/s", v / 1e6); break;
    case Kind::kBandwidth: std::snprintf(b, sizeof(b), "%.0f MiB/s", v); break;
  }
  return b;
}

void PrintTsv(const std::vector<Contender>& cs) {
  for (const auto& c : cs) {
    if (c.values.empty()) continue;
    std::printf("%s\t%s\t%s\t%s\n", c.bench, c.name, FormatValue(c.kind, Median(c.values)).c_str(),
                Unit(c.kind));
  }
}

struct RunInfo {
  double seconds = 0;
  double other_cores = 0;  // background load, in cores
  double steal = 0;        // share of CPU time taken by the hypervisor
};

void PrintText(const std::vector<Contender>& cs, const Options& o, const RunInfo& info) {
  std::printf("ring_bench: cross-process IPC, %d round%s interleaved, median of rounds\n\n",
              o.rounds, o.rounds == 1 ? "" : "s");
  std::printf("%-17s %-16s %16s %16s %16s %8s %9s\n", "benchmark", "contender", "median", "min",
              "max", "csw/op", "ops/round");
  const char* last = "";
  for (const auto& c : cs) {
    if (c.values.empty()) continue;
    if (std::strcmp(last, c.bench) != 0 && *last) std::printf("\n");
    last = c.bench;
    auto [mn, mx] = std::minmax_element(c.values.begin(), c.values.end());
    std::printf("%-17s %-16s %16s %16s %16s %8.2f %9.0f\n", c.bench, c.name,
                Pretty(c.kind, Median(c.values)).c_str(), Pretty(c.kind, *mn).c_str(),
                Pretty(c.kind, *mx).c_str(), Median(c.csw), Median(c.ops));
  }

  std::printf("\nratios (how many times the ring is better):\n");
  auto ratio = [&](const char* bench, const char* other, const char* ring) {
    const Contender* a = Find(cs, bench, other);
    const Contender* b = Find(cs, bench, ring);
    if (!a || !b) return;
    double ma = Median(a->values), mb = Median(b->values);
    // Latency: other / ring. Rates: ring / other.
    double r = a->kind == Kind::kLatency ? ma / mb : mb / ma;
    if (a->kind == Kind::kLatency) {
      std::printf("  %-17s %s / %s = %.1fx\n", bench, other, ring, r);
    } else {
      std::printf("  %-17s %s / %s = %.1fx\n", bench, ring, other, r);
    }
  };
  for (const char* other : {"unix-socket", "pipe", "eventfd", "ring-sleep", "ring-spin-capnp"}) {
    ratio("roundtrip_small", other, "ring-spin");
  }
  ratio("roundtrip_small", "pipe", "ring-sleep");
  ratio("roundtrip_small", "eventfd", "ring-sleep");
  for (const char* other : {"unix-socket", "pipe", "ring-spin-capnp"}) {
    ratio("throughput_small", other, "ring-spin");
  }
  ratio("throughput_small", "unix-socket", "ring-spin-capnp");
  ratio("throughput_small", "pipe", "ring-spin-capnp");
  for (const char* other : {"unix-socket", "pipe"}) ratio("throughput_bulk", other, "ring-spin");

  std::printf("\ntargets (issue 3):\n");
  auto verdict = [](bool ok) { return ok ? "MET" : "MISSED"; };
  if (auto *spin = Find(cs, "roundtrip_small", "ring-spin"), *sock = Find(cs, "roundtrip_small", "unix-socket");
      spin && sock) {
    double r = Median(sock->values) / Median(spin->values);
    std::printf("  (a) ring-spin round trip >= 5x lower than unix-socket: %.3f vs %.3f us = %.1fx  %s\n",
                Median(spin->values), Median(sock->values), r, verdict(r >= 5));
  }
  if (auto *sleep = Find(cs, "roundtrip_small", "ring-sleep"), *pipe = Find(cs, "roundtrip_small", "pipe");
      sleep && pipe) {
    double a = Median(sleep->values), b = Median(pipe->values);
    std::printf("  (b) ring-sleep round trip no worse than pipe: %.3f vs %.3f us  %s\n", a, b,
                verdict(a <= b));
  }
  if (auto* tp = Find(cs, "throughput_small", "ring-spin")) {
    double v = Median(tp->values);
    std::printf("  (c) >= 10 M 64-byte msg/s one way: %.2f M msg/s  %s\n", v / 1e6, verdict(v >= 10e6));
  }
  std::printf("\nrun: %.1f s; other work on the machine meanwhile: %.2f cores on average; steal %.1f%%\n",
              info.seconds, info.other_cores, info.steal * 100);
  std::printf("\ncsw/op: voluntary + involuntary context switches of both processes per operation\n"
              "(about 0 when spinning works, >= 1 per message when every message needs a wake-up).\n");
}

// ============================================================ main

void Usage(FILE* f) {
  std::fprintf(f,
               "usage: ring_bench [--format=text|tsv] [--rounds N] [--quick] [--only SUBSTR] [--help]\n"
               "\n"
               "Compares the //ipc shared-memory rings with pipes, UNIX sockets and eventfds,\n"
               "cross-process, contenders interleaved round-robin; prints the median of rounds.\n"
               "\n"
               "  --format=text   a table, ratios and the issue-3 targets (default)\n"
               "  --format=tsv    one line per figure: benchmark<TAB>contender<TAB>median<TAB>unit\n"
               "  --rounds N      rounds of every contender (default 5)\n"
               "  --quick         small counts (a smoke test; the figures mean little)\n"
               "  --only SUBSTR   run only contenders whose \"benchmark/contender\" contains SUBSTR\n"
               "  --help          this text\n"
               "\n"
               "Progress goes to stderr.\n");
}

[[noreturn]] void UsageError(const std::string& msg) {
  std::fprintf(stderr, "ring_bench: %s\n", msg.c_str());
  std::fprintf(stderr, "try 'ring_bench --help'\n");
  std::exit(2);
}

Options ParseFlags(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string name = a, value;
    bool has_value = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    auto take = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= argc) UsageError("flag " + name + " needs a value");
      return argv[++i];
    };
    if (name == "--help" || name == "-h") {
      if (has_value) UsageError("flag --help takes no value");
      Usage(stdout);
      std::exit(0);
    } else if (name == "--format") {
      std::string v = take();
      if (v == "text") {
        o.format = Options::Format::kText;
      } else if (v == "tsv") {
        o.format = Options::Format::kTsv;
      } else {
        UsageError("--format must be text or tsv, not '" + v + "'");
      }
    } else if (name == "--rounds") {
      std::string v = take();
      char* end = nullptr;
      errno = 0;
      long r = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || errno != 0 || r < 1 || r > 1000) {
        UsageError("--rounds must be a whole number from 1 to 1000, not '" + v + "'");
      }
      o.rounds = static_cast<int>(r);
    } else if (name == "--quick") {
      if (has_value) UsageError("flag --quick takes no value");
      o.quick = true;
    } else if (name == "--only") {
      o.only = take();
    } else {
      UsageError("unknown flag '" + a + "'");
    }
  }
  return o;
}

Sample RunOne(const Contender& c, const Limits& l) {
  try {
    return c.run(l);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(c.bench) + "/" + c.name + ": " + e.what());
  }
}

int Main(int argc, char** argv) {
  Options o = ParseFlags(argc, argv);
  ::signal(SIGPIPE, SIG_IGN);  // a dead peer shows as EPIPE, not as our death

  std::vector<Contender> cs;
  for (auto& c : AllContenders()) {
    std::string id = std::string(c.bench) + "/" + c.name;
    if (o.only.empty() || id.find(o.only) != std::string::npos) cs.push_back(std::move(c));
  }
  if (cs.empty()) UsageError("--only '" + o.only + "' matches no contender");

  const uint64_t target_ns = o.quick ? 5'000'000 : 150'000'000;
  const uint64_t cap_ns = o.quick ? 200'000'000 : 1'500'000'000;
  LoadMonitor load;
  const uint64_t start = ipc::NowNs();
  auto elapsed = [&] { return static_cast<double>(ipc::NowNs() - start) / 1e9; };

  // Calibration (also warms page tables, caches and the CPU frequency).
  std::fprintf(stderr, "ring_bench: calibrating %zu contenders\n", cs.size());
  for (auto& c : cs) {
    const Plan p = PlanFor(c.kind, o.quick);
    c.n = Aim(RunOne(c, LimitsFor(c.kind, p.calib_ops, cap_ns)), target_ns, p);
  }

  // Rounds: every contender once per round, the starting point rotated so no
  // contender always runs right after the same neighbour.
  for (int r = 0; r < o.rounds; ++r) {
    for (size_t k = 0; k < cs.size(); ++k) {
      Contender& c = cs[(k + static_cast<size_t>(r)) % cs.size()];
      Sample s = RunOne(c, LimitsFor(c.kind, c.n, cap_ns));
      c.values.push_back(Value(c.kind, s));
      c.csw.push_back(s.csw_per_op);
      c.ops.push_back(static_cast<double>(s.ops));
      c.n = Aim(s, target_ns, PlanFor(c.kind, o.quick));
    }
    std::fprintf(stderr, "ring_bench: round %d/%d done (%.1f s)\n", r + 1, o.rounds, elapsed());
  }

  RunInfo info;
  info.seconds = elapsed();
  load.Read(&info.other_cores, &info.steal);
  std::fprintf(stderr, "ring_bench: run took %.1f s; other work on the machine: %.2f cores on average; steal %.1f%%\n",
               info.seconds, info.other_cores, info.steal * 100);
  if (info.other_cores > 0.25) {
    std::fprintf(stderr,
                 "ring_bench: warning: other work kept %.2f cores busy during the run; on a small "
                 "machine the figures (spinning contenders most) are disturbed\n",
                 info.other_cores);
  }
  if (o.format == Options::Format::kTsv) {
    PrintTsv(cs);
  } else {
    PrintText(cs, o, info);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace bulkhead::bench

int main(int argc, char** argv) {
  try {
    return bulkhead::bench::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ring_bench: error: %s\n", e.what());
    return 1;
  }
}
