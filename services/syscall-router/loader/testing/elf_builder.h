// Crafts small x86-64 ELF files for tests, the fuzz seeds and the
// hostile-input tables: a header, a program-header table, and bytes placed
// at chosen offsets. Nothing is validated: that is the point.
#pragma once

#include <elf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bulkhead::loader::testing {

struct ElfSpec {
  uint8_t ei_class = ELFCLASS64;
  uint8_t ei_data = ELFDATA2LSB;
  uint8_t ei_version = EV_CURRENT;
  uint16_t type = ET_EXEC;
  uint16_t machine = EM_X86_64;
  uint32_t version = EV_CURRENT;
  uint64_t entry = 0x401000;
  uint64_t phoff = sizeof(Elf64_Ehdr);
  uint16_t phentsize = sizeof(Elf64_Phdr);
  std::optional<uint16_t> phnum;  // default: phdrs.size()
  std::vector<Elf64_Phdr> phdrs;
  std::vector<std::pair<uint64_t, std::string>> blobs;  // bytes at file offsets
  uint64_t min_size = 0;                                // pad the file with zeros to at least this
  std::optional<uint64_t> truncate;                     // then cut it to this size
};

inline Elf64_Phdr Phdr(uint32_t type, uint32_t flags, uint64_t offset, uint64_t vaddr, uint64_t filesz,
                       uint64_t memsz, uint64_t align) {
  Elf64_Phdr p{};
  p.p_type = type;
  p.p_flags = flags;
  p.p_offset = offset;
  p.p_vaddr = vaddr;
  p.p_paddr = vaddr;
  p.p_filesz = filesz;
  p.p_memsz = memsz;
  p.p_align = align;
  return p;
}

inline Elf64_Phdr Load(uint32_t flags, uint64_t offset, uint64_t vaddr, uint64_t filesz, uint64_t memsz,
                       uint64_t align = 0x1000) {
  return Phdr(PT_LOAD, flags, offset, vaddr, filesz, memsz, align);
}

inline std::vector<uint8_t> Build(const ElfSpec& s) {
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = s.ei_class;
  eh.e_ident[EI_DATA] = s.ei_data;
  eh.e_ident[EI_VERSION] = s.ei_version;
  eh.e_type = s.type;
  eh.e_machine = s.machine;
  eh.e_version = s.version;
  eh.e_entry = s.entry;
  eh.e_phoff = s.phoff;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = s.phentsize;
  eh.e_phnum = s.phnum.value_or(static_cast<uint16_t>(s.phdrs.size()));

  std::vector<uint8_t> out(std::max<uint64_t>(s.min_size, sizeof eh));
  auto put = [&out](uint64_t off, const void* p, size_t n) {
    if (out.size() < off + n) out.resize(off + n);
    std::memcpy(out.data() + off, p, n);
  };
  put(0, &eh, sizeof eh);
  // A table at an absurd offset is left out (the header still says where).
  if (s.phoff < (uint64_t{1} << 24)) {
    for (size_t i = 0; i < s.phdrs.size(); ++i) put(s.phoff + i * sizeof(Elf64_Phdr), &s.phdrs[i], sizeof(Elf64_Phdr));
  }
  for (const auto& [off, bytes] : s.blobs) put(off, bytes.data(), bytes.size());
  if (s.truncate) out.resize(*s.truncate);
  return out;
}

// x86-64 for exit(0): mov $60,%eax; xor %edi,%edi; syscall.
inline std::string ExitCode() { return std::string("\xb8\x3c\x00\x00\x00\x31\xff\x0f\x05", 9); }

// A static ET_EXEC: text at 0x400000 (the whole first page of the file,
// code at 0x400200 + entry) and a data page with a bss.
inline ElfSpec StaticExec() {
  ElfSpec s;
  s.type = ET_EXEC;
  s.entry = 0x400200;
  s.phdrs = {
      Load(PF_R | PF_X, 0, 0x400000, 0x1000, 0x1000),
      Load(PF_R | PF_W, 0x1000, 0x601000, 0x20, 0x3000),
      Phdr(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16),
  };
  s.blobs = {{0x200, ExitCode()}, {0x1000, std::string(0x20, 'D')}};
  return s;
}

// A PIE (ET_DYN with PT_PHDR and PT_INTERP).
inline ElfSpec Pie(const std::string& interp = "/lib64/ld-linux-x86-64.so.2") {
  ElfSpec s;
  s.type = ET_DYN;
  s.entry = 0x1000;
  const uint64_t interp_off = 0x200;  // room for more program headers before it
  s.phdrs = {
      Phdr(PT_PHDR, PF_R, 0x40, 0x40, 4 * sizeof(Elf64_Phdr), 4 * sizeof(Elf64_Phdr), 8),
      Phdr(PT_INTERP, PF_R, interp_off, interp_off, interp.size() + 1, interp.size() + 1, 1),
      Load(PF_R | PF_X, 0, 0, 0x1010, 0x1010),
      Load(PF_R | PF_W, 0x1010, 0x2010, 0x10, 0x100),
  };
  s.blobs = {{interp_off, interp + std::string(1, '\0')}, {0x1000, ExitCode()}};
  s.min_size = 0x1020;
  return s;
}

// An interpreter-like ET_DYN without PT_INTERP.
inline ElfSpec Interp() {
  ElfSpec s;
  s.type = ET_DYN;
  s.entry = 0x1000;
  s.phdrs = {
      Load(PF_R | PF_X, 0, 0, 0x1010, 0x1010),
      Load(PF_R | PF_W, 0x1010, 0x2010, 0x10, 0x2000),
  };
  s.blobs = {{0x1000, ExitCode()}};
  s.min_size = 0x1020;
  return s;
}

}  // namespace bulkhead::loader::testing
