#include "harden/test_util.h"

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <memory>

#include <gtest/gtest.h>

#include "base/error.h"
#include "base/fd.h"

namespace bulkhead::harden::testing {

int ChildFailure(const char* file, int line, const char* cond) {
  int saved = errno;
  char buf[512];
  int n = std::snprintf(buf, sizeof(buf), "%s:%d: child check failed: %s (errno %d %s)\n", file,
                        line, cond, saved, strerrorname_np(saved) ? strerrorname_np(saved) : "?");
  if (n > 0) {
    ssize_t ignored = ::write(STDERR_FILENO, buf, std::min<size_t>(n, sizeof(buf) - 1));
    (void)ignored;
  }
  return 1;
}

bool ChildSync::ReadyAndWait() {
  char c = 'r';
  if (RetryEintr([&] { return ::write(to_parent_, &c, 1); }) != 1) return false;
  return RetryEintr([&] { return ::read(from_parent_, &c, 1); }) == 1;
}

int RunInChild(const std::function<int(ChildSync&)>& child,
               const std::function<void(pid_t)>& parent) {
  // One stream socket pair: the child uses read/write (allowed by the base
  // policy), the parent send(MSG_NOSIGNAL) so that a child that already died
  // (e.g. killed by the parent's check) gives EPIPE, not a SIGPIPE that would
  // kill the test binary.
  int sv[2];
  CheckSys(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), "socketpair");
  UniqueFd parent_end(sv[0]), child_end(sv[1]);

  pid_t pid = CheckSys(::fork(), "fork");
  if (pid == 0) {
    int rc = 97;
    try {
      parent_end.Reset();
      ChildSync sync(child_end.get(), child_end.get());
      rc = child(sync);
    } catch (const std::exception& e) {
      char buf[512];
      int n = std::snprintf(buf, sizeof(buf), "child threw: %s\n", e.what());
      if (n > 0) {
        ssize_t ignored = ::write(STDERR_FILENO, buf, std::min<size_t>(n, sizeof(buf) - 1));
        (void)ignored;
      }
      rc = 98;
    }
    // _exit: no atexit handlers, no gtest teardown, no sanitizer end-of-process
    // work in a child that may be under a seccomp filter.
    ::_exit(rc);
  }
  child_end.Reset();
  char c;
  ssize_t n = RetryEintr([&] { return ::recv(parent_end.get(), &c, 1, 0); });
  if (n == 1) {
    if (parent) parent(pid);
    c = 'g';
    ssize_t ignored = RetryEintr([&] { return ::send(parent_end.get(), &c, 1, MSG_NOSIGNAL); });
    (void)ignored;  // The child may already be gone; waitpid tells.
  } else if (parent) {
    ADD_FAILURE() << "child ended before it was ready";
  }
  parent_end.Reset();
  int status = 0;
  CheckSys(RetryEintr([&] { return ::waitpid(pid, &status, 0); }), "waitpid");
  return status;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("killed by SIG") + (name ? name : "?") +
           (WCOREDUMP(status) ? " (core dumped)" : "");
  }
  return "status " + std::to_string(status);
}

SharedSlot::SharedSlot() {
  const size_t len = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw SysError(errno, "mmap", "shared slot page");
  page_ = Mapping(p, len);
  slot_ = std::construct_at(reinterpret_cast<std::atomic<int32_t>*>(p), 0);
}

}  // namespace bulkhead::harden::testing
