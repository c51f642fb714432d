#include "harden/procfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "base/error.h"
#include "base/fd.h"

namespace bulkhead::harden {

std::string ReadSmallFile(const std::string& path, size_t limit) {
  UniqueFd fd(RetryEintr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY); }));
  if (!fd) throw SysError(errno, "open", path);
  std::string out;
  char buf[4096];
  while (out.size() < limit) {
    ssize_t n = RetryEintr([&] { return ::read(fd.get(), buf, sizeof(buf)); });
    CheckSys(n, "read", path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  if (out.size() > limit) out.resize(limit);
  return out;
}

void WriteProcFile(const std::string& path, std::string_view data) {
  UniqueFd fd(RetryEintr([&] { return ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY); }));
  if (!fd) throw SysError(errno, "open", path);
  // uid_map and gid_map accept exactly one write per file: never split or retry
  // a partial write, report it instead.
  ssize_t n = RetryEintr([&] { return ::write(fd.get(), data.data(), data.size()); });
  CheckSys(n, "write", path);
  if (static_cast<size_t>(n) != data.size()) throw SysError(EIO, "write (short)", path);
}

std::optional<std::string> StatusField(std::string_view status, std::string_view key) {
  size_t pos = 0;
  while (pos < status.size()) {
    size_t end = status.find('\n', pos);
    if (end == std::string_view::npos) end = status.size();
    std::string_view line = status.substr(pos, end - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      std::string_view v = line.substr(key.size() + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return std::string(v);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::optional<int> CountThreads() {
  std::string status;
  try {
    status = ReadSmallFile("/proc/self/status");
  } catch (const SysError&) {
    return std::nullopt;
  }
  auto v = StatusField(status, "Threads");
  if (!v) return std::nullopt;
  int n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size()) return std::nullopt;
  return n;
}

}  // namespace bulkhead::harden
