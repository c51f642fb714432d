// "#!" scripts, as Linux's fs/binfmt_script.c parses them: only the first
// BINPRM_BUF_SIZE (256) bytes count; the interpreter path runs to the first
// space, tab or NUL; everything after the following run of spaces and tabs,
// up to the newline and without trailing spaces and tabs, is ONE optional
// argument. The new argv is [interpreter, (argument), script path,
// argv[1], ...]. Pure: the caller reads the bytes and opens the interpreter.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "services/syscall-router/loader/result.h"

namespace bulkhead::loader {

inline constexpr size_t kBinprmBufSize = 256;  // BINPRM_BUF_SIZE
// exec_binprm(): at most this many binfmt rewrites (#! -> its interpreter)
// before ELOOP. Linux's comment says "4 levels", its loop allows depth 0..5:
// a chain of five scripts ending in an ELF runs, six give ELOOP (measured on
// 6.x; script_test checks the host kernel agrees).
inline constexpr int kMaxInterpreterRewrites = 5;

struct ScriptLine {
  std::string interp;               // may be empty ("#!\0..."): opening it gives ENOENT, as in Linux
  std::optional<std::string> arg;   // the optional argument, one string
};

// "#!" at the start.
bool IsScript(std::span<const uint8_t> head);

// `head` is the start of the file: min(file_size, 256) bytes or more (bytes
// past 256 are ignored; a shorter head reads as NUL-padded, as Linux's
// buffer). ENOEXEC when it is not a script, names no interpreter, or the
// interpreter path may be cut off by the 256-byte limit.
Result<ScriptLine> ParseScriptLine(std::span<const uint8_t> head);

// load_script()'s argv: argv[0] is dropped and [interp, (arg), script_path]
// put in front. `script_path` is the path the script was executed by (the
// execve filename, or for a nested script the previous interpreter path).
std::vector<std::string> ScriptArgv(const ScriptLine& line, std::string_view script_path,
                                    const std::vector<std::string>& argv);

}  // namespace bulkhead::loader
