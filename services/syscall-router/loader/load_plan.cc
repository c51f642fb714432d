#include "services/syscall-router/loader/load_plan.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <string>

namespace bulkhead::loader {

namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t SplitMix(uint64_t& state) {
  uint64_t x = (state += 0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// arch_mmap_rnd(): (get_random_long() & ((1 << bits) - 1)) << PAGE_SHIFT.
uint64_t MmapRnd(const Aslr& a, uint64_t raw) {
  if (!a.enabled) return 0;
  const unsigned bits = std::min(a.mmap_rnd_bits, 32u);  // x86-64's CONFIG_ARCH_MMAP_RND_BITS_MAX
  return (raw & ((uint64_t{1} << bits) - 1)) << 12;
}

// randomize_page(): a page-aligned address in [start, start + range).
uint64_t RandomizePage(uint64_t start, uint64_t range, uint64_t raw) {
  if (PageOffset(start) != 0) {
    const uint64_t up = PageAlign(start);
    range -= up - start;
    start = up;
  }
  if (start > ~uint64_t{0} - range) range = ~uint64_t{0} - start;
  range >>= 12;
  if (range == 0) return start;
  return start + ((raw % range) << 12);
}

struct Range {
  uint64_t lo, hi;  // [lo, hi), page-aligned
};

// The top-down allocator of an almost empty address space: the highest
// `size` bytes below `top` that avoid `avoid`, at or above `floor`.
std::optional<uint64_t> TopDown(uint64_t top, uint64_t size, std::optional<Range> avoid, uint64_t floor) {
  if (size > top) return std::nullopt;
  uint64_t at = top - size;
  if (avoid && at < avoid->hi && avoid->lo < at + size) {
    if (size > avoid->lo) return std::nullopt;
    at = avoid->lo - size;
  }
  if (at < std::max(floor, kPageSize)) return std::nullopt;
  return at;
}

// The image's page range once biased, if it fits in the address space.
std::optional<Range> BiasedRange(const ElfImage& img, uint64_t bias) {
  uint64_t lo, hi;
  if (__builtin_add_overflow(img.span_start, bias, &lo) || __builtin_add_overflow(img.span_end, bias, &hi) ||
      hi > kTaskSize) {
    return std::nullopt;
  }
  return Range{lo, PageAlign(hi)};
}

}  // namespace

Aslr Aslr::FromSeed(uint64_t seed) {
  Aslr a;
  a.enabled = true;
  a.mmap = SplitMix(seed);
  a.pie = SplitMix(seed);
  a.stack_top = SplitMix(seed);
  a.stack_align = SplitMix(seed);
  a.brk = SplitMix(seed);
  a.sp_align = SplitMix(seed);
  return a;
}

Layout DefaultLayout(uint64_t stack_rlimit, const Aslr& aslr) {
  Layout l;
  // arch/x86/mm/mmap.c mmap_base().
  uint64_t gap = stack_rlimit;
  const uint64_t pad = (aslr.enabled ? kStackRndMask << 12 : 0) + kStackGuardGap;
  if (gap + pad > gap) gap += pad;  // values near RLIM_INFINITY would overflow
  const uint64_t gap_min = uint64_t{128} << 20;
  const uint64_t gap_max = kTaskSize / 6 * 5;
  gap = std::clamp(gap, gap_min, gap_max);
  l.mmap_base = PageAlign(kTaskSize - gap - MmapRnd(aslr, aslr.mmap));

  // randomize_stack_top(STACK_TOP), then setup_arg_pages():
  // PAGE_ALIGN(arch_align_stack(stack_top)).
  uint64_t top = PageAlign(kStackTop);
  if (aslr.enabled) {
    top -= (aslr.stack_top & kStackRndMask) << 12;
    top -= aslr.stack_align % 8192;
  }
  l.stack_top = PageAlign(top & ~uint64_t{15});

  l.et_dyn_base = kElfEtDynBase + MmapRnd(aslr, aslr.pie);
  return l;
}

Result<LoadParams> DefaultLoadParams(const ElfImage& exe, const ElfImage* interp, const Layout& layout,
                                     const Aslr& aslr) {
  LoadParams p;
  p.randomize_brk = aslr.enabled;
  p.brk_rnd = aslr.brk;
  if (exe.loads.empty() || (interp != nullptr && interp->loads.empty())) {
    return FatalError(EINVAL, "DefaultLoadParams: image without PT_LOAD");
  }
  const uint64_t first_vaddr = exe.loads.front().p_vaddr;
  if (exe.type == ET_DYN) {
    if (exe.has_interp) {
      // A PIE: ELF_ET_DYN_BASE (+ randomization), aligned down to p_align.
      uint64_t base = layout.et_dyn_base;
      if (exe.max_align != 0) base &= ~(exe.max_align - 1);
      p.exe_bias = PageStart(base - first_vaddr);
    } else {
      // A loader (static PIE, ld.so run directly): mmap() chooses, top-down.
      auto at = TopDown(layout.mmap_base, PageAlign(exe.total_size()), std::nullopt, 0);
      if (!at) return FatalError(ENOMEM, "no room for the executable's " + Hex(exe.total_size()) + " bytes");
      if (exe.max_align > kPageSize) {
        p.exe_bias = PageStart((*at & ~(exe.max_align - 1)) - first_vaddr);
      } else {
        p.exe_bias = *at - PageStart(first_vaddr);
      }
    }
  }
  if (interp != nullptr && interp->type == ET_DYN) {
    auto at = TopDown(layout.mmap_base, PageAlign(interp->total_size()), BiasedRange(exe, p.exe_bias), 0);
    if (!at) return FatalError(ENOMEM, "no room for the interpreter's " + Hex(interp->total_size()) + " bytes");
    p.interp_bias = *at - interp->span_start;
  }
  return p;
}

int ProtFromFlags(uint32_t f) {
  return ((f & PF_R) ? PROT_READ : 0) | ((f & PF_W) ? PROT_WRITE : 0) | ((f & PF_X) ? PROT_EXEC : 0);
}

namespace {

// elf_load() for each PT_LOAD of `img`.
std::optional<LoadError> MapImage(const ElfImage& img, uint64_t bias, MapSource src, const LoadParams& params,
                                  std::vector<Mapping>& out) {
  const char* who = src == MapSource::kExecutable ? "executable" : "interpreter";
  if (PageOffset(bias) != 0) return FatalError(EINVAL, std::string(who) + ": load bias " + Hex(bias) + " is not page-aligned");
  if (img.type == ET_EXEC && bias != 0) return FatalError(EINVAL, std::string(who) + ": ET_EXEC cannot be moved");
  auto range = BiasedRange(img, bias);
  if (!range) {
    return FatalError(ENOMEM, std::string(who) + ": [" + Hex(img.span_start) + ", " + Hex(img.span_end) +
                             ") + bias " + Hex(bias) + " lies beyond the user address space");
  }
  if (range->lo < params.mmap_min_addr) {
    return FatalError(EPERM, std::string(who) + ": mapping at " + Hex(range->lo) + " is below mmap_min_addr " +
                            Hex(params.mmap_min_addr));
  }
  for (size_t i = 0; i < img.loads.size(); ++i) {
    const Elf64_Phdr& ph = img.loads[i];
    const uint64_t v = bias + ph.p_vaddr;  // inside range: no overflow
    const uint64_t off = PageOffset(ph.p_vaddr);
    const int prot = ProtFromFlags(ph.p_flags);
    uint64_t zero_start, zero_end;
    if (ph.p_filesz != 0) {
      // elf_map(): the file pages holding the segment.
      Mapping m;
      m.addr = PageStart(v);
      m.len = PageAlign(ph.p_filesz + off);
      m.prot = prot;
      m.source = src;
      m.file_offset = ph.p_offset - off;
      // With a bss, the rest of the last file page is zeroed (padzero());
      // without, the page shows the file's following bytes, as mmap() does.
      m.file_bytes = ph.p_memsz > ph.p_filesz ? off + ph.p_filesz
                                              : std::min(m.len, img.file_size - m.file_offset);
      m.segment = static_cast<uint16_t>(i);
      out.push_back(m);
      zero_start = m.addr + off + ph.p_filesz;
      zero_end = m.addr + off + ph.p_memsz;
    } else {
      zero_start = PageStart(v);
      zero_end = zero_start + off + ph.p_memsz;
    }
    if (ph.p_memsz > ph.p_filesz) {
      // vm_brk_flags(): anonymous pages for the rest of the bss, read-write
      // (VM_DATA_DEFAULT_FLAGS) plus exec if the segment is executable.
      const uint64_t zs = PageAlign(zero_start), ze = PageAlign(zero_end);
      if (ze > zs) {
        Mapping m;
        m.addr = zs;
        m.len = ze - zs;
        m.prot = PROT_READ | PROT_WRITE | (prot & PROT_EXEC);
        m.source = MapSource::kAnonymous;
        m.segment = static_cast<uint16_t>(i);
        out.push_back(m);
      }
    }
  }
  return std::nullopt;
}

}  // namespace

Result<LoadPlan> PlanLoad(const ElfImage& exe, const ElfImage* interp, const LoadParams& params) {
  if (exe.role != ElfRole::kExecutable || (interp != nullptr && interp->role != ElfRole::kInterpreter)) {
    return FatalError(EINVAL, "PlanLoad: images parsed in the wrong role");
  }
  if (exe.has_interp != (interp != nullptr)) {
    return FatalError(EINVAL, exe.has_interp ? "PlanLoad: PT_INTERP but no interpreter image"
                                        : "PlanLoad: an interpreter image without PT_INTERP");
  }
  if (exe.loads.empty() || (interp != nullptr && interp->loads.empty())) {
    return FatalError(EINVAL, "PlanLoad: image without PT_LOAD");
  }
  LoadPlan plan;
  if (auto e = MapImage(exe, params.exe_bias, MapSource::kExecutable, params, plan.mappings)) return *e;
  if (interp != nullptr) {
    if (auto e = MapImage(*interp, params.interp_bias, MapSource::kInterpreter, params, plan.mappings)) return *e;
    const Range a = *BiasedRange(exe, params.exe_bias);
    const Range b = *BiasedRange(*interp, params.interp_bias);
    if (a.lo < b.hi && b.lo < a.hi) {
      return FatalError(ENOMEM, "the interpreter [" + Hex(b.lo) + ", " + Hex(b.hi) + ") overlaps the executable [" +
                               Hex(a.lo) + ", " + Hex(a.hi) + ")");
    }
  }

  plan.exe_bias = params.exe_bias;
  plan.interp_bias = interp != nullptr ? params.interp_bias : 0;
  plan.exe_entry = exe.entry + params.exe_bias;  // unsigned: wraps as in Linux
  plan.phdr = exe.phdr_vaddr + params.exe_bias;
  plan.phnum = exe.phnum;
  if (interp != nullptr) {
    plan.entry = interp->entry + params.interp_bias;
    plan.base = params.interp_bias;
    if (plan.entry >= kTaskSize) return FatalError(EINVAL, "interpreter: entry point " + Hex(plan.entry) + " is not a user address");
  } else {
    plan.entry = plan.exe_entry;
    if (plan.entry >= kTaskSize) return FatalError(EINVAL, "executable: entry point " + Hex(plan.entry) + " is not a user address");
  }

  // mm->start_code and friends, as load_elf_binary() tracks them.
  uint64_t start_code = ~uint64_t{0}, end_code = 0, start_data = 0, end_data = 0;
  for (const Elf64_Phdr& ph : exe.loads) {
    const uint64_t k = ph.p_vaddr;
    if ((ph.p_flags & PF_X) && k < start_code) start_code = k;
    if (start_data < k) start_data = k;
    const uint64_t e = ph.p_vaddr + ph.p_filesz;
    if ((ph.p_flags & PF_X) && end_code < e) end_code = e;
    if (end_data < e) end_data = e;
  }
  plan.start_code = start_code + params.exe_bias;
  plan.end_code = end_code + params.exe_bias;
  plan.start_data = start_data + params.exe_bias;
  plan.end_data = end_data + params.exe_bias;

  // brk: after the executable's bss; for a loader run directly (ET_DYN
  // without PT_INTERP) moved to ELF_ET_DYN_BASE, out of the mmap area.
  uint64_t elf_brk = exe.span_end + params.exe_bias;
  bool moved = false;
  if (exe.type == ET_DYN && interp == nullptr) {
    elf_brk = kElfEtDynBase;
    moved = true;
  }
  plan.brk = PageAlign(elf_brk);
  if (params.randomize_brk) {
    if (!moved) plan.brk += kPageSize;  // a gap between .bss and brk
    plan.brk = RandomizePage(plan.brk, kBrkRandomRange, params.brk_rnd);
  }
  plan.executable_stack = exe.stack_exec == StackExec::kExec;
  return plan;
}

}  // namespace bulkhead::loader
