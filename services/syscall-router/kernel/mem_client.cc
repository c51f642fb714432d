#include "services/syscall-router/kernel/mem_client.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <ctime>

#include "services/syscall-router/kernel/busy_guard.h"
#include "services/syscall-router/kernel/peer_call.h"
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
    const long rc = PeerCall<m::Request, m::Response>(
        holder_, kDeadlineNs, kRestartWaitMs, fill, [&](m::Response::Reader r, const ipc::ReceivedMessage&) -> long {
          if (first == nullptr) return r.isDone() ? 0 : -EIO;
          if (!r.isGranted()) return -EIO;
          *first = r.getGranted().getFirst();
          return 0;
        });
    if (rc != -ESTALE) return rc;
    // The broker died and was replaced: the same request (same number) again.
    ++resends_;
    spdlog::info("mem-broker replaced: re-sending request {}", attempt == 0 ? "once" : "again");
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
