#include "services/syscall-router/loader/stack.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace bulkhead::loader {

Result<ArgBudget> ArgStringBudget(uint64_t stack_rlimit, uint64_t argc, uint64_t envc) {
  if (argc > kMaxArgStrings || envc > kMaxArgStrings) return Error(E2BIG, "more than MAX_ARG_STRINGS strings");
  uint64_t limit = std::min(kStkLim / 4 * 3, stack_rlimit / 4);
  limit = std::max(limit, kArgMax);
  // The pointers are stored later, when failing is no longer possible:
  // account for them now. argc 0 becomes 1 (an empty argv[0] is added).
  const uint64_t ptr_bytes = (std::max<uint64_t>(argc, 1) + envc) * sizeof(uint64_t);  // < 2^35: no overflow
  if (limit <= ptr_bytes) return Error(E2BIG, "argv and envp pointers exceed the argument space");
  return ArgBudget{limit - ptr_bytes, stack_rlimit};
}

namespace {

// The temporary stack may grow past its first page only within RLIMIT_STACK.
bool ExceedsRlimit(uint64_t span, uint64_t rlimit) { return span > kPageSize && span > rlimit; }

}  // namespace

Result<uint64_t> CheckArgStrings(const std::vector<std::string>& argv, const std::vector<std::string>& envp,
                                 const std::string& execfn, const ArgBudget& budget) {
  uint64_t used = 0;
  // Linux's order: the filename, then envp, then argv (each last to first).
  auto take = [&](const std::string& s, const char* what) -> std::optional<LoadError> {
    if (s.find('\0') != std::string::npos) return Error(EINVAL, std::string(what) + " contains a NUL byte");
    const uint64_t len = s.size() + 1;
    if (len > kMaxArgStrlen) {
      return Error(E2BIG, std::string(what) + " of " + std::to_string(s.size()) + " bytes exceeds MAX_ARG_STRLEN");
    }
    used += len;
    if (used > budget.string_bytes) {
      return Error(E2BIG, "argument and environment strings exceed " + std::to_string(budget.string_bytes) +
                              " bytes");
    }
    if (ExceedsRlimit(PageAlign(used + sizeof(uint64_t)), budget.stack_rlimit)) {
      return Error(E2BIG, "argument and environment strings exceed RLIMIT_STACK");
    }
    return std::nullopt;
  };
  if (auto e = take(execfn, "the exec filename")) return *e;
  for (size_t i = envp.size(); i-- > 0;) {
    if (auto e = take(envp[i], "an environment string")) return *e;
  }
  for (size_t i = argv.size(); i-- > 0;) {
    if (auto e = take(argv[i], "an argument")) return *e;
  }
  return used;
}

void StackInput::SetFromPlan(const LoadPlan& plan) {
  phdr = plan.phdr;
  phent = plan.phent;
  phnum = plan.phnum;
  base = plan.base;
  entry = plan.exe_entry;
}

namespace {

class Writer {
 public:
  Writer(uint64_t low, uint64_t top) : low_(low), bytes_(top - low, 0) {}
  void Put(uint64_t addr, const void* p, size_t n) { std::memcpy(bytes_.data() + (addr - low_), p, n); }
  void Word(uint64_t addr, uint64_t v) { Put(addr, &v, sizeof v); }
  std::vector<uint8_t> Take() { return std::move(bytes_); }

 private:
  uint64_t low_;
  std::vector<uint8_t> bytes_;
};

}  // namespace

Result<StackImage> BuildStack(const StackInput& in) {
  const uint64_t top = in.stack_top;
  // Room for the largest image (6 MiB of strings and pointers plus tables)
  // above mmap_min_addr; below the user address space's end.
  if (PageOffset(top) != 0 || top > kTaskSize || top < (uint64_t{64} << 20)) {
    return Error(EINVAL, "stack top is not a page-aligned user address above 64 MiB");
  }
  static const std::vector<std::string> kEmptyArgv{std::string()};
  const std::vector<std::string>& argv = in.argv.empty() ? kEmptyArgv : in.argv;
  const std::vector<std::string>& envp = in.envp;

  Result<ArgBudget> budget = in.budget ? Result<ArgBudget>(*in.budget)
                                       : ArgStringBudget(in.stack_rlimit, in.argv.size(), envp.size());
  if (!budget) return budget.error();
  auto used = CheckArgStrings(argv, envp, in.execfn, *budget);
  if (!used) return used.error();

  StackImage img;
  img.top = top;
  // ---- strings (fs/exec.c): bprm->p starts one pointer below the top.
  uint64_t p = top - sizeof(uint64_t);
  p -= in.execfn.size() + 1;
  img.execfn_addr = p;
  std::vector<uint64_t> env_addr(envp.size()), arg_addr(argv.size());
  for (size_t i = envp.size(); i-- > 0;) env_addr[i] = (p -= envp[i].size() + 1);
  for (size_t i = argv.size(); i-- > 0;) arg_addr[i] = (p -= argv[i].size() + 1);
  const uint64_t strings_low = p;
  img.arg_start = strings_low;
  img.arg_end = img.env_start = envp.empty() ? img.execfn_addr : env_addr[0];
  img.env_end = img.execfn_addr;
  const uint64_t rlim = in.stack_rlimit;

  // ---- create_elf_tables()
  p -= in.sp_rnd % 8192;  // arch_align_stack()
  p &= ~uint64_t{15};
  if (!in.aux.platform.empty()) {
    if (in.aux.platform.size() > 64 || in.aux.platform.find('\0') != std::string::npos) {
      return Error(EINVAL, "bad platform string");
    }
    p -= in.aux.platform.size() + 1;
    img.platform_addr = p;
  }
  p -= in.random.size();
  img.random_addr = p;

  auto& av = img.auxv;
  const AuxvValues& a = in.aux;
  if (a.vdso) av.emplace_back(kAtSysinfoEhdr, *a.vdso);  // ARCH_DLINFO
  av.emplace_back(kAtMinsigstksz, a.minsigstksz);
  av.emplace_back(kAtHwcap, a.hwcap);
  av.emplace_back(kAtPagesz, kPageSize);
  av.emplace_back(kAtClktck, a.clktck);
  av.emplace_back(kAtPhdr, in.phdr);
  av.emplace_back(kAtPhent, in.phent);
  av.emplace_back(kAtPhnum, in.phnum);
  av.emplace_back(kAtBase, in.base);
  av.emplace_back(kAtFlags, a.flags);
  av.emplace_back(kAtEntry, in.entry);
  av.emplace_back(kAtUid, a.uid);
  av.emplace_back(kAtEuid, a.euid);
  av.emplace_back(kAtGid, a.gid);
  av.emplace_back(kAtEgid, a.egid);
  av.emplace_back(kAtSecure, a.secure);
  av.emplace_back(kAtRandom, img.random_addr);
  av.emplace_back(kAtHwcap2, a.hwcap2);
  av.emplace_back(kAtExecfn, img.execfn_addr);
  if (!a.platform.empty()) av.emplace_back(kAtPlatform, img.platform_addr);
  if (a.rseq) {
    av.emplace_back(kAtRseqFeatureSize, a.rseq->first);
    av.emplace_back(kAtRseqAlign, a.rseq->second);
  }
  av.emplace_back(kAtNull, 0);

  const uint64_t ei_words = 2 * av.size();
  const uint64_t sp = p - ei_words * sizeof(uint64_t);                   // STACK_ADD(p, ei_index)
  const uint64_t items = (argv.size() + 1) + (envp.size() + 1) + 1;      // argc, argv, NULL, envp, NULL
  const uint64_t rsp = (sp - items * sizeof(uint64_t)) & ~uint64_t{15};  // STACK_ROUND(sp, items)
  img.rsp = rsp;
  if (ExceedsRlimit(top - PageStart(rsp), rlim)) {
    return FatalError(EFAULT, "the initial stack exceeds RLIMIT_STACK");
  }

  // setup_arg_pages(): the VMA reaches 128 KiB below the strings' page,
  // within RLIMIT_STACK; find_extend_vma() grows it to rsp's page.
  const uint64_t vm_start = PageStart(strings_low);
  const uint64_t stack_size = top - vm_start;
  const uint64_t expand = std::min(rlim & ~(kPageSize - 1), stack_size + kStackExpand);
  img.vma_start = std::min({vm_start, top - expand, PageStart(rsp)});

  Writer w(rsp, top);
  w.Put(img.execfn_addr, in.execfn.c_str(), in.execfn.size() + 1);
  for (size_t i = 0; i < envp.size(); ++i) w.Put(env_addr[i], envp[i].c_str(), envp[i].size() + 1);
  for (size_t i = 0; i < argv.size(); ++i) w.Put(arg_addr[i], argv[i].c_str(), argv[i].size() + 1);
  if (!a.platform.empty()) w.Put(img.platform_addr, a.platform.c_str(), a.platform.size() + 1);
  w.Put(img.random_addr, in.random.data(), in.random.size());
  uint64_t at = rsp;
  w.Word(at, argv.size());
  at += 8;
  for (uint64_t v : arg_addr) w.Word(at, v), at += 8;
  w.Word(at, 0), at += 8;
  for (uint64_t v : env_addr) w.Word(at, v), at += 8;
  w.Word(at, 0), at += 8;
  for (const auto& [k, v] : av) {
    w.Word(at, k), at += 8;
    w.Word(at, v), at += 8;
  }
  img.bytes = w.Take();
  return img;
}

// ---------------------------------------------------------------- decode

std::optional<std::string> StringAt(std::span<const uint8_t> bytes, uint64_t top, uint64_t addr) {
  const uint64_t low = top - bytes.size();
  if (addr < low || addr >= top) return std::nullopt;
  const uint8_t* s = bytes.data() + (addr - low);
  const size_t room = static_cast<size_t>(top - addr);
  const void* nul = std::memchr(s, 0, room);
  if (nul == nullptr) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(s), static_cast<const uint8_t*>(nul) - s);
}

std::optional<uint64_t> DecodedStack::Aux(uint64_t type) const {
  for (const auto& [k, v] : auxv) {
    if (k == type) return v;
  }
  return std::nullopt;
}

Result<DecodedStack> DecodeStack(std::span<const uint8_t> bytes, uint64_t top) {
  if (bytes.size() > top) return Error(EINVAL, "stack image larger than its top address");
  DecodedStack d;
  d.rsp = top - bytes.size();
  size_t at = 0;
  auto word = [&](uint64_t* v) {
    if (bytes.size() - at < sizeof(uint64_t)) return false;
    std::memcpy(v, bytes.data() + at, sizeof *v);
    at += sizeof *v;
    return true;
  };
  uint64_t argc;
  if (!word(&argc)) return Error(EFAULT, "no argc");
  if (argc > bytes.size() / 8) return Error(EFAULT, "argc larger than the stack");
  for (uint64_t i = 0; i < argc; ++i) {
    uint64_t ptr;
    if (!word(&ptr)) return Error(EFAULT, "argv runs off the stack");
    auto s = StringAt(bytes, top, ptr);
    if (!s) return Error(EFAULT, "argv[" + std::to_string(i) + "] points outside the stack");
    d.argv_ptrs.push_back(ptr);
    d.argv.push_back(std::move(*s));
  }
  uint64_t null;
  if (!word(&null) || null != 0) return Error(EFAULT, "argv is not NULL-terminated");
  for (;;) {
    uint64_t ptr;
    if (!word(&ptr)) return Error(EFAULT, "envp runs off the stack");
    if (ptr == 0) break;
    auto s = StringAt(bytes, top, ptr);
    if (!s) return Error(EFAULT, "an envp pointer points outside the stack");
    d.envp_ptrs.push_back(ptr);
    d.envp.push_back(std::move(*s));
  }
  for (;;) {
    uint64_t k, v;
    if (!word(&k) || !word(&v)) return Error(EFAULT, "auxv runs off the stack");
    d.auxv.emplace_back(k, v);
    if (k == kAtNull) break;
  }
  return d;
}

}  // namespace bulkhead::loader
