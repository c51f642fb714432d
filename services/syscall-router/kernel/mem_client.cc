#include "services/syscall-router/kernel/mem_client.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <ctime>

#include "services/syscall-router/kernel/busy_guard.h"
#include "schemas/mem.capnp.h"

namespace bulkhead::router {
namespace {

namespace m = schema::mem;
constexpr uint64_t kDeadlineNs = 10'000'000'000ull;
constexpr int kRestartWaitMs = 10'000;  // how long a call waits for a restarted broker
constexpr int kAttempts = 5;

uint64_t ClockBase() {
  // A new router's sequence starts above any earlier router's (same boot).
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

MemClient::MemClient(service::ChannelHolder* holder) : holder_(holder), seq_(ClockBase()) {}

// One request, re-sent with its sequence number until a broker answers.
// Returns 0, or -errno (an error answer; -EIO when no broker answers).
template <typename Fill>
long MemClient::Call(Fill&& fill, uint32_t* first) {
  BusyGuard busy_guard(busy_);
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    std::unique_lock<std::mutex> l(holder_->call_mutex());
    uint64_t version = 0;
    auto ch = holder_->Get(&version);
    if (!ch) return -EIO;
    ipc::ReceivedMessage msg;
    ipc::Decoded<m::Response> resp;
    ipc::Status st = ch->Call<m::Request, m::Response>(fill, &msg, &resp, ipc::DeadlineIn(kDeadlineNs));
    if (st == ipc::Status::kPeerDead || st == ipc::Status::kClosed || st == ipc::Status::kCorrupt ||
        st == ipc::Status::kTimeout) {
      // The broker died: wait for its replacement, then the same request again.
      l.unlock();
      uint64_t now = version;
      holder_->WaitNewer(version, kRestartWaitMs, &now);
      if (now == version) return -EIO;
      ++resends_;
      spdlog::info("mem-broker replaced: re-sending request {}", attempt == 0 ? "once" : "again");
      continue;
    }
    if (st != ipc::Status::kOk) return -ipc::StatusErrno(st);
    long rc = 0;
    auto r = resp.root();
    if (r.isError()) {
      const int e = r.getError().getErrno();
      rc = (e > 0 && e < 4096) ? -e : -EIO;
    } else if (first != nullptr) {
      if (!r.isGranted()) {
        rc = -EIO;
      } else {
        *first = r.getGranted().getFirst();
      }
    } else if (!r.isDone()) {
      rc = -EIO;
    }
    ch->ReleaseBulk(msg);
    return rc;
  }
  return -EIO;
}

namespace {
m::ChunkKind ToWire(MemKind k) {
  switch (k) {
    case MemKind::kAnon: return m::ChunkKind::ANONYMOUS;
    case MemKind::kFile: return m::ChunkKind::PAGE_CACHE;
    case MemKind::kTmpfs: return m::ChunkKind::TMPFS;
    case MemKind::kMeta: return m::ChunkKind::METADATA;
  }
  return m::ChunkKind::ANONYMOUS;
}
}  // namespace

bool MemClient::Reset() {
  const uint64_t seq = ++seq_;
  long rc = Call([&](m::Request::Builder b) { b.initReset().setSeq(seq); }, nullptr);
  if (rc != 0) spdlog::warn("mem-broker: reset failed ({}): allocating without it", -rc);
  return rc == 0;
}

int64_t MemClient::Grant(uint32_t count, MemKind kind) {
  const uint64_t seq = ++seq_;
  uint32_t first = 0;
  long rc = Call(
      [&](m::Request::Builder b) {
        auto g = b.initGrant();
        g.setSeq(seq);
        g.setCount(count);
        g.setKind(ToWire(kind));
      },
      &first);
  if (rc != 0) {
    if (rc != -ENOMEM) {
      spdlog::warn("mem-broker: grant of {} {} chunks failed: errno {}", count, MemKindName(kind), -rc);
    }
    return -1;
  }
  return first;
}

void MemClient::Release(uint32_t first, uint32_t count) {
  const uint64_t seq = ++seq_;
  long rc = Call(
      [&](m::Request::Builder b) {
        auto x = b.initRelease();
        x.setSeq(seq);
        x.setFirst(first);
        x.setCount(count);
      },
      nullptr);
  if (rc != 0) spdlog::warn("mem-broker: release of chunks {}+{} failed: errno {}", first, count, -rc);
}

}  // namespace bulkhead::router
