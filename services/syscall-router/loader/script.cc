#include "services/syscall-router/loader/script.h"

#include <array>
#include <cerrno>
#include <cstring>

namespace bulkhead::loader {

namespace {

constexpr bool SpaceTab(char c) { return c == ' ' || c == '\t'; }

// Both scan [first, last] inclusive, as binfmt_script.c; -1 when none.
int NextNonSpaceTab(const char* buf, int first, int last) {
  for (; first <= last; ++first) {
    if (!SpaceTab(buf[first])) return first;
  }
  return -1;
}

int NextTerminator(const char* buf, int first, int last) {
  for (; first <= last; ++first) {
    if (SpaceTab(buf[first]) || buf[first] == '\0') return first;
  }
  return -1;
}

}  // namespace

bool IsScript(std::span<const uint8_t> head) { return head.size() >= 2 && head[0] == '#' && head[1] == '!'; }

Result<ScriptLine> ParseScriptLine(std::span<const uint8_t> head) {
  std::array<char, kBinprmBufSize> buf{};  // zero padding, as prepare_binprm()
  if (!head.empty()) std::memcpy(buf.data(), head.data(), std::min(head.size(), buf.size()));
  if (buf[0] != '#' || buf[1] != '!') return Error(ENOEXEC, "not a #! script");

  const int buf_end = static_cast<int>(buf.size()) - 1;
  const void* nl = std::memchr(buf.data(), '\n', buf.size());
  int i_end;
  if (nl != nullptr) {
    i_end = static_cast<int>(static_cast<const char*>(nl) - buf.data());
  } else {
    i_end = NextNonSpaceTab(buf.data(), 2, buf_end);
    if (i_end < 0) return Error(ENOEXEC, "#! line is only spaces and tabs");
    // Without a newline, a path with no space/tab/NUL after it may have
    // been cut off by the 256-byte limit: refuse rather than run a prefix.
    if (NextTerminator(buf.data(), i_end, buf_end) < 0) {
      return Error(ENOEXEC, "#! interpreter path is longer than the 256-byte #! buffer");
    }
    i_end = buf_end;
  }
  while (SpaceTab(buf[i_end - 1])) --i_end;  // stops at '!' at the latest

  const int i_name = NextNonSpaceTab(buf.data(), 2, i_end);
  if (i_name < 0 || i_name == i_end) return Error(ENOEXEC, "#! names no interpreter");

  int i_arg = -1;
  const int i_sep = NextTerminator(buf.data(), i_name, i_end);
  if (i_sep >= 0 && buf[i_sep] != '\0') i_arg = NextNonSpaceTab(buf.data(), i_sep, i_end);

  buf[i_end] = '\0';
  ScriptLine line;
  if (i_arg >= 0) {
    buf[i_sep] = '\0';
    line.arg.emplace(buf.data() + i_arg);  // C strings: up to the first NUL
  }
  line.interp.assign(buf.data() + i_name);
  return line;
}

std::vector<std::string> ScriptArgv(const ScriptLine& line, std::string_view script_path,
                                    const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  out.reserve(argv.size() + 2);
  out.push_back(line.interp);
  if (line.arg) out.push_back(*line.arg);
  out.emplace_back(script_path);
  // remove_arg_zero(); an empty argv stands for {""} (Linux adds it).
  for (size_t i = 1; i < argv.size(); ++i) out.push_back(argv[i]);
  return out;
}

}  // namespace bulkhead::loader
