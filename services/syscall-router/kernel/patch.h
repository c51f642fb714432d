// System call site patching, for platforms with a fast entry
// (Platform::fast_entry(), the trap platform).
//
// A trapped system call costs a host signal delivery and an rt_sigreturn
// (about 1.8 µs on a small VM) on top of the hand-off to the router. Most
// calls in real programs come from a few sites of the form
//
//     b8 NN NN NN NN     mov $nr, %eax          (436 of glibc 2.36's ~500 sites)
//     0f 05              syscall
//
// or, in glibc's syscall() function,
//
//     4c 8b 4c 24 08     mov 0x8(%rsp), %r9
//     0f 05              syscall
//
// After such a site trapped once, the router rewrites its seven bytes into
//
//     ff 24 25 TT TT 0f 0b     jmp *TABLE(index)      (an abs32 operand)
//
// where TABLE lies at 0x0b0f0000, so that the operand's high bytes are
// 0f 0b: a thread that was preempted between the mov and the syscall (rip =
// site + 5) resumes on `ud2`; the SIGILL it raises is recognised and served
// as the system call it was about to make. The table entry (8 bytes, one per
// site) points at the site's 64-byte thunk:
//
//   fast half (+0):  <the first instruction>; movabs $site+7, %rcx; jmp *fast_entry
//   slow half (+32): <the first instruction>; syscall; jmp *site+7
//
// The fast half enters the platform without a signal (eax, rcx as the
// syscall instruction would leave them); the slow half is the original code,
// moved: it traps as before. Pointing every table entry at its slow half (an
// 8-byte aligned store each) turns patching off for a process at once, as
// when it sets its own gs_base (the fast entry needs %gs).
//
// Which sites: only in private, non-writable mappings (program and library
// text, never JIT memory or shared mappings), only when both instructions lie
// in one page, never rt_sigreturn (it needs a signal frame), and only while
// no other thread of the process runs application code (no thread can be
// executing the bytes being rewritten). The page becomes private to the
// address space first (a copy of a shared file page): reads of the file see
// its own bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>

namespace bulkhead::router {

inline constexpr uint64_t kPatchTable = 0x0b0f0000;
inline constexpr uint32_t kPatchSites = 8192;
inline constexpr uint64_t kPatchThunks = kPatchTable + uint64_t{kPatchSites} * 8;
inline constexpr uint64_t kPatchThunkSize = 64;
inline constexpr uint64_t kPatchAreaSize = uint64_t{kPatchSites} * 8 + uint64_t{kPatchSites} * kPatchThunkSize;
inline constexpr size_t kSiteLen = 7;

// The 5-byte instruction of a patchable site (`bytes` ends with the
// syscall), or nullopt if it is not one a thunk can run in its place.
using SitePrefix = std::array<uint8_t, kSiteLen - 2>;
std::optional<SitePrefix> PatchableSite(std::span<const uint8_t, kSiteLen> bytes);
// The number a `mov $nr, %eax` prefix loads, or nullopt for another prefix.
std::optional<uint32_t> PrefixNumber(const SitePrefix& prefix);

// The seven bytes that replace site `index`: jmp *(kPatchTable + 8 * index).
std::array<uint8_t, kSiteLen> SiteJump(uint32_t index);

// A thunk's 64 bytes (both halves) for a site with `prefix` whose next
// instruction is at `ret`.
std::array<uint8_t, kPatchThunkSize> Thunk(const SitePrefix& prefix, uint64_t ret, uint64_t fast_entry);

inline uint64_t ThunkAddress(uint32_t index) { return kPatchThunks + uint64_t{index} * kPatchThunkSize; }
inline uint64_t TableEntry(uint32_t index) { return kPatchTable + uint64_t{index} * 8; }
inline bool InPatchArea(uint64_t addr) { return addr >= kPatchTable && addr < kPatchTable + kPatchAreaSize; }

// What one address space has patched (copied by fork, fresh after exec).
struct PatchState {
  bool area = false;      // the table and thunks are mapped
  bool disabled = false;  // no more patching; entries point at the slow halves
  uint32_t used = 0;
  std::unordered_map<uint64_t, uint32_t> sites;  // site address -> index
};

}  // namespace bulkhead::router
