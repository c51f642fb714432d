#include "services/syscall-router/platform/test_loader.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>

#include "base/error.h"
#include "services/syscall-router/platform/ptrace_platform.h"

namespace bulkhead::router::platform::testing {
namespace {

std::string Runfile(const std::string& name) {
  const std::string rel = "services/syscall-router/platform/" + name;
  if (::access(rel.c_str(), R_OK) == 0) return rel;
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/bulkhead/" + rel;
}

uint64_t ReadU64(AddressSpace& as, uint64_t addr) {
  uint64_t v = 0;
  EXPECT_TRUE(as.CopyIn(addr, &v, sizeof v)) << std::hex << addr;
  return v;
}

class TestLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    platform_ = NewPtracePlatform();
    as_ = platform_->NewAddressSpace();
  }
  std::unique_ptr<Platform> platform_;
  std::unique_ptr<AddressSpace> as_;
};

TEST_F(TestLoaderTest, SegmentsHoldTheFileBytes) {
  const std::vector<uint8_t> image = ReadFileBytes(Runfile("test_app_raw"));
  LoadOptions opts;
  opts.argv = {"test_app_raw"};
  LoadedImage img = LoadStaticElf(*as_, image, opts);

  Elf64_Ehdr eh;
  std::memcpy(&eh, image.data(), sizeof eh);
  EXPECT_EQ(img.entry, eh.e_entry);
  EXPECT_EQ(img.phnum, eh.e_phnum);
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, image.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD) continue;
    std::vector<uint8_t> mem(ph.p_filesz);
    ASSERT_TRUE(as_->CopyIn(ph.p_vaddr, mem.data(), mem.size()));
    EXPECT_EQ(0, std::memcmp(mem.data(), image.data() + ph.p_offset, ph.p_filesz))
        << "segment " << i;
    // bss is zero.
    if (ph.p_memsz > ph.p_filesz) {
      uint8_t z = 0xff;
      ASSERT_TRUE(as_->CopyIn(ph.p_vaddr + ph.p_filesz, &z, 1));
      EXPECT_EQ(z, 0);
    }
    // Final protections: read-only segments refuse writes (copyout rules).
    uint8_t b = 0;
    const bool writable = (ph.p_flags & PF_W) != 0;
    EXPECT_EQ(as_->WriteMemory(ph.p_vaddr, &b, 0 + 1) == 1, writable) << "segment " << i;
  }
  // The headers as AT_PHDR sees them.
  Elf64_Phdr first;
  ASSERT_TRUE(as_->CopyIn(img.phdr, &first, sizeof first));
  Elf64_Phdr file_first;
  std::memcpy(&file_first, image.data() + eh.e_phoff, sizeof file_first);
  EXPECT_EQ(0, std::memcmp(&first, &file_first, sizeof first));
  EXPECT_EQ(img.brk_start % 4096, 0u);
  EXPECT_GT(img.brk_start, img.entry);
}

TEST_F(TestLoaderTest, StackFollowsTheSystemVLayout) {
  const std::vector<uint8_t> image = ReadFileBytes(Runfile("hello_static"));
  LoadOptions opts;
  opts.argv = {"hello", "one", "two"};
  opts.envp = {"A=1"};
  LoadedImage img = LoadStaticElf(*as_, image, opts);
  EXPECT_EQ(img.stack_pointer % 16, 0u);
  EXPECT_LT(img.stack_pointer, opts.stack_top);

  uint64_t p = img.stack_pointer;
  ASSERT_EQ(ReadU64(*as_, p), 3u);  // argc
  p += 8;
  for (const std::string& a : opts.argv) {
    EXPECT_EQ(as_->ReadCString(ReadU64(*as_, p), 100), a);
    p += 8;
  }
  EXPECT_EQ(ReadU64(*as_, p), 0u);
  p += 8;
  EXPECT_EQ(as_->ReadCString(ReadU64(*as_, p), 100), "A=1");
  p += 8;
  EXPECT_EQ(ReadU64(*as_, p), 0u);
  p += 8;
  std::map<uint64_t, uint64_t> aux;
  for (;;) {
    uint64_t type = ReadU64(*as_, p), value = ReadU64(*as_, p + 8);
    p += 16;
    if (type == AT_NULL) break;
    aux[type] = value;
    ASSERT_LT(aux.size(), 64u);
  }
  EXPECT_EQ(aux[AT_PAGESZ], 4096u);
  EXPECT_EQ(aux[AT_ENTRY], img.entry);
  EXPECT_EQ(aux[AT_PHDR], img.phdr);
  EXPECT_EQ(aux[AT_PHNUM], img.phnum);
  EXPECT_EQ(aux[AT_PHENT], sizeof(Elf64_Phdr));
  EXPECT_EQ(aux[AT_RANDOM], img.random);
  EXPECT_EQ(aux[AT_SECURE], 0u);
  EXPECT_EQ(as_->ReadCString(aux[AT_PLATFORM], 16), "x86_64");
  EXPECT_EQ(as_->ReadCString(aux[AT_EXECFN], 16), "hello");
  uint8_t random[16];
  EXPECT_TRUE(as_->CopyIn(aux[AT_RANDOM], random, sizeof random));
}

TEST_F(TestLoaderTest, RefusesWhatItCannotLoad) {
  LoadOptions opts;
  opts.argv = {"x"};
  // A dynamic executable (the test binary itself).
  const std::vector<uint8_t> dynamic = ReadFileBytes("/proc/self/exe");
  EXPECT_THROW(LoadStaticElf(*as_, dynamic, opts), std::runtime_error);
  // Not ELF, truncated.
  EXPECT_THROW(LoadStaticElf(*as_, std::vector<uint8_t>(100, 'x'), opts), std::runtime_error);
  std::vector<uint8_t> raw = ReadFileBytes(Runfile("test_app_raw"));
  EXPECT_THROW(LoadStaticElf(*as_, std::vector<uint8_t>(raw.begin(), raw.begin() + 40), opts),
               std::runtime_error);
  // Program headers pointing past the end of the file.
  std::vector<uint8_t> bad = raw;
  Elf64_Ehdr eh;
  std::memcpy(&eh, bad.data(), sizeof eh);
  eh.e_phoff = bad.size() - 8;
  std::memcpy(bad.data(), &eh, sizeof eh);
  EXPECT_THROW(LoadStaticElf(*as_, bad, opts), std::runtime_error);
  // A segment whose file bytes lie outside the file.
  bad = raw;
  std::memcpy(&eh, bad.data(), sizeof eh);
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, bad.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD) continue;
    ph.p_filesz = bad.size() * 2;
    ph.p_memsz = ph.p_filesz;
    std::memcpy(bad.data() + eh.e_phoff + i * sizeof ph, &ph, sizeof ph);
    break;
  }
  EXPECT_THROW(LoadStaticElf(*as_, bad, opts), std::runtime_error);
  EXPECT_THROW(ReadFileBytes("/nonexistent/file"), SysError);
}

}  // namespace
}  // namespace bulkhead::router::platform::testing
