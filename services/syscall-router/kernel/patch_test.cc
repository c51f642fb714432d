#include "services/syscall-router/kernel/patch.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

namespace bulkhead::router {
namespace {

TEST(Patch, RecognisesTheTwoSiteForms) {
  const uint8_t getpid[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05};
  auto p = PatchableSite(std::span<const uint8_t, kSiteLen>(getpid));
  ASSERT_TRUE(p);
  EXPECT_EQ(PrefixNumber(*p), 39u);
  const uint8_t generic[] = {0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05};  // glibc's syscall()
  p = PatchableSite(std::span<const uint8_t, kSiteLen>(generic));
  ASSERT_TRUE(p);
  EXPECT_FALSE(PrefixNumber(*p));
  const uint8_t movrax[] = {0x48, 0xc7, 0xc0, 39, 0, 0x0f, 0x05};  // mov $39, %rax: other bytes
  EXPECT_FALSE(PatchableSite(std::span<const uint8_t, kSiteLen>(movrax)));
  const uint8_t sysenter[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x34};
  EXPECT_FALSE(PatchableSite(std::span<const uint8_t, kSiteLen>(sysenter)));
}

TEST(Patch, AJumpEndsInUd2SoAPreemptedThreadTraps) {
  for (uint32_t i : {0u, 1u, 4095u, kPatchSites - 1}) {
    auto j = SiteJump(i);
    EXPECT_EQ(j[0], 0xff);
    EXPECT_EQ(j[5], 0x0f);
    EXPECT_EQ(j[6], 0x0b);
    uint32_t disp;
    std::memcpy(&disp, &j[3], 4);
    EXPECT_EQ(disp, TableEntry(i));
  }
  EXPECT_TRUE(InPatchArea(ThunkAddress(kPatchSites - 1)));
  EXPECT_FALSE(InPatchArea(kPatchTable + kPatchAreaSize));
}

// The encodings, run natively: a patched site jumps through the table into a
// thunk and comes back after the site.
class PatchRun : public ::testing::Test {
 protected:
  void SetUp() override {
    void* p = ::mmap(reinterpret_cast<void*>(kPatchTable), kPatchAreaSize, PROT_READ | PROT_WRITE | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED) GTEST_SKIP() << "0x0b0f0000 is taken in this process";
    area_ = p;
    code_ = static_cast<uint8_t*>(
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(code_, MAP_FAILED);
  }
  void TearDown() override {
    if (area_) ::munmap(area_, kPatchAreaSize);
    if (code_) ::munmap(code_, 4096);
  }
  // A function whose body is site `index` followed by `ret`, with the thunk
  // and table entry in place; `slow` points the entry at the slow half.
  long Call(uint32_t index, uint32_t nr, uint64_t fast_entry, bool slow) {
    SitePrefix mov{0xb8};
    std::memcpy(&mov[1], &nr, 4);
    uint8_t* site = code_ + 100;
    auto j = SiteJump(index);
    std::memcpy(site, j.data(), j.size());
    site[kSiteLen] = 0xc3;
    auto t = Thunk(mov, reinterpret_cast<uint64_t>(site + kSiteLen), fast_entry);
    std::memcpy(reinterpret_cast<void*>(ThunkAddress(index)), t.data(), t.size());
    const uint64_t target = ThunkAddress(index) + (slow ? kPatchThunkSize / 2 : 0);
    std::memcpy(reinterpret_cast<void*>(TableEntry(index)), &target, 8);
    return reinterpret_cast<long (*)()>(site)();
  }
  void* area_ = nullptr;
  uint8_t* code_ = nullptr;
};

TEST_F(PatchRun, SlowHalfMakesTheOriginalCall) {
  EXPECT_EQ(Call(3, SYS_getpid, 0, true), ::getpid());
  EXPECT_EQ(Call(kPatchSites - 1, SYS_getppid, 0, true), ::getppid());
}

TEST_F(PatchRun, FastHalfEntersWithNumberAndReturnAddress) {
  // A stand-in fast entry: rax = 2 * rax, then back to rcx.
  uint8_t* entry = code_ + 2048;
  const uint8_t body[] = {0x48, 0x01, 0xc0,  // add %rax, %rax
                          0xff, 0xe1};       // jmp *%rcx
  std::memcpy(entry, body, sizeof body);
  EXPECT_EQ(Call(7, 21, reinterpret_cast<uint64_t>(entry), false), 42);
}

}  // namespace
}  // namespace bulkhead::router
