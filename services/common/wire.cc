#include "services/common/wire.h"

namespace bulkhead::wire {

int SendMessage(int sock, capnp::MessageBuilder& msg, std::span<const int> fds) {
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(msg);
  auto bytes = flat.asBytes();
  if (bytes.size() > kMaxDatagram) return -EMSGSIZE;
  return SendWithFds(sock, {bytes.begin(), bytes.size()}, fds);
}

}  // namespace bulkhead::wire
