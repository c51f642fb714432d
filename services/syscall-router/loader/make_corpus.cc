// Writes the seed corpus of elf_fuzz: small hand-made files (a few hundred
// bytes each) that reach every stage of the loader: valid static, PIE and
// interpreter images, program headers beyond the first page, #! scripts, and
// a few hostile variants. Nothing is copied from real binaries.
//
//   bazel run //services/syscall-router/loader:make_corpus -- "$PWD/services/syscall-router/loader/corpus/elf"
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "services/syscall-router/loader/testing/elf_builder.h"

namespace {

using namespace bulkhead::loader::testing;

ElfSpec CompactStatic() {
  ElfSpec s;
  s.type = ET_EXEC;
  s.entry = 0x4000e8;
  s.phdrs = {
      Load(PF_R | PF_X, 0, 0x400000, 0x100, 0x100),
      Load(PF_R | PF_W, 0x100, 0x601100, 0x20, 0x2000),
      Phdr(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16),
  };
  s.blobs = {{0xe8, ExitCode()}, {0x100, std::string(0x20, 'D')}};
  return s;
}

ElfSpec CompactPie(const std::string& interp) {
  ElfSpec s;
  s.type = ET_DYN;
  s.entry = 0x1e0;
  s.phdrs = {
      Phdr(PT_PHDR, PF_R, 0x40, 0x40, 5 * sizeof(Elf64_Phdr), 5 * sizeof(Elf64_Phdr), 8),
      Phdr(PT_INTERP, PF_R, 0x180, 0x180, interp.size() + 1, interp.size() + 1, 1),
      Load(PF_R | PF_X, 0, 0, 0x200, 0x200),
      Load(PF_R | PF_W, 0x200, 0x1200, 0x40, 0x1000),
      Phdr(PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 16),
  };
  s.blobs = {{0x180, interp + std::string(1, '\0')}, {0x1e0, ExitCode()}};
  s.min_size = 0x240;
  return s;
}

ElfSpec CompactInterp() {
  ElfSpec s;
  s.type = ET_DYN;
  s.entry = 0x100;
  s.phdrs = {
      Load(PF_R | PF_X, 0, 0, 0x180, 0x180, 0x1000),
      Load(PF_R | PF_W, 0x180, 0x1180, 0x40, 0x3000, 0x200000),
      Phdr(PT_DYNAMIC, PF_R | PF_W, 0x180, 0x1180, 0x10, 0x10, 8),
  };
  s.blobs = {{0x100, ExitCode()}};
  s.min_size = 0x1c0;
  return s;
}

std::string Str(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  std::vector<std::pair<std::string, std::string>> seeds;
  auto elf = [&](const char* name, const ElfSpec& s) { seeds.emplace_back(name, Str(Build(s))); };

  elf("static_exec", CompactStatic());
  elf("pie_interp", CompactPie("/lib64/ld-linux-x86-64.so.2"));
  elf("pie_self_interp", CompactPie("/exe"));
  elf("interp_dyn", CompactInterp());
  {
    ElfSpec s = CompactStatic();
    s.phdrs[2].p_flags |= PF_X;  // executable stack
    s.phdrs.push_back(Phdr(PT_TLS, PF_R, 0x100, 0x601100, 0x8, 0x40, 8));
    s.phdrs.push_back(Phdr(PT_NOTE, PF_R, 0xc0, 0x4000c0, 0x20, 0x20, 4));
    s.phdrs.push_back(Phdr(PT_GNU_PROPERTY, PF_R, 0xc0, 0x4000c0, 0x20, 0x20, 8));
    s.phdrs.push_back(Load(PF_R | PF_W, 0x777, 0x800000, 0, 0x10000));  // bss only
    s.phoff = 0x130;
    elf("exec_stack_many_phdrs", s);
  }
  {
    ElfSpec s = CompactStatic();
    s.phoff = 0xe00;  // beyond a short head: needs a second read
    s.phdrs[1].p_offset = 0xd00;
    s.phdrs[1].p_vaddr = 0x601d00;
    elf("phdrs_far", s);
  }
  {
    ElfSpec s = CompactStatic();
    s.phdrs[1].p_vaddr = 0x400080;  // overlaps the text
    s.phdrs[1].p_offset = 0x80;
    elf("hostile_overlap", s);
  }
  {
    ElfSpec s = CompactStatic();
    s.phdrs[1].p_memsz = 0x10;  // p_filesz > p_memsz
    elf("hostile_filesz", s);
  }
  {
    ElfSpec s = CompactStatic();
    s.phdrs[1].p_vaddr = 0xfffffffffffff100ull;  // wraps
    elf("hostile_vaddr_wrap", s);
  }
  {
    ElfSpec s = CompactStatic();
    s.phdrs[1].p_offset = 0x108;  // p_offset and p_vaddr disagree modulo 4096
    elf("hostile_misaligned", s);
  }
  {
    ElfSpec s = CompactPie("/lib64/ld-linux-x86-64.so.2");
    s.blobs.push_back({0x180 + 27, "X"});  // PT_INTERP without its NUL
    elf("hostile_interp_nul", s);
  }
  {
    ElfSpec s = CompactStatic();
    s.phnum = 74;
    elf("hostile_phnum", s);
  }
  seeds.emplace_back("script_arg", "#!/interp -x\necho body\n");
  seeds.emplace_back("script_self", "#!/exe\n");
  seeds.emplace_back("script_blank", "#!  \t \n");
  seeds.emplace_back("script_long", "#!/" + std::string(300, 'p'));
  seeds.emplace_back("args_nul_separated", std::string("prog\0-v\0--x=1\0HOME=/\0PATH=/bin\0", 31));

  size_t total = 0;
  for (const auto& [name, bytes] : seeds) {
    std::ofstream f(std::string(argv[1]) + "/" + name, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", name.c_str());
      return 1;
    }
    total += bytes.size();
  }
  std::printf("%zu seeds, %zu bytes\n", seeds.size(), total);
  return 0;
}
