// One request/response round trip from the router to another service over
// its data ring, as GoferClient and MemClient make them: the answer's errno
// (Common.Error) or what `use` makes of it, and the peer's death told apart
// so that the caller can retry on its replacement.
#pragma once

#include <cerrno>
#include <cstdint>
#include <mutex>
#include <span>

#include "ipc/channel.h"
#include "services/common/channel_holder.h"

namespace bulkhead::router {

// Sends the request `fill` builds (root type Req) and waits up to
// `deadline_ns` for its Resp. Returns -errno for an error answer, else
// use(Resp::Reader, const ipc::ReceivedMessage&) (the message carries the
// answer's bulk bytes, released after). When the peer dies or hangs, waits up
// to `restart_wait_ms` for the supervisor's replacement channel: -ESTALE if
// one came (the caller retries there), -EIO if not.
// `bulk`: bytes for the request's bulk area (data to write).
template <typename Req, typename Resp, typename Fill, typename Use>
long PeerCall(service::ChannelHolder* h, uint64_t deadline_ns, int restart_wait_ms, Fill&& fill, Use&& use,
              std::span<const uint8_t> bulk = {}) {
  std::unique_lock<std::mutex> l(h->call_mutex());
  uint64_t version = 0;
  auto ch = h->Get(&version);
  if (!ch) return -EIO;
  ipc::ReceivedMessage msg;
  ipc::Decoded<Resp> resp;
  ipc::Status st = ch->template Call<Req, Resp>(std::forward<Fill>(fill), &msg, &resp, ipc::DeadlineIn(deadline_ns), bulk);
  if (st == ipc::Status::kPeerDead || st == ipc::Status::kClosed || st == ipc::Status::kCorrupt ||
      st == ipc::Status::kTimeout) {
    l.unlock();
    uint64_t now = version;
    h->WaitNewer(version, restart_wait_ms, &now);
    return now != version ? -ESTALE : -EIO;
  }
  if (st != ipc::Status::kOk) return -ipc::StatusErrno(st);
  long rc;
  if (resp.root().isError()) {
    const int e = resp.root().getError().getErrno();
    rc = (e > 0 && e < 4096) ? -e : -EIO;
  } else {
    rc = use(resp.root(), msg);
  }
  ch->ReleaseBulk(msg);
  return rc;
}

}  // namespace bulkhead::router
