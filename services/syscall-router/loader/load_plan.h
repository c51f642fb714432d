// From parsed ELF images to the list of mappings the router injects into the
// stub, plus what the initial stack and registers need (entry, AT_PHDR,
// AT_BASE, brk). Pure arithmetic, no I/O.
//
// Addresses follow x86-64 Linux 6.x (fs/binfmt_elf.c, arch/x86/mm/mmap.c):
// with the same randomness (or none, as under `setarch -R`) the plan puts
// every segment where Linux puts it; load_plan_test and native_test check
// that against the host kernel.
#pragma once

#include <cstdint>
#include <vector>

#include "services/syscall-router/loader/elf.h"
#include "services/syscall-router/loader/result.h"

namespace bulkhead::loader {

// ---------------------------------------------------------------- layout

// ELF_ET_DYN_BASE: where a PIE goes (before randomization): 2/3 of the
// 47-bit window, 0x555555554aaa.
inline constexpr uint64_t kElfEtDynBase = kTaskSize / 3 * 2;
// STACK_TOP: the stack's top before randomization.
inline constexpr uint64_t kStackTop = kTaskSize;
// vm.mmap_min_addr's default: nothing is mapped below it (EPERM).
inline constexpr uint64_t kDefaultMmapMinAddr = 65536;
inline constexpr uint64_t kStackGuardGap = 256 * kPageSize;   // stack_guard_gap
inline constexpr uint64_t kStackRndMask = 0x3fffff;           // STACK_RND_MASK, in pages
inline constexpr unsigned kDefaultMmapRndBits = 28;           // vm.mmap_rnd_bits
inline constexpr uint64_t kBrkRandomRange = uint64_t{1} << 30;   // arch_randomize_brk(), 64-bit: 1 GiB (6.9+)

// The random inputs of one exec. Each field is a raw random 64-bit value
// (the router fills them from getrandom()); the loader masks them exactly as
// Linux masks get_random_long(). enabled=false is ADDR_NO_RANDOMIZE (or
// randomize_va_space=0): then the values are ignored and tests are
// deterministic.
struct Aslr {
  bool enabled = false;
  unsigned mmap_rnd_bits = kDefaultMmapRndBits;
  uint64_t mmap = 0;         // arch_mmap_rnd() for mmap_base
  uint64_t pie = 0;          // arch_mmap_rnd() for a PIE's base
  uint64_t stack_top = 0;    // randomize_stack_top()
  uint64_t stack_align = 0;  // arch_align_stack() in setup_arg_pages()
  uint64_t brk = 0;          // arch_randomize_brk()
  uint64_t sp_align = 0;     // arch_align_stack() in create_elf_tables() (StackInput::sp_rnd)

  // All fields from one seed (splitmix64); enabled=true.
  static Aslr FromSeed(uint64_t seed);
};

// The address-space parameters of a fresh exec.
struct Layout {
  uint64_t stack_top = kStackTop;    // end of the stack VMA, page-aligned
  uint64_t mmap_base = 0;            // top-down mmap allocations go below this
  uint64_t et_dyn_base = kElfEtDynBase;  // a PIE's base before alignment
};

// arch_pick_mmap_layout() + randomize_stack_top() + setup_arg_pages()'s
// alignment, for an RLIMIT_STACK soft limit (RLIM_INFINITY allowed; x86-64
// keeps the top-down layout with the largest gap).
Layout DefaultLayout(uint64_t stack_rlimit, const Aslr& aslr);

// ---------------------------------------------------------------- plan

struct LoadParams {
  uint64_t exe_bias = 0;      // ET_DYN executable: load bias (page-aligned); ET_EXEC: must be 0
  uint64_t interp_bias = 0;   // the same for the interpreter
  uint64_t mmap_min_addr = kDefaultMmapMinAddr;
  bool randomize_brk = false;  // PF_RANDOMIZE && randomize_va_space == 2
  uint64_t brk_rnd = 0;        // raw random value for arch_randomize_brk()
};

// Linux's choice of biases for `layout`: a PIE (ET_DYN with PT_INTERP) at
// et_dyn_base aligned down to its largest p_align; an ET_DYN without
// PT_INTERP (static PIE, ld.so run directly) and an ET_DYN interpreter
// top-down below mmap_base, avoiding the executable. ENOMEM when there is no
// room.
Result<LoadParams> DefaultLoadParams(const ElfImage& exe, const ElfImage* interp, const Layout& layout,
                                     const Aslr& aslr);

enum class MapSource : uint8_t { kExecutable, kInterpreter, kAnonymous };

// One mapping to inject, as mmap(addr, len, prot, MAP_PRIVATE|MAP_FIXED):
// [addr, addr + file_bytes) holds the file's bytes [file_offset,
// file_offset + file_bytes), and [addr + file_bytes, addr + len) is zero.
// That zero tail is Linux's padzero() of the last file page of a segment
// with a bss, and all of an anonymous (bss) mapping.
struct Mapping {
  uint64_t addr = 0;         // page-aligned
  uint64_t len = 0;          // page multiple, > 0
  int prot = 0;              // PROT_READ | PROT_WRITE | PROT_EXEC
  MapSource source = MapSource::kAnonymous;
  uint64_t file_offset = 0;  // page-aligned; 0 for kAnonymous
  uint64_t file_bytes = 0;   // <= len; 0 for kAnonymous
  uint16_t segment = 0;      // index of the PT_LOAD (in ElfImage::loads) it comes from

  uint64_t end() const { return addr + len; }
};

struct LoadPlan {
  // Apply in order; each replaces whatever lies in its range (MAP_FIXED):
  // segments that share a page are resolved as Linux resolves them.
  std::vector<Mapping> mappings;

  uint64_t entry = 0;      // first instruction: the interpreter's entry when there is one
  uint64_t exe_entry = 0;  // AT_ENTRY: the executable's entry
  uint64_t phdr = 0;       // AT_PHDR
  uint64_t phent = sizeof(Elf64_Phdr);  // AT_PHENT
  uint64_t phnum = 0;      // AT_PHNUM
  uint64_t base = 0;       // AT_BASE: the interpreter's bias, 0 without one
  uint64_t exe_bias = 0;
  uint64_t interp_bias = 0;

  uint64_t brk = 0;  // mm->start_brk == mm->brk, page-aligned
  // mm->start_code ... end_data (/proc/PID/stat), computed as Linux does.
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  bool executable_stack = false;  // PT_GNU_STACK with PF_X
};

// `interp` is the parsed PT_INTERP file (role kInterpreter) when
// exe.has_interp, else null. Errors: EINVAL (bad entry point, bias not
// allowed), ENOMEM (a segment would land outside the user address space, or
// the two images overlap), EPERM (below mmap_min_addr).
Result<LoadPlan> PlanLoad(const ElfImage& exe, const ElfImage* interp, const LoadParams& params);

// PT_LOAD p_flags (PF_R/PF_W/PF_X) to PROT_* (make_prot(); x86-64 has no
// READ_IMPLIES_EXEC for 64-bit programs).
int ProtFromFlags(uint32_t p_flags);

}  // namespace bulkhead::loader
