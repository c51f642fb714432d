#include "services/syscall-router/loader/elf.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "base/error.h"
#include "services/syscall-router/loader/testing/elf_builder.h"
#include "services/syscall-router/loader/testing/test_util.h"

namespace bulkhead::loader {
namespace {

using testing::Build;
using testing::ElfSpec;
using testing::Load;
using testing::Phdr;

constexpr char kTrue[] = "/bin/true";
constexpr char kLdSo[] = "/lib64/ld-linux-x86-64.so.2";
constexpr char kBusybox[] = "/bin/busybox";

ElfSpec With(ElfSpec s, auto&& edit) {
  edit(s);
  return s;
}

// An independent reading of the program headers, straight from <elf.h>.
std::vector<Elf64_Phdr> RawPhdrs(const std::vector<uint8_t>& f) {
  Elf64_Ehdr eh;
  std::memcpy(&eh, f.data(), sizeof eh);
  std::vector<Elf64_Phdr> out(eh.e_phnum);
  std::memcpy(out.data(), f.data() + eh.e_phoff, eh.e_phnum * sizeof(Elf64_Phdr));
  return out;
}

void ExpectMatchesRaw(const ElfImage& img, const std::vector<uint8_t>& f) {
  auto raw = RawPhdrs(f);
  ASSERT_EQ(img.phdrs.size(), raw.size());
  size_t loads = 0;
  for (const auto& p : raw) {
    if (p.p_type != PT_LOAD) continue;
    ASSERT_LT(loads, img.loads.size());
    EXPECT_EQ(0, std::memcmp(&img.loads[loads], &p, sizeof p));
    ++loads;
  }
  EXPECT_EQ(loads, img.loads.size());
}

// ---------------------------------------------------------------- real binaries

TEST(ElfTest, ParsesBinTrueAsPieWithInterpreter) {
  if (!testing::IsFile(kTrue)) GTEST_SKIP() << kTrue << " missing";
  const auto f = testing::ReadAll(kTrue);
  auto img = testing::ParseBytes(f, ElfRole::kExecutable);
  ASSERT_TRUE(img.ok()) << ToString(img.error());
  EXPECT_EQ(img->type, ET_DYN);
  EXPECT_TRUE(img->has_interp);
  EXPECT_EQ(img->interp, "/lib64/ld-linux-x86-64.so.2");
  EXPECT_EQ(img->stack_exec, StackExec::kNonExec);
  ASSERT_TRUE(img->pt_phdr_vaddr.has_value());
  // Linux's AT_PHDR (through the PT_LOAD holding e_phoff) agrees with PT_PHDR.
  EXPECT_EQ(img->phdr_vaddr, *img->pt_phdr_vaddr);
  EXPECT_EQ(img->span_start, 0u);
  EXPECT_EQ(img->max_align, kPageSize);
  ExpectMatchesRaw(*img, f);
}

TEST(ElfTest, ParsesTheDynamicLinkerAsInterpreterAndAsExecutable) {
  if (!testing::IsFile(kLdSo)) GTEST_SKIP() << kLdSo << " missing";
  const auto f = testing::ReadAll(kLdSo);
  for (ElfRole role : {ElfRole::kInterpreter, ElfRole::kExecutable}) {
    auto img = testing::ParseBytes(f, role);
    ASSERT_TRUE(img.ok()) << ToString(img.error());
    EXPECT_EQ(img->type, ET_DYN);
    EXPECT_FALSE(img->has_interp);
    EXPECT_FALSE(img->pt_phdr_vaddr.has_value());
    EXPECT_EQ(img->phdr_vaddr, img->phoff);  // first PT_LOAD maps offset 0 at vaddr 0
    EXPECT_GT(img->loads.size(), 1u);
    ExpectMatchesRaw(*img, f);
  }
}

TEST(ElfTest, ParsesStaticBusybox) {
  if (!testing::IsFile(kBusybox)) GTEST_SKIP() << kBusybox << " missing (apt-get install busybox-static)";
  const auto f = testing::ReadAll(kBusybox);
  auto img = testing::ParseBytes(f, ElfRole::kExecutable);
  ASSERT_TRUE(img.ok()) << ToString(img.error());
  if (img->type != ET_EXEC) GTEST_SKIP() << "busybox is not a static ET_EXEC here";
  EXPECT_FALSE(img->has_interp);
  EXPECT_EQ(img->span_start, img->loads.front().p_vaddr & ~0xfffull);
  EXPECT_EQ(img->span_end, img->loads.back().p_vaddr + img->loads.back().p_memsz);
  ExpectMatchesRaw(*img, f);
}

// The bytes-on-demand protocol: given only the first 64 bytes, the parser
// asks for the program headers, then for PT_INTERP, and never for more.
TEST(ElfTest, AsksForMissingBytesRangeByRange) {
  auto f = Build(testing::Pie());
  FileBytes file(f.size(), std::span<const uint8_t>(f).first(64));
  std::vector<NeedBytes> asked;
  for (int i = 0; i < 5; ++i) {
    ParseOutcome out = ParseElf(file, ElfRole::kExecutable);
    if (auto* need = std::get_if<NeedBytes>(&out)) {
      asked.push_back(*need);
      ASSERT_LE(need->offset + need->length, f.size());
      file.Add(need->offset, std::span<const uint8_t>(f).subspan(need->offset, need->length));
      continue;
    }
    ASSERT_TRUE(std::holds_alternative<ElfImage>(out)) << ToString(std::get<LoadError>(out));
    break;
  }
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0].offset, 64u);
  EXPECT_EQ(asked[0].length, 4 * sizeof(Elf64_Phdr));
  EXPECT_EQ(asked[1].offset, 0x200u);
  EXPECT_EQ(asked[1].length, std::string("/lib64/ld-linux-x86-64.so.2").size() + 1);
}

TEST(ElfTest, ParseElfWithReadsThroughTheCallback) {
  if (!testing::IsFile(kTrue)) GTEST_SKIP();
  const auto f = testing::ReadAll(kTrue);
  int reads = 0;
  ReadFn read = [&](uint64_t off, std::span<uint8_t> out) -> int64_t {
    ++reads;
    if (off >= f.size()) return 0;
    const size_t n = std::min<uint64_t>(out.size(), f.size() - off);
    std::memcpy(out.data(), f.data() + off, n);
    return static_cast<int64_t>(n);
  };
  auto img = ParseElfWith(read, f.size(), ElfRole::kExecutable);
  ASSERT_TRUE(img.ok()) << ToString(img.error());
  EXPECT_EQ(reads, 1);  // the first page holds everything
  EXPECT_EQ(img->interp, "/lib64/ld-linux-x86-64.so.2");

  ReadFn failing = [](uint64_t, std::span<uint8_t>) -> int64_t { return -EACCES; };
  EXPECT_EQ(ParseElfWith(failing, f.size(), ElfRole::kExecutable).err(), EACCES);
  // Program headers beyond the first page: a second read, which may not be short.
  const auto far = Build(With(testing::StaticExec(), [](ElfSpec& s) { s.phoff = 0x1400; s.min_size = 0x2000; }));
  int far_reads = 0;
  auto read_far = [&](uint64_t off, std::span<uint8_t> out, bool cut) -> int64_t {
    ++far_reads;
    size_t n = std::min<uint64_t>(out.size(), far.size() - off);
    if (cut && off != 0) n /= 2;
    std::memcpy(out.data(), far.data() + off, n);
    return static_cast<int64_t>(n);
  };
  ReadFn whole = [&](uint64_t off, std::span<uint8_t> out) { return read_far(off, out, false); };
  ReadFn cut = [&](uint64_t off, std::span<uint8_t> out) { return read_far(off, out, true); };
  EXPECT_TRUE(ParseElfWith(whole, far.size(), ElfRole::kExecutable).ok());
  EXPECT_EQ(far_reads, 2);
  EXPECT_EQ(ParseElfWith(cut, far.size(), ElfRole::kExecutable).err(), EIO);
}

TEST(ElfTest, FileBytesNeverReadsOutsideItsChunks) {
  const std::vector<uint8_t> a(100, 1), b(50, 2);
  FileBytes f(120);
  f.Add(0, a);
  f.Add(90, b);  // clipped to 120
  EXPECT_TRUE(f.Get(0, 100).has_value());
  EXPECT_FALSE(f.Get(0, 101).has_value());
  EXPECT_TRUE(f.Get(90, 30).has_value());
  EXPECT_FALSE(f.Get(90, 31).has_value());  // beyond the file
  EXPECT_EQ((*f.Get(95, 5))[0], 2);
  EXPECT_FALSE(f.Get(~0ull - 2, 5).has_value());  // overflow
  f.Add(500, a);  // beyond the file: ignored
  EXPECT_FALSE(f.Get(500, 1).has_value());
}

// ---------------------------------------------------------------- hostile input

struct Hostile {
  const char* name;
  ElfSpec spec;
  int exe_errno;     // as the executable
  int interp_errno;  // as the interpreter
};

std::vector<Hostile> HostileCases() {
  using testing::StaticExec;
  std::vector<Hostile> v;
  v.push_back({"elfclass32", With(StaticExec(), [](ElfSpec& s) { s.ei_class = ELFCLASS32; }), ENOEXEC, ELIBBAD});
  v.push_back({"big_endian", With(StaticExec(), [](ElfSpec& s) { s.ei_data = ELFDATA2MSB; }), ENOEXEC, ELIBBAD});
  v.push_back({"ident_version", With(StaticExec(), [](ElfSpec& s) { s.ei_version = 2; }), ENOEXEC, ELIBBAD});
  v.push_back({"e_version", With(StaticExec(), [](ElfSpec& s) { s.version = 0; }), ENOEXEC, ELIBBAD});
  v.push_back({"i386", With(StaticExec(), [](ElfSpec& s) { s.machine = EM_386; }), ENOEXEC, ELIBBAD});
  v.push_back({"aarch64", With(StaticExec(), [](ElfSpec& s) { s.machine = EM_AARCH64; }), ENOEXEC, ELIBBAD});
  v.push_back({"et_rel", With(StaticExec(), [](ElfSpec& s) { s.type = ET_REL; }), ENOEXEC, EINVAL});
  v.push_back({"et_core", With(StaticExec(), [](ElfSpec& s) { s.type = ET_CORE; }), ENOEXEC, EINVAL});
  v.push_back({"phentsize", With(StaticExec(), [](ElfSpec& s) { s.phentsize = 32; }), ENOEXEC, ELIBBAD});
  v.push_back({"phnum_0", With(StaticExec(), [](ElfSpec& s) { s.phnum = 0; }), ENOEXEC, ELIBBAD});
  v.push_back({"phnum_1171", With(StaticExec(), [](ElfSpec& s) { s.phnum = 1171; s.min_size = 70000; }), ENOEXEC, ELIBBAD});
  v.push_back({"phnum_xnum", With(StaticExec(), [](ElfSpec& s) { s.phnum = 0xffff; }), ENOEXEC, ELIBBAD});
  v.push_back({"phoff_beyond_eof", With(StaticExec(), [](ElfSpec& s) { s.phoff = 0x100000; s.truncate = 0x1020; }), ENOEXEC, ELIBBAD});
  v.push_back({"phoff_overflow", With(StaticExec(), [](ElfSpec& s) { s.phoff = ~0ull - 8; }), ENOEXEC, ELIBBAD});
  v.push_back({"phdrs_cut_by_eof", With(StaticExec(), [](ElfSpec& s) { s.phoff = 0x1020 - 100; s.truncate = 0x1020; }), ENOEXEC, ELIBBAD});
  v.push_back({"filesz_gt_memsz", With(StaticExec(), [](ElfSpec& s) { s.phdrs[1].p_memsz = 0x10; }), EINVAL, ENOMEM});
  v.push_back({"vaddr_memsz_overflow", With(StaticExec(), [](ElfSpec& s) {
                 s.phdrs[1].p_vaddr = ~0ull - 0xfff;  // page offset 0, as p_offset
                 s.phdrs[1].p_memsz = 0x3000;
               }), EINVAL, ENOMEM});
  v.push_back({"beyond_task_size", With(StaticExec(), [](ElfSpec& s) {
                 s.phdrs[1].p_vaddr = kTaskSize - 0x1000;
                 s.phdrs[1].p_memsz = 0x2000;
               }), EINVAL, ENOMEM});
  v.push_back({"vaddr_at_task_size", With(StaticExec(), [](ElfSpec& s) {
                 s.phdrs[1].p_vaddr = kTaskSize;
                 s.phdrs[1].p_memsz = 0;
                 s.phdrs[1].p_filesz = 0;
               }), EINVAL, ENOMEM});
  v.push_back({"memsz_huge", With(StaticExec(), [](ElfSpec& s) { s.phdrs[1].p_memsz = ~0ull; }), EINVAL, ENOMEM});
  v.push_back({"misaligned_offset", With(StaticExec(), [](ElfSpec& s) { s.phdrs[1].p_offset = 0x1008; s.phdrs[1].p_filesz = 8; }),
               EINVAL, EINVAL});
  v.push_back({"overlapping_loads", With(StaticExec(), [](ElfSpec& s) { s.phdrs[1].p_vaddr = 0x400800; s.phdrs[1].p_offset = 0x800; }),
               ENOEXEC, ELIBBAD});
  v.push_back({"unsorted_loads", With(StaticExec(), [](ElfSpec& s) { std::swap(s.phdrs[0], s.phdrs[1]); }), ENOEXEC, ELIBBAD});
  v.push_back({"load_beyond_eof", With(StaticExec(), [](ElfSpec& s) { s.phdrs[1].p_filesz = 0x2000; }), ENOEXEC, ELIBBAD});
  v.push_back({"load_offset_overflow", With(StaticExec(), [](ElfSpec& s) {
                 s.phdrs[1].p_offset = ~0ull - 0xfff + 0x0;  // congruent with the vaddr
               }), ENOEXEC, ELIBBAD});
  v.push_back({"no_load", With(StaticExec(), [](ElfSpec& s) { s.phdrs.resize(0); s.phdrs.push_back(Phdr(PT_NOTE, 0, 0, 0, 0, 0, 4)); }),
               EINVAL, EINVAL});
  v.push_back({"pt_phdr_after_load", With(StaticExec(), [](ElfSpec& s) { s.phdrs.push_back(Phdr(PT_PHDR, PF_R, 64, 0x400040, 168, 168, 8)); }),
               ENOEXEC, ELIBBAD});
  v.push_back({"two_pt_phdr", With(StaticExec(), [](ElfSpec& s) {
                 s.phdrs.insert(s.phdrs.begin(), 2, Phdr(PT_PHDR, PF_R, 64, 0x400040, 168, 168, 8));
               }), ENOEXEC, ELIBBAD});
  return v;
}

TEST(ElfTest, HostileInputsGiveLinuxErrnos) {
  for (const Hostile& h : HostileCases()) {
    SCOPED_TRACE(h.name);
    const auto f = Build(h.spec);
    auto exe = testing::ParseBytes(f, ElfRole::kExecutable);
    ASSERT_FALSE(exe.ok());
    EXPECT_EQ(exe.err(), h.exe_errno) << ToString(exe.error());
    EXPECT_FALSE(exe.error().message.empty());
    auto interp = testing::ParseBytes(f, ElfRole::kInterpreter);
    ASSERT_FALSE(interp.ok());
    EXPECT_EQ(interp.err(), h.interp_errno) << ToString(interp.error());
  }
}

TEST(ElfTest, NotElfAndTruncatedHeaders) {
  const std::vector<uint8_t> empty, three = {0x7f, 'E', 'L'}, text = {'h', 'e', 'l', 'l', 'o'};
  for (const auto& f : {empty, three, text}) {
    EXPECT_EQ(testing::ParseBytes(f, ElfRole::kExecutable).err(), ENOEXEC);
    // The interpreter's 64-byte header read comes up short first.
    EXPECT_EQ(testing::ParseBytes(f, ElfRole::kInterpreter).err(), EIO);
  }
  const std::vector<uint8_t> long_text(100, 'x');
  EXPECT_EQ(testing::ParseBytes(long_text, ElfRole::kInterpreter).err(), ELIBBAD);
  // ELF magic, but the file ends inside the header: the executable's
  // zero-padded buffer gives ENOEXEC, the interpreter's short read EIO.
  const auto full = Build(testing::StaticExec());
  for (size_t n = 4; n < sizeof(Elf64_Ehdr); ++n) {
    std::vector<uint8_t> f(full.begin(), full.begin() + n);
    EXPECT_EQ(testing::ParseBytes(f, ElfRole::kExecutable).err(), ENOEXEC) << n;
    EXPECT_EQ(testing::ParseBytes(f, ElfRole::kInterpreter).err(), EIO) << n;
  }
}

TEST(ElfTest, PtInterpChecks) {
  auto pie = testing::Pie();
  const uint64_t off = pie.phdrs[1].p_offset;
  auto interp_of = [](const ElfSpec& s) { return testing::ParseBytes(Build(s), ElfRole::kExecutable); };

  auto no_nul = With(pie, [&](ElfSpec& s) { s.blobs.push_back({off + s.phdrs[1].p_filesz - 1, "X"}); });
  EXPECT_EQ(interp_of(no_nul).err(), ENOEXEC);
  auto too_short = With(pie, [](ElfSpec& s) { s.phdrs[1].p_filesz = 1; });
  EXPECT_EQ(interp_of(too_short).err(), ENOEXEC);
  auto too_long = With(pie, [](ElfSpec& s) { s.phdrs[1].p_filesz = kPathMax + 1; s.min_size = 0x3000; });
  EXPECT_EQ(interp_of(too_long).err(), ENOEXEC);
  auto beyond_eof = With(pie, [](ElfSpec& s) { s.phdrs[1].p_offset = 0x1018; s.phdrs[1].p_filesz = 0x100; });
  EXPECT_EQ(interp_of(beyond_eof).err(), EIO);
  auto overflow = With(pie, [](ElfSpec& s) { s.phdrs[1].p_offset = ~0ull - 4; });
  EXPECT_EQ(interp_of(overflow).err(), EIO);
  auto two = With(pie, [](ElfSpec& s) { s.phdrs.push_back(s.phdrs[1]); });
  EXPECT_EQ(interp_of(two).err(), ENOEXEC);

  // Linux opens the C string: an embedded NUL cuts the path.
  auto embedded = With(pie, [&](ElfSpec& s) { s.blobs.push_back({off + 4, std::string(1, '\0')}); });
  auto img = interp_of(embedded);
  ASSERT_TRUE(img.ok()) << ToString(img.error());
  EXPECT_EQ(img->interp, "/lib");
  auto empty = With(pie, [&](ElfSpec& s) { s.blobs.push_back({off, std::string(1, '\0')}); });
  img = interp_of(empty);
  ASSERT_TRUE(img.ok());
  EXPECT_TRUE(img->has_interp);
  EXPECT_EQ(img->interp, "");

  // An interpreter's own PT_INTERP is ignored, as load_elf_interp() does.
  auto as_interp = testing::ParseBytes(Build(no_nul), ElfRole::kInterpreter);
  ASSERT_TRUE(as_interp.ok()) << ToString(as_interp.error());
  EXPECT_FALSE(as_interp->has_interp);
}

TEST(ElfTest, AcceptsWhatLinuxAccepts) {
  using testing::StaticExec;
  // A misaligned p_offset is harmless when nothing is mapped from the file.
  auto bss_only = With(StaticExec(), [](ElfSpec& s) {
    s.phdrs[1].p_offset = 0x123;
    s.phdrs[1].p_filesz = 0;
  });
  EXPECT_TRUE(testing::ParseBytes(Build(bss_only), ElfRole::kExecutable).ok());
  // Segments may share a page when their bytes do not overlap.
  auto shared_page = With(StaticExec(), [](ElfSpec& s) {
    s.phdrs[0].p_filesz = s.phdrs[0].p_memsz = 0x800;
    s.phdrs[1].p_vaddr = 0x400800 + 0x10;
    s.phdrs[1].p_offset = 0x810;
  });
  EXPECT_TRUE(testing::ParseBytes(Build(shared_page), ElfRole::kExecutable).ok());
  // A program-header table at an odd offset, outside every PT_LOAD: AT_PHDR
  // is then the bare bias (Linux's phdr_addr stays 0).
  auto odd = With(StaticExec(), [](ElfSpec& s) {
    s.blobs.pop_back();
    s.phdrs[1].p_filesz = 0x100;
    s.phoff = 0x1009;
    s.min_size = 0x1100;
  });
  auto img = testing::ParseBytes(Build(odd), ElfRole::kExecutable);
  ASSERT_TRUE(img.ok()) << ToString(img.error());
  EXPECT_EQ(img->phdr_vaddr, 0x601009u);  // inside the data segment's file bytes
  auto outside = With(StaticExec(), [](ElfSpec& s) { s.phoff = 0x1020; s.min_size = 0x1200; });
  img = testing::ParseBytes(Build(outside), ElfRole::kExecutable);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->phdr_vaddr, 0u);
  // Exactly kMaxPhnum headers (more than a page of them: Linux 6.x allows 64 KiB).
  auto many = With(StaticExec(), [](ElfSpec& s) {
    while (s.phdrs.size() < kMaxPhnum) s.phdrs.push_back(Phdr(PT_NOTE, 0, 0, 0, 0, 0, 4));
    s.phoff = 0x2000;
  });
  auto many_img = testing::ParseBytes(Build(many), ElfRole::kExecutable);
  ASSERT_TRUE(many_img.ok()) << ToString(many_img.error());
  EXPECT_EQ(many_img->phnum, kMaxPhnum);
}

TEST(ElfTest, GnuStackAndAlignment) {
  using testing::StaticExec;
  auto exec_stack = With(StaticExec(), [](ElfSpec& s) { s.phdrs[2].p_flags = PF_R | PF_W | PF_X; });
  EXPECT_EQ(testing::ParseBytes(Build(exec_stack), ElfRole::kExecutable)->stack_exec, StackExec::kExec);
  auto none = With(StaticExec(), [](ElfSpec& s) { s.phdrs.pop_back(); });
  EXPECT_EQ(testing::ParseBytes(Build(none), ElfRole::kExecutable)->stack_exec, StackExec::kDefault);
  auto last_wins = With(exec_stack, [](ElfSpec& s) { s.phdrs.push_back(testing::Phdr(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16)); });
  EXPECT_EQ(testing::ParseBytes(Build(last_wins), ElfRole::kExecutable)->stack_exec, StackExec::kNonExec);

  auto huge = With(StaticExec(), [](ElfSpec& s) {
    s.phdrs[0].p_align = 0x200000;
    s.phdrs[1].p_align = 0x300000;  // not a power of two: ignored
  });
  EXPECT_EQ(testing::ParseBytes(Build(huge), ElfRole::kExecutable)->max_align, 0x200000u);
  auto zero = With(StaticExec(), [](ElfSpec& s) { s.phdrs[0].p_align = s.phdrs[1].p_align = 0; });
  EXPECT_EQ(testing::ParseBytes(Build(zero), ElfRole::kExecutable)->max_align, 0u);
  auto one = With(StaticExec(), [](ElfSpec& s) { s.phdrs[0].p_align = s.phdrs[1].p_align = 1; });
  EXPECT_EQ(testing::ParseBytes(Build(one), ElfRole::kExecutable)->max_align, kPageSize);
}

// Every prefix of a real executable, presented as the whole file, and every
// single-byte corruption of its first 1 KiB: never a crash (ASan), and every
// success has sane, in-file segments.
TEST(ElfTest, TruncationsAndCorruptionsOfARealBinary) {
  if (!testing::IsFile(kTrue)) GTEST_SKIP();
  const auto f = testing::ReadAll(kTrue);
  for (size_t n = 0; n <= std::min<size_t>(f.size(), 2048); ++n) {
    std::vector<uint8_t> cut(f.begin(), f.begin() + n);
    auto img = testing::ParseBytes(cut, ElfRole::kExecutable);
    EXPECT_FALSE(img.ok()) << n;  // the segments reach past any such prefix
  }
  int ok = 0;
  for (size_t i = 0; i < std::min<size_t>(f.size(), 1024); ++i) {
    for (uint8_t v : {uint8_t{0}, uint8_t{0xff}, static_cast<uint8_t>(f[i] ^ 0x80)}) {
      auto g = f;
      g[i] = v;
      auto img = testing::ParseBytes(g, ElfRole::kExecutable);
      if (!img.ok()) continue;
      ++ok;
      for (const auto& l : img->loads) {
        EXPECT_LE(l.p_filesz, l.p_memsz);
        EXPECT_LE(l.p_vaddr + l.p_memsz, kTaskSize);
        if (l.p_filesz) {
          EXPECT_LE(l.p_offset + l.p_filesz, g.size());
        }
      }
    }
  }
  EXPECT_GT(ok, 100);  // most bytes (section data, padding) do not matter
}

}  // namespace
}  // namespace bulkhead::loader
