#include "services/syscall-router/loader/load_plan.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cerrno>

#include "services/syscall-router/loader/testing/elf_builder.h"
#include "services/syscall-router/loader/testing/test_util.h"

namespace bulkhead::loader {
namespace {

using testing::Build;
using testing::ElfSpec;
using testing::Load;

ElfImage MustParse(const ElfSpec& s, ElfRole role = ElfRole::kExecutable) {
  auto img = testing::ParseBytes(Build(s), role);
  EXPECT_TRUE(img.ok()) << ToString(img.error());
  return img.ok() ? *img : ElfImage{};
}

ElfSpec With(ElfSpec s, auto&& edit) {
  edit(s);
  return s;
}

void ExpectMapping(const Mapping& m, uint64_t addr, uint64_t len, int prot, MapSource src, uint64_t off,
                   uint64_t bytes) {
  EXPECT_EQ(m.addr, addr);
  EXPECT_EQ(m.len, len);
  EXPECT_EQ(m.prot, prot);
  EXPECT_EQ(m.source, src);
  EXPECT_EQ(m.file_offset, off);
  EXPECT_EQ(m.file_bytes, bytes);
}

constexpr int R = PROT_READ, W = PROT_WRITE, X = PROT_EXEC;

TEST(LoadPlanTest, StaticExecutableWithBss) {
  const ElfImage exe = MustParse(testing::StaticExec());
  auto plan = PlanLoad(exe, nullptr, LoadParams{});
  ASSERT_TRUE(plan.ok()) << ToString(plan.error());
  ASSERT_EQ(plan->mappings.size(), 3u);
  ExpectMapping(plan->mappings[0], 0x400000, 0x1000, R | X, MapSource::kExecutable, 0, 0x1000);
  // The data page: 0x20 file bytes, the rest of the page zeroed (padzero()).
  ExpectMapping(plan->mappings[1], 0x601000, 0x1000, R | W, MapSource::kExecutable, 0x1000, 0x20);
  // The rest of the bss: anonymous.
  ExpectMapping(plan->mappings[2], 0x602000, 0x2000, R | W, MapSource::kAnonymous, 0, 0);
  EXPECT_EQ(plan->entry, 0x400200u);
  EXPECT_EQ(plan->exe_entry, 0x400200u);
  EXPECT_EQ(plan->phdr, 0x400040u);
  EXPECT_EQ(plan->phnum, 3u);
  EXPECT_EQ(plan->base, 0u);
  EXPECT_EQ(plan->brk, 0x604000u);
  EXPECT_EQ(plan->start_code, 0x400000u);
  EXPECT_EQ(plan->end_code, 0x401000u);
  EXPECT_EQ(plan->start_data, 0x601000u);
  EXPECT_EQ(plan->end_data, 0x601020u);
  EXPECT_FALSE(plan->executable_stack);
}

TEST(LoadPlanTest, PartialPageAndBssOnlySegments) {
  auto spec = With(testing::StaticExec(), [](ElfSpec& s) {
    s.phdrs[1] = Load(PF_R | PF_W, 0x1100, 0x601100, 0x80, 0x2000);
    s.phdrs.push_back(Load(PF_R | PF_W, 0x777, 0x700100, 0, 0x10));  // bss only: the offset is not used
    s.min_size = 0x1180;
  });
  auto plan = PlanLoad(MustParse(spec), nullptr, LoadParams{});
  ASSERT_TRUE(plan.ok()) << ToString(plan.error());
  ASSERT_EQ(plan->mappings.size(), 4u);
  // The file page starts 0x100 before the segment; 0x100 + 0x80 bytes come
  // from the file, the rest of the page is zero.
  ExpectMapping(plan->mappings[1], 0x601000, 0x1000, R | W, MapSource::kExecutable, 0x1000, 0x180);
  ExpectMapping(plan->mappings[2], 0x602000, 0x2000, R | W, MapSource::kAnonymous, 0, 0);
  ExpectMapping(plan->mappings[3], 0x700000, 0x1000, R | W, MapSource::kAnonymous, 0, 0);
  EXPECT_EQ(plan->brk, 0x701000u);
}

TEST(LoadPlanTest, WithoutBssTheLastPageShowsTheFile) {
  // memsz == filesz: like mmap(), the page's tail is the file's next bytes,
  // up to the end of the file.
  auto spec = With(testing::StaticExec(), [](ElfSpec& s) {
    s.phdrs[1] = Load(PF_R, 0x1000, 0x601000, 0x20, 0x20);
    s.min_size = 0x1800;
  });
  auto plan = PlanLoad(MustParse(spec), nullptr, LoadParams{});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->mappings.size(), 2u);
  ExpectMapping(plan->mappings[1], 0x601000, 0x1000, R, MapSource::kExecutable, 0x1000, 0x800);
}

TEST(LoadPlanTest, ExecutableBssAndReadOnlyBss) {
  auto spec = With(testing::StaticExec(), [](ElfSpec& s) {
    s.phdrs[0].p_memsz = 0x3000;  // text with a bss: anonymous pages keep PROT_EXEC
    s.phdrs[1].p_flags = PF_R;    // read-only with a bss: vm_brk_flags() maps it read-write
  });
  auto plan = PlanLoad(MustParse(spec), nullptr, LoadParams{});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->mappings.size(), 4u);
  ExpectMapping(plan->mappings[1], 0x401000, 0x2000, R | W | X, MapSource::kAnonymous, 0, 0);
  ExpectMapping(plan->mappings[3], 0x602000, 0x2000, R | W, MapSource::kAnonymous, 0, 0);
  EXPECT_EQ(plan->mappings[2].prot, R);
}

TEST(LoadPlanTest, SegmentsSharingAPageMapInOrder) {
  auto spec = With(testing::StaticExec(), [](ElfSpec& s) {
    s.phdrs[0].p_filesz = s.phdrs[0].p_memsz = 0x800;
    s.phdrs[1] = Load(PF_R | PF_W, 0x810, 0x400810, 0x20, 0x20);
  });
  auto plan = PlanLoad(MustParse(spec), nullptr, LoadParams{});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->mappings.size(), 2u);
  // The second replaces the first on the shared page, as MAP_FIXED does.
  EXPECT_EQ(plan->mappings[0].addr, plan->mappings[1].addr);
  EXPECT_EQ(plan->mappings[1].prot, R | W);
}

TEST(LoadPlanTest, DefaultLayoutWithoutRandomization) {
  // Values read from the host kernel under `setarch -R` (maps of ld.so).
  Layout l = DefaultLayout(8 << 20, Aslr{});
  EXPECT_EQ(l.mmap_base, 0x7ffff7fff000u);
  EXPECT_EQ(l.stack_top, 0x7ffffffff000u);
  EXPECT_EQ(l.et_dyn_base, 0x555555554aaau);
  EXPECT_EQ(DefaultLayout(~0ull, Aslr{}).mmap_base, 0x155555556000u);  // RLIM_INFINITY: largest gap
  EXPECT_EQ(DefaultLayout(4000000ull << 10, Aslr{}).mmap_base, 0x7fff0bcbf000u);
  EXPECT_EQ(DefaultLayout(64 << 10, Aslr{}).mmap_base, 0x7ffff7fff000u);  // at least 128 MiB
}

TEST(LoadPlanTest, PieAndInterpreterBiases) {
  const ElfImage exe = MustParse(testing::Pie());
  const ElfImage interp = MustParse(testing::Interp(), ElfRole::kInterpreter);
  const Layout l = DefaultLayout(8 << 20, Aslr{});
  auto params = DefaultLoadParams(exe, &interp, l, Aslr{});
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(params->exe_bias, 0x555555554000u);
  EXPECT_EQ(params->interp_bias, 0x7ffff7fff000u - 0x5000);  // 0x4010 bytes, top-down
  auto plan = PlanLoad(exe, &interp, *params);
  ASSERT_TRUE(plan.ok()) << ToString(plan.error());
  EXPECT_EQ(plan->entry, params->interp_bias + 0x1000);
  EXPECT_EQ(plan->exe_entry, 0x555555555000u);
  EXPECT_EQ(plan->base, params->interp_bias);
  EXPECT_EQ(plan->phdr, 0x555555554040u);
  EXPECT_EQ(plan->brk, 0x555555557000u);  // PageAlign(0x2110) past the bias
  int from_interp = 0;
  for (const Mapping& m : plan->mappings) from_interp += m.source == MapSource::kInterpreter;
  EXPECT_EQ(from_interp, 2);

  // A 2 MiB p_align rounds the PIE base down.
  auto aligned = MustParse(With(testing::Pie(), [](ElfSpec& s) { s.phdrs[2].p_align = 0x200000; }));
  EXPECT_EQ(DefaultLoadParams(aligned, &interp, l, Aslr{})->exe_bias, 0x555555400000u);
}

TEST(LoadPlanTest, LoaderRunDirectlyGoesTopDownAndMovesBrk) {
  const ElfImage exe = MustParse(testing::Interp());  // ET_DYN without PT_INTERP
  const Layout l = DefaultLayout(8 << 20, Aslr{});
  auto params = DefaultLoadParams(exe, nullptr, l, Aslr{});
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(params->exe_bias, 0x7ffff7fff000u - 0x5000);
  auto plan = PlanLoad(exe, nullptr, *params);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->brk, 0x555555555000u);  // ELF_ET_DYN_BASE, page-aligned
  EXPECT_EQ(plan->base, 0u);
  EXPECT_EQ(plan->entry, params->exe_bias + 0x1000);
}

TEST(LoadPlanTest, EtExecInterpreterHasNoBase) {
  auto interp_spec = With(testing::Interp(), [](ElfSpec& s) {
    s.type = ET_EXEC;
    s.entry = 0x10001000;
    s.phdrs[0].p_vaddr = 0x10000000;
    s.phdrs[1].p_vaddr = 0x10002010;
  });
  const ElfImage interp = MustParse(interp_spec, ElfRole::kInterpreter);
  const ElfImage exe = MustParse(testing::Pie());
  auto params = DefaultLoadParams(exe, &interp, DefaultLayout(8 << 20, Aslr{}), Aslr{});
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(params->interp_bias, 0u);
  auto plan = PlanLoad(exe, &interp, *params);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->base, 0u);
  EXPECT_EQ(plan->entry, 0x10001000u);
}

TEST(LoadPlanTest, BrkRandomization) {
  const ElfImage exe = MustParse(testing::StaticExec());
  LoadParams p;
  p.randomize_brk = true;
  p.brk_rnd = 5;
  EXPECT_EQ(PlanLoad(exe, nullptr, p)->brk, 0x604000u + 0x1000 + 5 * 0x1000);  // gap page + 5 pages
  p.brk_rnd = (kBrkRandomRange >> 12) + 7;  // wraps modulo the range
  EXPECT_EQ(PlanLoad(exe, nullptr, p)->brk, 0x604000u + 0x1000 + 7 * 0x1000);
  const ElfImage loader = MustParse(testing::Interp());
  p.exe_bias = 0x7ff000000000;
  p.brk_rnd = 3;
  EXPECT_EQ(PlanLoad(loader, nullptr, p)->brk, 0x555555555000u + 3 * 0x1000);  // moved: no gap page
}

TEST(LoadPlanTest, RandomizedLayoutsStayInLinuxRanges) {
  const ElfImage exe = MustParse(testing::Pie());
  const ElfImage interp = MustParse(testing::Interp(), ElfRole::kInterpreter);
  for (uint64_t seed = 0; seed < 500; ++seed) {
    const Aslr a = Aslr::FromSeed(seed);
    const Layout l = DefaultLayout(8 << 20, a);
    EXPECT_EQ(PageOffset(l.stack_top), 0u);
    EXPECT_LE(l.stack_top, kStackTop);
    EXPECT_GE(l.stack_top, kStackTop - (kStackRndMask << 12) - 2 * kPageSize);
    EXPECT_EQ(PageOffset(l.mmap_base), 0u);
    EXPECT_LT(l.mmap_base, l.stack_top - (8 << 20));  // below the stack's rlimit and its random range
    EXPECT_GE(l.et_dyn_base, kElfEtDynBase);
    EXPECT_LT(l.et_dyn_base, kElfEtDynBase + (1ull << 40));
    auto params = DefaultLoadParams(exe, &interp, l, a);
    ASSERT_TRUE(params.ok());
    auto plan = PlanLoad(exe, &interp, *params);
    ASSERT_TRUE(plan.ok()) << ToString(plan.error());
    EXPECT_GE(plan->brk, PageAlign(params->exe_bias + exe.span_end) + kPageSize);
    EXPECT_LT(plan->brk, PageAlign(params->exe_bias + exe.span_end) + kPageSize + kBrkRandomRange);
    for (const Mapping& m : plan->mappings) {
      EXPECT_EQ(PageOffset(m.addr) | PageOffset(m.len), 0u);
      EXPECT_LE(m.end(), kTaskSize);
      EXPECT_LE(m.file_bytes, m.len);
    }
  }
}

TEST(LoadPlanTest, Errors) {
  const ElfImage st = MustParse(testing::StaticExec());
  const ElfImage pie = MustParse(testing::Pie());
  const ElfImage interp = MustParse(testing::Interp(), ElfRole::kInterpreter);
  LoadParams p;
  p.exe_bias = 0x1000;
  EXPECT_EQ(PlanLoad(st, nullptr, p).err(), EINVAL);  // ET_EXEC cannot move
  p.exe_bias = 0x555555554100;
  p.interp_bias = 0x7ff000000000;
  EXPECT_EQ(PlanLoad(pie, &interp, p).err(), EINVAL);  // unaligned bias
  p.exe_bias = kTaskSize - 0x1000;
  EXPECT_EQ(PlanLoad(pie, &interp, p).err(), ENOMEM);  // beyond TASK_SIZE
  p.exe_bias = ~0ull & ~0xfffull;
  EXPECT_EQ(PlanLoad(pie, &interp, p).err(), ENOMEM);  // wraps around
  p.exe_bias = 0;
  EXPECT_EQ(PlanLoad(pie, &interp, p).err(), EPERM);  // below mmap_min_addr
  p.mmap_min_addr = 0;
  EXPECT_TRUE(PlanLoad(pie, &interp, p).ok());
  p.mmap_min_addr = kDefaultMmapMinAddr;
  p.exe_bias = p.interp_bias = 0x555555554000;
  EXPECT_EQ(PlanLoad(pie, &interp, p).err(), ENOMEM);  // the two images overlap
  p.interp_bias = 0x7ff000000000;
  EXPECT_EQ(PlanLoad(pie, nullptr, p).err(), EINVAL);  // PT_INTERP without the image
  EXPECT_EQ(PlanLoad(st, &interp, LoadParams{}).err(), EINVAL);
  EXPECT_EQ(PlanLoad(pie, &pie, p).err(), EINVAL);  // wrong role

  auto bad_entry = MustParse(With(testing::StaticExec(), [](ElfSpec& s) { s.entry = kTaskSize; }));
  EXPECT_EQ(PlanLoad(bad_entry, nullptr, LoadParams{}).err(), EINVAL);
  auto bad_interp_entry = MustParse(With(testing::Interp(), [](ElfSpec& s) { s.entry = 0x100000000000; }), ElfRole::kInterpreter);
  EXPECT_EQ(PlanLoad(pie, &bad_interp_entry, p).err(), EINVAL);
  // The PIE's own entry is not checked when an interpreter runs first.
  auto odd_pie = MustParse(With(testing::Pie(), [](ElfSpec& s) { s.entry = ~0ull; }));
  EXPECT_TRUE(PlanLoad(odd_pie, &interp, p).ok());

  // No room for a huge interpreter below mmap_base.
  auto huge = MustParse(With(testing::Interp(), [](ElfSpec& s) { s.phdrs[1].p_memsz = 0x7f0000000000; }),
                        ElfRole::kInterpreter);
  EXPECT_EQ(DefaultLoadParams(pie, &huge, DefaultLayout(8 << 20, Aslr{}), Aslr{}).err(), ENOMEM);
}

TEST(LoadPlanTest, RealTrueAndLdSo) {
  if (!testing::IsFile("/bin/true") || !testing::IsFile("/lib64/ld-linux-x86-64.so.2")) GTEST_SKIP();
  auto exe = testing::ParseFile("/bin/true", ElfRole::kExecutable);
  auto interp = testing::ParseFile("/lib64/ld-linux-x86-64.so.2", ElfRole::kInterpreter);
  ASSERT_TRUE(exe.ok() && interp.ok());
  auto params = DefaultLoadParams(*exe, &*interp, DefaultLayout(8 << 20, Aslr{}), Aslr{});
  ASSERT_TRUE(params.ok());
  auto plan = PlanLoad(*exe, &*interp, *params);
  ASSERT_TRUE(plan.ok()) << ToString(plan.error());
  EXPECT_EQ(plan->exe_bias, 0x555555554000u);
  EXPECT_EQ(plan->base, 0x7ffff7fff000u - PageAlign(interp->total_size()));
  EXPECT_EQ(plan->entry, plan->base + interp->entry);
  EXPECT_EQ(plan->exe_entry, 0x555555554000u + exe->entry);
  EXPECT_EQ(plan->phdr, 0x555555554000u + *exe->pt_phdr_vaddr);
  for (const Mapping& m : plan->mappings) {
    if (m.source == MapSource::kAnonymous) continue;
    const ElfImage& img = m.source == MapSource::kExecutable ? *exe : *interp;
    EXPECT_LE(m.file_offset + m.file_bytes, img.file_size);
  }
}

}  // namespace
}  // namespace bulkhead::loader
