#include "services/syscall-router/kernel/patch.h"

#include <cstring>

namespace bulkhead::router {
namespace {

void Put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void Put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }

}  // namespace

std::optional<SitePrefix> PatchableSite(std::span<const uint8_t, kSiteLen> b) {
  if (b[5] != 0x0f || b[6] != 0x05) return std::nullopt;
  SitePrefix p;
  std::memcpy(p.data(), b.data(), p.size());
  static constexpr SitePrefix kLoadR9FromStack{0x4c, 0x8b, 0x4c, 0x24, 0x08};  // mov 0x8(%rsp), %r9
  if (p[0] == 0xb8 || p == kLoadR9FromStack) return p;
  return std::nullopt;
}

std::optional<uint32_t> PrefixNumber(const SitePrefix& p) {
  if (p[0] != 0xb8) return std::nullopt;
  uint32_t nr;
  std::memcpy(&nr, &p[1], 4);
  return nr;
}

std::array<uint8_t, kSiteLen> SiteJump(uint32_t index) {
  // ff /4 with a SIB byte and no base: jmp *disp32. The displacement's high
  // half is 0x0b0f, so bytes 5 and 6 read `0f 0b` (ud2).
  static_assert((kPatchTable >> 16) == 0x0b0f && kPatchSites * 8 <= 0x10000);
  std::array<uint8_t, kSiteLen> j{0xff, 0x24, 0x25};
  Put32(&j[3], static_cast<uint32_t>(TableEntry(index)));
  return j;
}

std::array<uint8_t, kPatchThunkSize> Thunk(const SitePrefix& prefix, uint64_t ret, uint64_t fast_entry) {
  std::array<uint8_t, kPatchThunkSize> t{};
  t.fill(0xcc);  // int3 between the halves
  uint8_t* f = t.data();
  std::memcpy(f, prefix.data(), prefix.size());  // the site's first instruction
  f[5] = 0x48;  // movabs $ret, %rcx
  f[6] = 0xb9;
  Put64(f + 7, ret);
  f[15] = 0xff;  // jmp *0(%rip)
  f[16] = 0x25;
  Put32(f + 17, 0);
  Put64(f + 21, fast_entry);
  uint8_t* s = t.data() + kPatchThunkSize / 2;
  std::memcpy(s, prefix.data(), prefix.size());
  s[5] = 0x0f;  // syscall
  s[6] = 0x05;
  s[7] = 0xff;  // jmp *0(%rip)
  s[8] = 0x25;
  Put32(s + 9, 0);
  Put64(s + 13, ret);
  return t;
}

}  // namespace bulkhead::router
