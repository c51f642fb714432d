// Cap'n Proto messages over SOCK_SEQPACKET sockets (bootstrap sockets and the
// CLI control socket): one message per datagram, descriptors attached.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <optional>
#include <span>
#include <vector>

#include "base/fd.h"
#include "base/fdpass.h"
#include "ipc/message.h"

namespace bulkhead::wire {

inline constexpr size_t kMaxDatagram = 256 * 1024;

// Sends `msg` as one datagram with `fds` attached. Returns 0 or -errno.
int SendMessage(int sock, capnp::MessageBuilder& msg, std::span<const int> fds = {});

// A received message: the words (private, aligned), its reader, and the
// descriptors that came with it.
template <typename T>
struct Received {
  std::vector<uint64_t> words;
  ipc::Decoded<T> decoded;
  std::vector<UniqueFd> fds;
  typename T::Reader root() const { return decoded.root(); }
};

// Receives and decodes one message of root type T. Returns 0, -errno from the
// socket, -ECONNRESET when the peer closed, or -EBADMSG for a malformed message.
template <typename T>
int ReceiveMessage(int sock, Received<T>* out) {
  ReceivedDatagram d;
  int rc = RecvWithFds(sock, kMaxDatagram, &d);
  if (rc < 0) return rc;
  if (d.data.size() % 8 != 0) return -EBADMSG;
  out->words.assign(d.data.size() / 8, 0);
  if (!d.data.empty()) std::memcpy(out->words.data(), d.data.data(), d.data.size());
  out->fds = std::move(d.fds);
  if (out->decoded.DecodeWords(out->words.data(), out->words.size()) != ipc::Status::kOk) return -EBADMSG;
  return 0;
}

}  // namespace bulkhead::wire
