#include "services/syscall-router/platform/test_loader.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <stdexcept>

#include "base/error.h"
#include "base/fd.h"

namespace bulkhead::router::platform::testing {
namespace {

constexpr uint64_t kPage = 4096;

uint64_t PageDown(uint64_t v) { return v & ~(kPage - 1); }
uint64_t PageUp(uint64_t v) { return (v + kPage - 1) & ~(kPage - 1); }

[[noreturn]] void Bad(const std::string& why) { throw std::runtime_error("test loader: " + why); }

int ProtOf(uint32_t p_flags) {
  int prot = 0;
  if (p_flags & PF_R) prot |= PROT_READ;
  if (p_flags & PF_W) prot |= PROT_WRITE;
  if (p_flags & PF_X) prot |= PROT_EXEC;
  return prot;
}

void Check(long rc, const char* call, const std::string& what) {
  if (rc < 0) throw SysError(static_cast<int>(-rc), call, "test loader, " + what);
}

}  // namespace

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  UniqueFd fd(CheckSys(::open(path.c_str(), O_RDONLY | O_CLOEXEC), "open", path));
  struct stat st {};
  CheckSys(::fstat(fd.get(), &st), "fstat", path);
  std::vector<uint8_t> out(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = RetryEintr([&] { return ::read(fd.get(), out.data() + done, out.size() - done); });
    if (n < 0) throw SysError(errno, "read", path);
    if (n == 0) Bad(path + ": shorter than its size");
    done += static_cast<size_t>(n);
  }
  return out;
}

LoadedImage LoadStaticElf(AddressSpace& as, const std::vector<uint8_t>& image,
                          const LoadOptions& options) {
  if (image.size() < sizeof(Elf64_Ehdr)) Bad("file too small for an ELF header");
  Elf64_Ehdr eh;
  std::memcpy(&eh, image.data(), sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) Bad("not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    Bad("not ELF64 little-endian");
  if (eh.e_machine != EM_X86_64) Bad("not x86-64");
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
    Bad("not an executable (e_type " + std::to_string(eh.e_type) + ")");
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) Bad("unexpected e_phentsize");
  if (eh.e_phnum == 0 || eh.e_phnum > 256) Bad("unreasonable e_phnum");
  if (eh.e_phoff > image.size() ||
      image.size() - eh.e_phoff < uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr)) {
    Bad("program headers outside the file");
  }
  const uint64_t bias = eh.e_type == ET_DYN ? options.pie_bias : 0;

  std::vector<Elf64_Phdr> phdrs(eh.e_phnum);
  std::memcpy(phdrs.data(), image.data() + eh.e_phoff, phdrs.size() * sizeof(Elf64_Phdr));

  LoadedImage out;
  out.entry = eh.e_entry + bias;
  out.phnum = eh.e_phnum;

  // Permissions per page (union where two segments share a page).
  std::map<uint64_t, int> page_prot;
  uint64_t highest = 0;
  for (const Elf64_Phdr& ph : phdrs) {
    if (ph.p_type == PT_INTERP)
      Bad("dynamically linked (PT_INTERP): only static executables are loaded");
    if (ph.p_type == PT_PHDR) out.phdr = ph.p_vaddr + bias;
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz) Bad("PT_LOAD with p_filesz > p_memsz");
    if (ph.p_offset > image.size() || image.size() - ph.p_offset < ph.p_filesz)
      Bad("PT_LOAD outside the file");
    const uint64_t start = ph.p_vaddr + bias;
    if (start + ph.p_memsz < start || start + ph.p_memsz > (1ULL << 47))
      Bad("PT_LOAD beyond user space");
    for (uint64_t pg = PageDown(start); pg < PageUp(start + ph.p_memsz); pg += kPage) {
      page_prot[pg] |= ProtOf(ph.p_flags);
    }
    highest = std::max(highest, start + ph.p_memsz);
    // AT_PHDR without PT_PHDR: the headers as mapped by the segment holding them.
    if (out.phdr == 0 && eh.e_phoff >= ph.p_offset && eh.e_phoff < ph.p_offset + ph.p_filesz) {
      out.phdr = start + (eh.e_phoff - ph.p_offset);
    }
  }
  if (page_prot.empty()) Bad("no PT_LOAD segment");
  out.brk_start = PageUp(highest);

  // 1. Map contiguous page runs read-write.
  auto for_runs = [&](bool by_prot, auto&& fn) {
    auto it = page_prot.begin();
    while (it != page_prot.end()) {
      const uint64_t run_start = it->first;
      const int prot = it->second;
      uint64_t run_end = run_start + kPage;
      auto next = std::next(it);
      while (next != page_prot.end() && next->first == run_end &&
             (!by_prot || next->second == prot)) {
        run_end += kPage;
        ++next;
      }
      fn(run_start, run_end, prot);
      it = next;
    }
  };
  for_runs(false, [&](uint64_t s, uint64_t e, int) {
    Check(as.Mmap(s, e - s, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
          "mmap", "segment");
    out.mappings.push_back({s, e});
  });
  // 2. Copy the file bytes (the rest, bss, is already zero).
  for (const Elf64_Phdr& ph : phdrs) {
    if (ph.p_type != PT_LOAD || ph.p_filesz == 0) continue;
    if (!as.CopyOut(ph.p_vaddr + bias, image.data() + ph.p_offset, ph.p_filesz)) {
      throw SysError(EFAULT, "WriteMemory", "test loader, segment bytes");
    }
  }
  // 3. Final permissions.
  for_runs(true, [&](uint64_t s, uint64_t e, int prot) {
    if (prot != (PROT_READ | PROT_WRITE)) Check(as.Mprotect(s, e - s, prot), "mprotect", "segment");
  });

  // The stack.
  const uint64_t top = options.stack_top & ~uint64_t{15};
  const uint64_t stack_low = PageDown(top - options.stack_size);
  Check(as.Mmap(stack_low, PageUp(top) - stack_low, PROT_READ | PROT_WRITE,
                MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
        "mmap", "stack");
  out.mappings.push_back({stack_low, PageUp(top)});

  // Strings area, top down: "x86_64", AT_RANDOM bytes, envp and argv strings.
  std::vector<uint8_t> strings;
  auto add = [&](const void* data, size_t n) {
    const size_t at = strings.size();
    strings.insert(strings.end(), static_cast<const uint8_t*>(data),
                   static_cast<const uint8_t*>(data) + n);
    return at;  // offset within the strings area
  };
  std::vector<size_t> argv_off, envp_off;
  for (const std::string& a : options.argv) argv_off.push_back(add(a.c_str(), a.size() + 1));
  for (const std::string& e : options.envp) envp_off.push_back(add(e.c_str(), e.size() + 1));
  const size_t platform_off = add("x86_64", 7);
  uint8_t random[16];
  for (size_t i = 0; i < sizeof random; ++i) random[i] = static_cast<uint8_t>(0x5a ^ (i * 37));
  const size_t random_off = add(random, sizeof random);
  const uint64_t strings_at = (top - strings.size()) & ~uint64_t{15};
  auto addr_of = [&](size_t off) { return strings_at + off; };
  out.random = addr_of(random_off);

  const uint64_t execfn = options.argv.empty() ? 0 : addr_of(argv_off[0]);
  const std::vector<std::pair<uint64_t, uint64_t>> auxv = {
      {AT_PHDR, out.phdr},
      {AT_PHENT, sizeof(Elf64_Phdr)},
      {AT_PHNUM, eh.e_phnum},
      {AT_PAGESZ, kPage},
      {AT_BASE, 0},
      {AT_FLAGS, 0},
      {AT_ENTRY, out.entry},
      {AT_UID, 0},
      {AT_EUID, 0},
      {AT_GID, 0},
      {AT_EGID, 0},
      {AT_SECURE, 0},
      {AT_RANDOM, out.random},
      {AT_HWCAP, ::getauxval(AT_HWCAP)},
      {AT_HWCAP2, ::getauxval(AT_HWCAP2)},
      {AT_CLKTCK, 100},
      {AT_PLATFORM, addr_of(platform_off)},
      {AT_EXECFN, execfn},
      {AT_NULL, 0},
  };
  std::vector<uint64_t> words;
  words.push_back(options.argv.size());
  for (size_t off : argv_off) words.push_back(addr_of(off));
  words.push_back(0);
  for (size_t off : envp_off) words.push_back(addr_of(off));
  words.push_back(0);
  for (const auto& [type, value] : auxv) {
    words.push_back(type);
    words.push_back(value);
  }
  const uint64_t sp = (strings_at - words.size() * 8) & ~uint64_t{15};
  if (sp < stack_low + kPage) Bad("arguments do not fit the stack");
  std::vector<uint8_t> block(top - sp, 0);
  std::memcpy(block.data(), words.data(), words.size() * 8);
  std::memcpy(block.data() + (strings_at - sp), strings.data(), strings.size());
  if (!as.CopyOut(sp, block.data(), block.size()))
    throw SysError(EFAULT, "WriteMemory", "test loader, stack");
  out.stack_pointer = sp;
  return out;
}

}  // namespace bulkhead::router::platform::testing
