// Small helpers for the /proc and /proc/sys files the hardening steps read
// and write (uid_map, setgroups, cap_last_cap, status). Every failure names
// the call and the path.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bulkhead::harden {

// Reads a whole small file (at most `limit` bytes). Throws SysError.
std::string ReadSmallFile(const std::string& path, size_t limit = 64 * 1024);

// Writes `data` to `path` (which must exist) with exactly one write(2), as the
// kernel requires for uid_map/gid_map/setgroups. Throws SysError; a short
// write is reported as EIO.
void WriteProcFile(const std::string& path, std::string_view data);

// Value of a "Key:\tvalue" line of /proc/<pid>/status-style text, trimmed;
// nullopt if the key is absent.
std::optional<std::string> StatusField(std::string_view status, std::string_view key);

// Number of threads of the calling process from /proc/self/status, or nullopt
// when /proc is not readable (e.g. after EnterEmptyMountRoot).
std::optional<int> CountThreads();

}  // namespace bulkhead::harden
