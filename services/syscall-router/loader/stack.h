// The initial stack of a new program image, byte for byte as Linux's
// create_elf_tables() (fs/binfmt_elf.c) and the string copying of execve
// (fs/exec.c) lay it out on x86-64, and the E2BIG rules that bound it.
//
//   top ───────────────────────────────────────────────  (stack_top, page-aligned)
//     8 zero bytes
//     AT_EXECFN string
//     envp strings (envp[0] lowest)      } contiguous, NUL-terminated,
//     argv strings (argv[0] lowest)      } mm->arg_start .. env_end
//     (arch_align_stack(): random 0..8191 bytes, then 16-byte alignment)
//     AT_PLATFORM string "x86_64"
//     16 AT_RANDOM bytes
//     (0..15 bytes of padding)
//     auxv pairs ... AT_NULL
//     NULL, envp pointers
//     NULL, argv pointers
//   rsp → argc                                              rsp % 16 == 0
//
// Pure: the router writes `bytes` at [rsp, top) of the new stack VMA.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "services/syscall-router/loader/elf.h"
#include "services/syscall-router/loader/load_plan.h"
#include "services/syscall-router/loader/result.h"

namespace bulkhead::loader {

inline constexpr uint64_t kArgMax = 32 * kPageSize;        // ARG_MAX: the floor of the string budget
inline constexpr uint64_t kMaxArgStrlen = 32 * kPageSize;  // MAX_ARG_STRLEN, counting the NUL
inline constexpr uint64_t kMaxArgStrings = 0x7FFFFFFF;     // MAX_ARG_STRINGS
inline constexpr uint64_t kStkLim = 8 << 20;               // _STK_LIM
inline constexpr uint64_t kStackExpand = 131072;           // setup_arg_pages(): room below the strings

// The auxv entries Linux/x86-64 emits (values from <linux/auxvec.h>).
enum AuxType : uint64_t {
  kAtNull = 0, kAtPhdr = 3, kAtPhent = 4, kAtPhnum = 5, kAtPagesz = 6, kAtBase = 7, kAtFlags = 8,
  kAtEntry = 9, kAtUid = 11, kAtEuid = 12, kAtGid = 13, kAtEgid = 14, kAtPlatform = 15, kAtHwcap = 16,
  kAtClktck = 17, kAtSecure = 23, kAtRandom = 25, kAtHwcap2 = 26, kAtRseqFeatureSize = 27,
  kAtRseqAlign = 28, kAtExecfn = 31, kAtSysinfoEhdr = 33, kAtMinsigstksz = 51,
};

// bprm_stack_limits(): how many bytes the exec filename, argv and envp
// strings (NULs included) may take: min(rlimit / 4, 3/4 of _STK_LIM), at
// least ARG_MAX, less the argv and envp pointers (argc counted as at least
// 1, for the empty argv[0] Linux adds). Computed once per execve, with the
// caller's argc and envc; #! rewrites are charged against the same budget.
struct ArgBudget {
  uint64_t string_bytes = 0;
  uint64_t stack_rlimit = 0;
};
// E2BIG when the pointers alone do not fit.
Result<ArgBudget> ArgStringBudget(uint64_t stack_rlimit, uint64_t argc, uint64_t envc);

// copy_strings(), in Linux's order (filename, envp, argv; each from the
// last): every string at most MAX_ARG_STRLEN with its NUL (E2BIG), all
// together within the budget (E2BIG), and the pages they fill within
// RLIMIT_STACK (get_arg_page(): E2BIG). A string with an embedded NUL is
// EINVAL (the router reads C strings, so that is a caller bug). Returns the
// bytes used.
Result<uint64_t> CheckArgStrings(const std::vector<std::string>& argv, const std::vector<std::string>& envp,
                                 const std::string& execfn, const ArgBudget& budget);

// Values of the auxiliary vector that do not come from the load plan.
struct AuxvValues {
  uint64_t hwcap = 0;              // AT_HWCAP: CPUID.1:EDX (the router passes the host's)
  uint64_t hwcap2 = 0;             // AT_HWCAP2: bit 1 = FSGSBASE
  uint64_t minsigstksz = 2048;     // AT_MINSIGSTKSZ: get_sigframe_size(); pass the host's
  uint64_t uid = 0, euid = 0, gid = 0, egid = 0;
  uint64_t secure = 0;             // AT_SECURE
  uint64_t flags = 0;              // AT_FLAGS
  uint64_t clktck = 100;           // AT_CLKTCK: USER_HZ
  std::optional<uint64_t> vdso;    // AT_SYSINFO_EHDR, only when a vDSO is mapped
  // AT_RSEQ_FEATURE_SIZE / AT_RSEQ_ALIGN (Linux 6.3+): only when the router
  // serves rseq(2); glibc then registers one per thread.
  std::optional<std::pair<uint64_t, uint64_t>> rseq;
  std::string platform = "x86_64";  // AT_PLATFORM; empty leaves it out
};

struct StackInput {
  uint64_t stack_top = kStackTop;  // end of the stack VMA, page-aligned
  uint64_t stack_rlimit = 8 << 20;  // RLIMIT_STACK soft limit (RLIM_INFINITY allowed)
  std::vector<std::string> argv;    // empty becomes {""}, as Linux does since 5.18
  std::vector<std::string> envp;
  std::string execfn;               // AT_EXECFN: the path given to execve
  std::array<uint8_t, 16> random{};  // AT_RANDOM bytes
  uint64_t sp_rnd = 0;              // arch_align_stack(): subtracts sp_rnd % 8192 (0 without ASLR)
  // The execve's budget (ExecPlanner sets it from the caller's argc/envc,
  // before #! rewrites); by default computed from argv and envp here.
  std::optional<ArgBudget> budget;
  // From the load plan (SetFromPlan).
  uint64_t phdr = 0, phent = sizeof(Elf64_Phdr), phnum = 0, base = 0, entry = 0;
  AuxvValues aux;

  void SetFromPlan(const LoadPlan& plan);
};

struct StackImage {
  uint64_t top = 0;
  uint64_t rsp = 0;            // initial %rsp: points at argc, 16-byte aligned
  std::vector<uint8_t> bytes;  // the contents of [rsp, top)
  // The stack VMA Linux leaves: [vma_start, top), 128 KiB below the strings
  // (within RLIMIT_STACK) and reaching down to rsp's page.
  uint64_t vma_start = 0;
  // mm fields for /proc/PID/cmdline and environ.
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  uint64_t execfn_addr = 0, random_addr = 0, platform_addr = 0;
  // mm->saved_auxv: the pairs as written, AT_NULL last (/proc/PID/auxv).
  std::vector<std::pair<uint64_t, uint64_t>> auxv;
};

// E2BIG as execve (string budget, MAX_ARG_STRLEN, strings beyond
// RLIMIT_STACK), EINVAL for a bad stack_top or a NUL inside a string,
// EFAULT when the tables would push the stack past RLIMIT_STACK (Linux fails
// that exec after the point of no return: the caller kills the task).
Result<StackImage> BuildStack(const StackInput& in);

// Reads a stack image back (what a program sees at entry): bounds-checked,
// for tests, fuzzing and debugging. `bytes` lie at [top - bytes.size(), top)
// and begin at rsp.
struct DecodedStack {
  uint64_t rsp = 0;
  std::vector<std::string> argv, envp;
  std::vector<uint64_t> argv_ptrs, envp_ptrs;
  std::vector<std::pair<uint64_t, uint64_t>> auxv;  // AT_NULL included
  std::optional<uint64_t> Aux(uint64_t type) const;
};
Result<DecodedStack> DecodeStack(std::span<const uint8_t> bytes, uint64_t top);

// A NUL-terminated string at address `addr` of the image, if it lies inside.
std::optional<std::string> StringAt(std::span<const uint8_t> bytes, uint64_t top, uint64_t addr);

}  // namespace bulkhead::loader
