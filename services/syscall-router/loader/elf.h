// ELF parsing for execve: validates an x86-64 executable (or its PT_INTERP
// interpreter) as hostile input and extracts what the load plan needs. Pure:
// no I/O. The caller hands in the bytes it has read; when more are needed
// (program headers or the PT_INTERP string beyond what was given) the parser
// says which range, and the caller reads it and asks again. That suits the
// router, which reads files through the fs-gofer without blocking a thread;
// ParseElfWith() wraps the loop for callers that can read synchronously.
//
// What is checked, and the errno each failure gives, mirrors Linux's
// fs/binfmt_elf.c (load_elf_binary, load_elf_phdrs, load_elf_interp, elf_map)
// of 6.x; stricter checks Linux does not make are marked "(bulkhead)" and
// are listed in README.md.
#pragma once

#include <elf.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "services/syscall-router/loader/result.h"

namespace bulkhead::loader {

// ---------------------------------------------------------------- x86-64 Linux constants

inline constexpr uint64_t kPageSize = 4096;  // ELF_MIN_ALIGN, ELF_EXEC_PAGESIZE
// TASK_SIZE with 4-level paging: the user address space is [0, kTaskSize).
inline constexpr uint64_t kTaskSize = (uint64_t{1} << 47) - kPageSize;
inline constexpr uint64_t kPathMax = 4096;  // PATH_MAX, the PT_INTERP size limit
// load_elf_phdrs(): the program-header table is at most 64 KiB (older
// kernels also capped it at ELF_MIN_ALIGN, one page: 73 entries).
inline constexpr uint64_t kMaxPhdrTableBytes = 65536;
inline constexpr uint64_t kMaxPhnum = kMaxPhdrTableBytes / sizeof(Elf64_Phdr);  // 1170
// How many bytes to read first: one page covers the header, the program
// headers and PT_INTERP of every ordinary executable.
inline constexpr uint64_t kHeadBytes = kPageSize;

constexpr uint64_t PageStart(uint64_t a) { return a & ~(kPageSize - 1); }
constexpr uint64_t PageOffset(uint64_t a) { return a & (kPageSize - 1); }
// Rounds up; the caller guarantees no overflow (a < 2^64 - page).
constexpr uint64_t PageAlign(uint64_t a) { return (a + kPageSize - 1) & ~(kPageSize - 1); }

// ---------------------------------------------------------------- input

// The file being parsed, as far as the caller has read it: its size and
// chunks of its bytes (copied in). A parse only ever needs bytes that lie
// inside one chunk.
class FileBytes {
 public:
  explicit FileBytes(uint64_t file_size) : size_(file_size) {}
  // `bytes` are the file's bytes at [offset, offset + bytes.size()); bytes
  // beyond file_size are ignored.
  FileBytes(uint64_t file_size, std::span<const uint8_t> head) : size_(file_size) { Add(0, head); }

  void Add(uint64_t offset, std::span<const uint8_t> bytes);
  uint64_t size() const { return size_; }
  // The bytes [offset, offset + len) if one chunk holds them all.
  std::optional<std::span<const uint8_t>> Get(uint64_t offset, uint64_t len) const;

 private:
  uint64_t size_;
  std::map<uint64_t, std::vector<uint8_t>> chunks_;  // offset -> bytes
};

// The role decides the errno of a failure, as in Linux: a bad executable is
// ENOEXEC ("not mine, try another binfmt"), a bad interpreter ELIBBAD, EINVAL,
// ENOMEM or EIO depending on which check fails.
enum class ElfRole { kExecutable, kInterpreter };

// ---------------------------------------------------------------- output

enum class StackExec {
  kDefault,  // no PT_GNU_STACK: x86-64 gives a non-executable stack
  kNonExec,  // PT_GNU_STACK without PF_X
  kExec,     // PT_GNU_STACK with PF_X
};

struct ElfImage {
  ElfRole role = ElfRole::kExecutable;
  uint16_t type = 0;        // ET_EXEC or ET_DYN
  uint64_t entry = 0;       // e_entry, before the load bias
  uint64_t phoff = 0;       // e_phoff
  uint16_t phnum = 0;       // e_phnum (1..kMaxPhnum); AT_PHNUM
  uint64_t file_size = 0;
  std::vector<Elf64_Phdr> phdrs;  // the whole table, as in the file
  std::vector<Elf64_Phdr> loads;  // the PT_LOAD entries, ascending and disjoint

  // PT_INTERP (kExecutable only): the path up to its first NUL (Linux opens
  // the C string). has_interp with an empty path is possible ("\0\0"): open
  // fails with ENOENT, as in Linux.
  bool has_interp = false;
  std::string interp;

  StackExec stack_exec = StackExec::kDefault;  // PT_GNU_STACK (kExecutable only)
  std::optional<uint64_t> pt_phdr_vaddr;       // PT_PHDR's p_vaddr, if any (informational)

  // AT_PHDR before the bias, as Linux computes it: e_phoff translated through
  // the (last) PT_LOAD whose file bytes contain it; 0 when none does.
  uint64_t phdr_vaddr = 0;
  // The image's extent before the bias: [span_start, span_end), span_start
  // page-aligned (total_mapping_size()).
  uint64_t span_start = 0;
  uint64_t span_end = 0;
  // maximum_alignment(): the largest power-of-two p_align of the PT_LOADs
  // rounded up to a page; 0 when no PT_LOAD has one.
  uint64_t max_align = 0;

  uint64_t total_size() const { return span_end - span_start; }
};

// The parser needs the file's bytes [offset, offset + length) (inside the
// file) before it can decide.
struct NeedBytes {
  uint64_t offset = 0;
  uint64_t length = 0;
};

using ParseOutcome = std::variant<ElfImage, NeedBytes, LoadError>;

// True when the first bytes are ELF's magic; the caller's binfmt dispatch.
bool HasElfMagic(std::span<const uint8_t> head);

// Parses and validates. Never reads outside what `file` holds; returns
// NeedBytes when a needed range is inside the file but not held.
ParseOutcome ParseElf(const FileBytes& file, ElfRole role);

// Convenience: `head` is the file's first bytes (any length, normally
// min(file_size, kHeadBytes)).
ParseOutcome ParseElf(std::span<const uint8_t> head, uint64_t file_size, ElfRole role);

// Reads `out.size()` bytes at `offset`; returns how many were read (short
// only at end of file) or -errno.
using ReadFn = std::function<int64_t(uint64_t offset, std::span<uint8_t> out)>;

// The NeedBytes loop for callers that can read synchronously. A short or
// failed read gives EIO (or the read's errno), as kernel_read() in Linux.
Result<ElfImage> ParseElfWith(const ReadFn& read, uint64_t file_size, ElfRole role);

}  // namespace bulkhead::loader
