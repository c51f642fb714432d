// Error reporting for system calls: every failing call carries which call,
// on what, and the errno, so a log line alone tells what went wrong.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <stdexcept>

namespace bulkhead {

// Thrown when a system call fails during set-up. Hot paths return error codes
// instead; exceptions are for start-up, configuration and unrecoverable states.
class SysError : public std::runtime_error {
 public:
  SysError(int err, std::string_view what_call, std::string_view context = {});
  int err() const { return err_; }

 private:
  int err_;
};

// Throws SysError(errno, call, context) when `rc` is negative; returns `rc`.
template <typename T>
T CheckSys(T rc, std::string_view call, std::string_view context = {}) {
  if (rc < 0) throw SysError(errno, call, context);
  return rc;
}

// Retries a call that failed with EINTR.
template <typename F>
auto RetryEintr(F&& f) -> decltype(f()) {
  decltype(f()) rc;
  do {
    rc = f();
  } while (rc < 0 && errno == EINTR);
  return rc;
}

// "open(/etc/passwd): No such file or directory (ENOENT)".
std::string ErrnoMessage(int err, std::string_view call, std::string_view context = {});

// "ENOENT" for 2; "E123" for unknown values.
std::string_view ErrnoName(int err);

}  // namespace bulkhead
