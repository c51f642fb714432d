// Passing descriptors and small datagrams over a SOCK_SEQPACKET UNIX socket
// (SCM_RIGHTS). The peer is untrusted: control messages are bounds-checked,
// unexpected descriptors are closed, truncation is reported as an error.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/fd.h"

namespace bulkhead {

inline constexpr size_t kMaxPassedFds = 64;

// Sends `data` with `fds` attached. Returns 0 or -errno.
int SendWithFds(int sock, std::span<const uint8_t> data, std::span<const int> fds);

struct ReceivedDatagram {
  std::vector<uint8_t> data;
  std::vector<UniqueFd> fds;
};

// Receives one datagram of at most `max_bytes` with at most kMaxPassedFds
// descriptors. Returns 0 on success, -errno on error, -ECONNRESET on orderly
// shutdown of the peer, -EMSGSIZE if the data or the descriptors were
// truncated (received descriptors are closed in that case).
int RecvWithFds(int sock, size_t max_bytes, ReceivedDatagram* out);

}  // namespace bulkhead
