// Logging set-up shared by the CLI, the supervisor and every service.
// Human-readable lines by default; one JSON object per line with
// --log-format json (what containerd's shim and journald ingest).
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace bulkhead {

enum class LogFormat { kText, kJson };

struct LogOptions {
  std::string name = "bulkhead";    // logger name: the service ("fs-gofer", ...)
  LogFormat format = LogFormat::kText;
  spdlog::level::level_enum level = spdlog::level::info;
  std::string file;                 // empty: stderr
  int fd = -1;                      // >= 0: write to this descriptor (already open)
};

// Parses "text" / "json". Returns false for anything else.
bool ParseLogFormat(std::string_view s, LogFormat* out);
// Parses "trace|debug|info|warn|error|critical|off".
bool ParseLogLevel(std::string_view s, spdlog::level::level_enum* out);

// Replaces the default logger. Throws on an unopenable file.
void InitLogging(const LogOptions& opts);

// Escapes `s` for inclusion in a JSON string (quotes not added).
std::string JsonEscape(std::string_view s);

}  // namespace bulkhead
