#include "ipc/wait.h"

#include <linux/futex.h>
#include <poll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "base/clock.h"

namespace bulkhead::ipc {

uint64_t NowNs() { return MonotonicNs(); }

uint64_t DeadlineIn(uint64_t timeout_ns) {
  uint64_t now = NowNs();
  return timeout_ns >= kNoDeadline - now ? kNoDeadline : now + timeout_ns;
}

int FutexWait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeout_ns) {
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000ull),
              static_cast<long>(timeout_ns % 1000000000ull)};
  long rc = ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts,
                      nullptr, 0);
  if (rc == 0) return 0;
  if (errno == EAGAIN) return 0;  // the value changed before we slept
  return -errno;
}

void FutexWake(std::atomic<uint32_t>* word, int count) {
  // A failed wake is harmless: the sleeper re-checks at the end of its slice.
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, count, nullptr, nullptr, 0);
}

bool PeerWatch::Dead() const {
  if (!pidfd_.valid()) return false;
  pollfd p{pidfd_.get(), POLLIN, 0};
  int rc = ::poll(&p, 1, 0);
  return rc > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

}  // namespace bulkhead::ipc
