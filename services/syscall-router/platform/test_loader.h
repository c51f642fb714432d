// A tiny ELF loader for the platform tests (testonly). It puts a static
// x86-64 executable (ET_EXEC, or static-pie ET_DYN at a fixed bias) into an
// AddressSpace the way execve would, through the platform API only:
//   - each PT_LOAD range: injected mmap(MAP_FIXED | MAP_PRIVATE |
//     MAP_ANONYMOUS) read-write, file bytes copied with WriteMemory, then
//     mprotect to the segment's permissions (pages shared by two segments get
//     the union);
//   - a stack: argv and envp strings, AT_RANDOM bytes, "x86_64", then argc,
//     argv[], envp[] and auxv (AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ,
//     AT_BASE, AT_FLAGS, AT_ENTRY, AT_UID/EUID/GID/EGID, AT_SECURE, AT_RANDOM,
//     AT_HWCAP, AT_HWCAP2, AT_CLKTCK, AT_PLATFORM, AT_EXECFN, AT_NULL).
// No PT_INTERP (dynamic executables are refused), no vDSO (no
// AT_SYSINFO_EHDR: glibc then makes real clock system calls), anonymous
// memory instead of memory-file pages. The router's real loader replaces it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "services/syscall-router/platform/platform.h"

namespace bulkhead::router::platform::testing {

struct LoadOptions {
  std::vector<std::string> argv;  // argv[0] is also AT_EXECFN
  std::vector<std::string> envp;
  uint64_t stack_top = 0x7fe000000000;  // below the ptrace platform's stub region
  uint64_t stack_size = 8 << 20;
  uint64_t pie_bias = 0x555555554000;  // ET_DYN only
};

struct LoadedImage {
  uint64_t entry = 0;
  uint64_t stack_pointer = 0;  // points at argc; 16-byte aligned
  uint64_t brk_start = 0;      // page after the highest segment
  uint64_t phdr = 0;
  uint64_t phnum = 0;
  uint64_t random = 0;                 // address of the 16 AT_RANDOM bytes
  std::vector<AddressRange> mappings;  // segments (page ranges) and the stack
};

// The whole file. Throws SysError.
std::vector<uint8_t> ReadFileBytes(const std::string& path);

// Loads `image` into `as`. Throws std::runtime_error for a malformed or
// unsupported ELF, SysError when the platform fails.
LoadedImage LoadStaticElf(AddressSpace& as, const std::vector<uint8_t>& image,
                          const LoadOptions& options);

}  // namespace bulkhead::router::platform::testing
