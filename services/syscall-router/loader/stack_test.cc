#include "services/syscall-router/loader/stack.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <numeric>

namespace bulkhead::loader {
namespace {

StackInput Sample() {
  StackInput in;
  in.argv = {"prog", "-x", "hello world"};
  in.envp = {"A=1", "PATH=/bin:/usr/bin"};
  in.execfn = "/usr/bin/prog";
  std::iota(in.random.begin(), in.random.end(), uint8_t{0xa0});
  in.phdr = 0x555555554040;
  in.phnum = 13;
  in.base = 0x7ffff7fca000;
  in.entry = 0x5555555563d0;
  in.aux.hwcap = 0x178bfbff;
  in.aux.hwcap2 = 2;
  in.aux.minsigstksz = 3376;
  in.aux.uid = 1000;
  in.aux.euid = 1001;
  in.aux.gid = 1002;
  in.aux.egid = 1003;
  return in;
}

uint64_t Word(const StackImage& s, uint64_t addr) {
  uint64_t v;
  std::memcpy(&v, s.bytes.data() + (addr - s.rsp), sizeof v);
  return v;
}

TEST(StackTest, LayoutDecodesBackAsLinuxLaysItOut) {
  const StackInput in = Sample();
  auto s = BuildStack(in);
  ASSERT_TRUE(s.ok()) << ToString(s.error());
  EXPECT_EQ(s->rsp % 16, 0u);  // the ABI: %rsp 16-aligned at entry, pointing at argc
  EXPECT_EQ(s->bytes.size(), s->top - s->rsp);
  EXPECT_EQ(Word(*s, s->rsp), 3u);

  auto d = DecodeStack(s->bytes, s->top);
  ASSERT_TRUE(d.ok()) << ToString(d.error());
  EXPECT_EQ(d->argv, in.argv);
  EXPECT_EQ(d->envp, in.envp);
  EXPECT_EQ(d->auxv, s->auxv);

  const std::vector<uint64_t> order = {kAtMinsigstksz, kAtHwcap, kAtPagesz, kAtClktck, kAtPhdr,  kAtPhent, kAtPhnum,
                                       kAtBase,        kAtFlags, kAtEntry,  kAtUid,    kAtEuid,  kAtGid,   kAtEgid,
                                       kAtSecure,      kAtRandom, kAtHwcap2, kAtExecfn, kAtPlatform, kAtNull};
  ASSERT_EQ(d->auxv.size(), order.size());
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(d->auxv[i].first, order[i]) << i;
  EXPECT_EQ(*d->Aux(kAtPhdr), in.phdr);
  EXPECT_EQ(*d->Aux(kAtPhent), 56u);
  EXPECT_EQ(*d->Aux(kAtPhnum), 13u);
  EXPECT_EQ(*d->Aux(kAtBase), in.base);
  EXPECT_EQ(*d->Aux(kAtEntry), in.entry);
  EXPECT_EQ(*d->Aux(kAtPagesz), 4096u);
  EXPECT_EQ(*d->Aux(kAtClktck), 100u);
  EXPECT_EQ(*d->Aux(kAtSecure), 0u);
  EXPECT_EQ(*d->Aux(kAtHwcap), 0x178bfbffu);
  EXPECT_EQ(*d->Aux(kAtEgid), 1003u);
  EXPECT_FALSE(d->Aux(kAtSysinfoEhdr).has_value());

  EXPECT_EQ(StringAt(s->bytes, s->top, *d->Aux(kAtExecfn)), "/usr/bin/prog");
  EXPECT_EQ(StringAt(s->bytes, s->top, *d->Aux(kAtPlatform)), "x86_64");
  EXPECT_EQ(0, std::memcmp(s->bytes.data() + (*d->Aux(kAtRandom) - s->rsp), in.random.data(), 16));

  // Strings: argv then envp then the filename, contiguous, then 8 zero bytes.
  EXPECT_EQ(d->argv_ptrs[0], s->arg_start);
  EXPECT_EQ(d->envp_ptrs[0], s->arg_end);
  EXPECT_EQ(s->env_start, s->arg_end);
  EXPECT_EQ(s->env_end, s->execfn_addr);
  EXPECT_EQ(s->arg_end - s->arg_start, 5u + 3 + 12);
  EXPECT_EQ(s->execfn_addr + in.execfn.size() + 1, s->top - 8);
  EXPECT_EQ(Word(*s, s->top - 8), 0u);
  // The platform string sits on a 16-byte boundary's tail, the random bytes
  // right below it, the auxv ends at most 15 bytes below those.
  EXPECT_EQ((s->platform_addr + 7) % 16, 0u);
  EXPECT_EQ(s->random_addr, s->platform_addr - 16);
  const uint64_t auxv_end = s->rsp + 8 * (1 + 4 + 3 + 2 * d->auxv.size());
  EXPECT_LE(auxv_end, s->random_addr);
  EXPECT_LT(s->random_addr - auxv_end, 16u);
  // The VMA: 128 KiB below the strings' page, as the kernel's first [stack].
  EXPECT_EQ(s->vma_start, s->top - 0x21000);
}

TEST(StackTest, VdsoAndRseqEntries) {
  StackInput in = Sample();
  in.aux.vdso = 0x7ffff7fc8000;
  in.aux.rseq = {{28, 32}};
  auto s = BuildStack(in);
  ASSERT_TRUE(s.ok());
  ASSERT_GE(s->auxv.size(), 4u);
  EXPECT_EQ(s->auxv.front(), std::make_pair(uint64_t{kAtSysinfoEhdr}, uint64_t{0x7ffff7fc8000}));
  const size_t n = s->auxv.size();
  EXPECT_EQ(s->auxv[n - 3], std::make_pair(uint64_t{kAtRseqFeatureSize}, uint64_t{28}));
  EXPECT_EQ(s->auxv[n - 2], std::make_pair(uint64_t{kAtRseqAlign}, uint64_t{32}));
  EXPECT_EQ(s->auxv[n - 1].first, uint64_t{kAtNull});
  in.aux.platform.clear();
  s = BuildStack(in);
  ASSERT_TRUE(s.ok());
  auto d = DecodeStack(s->bytes, s->top);
  EXPECT_FALSE(d->Aux(kAtPlatform).has_value());
}

TEST(StackTest, EmptyArgvGetsAnEmptyArgvZero) {
  StackInput in = Sample();
  in.argv.clear();
  auto s = BuildStack(in);
  ASSERT_TRUE(s.ok());
  auto d = DecodeStack(s->bytes, s->top);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->argv, std::vector<std::string>{""});
}

// Every combination of string lengths and stack randomization keeps the
// ABI's alignment and the table layout.
TEST(StackTest, AlignmentSweep) {
  for (int alen = 0; alen < 34; ++alen) {
    for (int envc = 0; envc < 4; ++envc) {
      for (uint64_t rnd : {0ull, 1ull, 7ull, 8ull, 15ull, 4095ull, 8191ull, 8192ull + 5}) {
        StackInput in = Sample();
        in.argv = {std::string(alen, 'a'), std::string(alen / 3, 'b')};
        in.envp.assign(envc, std::string(alen % 5, 'e'));
        in.execfn = std::string(1 + alen % 7, 'f');
        in.sp_rnd = rnd;
        in.aux.vdso = (alen & 1) ? std::optional<uint64_t>(0x7ffff7fc8000) : std::nullopt;
        auto s = BuildStack(in);
        ASSERT_TRUE(s.ok());
        ASSERT_EQ(s->rsp % 16, 0u);
        auto d = DecodeStack(s->bytes, s->top);
        ASSERT_TRUE(d.ok()) << ToString(d.error());
        EXPECT_EQ(d->argv, in.argv);
        EXPECT_EQ(d->envp, in.envp);
        // arch_align_stack(): the random gap and the 16-byte rounding.
        const uint64_t strings_low = s->arg_start;
        EXPECT_EQ(s->platform_addr + 7, (strings_low - rnd % 8192) & ~15ull);
        const uint64_t auxv_end = s->rsp + 8 * (1 + (in.argv.size() + 1) + (in.envp.size() + 1) + 2 * d->auxv.size());
        EXPECT_LE(auxv_end, s->random_addr);
        EXPECT_LT(s->random_addr - auxv_end, 16u);
      }
    }
  }
}

TEST(StackTest, ArgumentBudgetFollowsLinux) {
  EXPECT_EQ(ArgStringBudget(8 << 20, 1, 0)->string_bytes, (2u << 20) - 8);    // rlimit / 4
  EXPECT_EQ(ArgStringBudget(8 << 20, 0, 0)->string_bytes, (2u << 20) - 8);    // argc 0 counts as 1
  EXPECT_EQ(ArgStringBudget(~0ull, 3, 2)->string_bytes, (6u << 20) - 40);     // 3/4 of _STK_LIM
  EXPECT_EQ(ArgStringBudget(64 << 10, 1, 1)->string_bytes, (128u << 10) - 16);  // ARG_MAX floor
  EXPECT_EQ(ArgStringBudget(8 << 20, (2 << 20) / 8, 0).err(), E2BIG);            // pointers alone
  EXPECT_EQ(ArgStringBudget(8 << 20, (2 << 20) / 8 - 1, 0).err(), 0);
  EXPECT_EQ(ArgStringBudget(8 << 20, kMaxArgStrings + 1, 0).err(), E2BIG);
}

TEST(StackTest, E2bigBoundaries) {
  StackInput in = Sample();
  in.envp.clear();
  in.execfn = "x";
  // MAX_ARG_STRLEN counts the NUL.
  in.argv = {std::string(kMaxArgStrlen - 1, 'a')};
  EXPECT_TRUE(BuildStack(in).ok());
  in.argv = {std::string(kMaxArgStrlen, 'a')};
  EXPECT_EQ(BuildStack(in).err(), E2BIG);
  in.execfn = std::string(kMaxArgStrlen, 'f');
  in.argv = {"a"};
  EXPECT_EQ(BuildStack(in).err(), E2BIG);

  // The total: exactly the budget passes, one byte more does not.
  in.execfn = "x";
  const uint64_t budget = (2u << 20) - 8 * 20;
  in.argv.assign(20, std::string(104000, 'a'));
  uint64_t used = 2 + 20 * 104001;
  in.argv.back().append(budget - used, 'b');
  auto ok = BuildStack(in);
  ASSERT_TRUE(ok.ok()) << ToString(ok.error());
  in.argv.back().push_back('c');
  EXPECT_EQ(BuildStack(in).err(), E2BIG);
  in.argv.back().pop_back();
  in.envp = {""};  // one more pointer and one more byte
  EXPECT_EQ(BuildStack(in).err(), E2BIG);

  // With a small RLIMIT_STACK the budget is ARG_MAX, but the strings must
  // still fit in the stack rlimit once they leave the first page.
  in.envp.clear();
  in.stack_rlimit = 64 << 10;
  in.argv = {std::string(100 << 10, 'a')};
  EXPECT_EQ(BuildStack(in).err(), E2BIG);
  in.argv = {std::string(60 << 10, 'a')};
  EXPECT_TRUE(BuildStack(in).ok());
  in.stack_rlimit = 1024;  // below a page: only the first page is free
  in.argv = {std::string(3000, 'a')};
  EXPECT_TRUE(BuildStack(in).ok());
  in.argv = {std::string(5000, 'a')};
  EXPECT_EQ(BuildStack(in).err(), E2BIG);
  // The strings fit but the pointers push the tables past the rlimit.
  in.stack_rlimit = 16 << 10;
  in.argv.assign(3000, "");
  EXPECT_EQ(BuildStack(in).err(), EFAULT);

  in = Sample();
  in.argv[1] = std::string("a\0b", 3);
  EXPECT_EQ(BuildStack(in).err(), EINVAL);
}

TEST(StackTest, VmaFollowsTheRlimit) {
  StackInput in = Sample();
  in.stack_rlimit = 64 << 10;
  auto s = BuildStack(in);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->vma_start, s->top - (64 << 10));
  in.stack_rlimit = ~0ull;
  s = BuildStack(in);
  EXPECT_EQ(s->vma_start, s->top - 0x21000);
  // Large arguments: the VMA reaches 128 KiB below their lowest page.
  in.argv.assign(3, std::string(100000, 'a'));
  s = BuildStack(in);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->vma_start, PageStart(s->arg_start) - kStackExpand);
}

TEST(StackTest, BadStackTop) {
  StackInput in = Sample();
  in.stack_top = kStackTop + 0x1000;
  EXPECT_EQ(BuildStack(in).err(), EINVAL);
  in.stack_top = kStackTop - 8;
  EXPECT_EQ(BuildStack(in).err(), EINVAL);
  in.stack_top = 0x1000;
  EXPECT_EQ(BuildStack(in).err(), EINVAL);
}

TEST(StackTest, DecodeRejectsGarbage) {
  const uint64_t top = 0x7ffffffff000;
  std::vector<uint8_t> b(64, 0xff);
  EXPECT_FALSE(DecodeStack(b, top).ok());  // argc absurd
  b.assign(8, 0);
  EXPECT_FALSE(DecodeStack(b, top).ok());  // argv NULL missing
  b.assign(40, 0);
  b[0] = 1;  // argc 1, argv[0] = 0: outside
  EXPECT_FALSE(DecodeStack(b, top).ok());
  b.assign(32, 0);  // argc 0, NULL, NULL, then auxv runs off
  EXPECT_FALSE(DecodeStack(b, top).ok());
  EXPECT_FALSE(DecodeStack(b, 8).ok());  // larger than its top
  // A string running to the top without a NUL.
  std::vector<uint8_t> s(48, 'z');
  const uint64_t ptr = top - 8;
  std::memset(s.data(), 0, 40);
  s[0] = 1;
  std::memcpy(s.data() + 8, &ptr, 8);
  EXPECT_FALSE(DecodeStack(s, top).ok());
}

}  // namespace
}  // namespace bulkhead::loader
