// Errors of the exec loader: a Linux errno (what execve(2) returns to the
// application) plus a message for the router's log. The loader never throws
// on bad input; every function that judges input returns Result<T>.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace bulkhead::loader {

struct LoadError {
  int err = 0;          // positive errno: ENOEXEC, EINVAL, ENOMEM, E2BIG, ELIBBAD, EIO, ELOOP, ...
  std::string message;  // what was wrong, for the log ("PT_LOAD 2 overlaps PT_LOAD 1")
  // Linux finds this failure after begin_new_exec(), the point of no return:
  // the old image is gone, execve() does not return, the task is killed by
  // SIGSEGV (bprm_execve()). To behave the same the router kills the task;
  // `err` is then only for the log.
  bool fatal = false;
};

// "ENOEXEC: PT_LOAD 2 overlaps PT_LOAD 1".
std::string ToString(const LoadError& e);

inline LoadError Error(int err, std::string message) { return LoadError{err, std::move(message), false}; }
inline LoadError FatalError(int err, std::string message) { return LoadError{err, std::move(message), true}; }

// A value or a LoadError. Small on purpose (std::expected is C++23).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(LoadError e) : v_(std::in_place_index<1>, std::move(e)) {}   // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const LoadError& error() const { return std::get<1>(v_); }
  int err() const { return ok() ? 0 : error().err; }

 private:
  std::variant<T, LoadError> v_;
};

}  // namespace bulkhead::loader
