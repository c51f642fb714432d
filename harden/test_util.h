// Test helpers: the hardening steps are irreversible, so every test runs them
// in a forked child and only inspects the result from the (unhardened) test
// process. Inside a child, gtest assertions are not used: CHILD_CHECK writes
// the failed condition to stderr with write(2) (allowed under every policy)
// and the child's exit code carries the verdict.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "base/mapping.h"

namespace bulkhead::harden::testing {

// Reports a failed check from inside a child: writes "file:line: cond
// (errno NAME)" to stderr without allocating; returns 1 (the child's exit code).
int ChildFailure(const char* file, int line, const char* cond);

#define CHILD_CHECK(cond)                                                       \
  do {                                                                          \
    if (!(cond)) return ::bulkhead::harden::testing::ChildFailure(__FILE__, __LINE__, #cond); \
  } while (0)

// Passed to the child body: Ready() tells the parent the child is in the
// state to inspect, then blocks until the parent has looked.
class ChildSync {
 public:
  ChildSync(int to_parent, int from_parent) : to_parent_(to_parent), from_parent_(from_parent) {}
  // Returns false if the pipe broke (the parent is gone).
  bool ReadyAndWait();

 private:
  int to_parent_;
  int from_parent_;
};

// Forks; the child runs `child` and _exit()s with its result (an escaping
// exception is printed and gives exit code 98). If `parent` is given, it runs
// in the test process while the child waits in ReadyAndWait(), with the
// child's pid. Returns the child's wait status.
int RunInChild(const std::function<int(ChildSync&)>& child,
               const std::function<void(pid_t)>& parent = {});

// "exited 0", "killed by SIGSYS", ...
std::string DescribeWaitStatus(int status);

// A std::atomic<int32_t> in a MAP_SHARED|MAP_ANONYMOUS page, visible to the
// test process after a forked child writes it (the supervisor's view of a
// service's fatal-syscall slot).
class SharedSlot {
 public:
  SharedSlot();
  std::atomic<int32_t>* get() const { return slot_; }
  int32_t load() const { return slot_->load(std::memory_order_acquire); }

 private:
  Mapping page_;
  std::atomic<int32_t>* slot_;
};

}  // namespace bulkhead::harden::testing
