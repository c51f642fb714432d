#include "base/error.h"

#include <cstring>
#include <string>

namespace bulkhead {

std::string_view ErrnoName(int err) {
  // strerrorname_np is glibc >= 2.32; it returns nullptr for unknown values.
  const char* name = strerrorname_np(err);
  return name ? std::string_view(name) : std::string_view("E?");
}

std::string ErrnoMessage(int err, std::string_view call, std::string_view context) {
  std::string msg(call);
  if (!context.empty()) {
    msg += "(";
    msg += context;
    msg += ")";
  }
  msg += ": ";
  msg += strerror(err);
  msg += " (";
  msg += ErrnoName(err);
  msg += ")";
  return msg;
}

SysError::SysError(int err, std::string_view what_call, std::string_view context)
    : std::runtime_error(ErrnoMessage(err, what_call, context)), err_(err) {}

}  // namespace bulkhead
