// systemd's notify protocol without libsystemd: datagrams of KEY=VALUE
// lines to $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).
// `bulkhead supervise` under a Type=notify unit sends READY=1 once the
// sandbox's services answer, WATCHDOG=1 at half of $WATCHDOG_USEC from its
// event loop (so a stuck supervisor is restarted by systemd), and
// STOPPING=1 on its way out.
#pragma once

#include <cstdint>
#include <string>

namespace bulkhead::runtime {

class Notifier {
 public:
  // From the environment; disabled when NOTIFY_SOCKET is unset or invalid.
  static Notifier FromEnvironment();

  bool enabled() const { return !socket_.empty(); }
  // Watchdog interval in ms (0: none). Honours WATCHDOG_PID when set.
  int64_t watchdog_ms() const { return watchdog_ms_; }
  // Sends `state` ("READY=1\nSTATUS=..."); false when it could not.
  bool Send(const std::string& state) const;

 private:
  std::string socket_;
  int64_t watchdog_ms_ = 0;
};

}  // namespace bulkhead::runtime
