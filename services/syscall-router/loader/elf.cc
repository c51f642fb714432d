#include "services/syscall-router/loader/elf.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "base/error.h"

namespace bulkhead::loader {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the loader reads ELFDATA2LSB in place");
static_assert(sizeof(Elf64_Ehdr) == 64 && sizeof(Elf64_Phdr) == 56);

std::string ToString(const LoadError& e) {
  return std::string(ErrnoName(e.err)) + ": " + e.message + (e.fatal ? " (after the point of no return)" : "");
}

// ---------------------------------------------------------------- FileBytes

void FileBytes::Add(uint64_t offset, std::span<const uint8_t> bytes) {
  if (offset >= size_ || bytes.empty()) return;
  const uint64_t n = std::min<uint64_t>(bytes.size(), size_ - offset);
  auto& slot = chunks_[offset];
  if (slot.size() < n) slot.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
}

std::optional<std::span<const uint8_t>> FileBytes::Get(uint64_t offset, uint64_t len) const {
  uint64_t end;
  if (__builtin_add_overflow(offset, len, &end) || end > size_) return std::nullopt;
  auto it = chunks_.upper_bound(offset);
  // Chunks may overlap: look at every chunk that starts at or below `offset`
  // (there are only ever a handful).
  while (it != chunks_.begin()) {
    --it;
    const uint64_t start = it->first;
    const uint64_t chunk_end = start + it->second.size();
    if (end <= chunk_end) {
      return std::span<const uint8_t>(it->second.data() + (offset - start), len);
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- parse

namespace {

// Classes of failure; the errno depends on the role (see ErrnoFor).
enum class Fault {
  kMagic,        // not \x7fELF
  kShortHeader,  // the file ends inside the 64-byte ELF header
  kIdent,        // (bulkhead) class, data encoding or version is not 64-bit LSB v1
  kArch,         // e_machine is not EM_X86_64
  kType,         // e_type is not ET_EXEC or ET_DYN
  kPhdrs,        // e_phentsize, e_phnum or the table's place in the file
  kInterpSize,   // PT_INTERP p_filesz < 2 or > PATH_MAX
  kInterpRead,   // PT_INTERP bytes lie beyond the end of the file
  kInterpNul,    // PT_INTERP is not NUL-terminated
  kNoLoad,       // nothing to map (total_mapping_size() == 0)
  kMisaligned,   // p_offset and p_vaddr disagree modulo the page size (mmap: EINVAL)
  kSegmentSize,  // p_filesz > p_memsz, or p_vaddr + p_memsz beyond TASK_SIZE
  kLayout,       // (bulkhead) beyond EOF, unsorted, overlapping, duplicate headers
};

int ErrnoFor(Fault f, ElfRole role) {
  const bool exe = role == ElfRole::kExecutable;
  switch (f) {
    case Fault::kMagic:
    case Fault::kIdent:
    case Fault::kArch:
    case Fault::kPhdrs:
    case Fault::kLayout:
      // load_elf_binary(): retval = -ENOEXEC; for the interpreter -ELIBBAD.
      return exe ? ENOEXEC : ELIBBAD;
    case Fault::kShortHeader:
      // The executable's header is read into a zero-padded buffer (its
      // e_type then reads 0: ENOEXEC); the interpreter's with elf_read(),
      // whose short read is -EIO.
      return exe ? ENOEXEC : EIO;
    case Fault::kType:
      return exe ? ENOEXEC : EINVAL;  // load_elf_interp(): error = -EINVAL
    case Fault::kInterpSize:
    case Fault::kInterpNul:
      return ENOEXEC;
    case Fault::kInterpRead:
      return EIO;  // elf_read() short read
    case Fault::kNoLoad:
    case Fault::kMisaligned:
      return EINVAL;
    case Fault::kSegmentSize:
      return exe ? EINVAL : ENOMEM;
  }
  return ENOEXEC;
}

// Which checks Linux makes after begin_new_exec(): those of the PT_LOAD
// loop and all of load_elf_interp().
bool IsFatal(Fault f, ElfRole role) {
  switch (f) {
    case Fault::kNoLoad:
    case Fault::kMisaligned:
    case Fault::kSegmentSize:
      return true;
    case Fault::kType:
      return role == ElfRole::kInterpreter;
    default:
      return false;
  }
}

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

class Parser {
 public:
  Parser(const FileBytes& file, ElfRole role) : file_(file), role_(role) {}

  ParseOutcome Run();

 private:
  LoadError Fail(Fault f, std::string msg) const {
    const char* who = role_ == ElfRole::kExecutable ? "executable: " : "interpreter: ";
    LoadError e = Error(ErrnoFor(f, role_), who + std::move(msg));
    e.fatal = IsFatal(f, role_);
    return e;
  }
  ParseOutcome CheckSegments(ElfImage& img) const;

  const FileBytes& file_;
  ElfRole role_;
};

ParseOutcome Parser::Run() {
  const uint64_t size = file_.size();
  ElfImage img;
  img.role = role_;
  img.file_size = size;

  // ---- magic and the ELF header
  const uint64_t want_head = std::min<uint64_t>(size, kHeadBytes);
  if (role_ == ElfRole::kInterpreter && size < sizeof(Elf64_Ehdr)) {
    // elf_read() of the interpreter's header comes up short before its
    // magic is looked at.
    return Fail(Fault::kShortHeader, "file of " + std::to_string(size) + " bytes ends inside the ELF header");
  }
  if (size < SELFMAG) return Fail(Fault::kMagic, "file of " + std::to_string(size) + " bytes is not ELF");
  auto magic = file_.Get(0, SELFMAG);
  if (!magic) return NeedBytes{0, want_head};
  if (std::memcmp(magic->data(), ELFMAG, SELFMAG) != 0) return Fail(Fault::kMagic, "no ELF magic");
  if (size < sizeof(Elf64_Ehdr)) {
    return Fail(Fault::kShortHeader, "file of " + std::to_string(size) + " bytes ends inside the ELF header");
  }
  auto head = file_.Get(0, sizeof(Elf64_Ehdr));
  if (!head) return NeedBytes{0, want_head};
  Elf64_Ehdr eh;
  std::memcpy(&eh, head->data(), sizeof eh);

  // Linux checks e_type before e_machine for the executable; for the
  // interpreter e_machine first (load_elf_binary), e_type later
  // (load_elf_interp), after the program headers.
  const bool exe = role_ == ElfRole::kExecutable;
  const bool type_ok = eh.e_type == ET_EXEC || eh.e_type == ET_DYN;
  if (exe && !type_ok) return Fail(Fault::kType, "e_type " + std::to_string(eh.e_type) + " is not ET_EXEC or ET_DYN");
  if (eh.e_machine != EM_X86_64) {
    return Fail(Fault::kArch, "e_machine " + std::to_string(eh.e_machine) + " is not EM_X86_64");
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return Fail(Fault::kIdent, "not ELFCLASS64");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) return Fail(Fault::kIdent, "not ELFDATA2LSB");
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) {
    return Fail(Fault::kIdent, "ELF version is not EV_CURRENT");
  }

  // ---- program header table (load_elf_phdrs)
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
    return Fail(Fault::kPhdrs, "e_phentsize " + std::to_string(eh.e_phentsize) + " != 56");
  }
  if (eh.e_phnum == 0 || eh.e_phnum > kMaxPhnum) {
    return Fail(Fault::kPhdrs, "e_phnum " + std::to_string(eh.e_phnum) + " is not in 1.." +
                                   std::to_string(kMaxPhnum));
  }
  const uint64_t table_bytes = uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  uint64_t table_end;
  if (__builtin_add_overflow(eh.e_phoff, table_bytes, &table_end) || table_end > size) {
    return Fail(Fault::kPhdrs, "program headers at " + Hex(eh.e_phoff) + " (+" + Hex(table_bytes) +
                                   ") lie beyond the end of the file (" + Hex(size) + ")");
  }
  auto table = file_.Get(eh.e_phoff, table_bytes);
  if (!table) return NeedBytes{eh.e_phoff, table_bytes};
  img.phdrs.resize(eh.e_phnum);
  std::memcpy(img.phdrs.data(), table->data(), table_bytes);

  if (!type_ok) return Fail(Fault::kType, "e_type " + std::to_string(eh.e_type) + " is not ET_EXEC or ET_DYN");
  img.type = eh.e_type;
  img.entry = eh.e_entry;
  img.phoff = eh.e_phoff;
  img.phnum = eh.e_phnum;

  // ---- PT_INTERP (the executable's only; Linux ignores an interpreter's)
  if (exe) {
    for (size_t i = 0; i < img.phdrs.size(); ++i) {
      const Elf64_Phdr& ph = img.phdrs[i];
      if (ph.p_type != PT_INTERP) continue;
      if (img.has_interp) return Fail(Fault::kLayout, "more than one PT_INTERP (bulkhead)");
      if (ph.p_filesz > kPathMax || ph.p_filesz < 2) {
        return Fail(Fault::kInterpSize, "PT_INTERP size " + std::to_string(ph.p_filesz) + " is not in 2..4096");
      }
      uint64_t end;
      if (__builtin_add_overflow(ph.p_offset, ph.p_filesz, &end) || end > size) {
        return Fail(Fault::kInterpRead, "PT_INTERP at " + Hex(ph.p_offset) + " lies beyond the end of the file");
      }
      auto s = file_.Get(ph.p_offset, ph.p_filesz);
      if (!s) return NeedBytes{ph.p_offset, ph.p_filesz};
      if (s->back() != 0) return Fail(Fault::kInterpNul, "PT_INTERP is not NUL-terminated");
      img.has_interp = true;
      img.interp.assign(reinterpret_cast<const char*>(s->data()));  // up to the first NUL
    }
    for (const Elf64_Phdr& ph : img.phdrs) {
      if (ph.p_type == PT_GNU_STACK) {
        img.stack_exec = (ph.p_flags & PF_X) ? StackExec::kExec : StackExec::kNonExec;  // last wins
      }
    }
  }
  return CheckSegments(img);
}

ParseOutcome Parser::CheckSegments(ElfImage& img) const {
  const uint64_t size = file_.size();
  bool seen_load = false;
  bool seen_phdr = false;
  uint64_t prev_end = 0;
  size_t prev_index = 0;
  for (size_t i = 0; i < img.phdrs.size(); ++i) {
    const Elf64_Phdr& ph = img.phdrs[i];
    const std::string where = "program header " + std::to_string(i);
    if (ph.p_type == PT_PHDR) {
      // ELF: "may not occur more than once ... must precede any loadable segment entry".
      if (seen_phdr) return Fail(Fault::kLayout, "more than one PT_PHDR (bulkhead)");
      if (seen_load) return Fail(Fault::kLayout, "PT_PHDR follows a PT_LOAD (bulkhead)");
      seen_phdr = true;
      img.pt_phdr_vaddr = ph.p_vaddr;
      continue;
    }
    if (ph.p_type != PT_LOAD) continue;

    // elf_map(): mmap() of a file range needs a page-aligned offset.
    if (ph.p_filesz != 0 && PageOffset(ph.p_offset) != PageOffset(ph.p_vaddr)) {
      return Fail(Fault::kMisaligned, where + ": PT_LOAD p_offset " + Hex(ph.p_offset) + " and p_vaddr " +
                                          Hex(ph.p_vaddr) + " differ modulo the page size");
    }
    // load_elf_binary() / load_elf_interp(): "set_brk can never work".
    if (ph.p_filesz > ph.p_memsz) {
      return Fail(Fault::kSegmentSize, where + ": PT_LOAD p_filesz " + Hex(ph.p_filesz) + " > p_memsz " +
                                           Hex(ph.p_memsz));
    }
    if (ph.p_vaddr >= kTaskSize || ph.p_memsz > kTaskSize - ph.p_vaddr) {
      return Fail(Fault::kSegmentSize, where + ": PT_LOAD [" + Hex(ph.p_vaddr) + ", +" + Hex(ph.p_memsz) +
                                           ") reaches beyond the user address space");
    }
    uint64_t file_end;
    if (ph.p_filesz != 0 && (__builtin_add_overflow(ph.p_offset, ph.p_filesz, &file_end) || file_end > size)) {
      return Fail(Fault::kLayout, where + ": PT_LOAD file bytes [" + Hex(ph.p_offset) + ", +" + Hex(ph.p_filesz) +
                                      ") lie beyond the end of the file (" + Hex(size) + ") (bulkhead)");
    }
    if (seen_load && ph.p_vaddr < prev_end) {
      const Elf64_Phdr& prev = img.phdrs[prev_index];
      const bool unsorted = ph.p_vaddr < prev.p_vaddr;
      return Fail(Fault::kLayout, where + ": PT_LOAD at " + Hex(ph.p_vaddr) +
                                      (unsorted ? " is below" : " overlaps") + " the PT_LOAD at " +
                                      Hex(prev.p_vaddr) + " (bulkhead)");
    }
    seen_load = true;
    prev_end = ph.p_vaddr + ph.p_memsz;  // checked above: no overflow
    prev_index = i;
    img.loads.push_back(ph);
  }

  if (img.loads.empty()) return Fail(Fault::kNoLoad, "no PT_LOAD segment");
  img.span_start = PageStart(img.loads.front().p_vaddr);
  img.span_end = prev_end;  // sorted and disjoint: the last one ends highest
  if (img.type == ET_DYN && img.total_size() == 0) {
    return Fail(Fault::kNoLoad, "the PT_LOAD segments are empty");
  }
  uint64_t align = 0;
  for (const Elf64_Phdr& ph : img.loads) {
    if (ph.p_align != 0 && (ph.p_align & (ph.p_align - 1)) == 0) align = std::max<uint64_t>(align, ph.p_align);
    // AT_PHDR: the PT_LOAD whose file bytes hold e_phoff (the last one wins).
    if (ph.p_offset <= img.phoff && img.phoff - ph.p_offset < ph.p_filesz) {
      img.phdr_vaddr = img.phoff - ph.p_offset + ph.p_vaddr;
    }
  }
  img.max_align = align == 0 ? 0 : PageAlign(align);
  return img;
}

}  // namespace

bool HasElfMagic(std::span<const uint8_t> head) {
  return head.size() >= SELFMAG && std::memcmp(head.data(), ELFMAG, SELFMAG) == 0;
}

ParseOutcome ParseElf(const FileBytes& file, ElfRole role) { return Parser(file, role).Run(); }

ParseOutcome ParseElf(std::span<const uint8_t> head, uint64_t file_size, ElfRole role) {
  return ParseElf(FileBytes(file_size, head), role);
}

Result<ElfImage> ParseElfWith(const ReadFn& read, uint64_t file_size, ElfRole role) {
  FileBytes file(file_size);
  // Each round adds the header, the program headers or PT_INTERP; more
  // rounds than that would be a parser bug.
  for (int round = 0; round < 8; ++round) {
    ParseOutcome out = ParseElf(file, role);
    if (auto* img = std::get_if<ElfImage>(&out)) return std::move(*img);
    if (auto* err = std::get_if<LoadError>(&out)) return std::move(*err);
    const NeedBytes need = std::get<NeedBytes>(out);
    std::vector<uint8_t> buf(need.length);
    const int64_t n = read(need.offset, buf);
    if (n < 0) return Error(static_cast<int>(-n), "read at " + Hex(need.offset) + " failed");
    if (static_cast<uint64_t>(n) < need.length) {
      // Only the first read (the header page) may be short: the file shrank.
      if (need.offset != 0) return Error(EIO, "short read at " + Hex(need.offset));
      buf.resize(static_cast<size_t>(n));
      file = FileBytes(static_cast<uint64_t>(n));
    }
    file.Add(need.offset, buf);
  }
  return Error(EIO, "ELF parse did not converge");
}

}  // namespace bulkhead::loader
