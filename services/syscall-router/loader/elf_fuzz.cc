// libFuzzer target: the whole loader on arbitrary bytes. The input is a
// file's contents; it is parsed as an executable and as an interpreter (its
// head cut at a point chosen from the input, the rest fed through the
// NeedBytes protocol), planned with and without randomization, run through
// the #! parser and through ExecPlanner with a small in-memory file system
// where it is the executable, a #! target and a PT_INTERP target. Strings
// taken from the input build a stack that must decode back to them.
//
// Must never crash, leak, hang or break an invariant (checked below; a
// violation traps). Built with libFuzzer under --config=fuzz
// (elf_fuzz), and replayed by elf_fuzz_replay_test in every `bazel test`.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "services/syscall-router/loader/elf.h"
#include "services/syscall-router/loader/exec.h"
#include "services/syscall-router/loader/load_plan.h"
#include "services/syscall-router/loader/script.h"
#include "services/syscall-router/loader/stack.h"
#include "services/syscall-router/loader/testing/elf_builder.h"

namespace bulkhead::loader {
namespace {

#define FUZZ_CHECK(cond)                                                        \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "FUZZ: invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                             \
    }                                                                           \
  } while (0)

uint64_t g_parsed = 0;  // inputs that parsed as an executable (the replay test wants some)

uint64_t Fnv(std::span<const uint8_t> b) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t c : b) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Parses with only a prefix given, then feeds exactly what is asked for.
ParseOutcome ParseIncrementally(std::span<const uint8_t> in, size_t head, ElfRole role) {
  FileBytes file(in.size(), in.first(std::min(head, in.size())));
  for (int round = 0; round < 6; ++round) {
    ParseOutcome out = ParseElf(file, role);
    auto* need = std::get_if<NeedBytes>(&out);
    if (need == nullptr) return out;
    FUZZ_CHECK(need->length > 0 && need->length <= std::max(kHeadBytes, kMaxPhdrTableBytes));
    FUZZ_CHECK(need->offset + need->length <= in.size());
    FUZZ_CHECK(!file.Get(need->offset, need->length).has_value());
    file.Add(need->offset, in.subspan(need->offset, need->length));
  }
  FUZZ_CHECK(false && "ParseElf asked more than 5 times");
  return Error(0, "");
}

void CheckImage(const ElfImage& img, uint64_t file_size) {
  FUZZ_CHECK(img.type == ET_EXEC || img.type == ET_DYN);
  FUZZ_CHECK(img.phnum >= 1 && img.phnum <= kMaxPhnum && img.phdrs.size() == img.phnum);
  FUZZ_CHECK(!img.loads.empty());
  uint64_t prev_end = 0;
  for (const auto& l : img.loads) {
    FUZZ_CHECK(l.p_filesz <= l.p_memsz);
    FUZZ_CHECK(l.p_vaddr < kTaskSize && l.p_memsz <= kTaskSize - l.p_vaddr);
    FUZZ_CHECK(l.p_vaddr >= prev_end);
    if (l.p_filesz) FUZZ_CHECK(l.p_offset <= file_size && l.p_filesz <= file_size - l.p_offset);
    prev_end = l.p_vaddr + l.p_memsz;
  }
  FUZZ_CHECK(img.span_start <= img.span_end && img.span_end <= kTaskSize);
  FUZZ_CHECK(img.interp.size() < kPathMax);
}

void CheckPlan(const LoadPlan& plan, const ElfImage& exe, const ElfImage* interp) {
  for (const Mapping& m : plan.mappings) {
    FUZZ_CHECK(PageOffset(m.addr) == 0 && PageOffset(m.len) == 0 && m.len > 0);
    FUZZ_CHECK(m.addr + m.len > m.addr && m.addr + m.len <= kTaskSize);
    FUZZ_CHECK(m.file_bytes <= m.len);
    if (m.source == MapSource::kAnonymous) {
      FUZZ_CHECK(m.file_bytes == 0);
      continue;
    }
    const ElfImage& img = m.source == MapSource::kExecutable ? exe : *interp;
    FUZZ_CHECK(PageOffset(m.file_offset) == 0);
    FUZZ_CHECK(m.file_offset <= img.file_size && m.file_bytes <= img.file_size - m.file_offset);
  }
  FUZZ_CHECK(plan.entry < kTaskSize);
  FUZZ_CHECK(PageOffset(plan.brk) == 0);
}

// NUL-separated strings from the input (at most `max` of them).
std::vector<std::string> Strings(std::span<const uint8_t> in, size_t max) {
  std::vector<std::string> out;
  std::string cur;
  for (uint8_t c : in) {
    if (out.size() >= max) break;
    if (c == 0) {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(c));
    }
  }
  if (out.size() < max && !cur.empty()) out.push_back(std::move(cur));
  return out;
}

void FuzzStack(std::span<const uint8_t> in, uint64_t h, const LoadPlan* plan) {
  StackInput si;
  const auto strings = Strings(in, 24);
  const size_t split = strings.empty() ? 0 : h % (strings.size() + 1);
  si.argv.assign(strings.begin(), strings.begin() + static_cast<std::ptrdiff_t>(split));
  si.envp.assign(strings.begin() + static_cast<std::ptrdiff_t>(split), strings.end());
  si.execfn = strings.empty() ? "/x" : strings.front();
  si.sp_rnd = h >> 7;
  si.stack_rlimit = (h & 1) ? (8 << 20) : (h >> 20) % (1 << 20);
  si.stack_top = kStackTop - ((h >> 3) & 0xffff) * kPageSize;
  if (h & 2) si.aux.vdso = 0x7ffff7fc8000;
  if (h & 4) si.aux.rseq = {{28, 32}};
  if (plan) si.SetFromPlan(*plan);
  std::memcpy(si.random.data(), &h, sizeof h);
  auto s = BuildStack(si);
  if (!s.ok()) {
    FUZZ_CHECK(s.err() == E2BIG || s.err() == EFAULT || s.err() == EINVAL);
    return;
  }
  FUZZ_CHECK(s->rsp % 16 == 0);
  FUZZ_CHECK(s->bytes.size() == s->top - s->rsp);
  FUZZ_CHECK(s->vma_start <= PageStart(s->rsp));
  auto d = DecodeStack(s->bytes, s->top);
  FUZZ_CHECK(d.ok());
  const std::vector<std::string> want_argv = si.argv.empty() ? std::vector<std::string>{""} : si.argv;
  FUZZ_CHECK(d->argv == want_argv);
  FUZZ_CHECK(d->envp == si.envp);
  FUZZ_CHECK(d->auxv == s->auxv);
  FUZZ_CHECK(StringAt(s->bytes, s->top, *d->Aux(kAtExecfn)) == si.execfn);
  // Any bytes as a stack image: decoding must stay in bounds.
  (void)DecodeStack(in, kStackTop);
}

// Every path is served: the input itself, a good interpreter, or nothing.
class FuzzFiles : public ExecFiles {
 public:
  FuzzFiles(std::span<const uint8_t> input, const std::vector<uint8_t>& good) : input_(input), good_(good) {}
  int64_t Open(const std::string& path, FileRole role) override {
    if (++opens_ > 16) return -ELOOP;  // the planner must stop by itself long before
    const uint64_t h = Fnv(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(path.data()), path.size()));
    std::span<const uint8_t> f;
    if (path == "/exe" || h % 3 == 0) {
      f = input_;
    } else if (h % 3 == 1) {
      f = good_;
    } else {
      return -ENOENT;
    }
    cur_[static_cast<int>(role)] = f;
    return static_cast<int64_t>(f.size());
  }
  int64_t Read(FileRole role, uint64_t off, std::span<uint8_t> out) override {
    const auto f = cur_[static_cast<int>(role)];
    if (off >= f.size()) return 0;
    const size_t n = std::min<uint64_t>(out.size(), f.size() - off);
    if (n != 0) std::memcpy(out.data(), f.data() + off, n);
    return static_cast<int64_t>(n);
  }

 private:
  std::span<const uint8_t> input_;
  const std::vector<uint8_t>& good_;
  std::span<const uint8_t> cur_[2];
  int opens_ = 0;
};

}  // namespace
}  // namespace bulkhead::loader

extern "C" uint64_t BulkheadFuzzUsefulInputs() { return bulkhead::loader::g_parsed; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulkhead::loader;
  static const std::vector<uint8_t> good_interp = testing::Build(testing::Interp());
  const std::span<const uint8_t> in(data, size);
  const uint64_t h = Fnv(in);

  // ---- ELF, in both roles, with the bytes-on-demand protocol.
  const size_t head = (h & 8) ? size : static_cast<size_t>(h % 1100);
  ParseOutcome exe_out = ParseIncrementally(in, head, ElfRole::kExecutable);
  ParseOutcome interp_out = ParseIncrementally(in, size - head % (size + 1), ElfRole::kInterpreter);
  // The outcome does not depend on how the bytes arrived.
  ParseOutcome whole = ParseElf(in, size, ElfRole::kExecutable);
  FUZZ_CHECK(whole.index() == exe_out.index());
  if (auto* e = std::get_if<LoadError>(&exe_out)) {
    FUZZ_CHECK(e->err > 0 && !e->message.empty());
    FUZZ_CHECK(std::get<LoadError>(whole).err == e->err);
  }

  const LoadPlan* plan_ptr = nullptr;
  LoadPlan plan;
  if (auto* exe = std::get_if<ElfImage>(&exe_out)) {
    ++g_parsed;
    CheckImage(*exe, size);
    const ElfImage* interp = nullptr;
    ElfImage interp_img;
    if (exe->has_interp) {
      if (auto* i = std::get_if<ElfImage>(&interp_out)) {
        CheckImage(*i, size);
        interp_img = *i;
      } else {
        interp_img = std::get<ElfImage>(ParseElf(good_interp, good_interp.size(), ElfRole::kInterpreter));
      }
      interp = &interp_img;
    }
    for (int variant = 0; variant < 3; ++variant) {
      const Aslr aslr = variant == 0 ? Aslr{} : Aslr::FromSeed(h + variant);
      const uint64_t rlimit = variant == 2 ? ~0ull : (8 << 20);
      auto params = DefaultLoadParams(*exe, interp, DefaultLayout(rlimit, aslr), aslr);
      if (!params.ok()) {
        FUZZ_CHECK(params.error().fatal);
        continue;
      }
      if (variant == 2) params->exe_bias ^= (h & 0xfffff000ull) << 16;  // a caller-chosen bias
      auto p = PlanLoad(*exe, interp, *params);
      if (!p.ok()) {
        FUZZ_CHECK(p.error().fatal);
        continue;
      }
      CheckPlan(*p, *exe, interp);
      if (variant == 0) {
        plan = std::move(*p);
        plan_ptr = &plan;
      }
    }
  }

  // ---- the initial stack.
  FuzzStack(in, h, plan_ptr);

  // ---- #!.
  auto line = ParseScriptLine(in);
  if (line.ok()) {
    FUZZ_CHECK(line->interp.size() < kBinprmBufSize);
    FUZZ_CHECK(ScriptArgv(*line, "/s", {"s", "a"}).size() == (line->arg ? 4u : 3u));
  } else {
    FUZZ_CHECK(line.err() == ENOEXEC);
  }

  // ---- execve end to end.
  FuzzFiles files(in, good_interp);
  ExecRequest req;
  req.filename = "/exe";
  req.argv = {"exe", "arg"};
  req.envp = {"A=B"};
  if (h & 16) req.aslr = Aslr::FromSeed(h);
  auto img = PlanExec(req, files);
  if (img.ok()) {
    FUZZ_CHECK(img->stack.rsp % 16 == 0);
    CheckPlan(img->plan, img->exe, img->interp ? &*img->interp : nullptr);
    FUZZ_CHECK(img->scripts.size() <= static_cast<size_t>(kMaxInterpreterRewrites));
  } else {
    FUZZ_CHECK(img.err() > 0);
  }
  return 0;
}
