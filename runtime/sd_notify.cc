#include "runtime/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "base/fd.h"

namespace bulkhead::runtime {

Notifier Notifier::FromEnvironment() {
  Notifier n;
  const char* s = std::getenv("NOTIFY_SOCKET");
  if (s != nullptr && (s[0] == '/' || s[0] == '@') && std::strlen(s) < sizeof(sockaddr_un::sun_path)) n.socket_ = s;
  const char* w = std::getenv("WATCHDOG_USEC");
  const char* wp = std::getenv("WATCHDOG_PID");
  if (w != nullptr && (wp == nullptr || std::atoll(wp) == ::getpid())) {
    const long long usec = std::atoll(w);
    if (usec > 0) n.watchdog_ms_ = std::max<long long>(usec / 1000, 1);
  }
  return n;
}

bool Notifier::Send(const std::string& state) const {
  if (socket_.empty()) return false;
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_.data(), socket_.size());
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size());
  return ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len) ==
         static_cast<ssize_t>(state.size());
}

}  // namespace bulkhead::runtime
