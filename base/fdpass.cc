#include "base/fdpass.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace bulkhead {

int SendWithFds(int sock, std::span<const uint8_t> data, std::span<const int> fds) {
  if (fds.size() > kMaxPassedFds) return -EINVAL;
  iovec iov{const_cast<uint8_t*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  if (!fds.empty()) {
    std::memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n = RetryEintr([&] { return ::sendmsg(sock, &msg, MSG_NOSIGNAL); });
  if (n < 0) return -errno;
  if (static_cast<size_t>(n) != data.size()) return -EMSGSIZE;
  return 0;
}

int RecvWithFds(int sock, size_t max_bytes, ReceivedDatagram* out) {
  // The record's length first (MSG_TRUNC: the whole length, though one byte
  // is asked for): a buffer of that size, not of max_bytes, so that a
  // long-lived receiver does not keep (and touch) the largest size allowed.
  // (recvmsg: the services' seccomp lists allow it, not recvfrom.)
  char probe;
  iovec piov{&probe, 1};
  msghdr peek{};
  peek.msg_iov = &piov;
  peek.msg_iovlen = 1;
  const ssize_t want = RetryEintr([&] { return ::recvmsg(sock, &peek, MSG_PEEK | MSG_TRUNC); });
  if (want < 0) return -errno;
  // (A longer one is still received, into max_bytes + 1, and refused below.)
  out->data = decltype(out->data)(std::min(static_cast<size_t>(want), max_bytes + 1));
  out->fds.clear();
  iovec iov{out->data.data(), out->data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = RetryEintr([&] { return ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); });
  if (n < 0) return -errno;
  // Take ownership of every descriptor first so none leaks on any error path.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    if (c->cmsg_len < CMSG_LEN(0)) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* p = CMSG_DATA(c);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, p + i * sizeof(int), sizeof(int));
      out->fds.emplace_back(fd);
    }
  }
  if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || static_cast<size_t>(n) > max_bytes) {
    out->fds.clear();
    return -EMSGSIZE;
  }
  if (n == 0 && out->fds.empty()) return -ECONNRESET;
  out->data.resize(static_cast<size_t>(n));
  return 0;
}

}  // namespace bulkhead
