// The loader against the host kernel. Each case execs a program natively
// under ptrace with ADDR_NO_RANDOMIZE and a chosen RLIMIT_STACK, stops it at
// the exec SIGTRAP (before its first instruction) and compares what Linux
// built with what the loader plans for the same inputs:
//   * /proc/PID/maps: every segment and bss mapping (address, size, prot,
//     file offset, which file), and the [stack] VMA;
//   * %rip and %rsp, and the initial stack byte for byte from %rsp to its top
//     (strings, AT_RANDOM, platform, auxv, pointers, argc, alignment gaps);
//   * /proc/PID/auxv and the mm fields of /proc/PID/stat (code, data, brk,
//     arg and env ranges);
// and, when the exec fails, the errno, or death by SIGSEGV when Linux fails
// after the point of no return (LoadError::fatal).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "services/syscall-router/loader/exec.h"
#include "services/syscall-router/loader/testing/elf_builder.h"
#include "services/syscall-router/loader/testing/test_util.h"

namespace bulkhead::loader {
namespace {

using testing::Build;
using testing::ElfSpec;

constexpr uint64_t k8M = 8 << 20;

std::string ProbePath(const std::string& name) {
  // Data dependencies sit at the same path under the test's runfiles.
  const std::string rel = "services/syscall-router/loader/" + name;
  char buf[PATH_MAX];
  if (::realpath(rel.c_str(), buf) == nullptr) return rel;
  return buf;
}

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  std::string base = t ? t : "/tmp";
  std::string dir = base + "/loader_native_XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return base;
  return dir;
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes, mode_t mode = 0755) {
  ::unlink(path.c_str());
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  ASSERT_TRUE(fd.valid()) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

std::vector<uint8_t> Bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// ---------------------------------------------------------------- the kernel's side

struct MapsLine {
  uint64_t start = 0, end = 0;
  std::string perms;
  uint64_t offset = 0;
  uint64_t inode = 0;
  std::string path;
};

struct Native {
  enum Kind { kExecOk, kErrno, kSignal, kNoSetup } kind = kNoSetup;
  int code = 0;  // errno, or signal
  std::vector<MapsLine> maps;
  user_regs_struct regs{};
  uint64_t stack_start = 0, stack_top = 0;
  std::vector<uint8_t> stack;  // [rsp, top)
  std::vector<uint8_t> auxv;   // /proc/PID/auxv
  std::vector<uint64_t> stat;  // /proc/PID/stat, 1-based fields (stat[1] = pid)
};

std::vector<MapsLine> ReadMaps(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
  std::vector<MapsLine> out;
  std::string line;
  while (std::getline(f, line)) {
    MapsLine m;
    char perms[8] = {}, dev[16] = {};
    unsigned long long s, e, off, ino;
    int n = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %llu %n", &s, &e, perms, &off, dev, &ino, &n) < 6) continue;
    m.start = s;
    m.end = e;
    m.perms = perms;
    m.offset = off;
    m.inode = ino;
    if (n > 0 && static_cast<size_t>(n) <= line.size()) m.path = line.substr(static_cast<size_t>(n));
    out.push_back(m);
  }
  return out;
}

std::vector<uint64_t> ReadStat(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<uint64_t> out = {0, static_cast<uint64_t>(pid), 0};  // [0] unused, [1] pid, [2] comm
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  in >> field;  // [3] state
  out.push_back(0);
  while (in >> field) out.push_back(std::strtoull(field.c_str(), nullptr, 10));
  return out;
}

std::vector<uint8_t> ReadMem(pid_t pid, uint64_t addr, uint64_t len) {
  std::vector<uint8_t> out(len);
  UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd || ::pread(fd.get(), out.data(), len, static_cast<off_t>(addr)) != static_cast<ssize_t>(len)) out.clear();
  return out;
}

// execve(path, argv, envp) in a child with ADDR_NO_RANDOMIZE and the given
// RLIMIT_STACK, stopped at the exec SIGTRAP.
Native TraceExec(const std::string& path, const std::vector<std::string>& argv, const std::vector<std::string>& envp,
                 uint64_t rlimit) {
  Native r;
  std::vector<char*> av, ev;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (const auto& e : envp) ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return r;
  const pid_t pid = ::fork();
  if (pid < 0) return r;
  if (pid == 0) {
    ::close(p[0]);
    int e = 0;
    const int pers = ::personality(0xffffffff);
    if (pers < 0 || ::personality(static_cast<unsigned long>(pers) | ADDR_NO_RANDOMIZE) < 0) e = errno;
    struct rlimit rl = {rlimit, RLIM_INFINITY};
    if (e == 0 && ::setrlimit(RLIMIT_STACK, &rl) != 0) e = errno;
    if (e == 0 && ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) e = errno;
    if (e != 0) {
      const int m = -e;
      (void)!::write(p[1], &m, sizeof m);
      ::_exit(126);
    }
    ::execve(path.c_str(), av.data(), ev.data());
    e = errno;
    (void)!::write(p[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(p[1]);
  UniqueFd rd(p[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP) {
    r.kind = Native::kExecOk;
    r.maps = ReadMaps(pid);
    ::ptrace(PTRACE_GETREGS, pid, nullptr, &r.regs);
    for (const auto& m : r.maps) {
      if (m.path == "[stack]") r.stack_start = m.start, r.stack_top = m.end;
    }
    r.stack = ReadMem(pid, r.regs.rsp, r.stack_top - r.regs.rsp);
    std::ifstream af("/proc/" + std::to_string(pid) + "/auxv", std::ios::binary);
    r.auxv.assign(std::istreambuf_iterator<char>(af), std::istreambuf_iterator<char>());
    r.stat = ReadStat(pid);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &st, 0);
    return r;
  }
  if (WIFSTOPPED(st)) {  // some other stop: record the signal
    r.kind = Native::kSignal;
    r.code = WSTOPSIG(st);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &st, 0);
    return r;
  }
  if (WIFSIGNALED(st)) {
    r.kind = Native::kSignal;
    r.code = WTERMSIG(st);
    return r;
  }
  int e = 0;
  if (::read(rd.get(), &e, sizeof e) != sizeof e) return r;
  if (e < 0) {
    r.kind = Native::kNoSetup;
    r.code = -e;
    return r;
  }
  r.kind = Native::kErrno;
  r.code = e;
  return r;
}

// ---------------------------------------------------------------- the loader's side

struct Vma {
  uint64_t start, end;
  int prot;
  MapSource src;
  uint64_t off;
  bool operator==(const Vma&) const = default;
};

std::string ToString(const Vma& v) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%llx-%llx %c%c%c %s %llx", (unsigned long long)v.start, (unsigned long long)v.end,
                (v.prot & PROT_READ) ? 'r' : '-', (v.prot & PROT_WRITE) ? 'w' : '-', (v.prot & PROT_EXEC) ? 'x' : '-',
                v.src == MapSource::kExecutable ? "exe" : v.src == MapSource::kInterpreter ? "interp" : "anon",
                (unsigned long long)v.off);
  return buf;
}

std::string ToString(const std::vector<Vma>& v) {
  std::string s;
  for (const auto& x : v) s += ToString(x) + "\n";
  return s;
}

// The plan's mappings applied in order (MAP_FIXED replaces), then adjacent
// equal VMAs merged as the kernel merges them.
std::vector<Vma> Apply(const std::vector<Mapping>& ms) {
  std::vector<Vma> vmas;
  for (const Mapping& m : ms) {
    std::vector<Vma> next;
    for (const Vma& v : vmas) {
      if (v.end <= m.addr || m.end() <= v.start) {
        next.push_back(v);
        continue;
      }
      if (v.start < m.addr) next.push_back({v.start, m.addr, v.prot, v.src, v.off});
      if (m.end() < v.end) {
        const uint64_t cut = m.end() - v.start;
        next.push_back({m.end(), v.end, v.prot, v.src, v.src == MapSource::kAnonymous ? 0 : v.off + cut});
      }
    }
    next.push_back({m.addr, m.end(), m.prot, m.source, m.file_offset});
    std::sort(next.begin(), next.end(), [](const Vma& a, const Vma& b) { return a.start < b.start; });
    vmas = std::move(next);
  }
  std::vector<Vma> merged;
  for (const Vma& v : vmas) {
    if (!merged.empty()) {
      Vma& p = merged.back();
      if (p.end == v.start && p.prot == v.prot && p.src == v.src &&
          (v.src == MapSource::kAnonymous || p.off + (p.end - p.start) == v.off)) {
        p.end = v.end;
        continue;
      }
    }
    merged.push_back(v);
  }
  return merged;
}

std::vector<Vma> KernelVmas(const Native& n, uint64_t exe_ino, uint64_t interp_ino) {
  std::vector<Vma> out;
  for (const MapsLine& m : n.maps) {
    MapSource src;
    if (m.inode != 0 && m.inode == exe_ino) {
      src = MapSource::kExecutable;
    } else if (m.inode != 0 && m.inode == interp_ino) {
      src = MapSource::kInterpreter;
    } else if (m.inode == 0 && m.path.empty()) {
      src = MapSource::kAnonymous;
    } else {
      continue;  // [stack], [vdso], [vvar], [vsyscall]
    }
    const int prot = (m.perms[0] == 'r' ? PROT_READ : 0) | (m.perms[1] == 'w' ? PROT_WRITE : 0) |
                     (m.perms[2] == 'x' ? PROT_EXEC : 0);
    out.push_back({m.start, m.end, prot, src, src == MapSource::kAnonymous ? 0 : m.offset});
  }
  return out;
}

uint64_t Inode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// What the loader plans for the inputs the kernel got; the values that are
// not the loader's to choose (random bytes, hwcap, ids, vDSO address) are
// taken from the kernel's auxv.
Result<ExecImage> Plan(const Native& n, const std::string& path, const std::vector<std::string>& argv,
                       const std::vector<std::string>& envp, uint64_t rlimit) {
  ExecRequest req;
  req.filename = path;
  req.argv = argv;
  req.envp = envp;
  req.stack_rlimit = rlimit;
  if (n.kind == Native::kExecOk) {
    auto d = DecodeStack(n.stack, n.stack_top);
    if (!d.ok()) return d.error();
    auto get = [&](uint64_t t) { return d->Aux(t).value_or(0); };
    req.aux.hwcap = get(kAtHwcap);
    req.aux.hwcap2 = get(kAtHwcap2);
    req.aux.minsigstksz = get(kAtMinsigstksz);
    req.aux.uid = get(kAtUid);
    req.aux.euid = get(kAtEuid);
    req.aux.gid = get(kAtGid);
    req.aux.egid = get(kAtEgid);
    req.aux.secure = get(kAtSecure);
    req.aux.clktck = get(kAtClktck);
    if (d->Aux(kAtSysinfoEhdr)) req.aux.vdso = get(kAtSysinfoEhdr);
    if (d->Aux(kAtRseqFeatureSize)) req.aux.rseq = {{get(kAtRseqFeatureSize), get(kAtRseqAlign)}};
    req.aux.platform = d->Aux(kAtPlatform) ? StringAt(n.stack, n.stack_top, get(kAtPlatform)).value_or("") : "";
    const uint64_t rnd = get(kAtRandom);
    if (rnd >= n.regs.rsp && rnd + 16 <= n.stack_top) std::memcpy(req.random.data(), n.stack.data() + (rnd - n.regs.rsp), 16);
  }
  testing::HostFiles host;
  return PlanExec(req, host);
}

// Execs natively and plans; expects the same outcome and, on success, the
// same address space, registers, stack, auxv and mm fields.
void CompareWithKernel(const std::string& path, const std::vector<std::string>& argv,
                       const std::vector<std::string>& envp = {"PATH=/bin", "LANG=C"}, uint64_t rlimit = k8M) {
  SCOPED_TRACE(path);
  const Native n = TraceExec(path, argv, envp, rlimit);
  if (n.kind == Native::kNoSetup) GTEST_SKIP() << "cannot trace a child here: " << std::strerror(n.code);
  auto img = Plan(n, path, argv, envp, rlimit);
  if (n.kind == Native::kErrno) {
    ASSERT_FALSE(img.ok()) << "the kernel refused with " << ErrnoName(n.code);
    EXPECT_EQ(img.err(), n.code) << ToString(img.error());
    EXPECT_FALSE(img.error().fatal) << ToString(img.error());
    return;
  }
  if (n.kind == Native::kSignal) {
    ASSERT_FALSE(img.ok()) << "the kernel killed it with signal " << n.code;
    EXPECT_EQ(n.code, SIGSEGV);
    EXPECT_TRUE(img.error().fatal) << ToString(img.error());
    return;
  }
  ASSERT_TRUE(img.ok()) << ToString(img.error());
  const ExecImage& x = *img;

  // The mappings.
  const uint64_t exe_ino = Inode(x.exe_path);
  const uint64_t interp_ino = x.interp ? Inode(x.exe.interp) : 0;
  EXPECT_EQ(ToString(Apply(x.plan.mappings)), ToString(KernelVmas(n, exe_ino, interp_ino)));
  EXPECT_EQ(x.stack.top, n.stack_top);
  EXPECT_EQ(x.stack.vma_start, n.stack_start);
  for (const MapsLine& m : n.maps) {
    if (m.path == "[stack]") {
      EXPECT_EQ(m.perms[2] == 'x', x.plan.executable_stack) << m.perms;
    }
  }

  // Registers and the stack, byte for byte.
  EXPECT_EQ(x.plan.entry, n.regs.rip);
  EXPECT_EQ(x.stack.rsp, n.regs.rsp);
  EXPECT_EQ(x.stack.bytes.size(), n.stack.size());
  if (x.stack.bytes != n.stack) {
    auto a = DecodeStack(x.stack.bytes, x.stack.top);
    auto b = DecodeStack(n.stack, n.stack_top);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->argv, b->argv);
    EXPECT_EQ(a->envp, b->envp);
    EXPECT_EQ(a->auxv, b->auxv);
    ADD_FAILURE() << "the initial stacks differ";
  }
  // /proc/PID/auxv: mm->saved_auxv.
  std::vector<uint8_t> auxv(x.stack.auxv.size() * 16);
  std::memcpy(auxv.data(), x.stack.auxv.data(), auxv.size());
  EXPECT_EQ(auxv, n.auxv);

  // mm fields (/proc/PID/stat 26-28, 45-51).
  ASSERT_GE(n.stat.size(), 52u);
  EXPECT_EQ(n.stat[26], x.plan.start_code) << "start_code";
  EXPECT_EQ(n.stat[27], x.plan.end_code) << "end_code";
  EXPECT_EQ(n.stat[28], x.stack.rsp) << "start_stack";
  EXPECT_EQ(n.stat[45], x.plan.start_data) << "start_data";
  EXPECT_EQ(n.stat[46], x.plan.end_data) << "end_data";
  EXPECT_EQ(n.stat[47], x.plan.brk) << "start_brk";
  EXPECT_EQ(n.stat[48], x.stack.arg_start) << "arg_start";
  EXPECT_EQ(n.stat[49], x.stack.arg_end) << "arg_end";
  EXPECT_EQ(n.stat[50], x.stack.env_start) << "env_start";
  EXPECT_EQ(n.stat[51], x.stack.env_end) << "env_end";
}

// ---------------------------------------------------------------- real programs

TEST(NativeTest, StaticBusybox) {
  if (!testing::IsFile("/bin/busybox")) GTEST_SKIP() << "no /bin/busybox (apt-get install busybox-static)";
  CompareWithKernel("/bin/busybox", {"busybox", "true"});
}

TEST(NativeTest, PieWithDynamicLinker) {
  if (!testing::IsFile("/bin/true")) GTEST_SKIP();
  CompareWithKernel("/bin/true", {"true", "--version"});
  CompareWithKernel("/bin/true", {});  // argc 0: Linux adds ""
  CompareWithKernel("/bin/true", {"true"}, {});
}

TEST(NativeTest, DynamicLinkerRunDirectly) {
  if (!testing::IsFile("/lib64/ld-linux-x86-64.so.2")) GTEST_SKIP();
  CompareWithKernel("/lib64/ld-linux-x86-64.so.2", {"ld.so", "--help"});
}

TEST(NativeTest, BuiltProbes) {
  for (const char* name : {"probe_pie", "probe_static", "probe_static_pie"}) {
    const std::string p = ProbePath(name);
    if (!testing::IsFile(p)) {
      ADD_FAILURE() << p << " missing";
      continue;
    }
    CompareWithKernel(p, {name, "with spaces", "", "\xff\x01"}, {"A=B", "EMPTY="});
  }
}

TEST(NativeTest, StackLimitsAndLargeArguments) {
  if (!testing::IsFile("/bin/true")) GTEST_SKIP();
  const std::vector<std::string> big(3, std::string(100000, 'x'));
  CompareWithKernel("/bin/true", {"true"}, {}, 64 << 10);
  CompareWithKernel("/bin/true", {"true"}, {}, RLIM_INFINITY);
  CompareWithKernel("/bin/true", big, {"E=1"}, k8M);
  CompareWithKernel("/bin/true", big, {}, 1 << 30);
}

// The E2BIG boundary: a budget filled exactly runs, one byte more does not.
TEST(NativeTest, ArgumentLimitBoundaries) {
  if (!testing::IsFile("/bin/true")) GTEST_SKIP();
  const std::string path = "/bin/true";
  for (uint64_t rlimit : {k8M, uint64_t{256} << 10, uint64_t{RLIM_INFINITY}}) {
    SCOPED_TRACE(rlimit);
    const int argc = 60;
    const uint64_t budget = ArgStringBudget(rlimit, argc, 0)->string_bytes;
    std::vector<std::string> argv = {"true"};
    uint64_t used = path.size() + 1 + 5;
    for (int i = 1; i < argc; ++i) {
      const uint64_t after = static_cast<uint64_t>(argc - 1 - i);  // strings still to come, 1 byte each at least
      const uint64_t n = std::min<uint64_t>(kMaxArgStrlen - 1, budget - used - 1 - after);
      argv.push_back(std::string(n, 'a'));
      used += n + 1;
    }
    ASSERT_EQ(used, budget) << "argc too small to fill the budget";
    CompareWithKernel(path, argv, {}, rlimit);
    argv.back().push_back('b');
    CompareWithKernel(path, argv, {}, rlimit);
  }
  // MAX_ARG_STRLEN, with its NUL.
  CompareWithKernel(path, {"true", std::string(kMaxArgStrlen - 1, 'a')}, {}, k8M);
  CompareWithKernel(path, {"true", std::string(kMaxArgStrlen, 'a')}, {}, k8M);
  CompareWithKernel(path, {"true"}, {std::string(kMaxArgStrlen, 'e')}, k8M);
  // Small RLIMIT_STACK: ARG_MAX still applies, but the strings must fit the rlimit.
  CompareWithKernel(path, {"true", std::string(100 << 10, 'a')}, {}, 64 << 10);
  CompareWithKernel(path, {"true", std::string(60 << 10, 'a')}, {}, 64 << 10);
  // Tables beyond the rlimit: Linux fails after the point of no return.
  CompareWithKernel(path, std::vector<std::string>(3000, ""), {}, 16 << 10);
}

// ---------------------------------------------------------------- crafted files

class CraftedTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir(); }
  std::string Put(const std::string& name, const std::vector<uint8_t>& bytes) {
    const std::string p = dir_ + "/" + name;
    WriteFile(p, bytes);
    return p;
  }
  std::string dir_;
};

ElfSpec With(ElfSpec s, auto&& edit) {
  edit(s);
  return s;
}

TEST_F(CraftedTest, ValidCraftedElves) {
  const std::string st = Put("static", Build(testing::StaticExec()));
  const Native probe = TraceExec(st, {"static"}, {}, k8M);
  if (probe.kind == Native::kErrno && probe.code == EACCES) GTEST_SKIP() << dir_ << " is noexec";
  CompareWithKernel(st, {"static"});
  const std::string interp = Put("interp", Build(testing::Interp()));
  CompareWithKernel(Put("pie", Build(testing::Pie(interp))), {"pie", "a"});
  // 74 program headers: more than a page (older kernels refused it).
  CompareWithKernel(Put("phnum74", Build(With(testing::StaticExec(), [](ElfSpec& s) {
                      s.phnum = 74;
                      s.phoff = 0x2000;
                      s.min_size = 0x4000;
                    }))),
                    {"phnum74"});
  // Segments sharing a page, a bss-only segment, an executable stack.
  CompareWithKernel(Put("shared", Build(With(testing::StaticExec(), [](ElfSpec& s) {
                      s.phdrs[0].p_filesz = s.phdrs[0].p_memsz = 0x800;
                      s.phdrs[1] = testing::Load(PF_R | PF_W, 0x810, 0x400810, 0x20, 0x1000);
                      s.phdrs.push_back(testing::Load(PF_R | PF_W, 0x123, 0x800100, 0, 0x5000));
                      s.phdrs[2].p_flags = PF_R | PF_W | PF_X;
                    }))),
                    {"shared"});
}

struct HostileCase {
  const char* name;
  std::function<void(ElfSpec& exe, ElfSpec& interp)> edit;
  bool with_interp;
};

TEST_F(CraftedTest, HostileElvesFailAsLinuxFails) {
  const std::string st = Put("probe", Build(testing::StaticExec()));
  const Native probe = TraceExec(st, {"probe"}, {}, k8M);
  if (probe.kind != Native::kExecOk) GTEST_SKIP() << "cannot exec crafted files here";

  const std::vector<HostileCase> cases = {
      // Before the point of no return: the errno comes back.
      {"et_rel", [](ElfSpec& e, ElfSpec&) { e.type = ET_REL; }, false},
      {"i386", [](ElfSpec& e, ElfSpec&) { e.machine = EM_386; }, false},
      {"phentsize", [](ElfSpec& e, ElfSpec&) { e.phentsize = 32; }, false},
      {"phnum_0", [](ElfSpec& e, ElfSpec&) { e.phnum = 0; }, false},
      {"phnum_1171", [](ElfSpec& e, ElfSpec&) { e.phnum = 1171; e.min_size = 70000; }, false},
      {"phdrs_cut_by_eof", [](ElfSpec& e, ElfSpec&) { e.phoff = 0x1020 - 100; e.truncate = 0x1020; }, false},
      {"phoff_beyond_eof", [](ElfSpec& e, ElfSpec&) { e.phoff = 0x100000; e.truncate = 0x1020; }, false},
      {"interp_no_nul", [](ElfSpec& e, ElfSpec&) { e.blobs.push_back({e.phdrs[1].p_offset + e.phdrs[1].p_filesz - 1, "X"}); }, true},
      {"interp_size_1", [](ElfSpec& e, ElfSpec&) { e.phdrs[1].p_filesz = 1; }, true},
      {"interp_beyond_eof", [](ElfSpec& e, ElfSpec&) { e.phdrs[1].p_offset = 0x1018; e.phdrs[1].p_filesz = 0x100; }, true},
      {"interp_i386", [](ElfSpec&, ElfSpec& i) { i.machine = EM_386; }, true},
      {"interp_phnum_0", [](ElfSpec&, ElfSpec& i) { i.phnum = 0; }, true},
      {"interp_truncated", [](ElfSpec&, ElfSpec& i) { i.truncate = 40; }, true},
      // After it: SIGSEGV.
      {"filesz_gt_memsz", [](ElfSpec& e, ElfSpec&) { e.phdrs[1].p_memsz = 0x10; }, false},
      {"beyond_task_size", [](ElfSpec& e, ElfSpec&) { e.phdrs[1].p_vaddr = kTaskSize - 0x1000; e.phdrs[1].p_memsz = 0x2000; }, false},
      {"misaligned", [](ElfSpec& e, ElfSpec&) { e.phdrs[1].p_offset = 0x1008; e.phdrs[1].p_filesz = 8; }, false},
      {"entry_beyond_task_size", [](ElfSpec& e, ElfSpec&) { e.entry = kTaskSize + 0x1000; }, false},
      {"empty_et_dyn", [](ElfSpec& e, ElfSpec&) {
         e.type = ET_DYN;
         for (auto& p : e.phdrs) p.p_memsz = p.p_filesz = 0, p.p_vaddr = 0x1000;
       }, false},
      {"interp_et_rel", [](ElfSpec&, ElfSpec& i) { i.type = ET_REL; }, true},
      {"interp_filesz_gt_memsz", [](ElfSpec&, ElfSpec& i) { i.phdrs[1].p_memsz = 1; }, true},
      {"interp_misaligned", [](ElfSpec&, ElfSpec& i) { i.phdrs[1].p_offset = 0x1011; }, true},
      {"interp_no_load", [](ElfSpec&, ElfSpec& i) { i.phdrs.resize(0); i.phdrs.push_back(testing::Phdr(PT_NOTE, 0, 0, 0, 0, 0, 4)); }, true},
  };
  int n = 0;
  for (const HostileCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string interp_path = dir_ + "/i" + std::to_string(n);
    ElfSpec exe = c.with_interp ? testing::Pie(interp_path) : testing::StaticExec();
    ElfSpec interp = testing::Interp();
    c.edit(exe, interp);
    if (c.with_interp) Put("i" + std::to_string(n), Build(interp));
    CompareWithKernel(Put("e" + std::to_string(n), Build(exe)), {c.name});
    ++n;
  }
  // A missing interpreter, and one that is not ELF.
  CompareWithKernel(Put("no_interp", Build(testing::Pie(dir_ + "/nonexistent"))), {"x"});
  Put("text_interp", Bytes("#!/bin/sh\n"));
  CompareWithKernel(Put("to_text", Build(testing::Pie(dir_ + "/text_interp"))), {"x"});
  CompareWithKernel(Put("plain_text", Bytes("echo hi\n")), {"x"});
  CompareWithKernel(Put("empty", {}), {"x"});
}

// What bulkhead refuses that Linux runs (README: "stricter than Linux").
TEST_F(CraftedTest, DocumentedDivergences) {
  const std::string st = Put("probe", Build(testing::StaticExec()));
  if (TraceExec(st, {"probe"}, {}, k8M).kind != Native::kExecOk) GTEST_SKIP() << "cannot exec crafted files here";
  const std::vector<std::pair<const char*, ElfSpec>> cases = {
      {"overlapping", With(testing::StaticExec(), [](ElfSpec& s) { s.phdrs[1].p_vaddr = 0x400800; s.phdrs[1].p_offset = 0x800; })},
      {"unsorted", With(testing::StaticExec(), [](ElfSpec& s) { std::swap(s.phdrs[0], s.phdrs[1]); })},
      {"beyond_eof", With(testing::StaticExec(), [](ElfSpec& s) { s.phdrs[1].p_filesz = 0x2000; })},
      {"no_load", With(testing::StaticExec(), [](ElfSpec& s) { s.phdrs.resize(0); s.phdrs.push_back(testing::Phdr(PT_NOTE, 0, 0, 0, 0, 0, 4)); })},
  };
  for (const auto& [name, spec] : cases) {
    SCOPED_TRACE(name);
    const std::string p = Put(name, Build(spec));
    EXPECT_EQ(TraceExec(p, {name}, {}, k8M).kind, Native::kExecOk);
    testing::HostFiles host;
    ExecRequest req;
    req.filename = p;
    req.argv = {name};
    auto img = PlanExec(req, host);
    ASSERT_FALSE(img.ok());
    EXPECT_TRUE(img.err() == ENOEXEC || img.err() == EINVAL) << ToString(img.error());
  }
}

// ---------------------------------------------------------------- scripts

TEST_F(CraftedTest, ScriptsParseAsLinuxParsesThem) {
  const std::string interp = ProbePath("probe_static");
  if (!testing::IsFile(interp)) GTEST_SKIP() << interp << " missing";
  const std::vector<std::string> lines = {
      "#!" + interp + "\n",
      "#! " + interp + "\n",
      "#!" + interp + " -a\n",
      "#!" + interp + "  one  two  \t\n",
      "#!\t" + interp + "\t-x\t\n",
      "#!" + interp,
      "#!" + interp + " arg",
      "#!" + interp + "\r\n",
      "#!" + interp + std::string(1, '\0') + " hidden\n",
      "#!" + interp + " a" + std::string(1, '\0') + "b c\n",
      "#!   \n",
      "#!\n",
      "#!",
      "#!" + std::string(300, ' '),
      "#!/" + std::string(300, 'p'),
      "#!" + interp + " " + std::string(300, 'x'),
      "#!/nonexistent/interp\n",
  };
  int n = 0;
  for (const std::string& l : lines) {
    SCOPED_TRACE(::testing::PrintToString(l.substr(0, 60)));
    const std::string p = Put("script" + std::to_string(n++), Bytes(l + "body\n"));
    CompareWithKernel(p, {"script", "arg1", "arg 2"});
  }
}

TEST_F(CraftedTest, ScriptChainLimitMatchesTheKernel) {
  const std::string interp = ProbePath("probe_static");
  if (!testing::IsFile(interp)) GTEST_SKIP() << interp << " missing";
  std::string prev = interp;
  for (int i = 0; i <= kMaxInterpreterRewrites; ++i) {
    prev = Put("s" + std::to_string(i), Bytes("#!" + prev + "\n"));
  }
  // s0 .. s4: five rewrites run; s5: six are ELOOP.
  CompareWithKernel(dir_ + "/s" + std::to_string(kMaxInterpreterRewrites - 1), {"s", "x"});
  CompareWithKernel(dir_ + "/s" + std::to_string(kMaxInterpreterRewrites), {"s", "x"});
  const Native n = TraceExec(dir_ + "/s" + std::to_string(kMaxInterpreterRewrites), {"s"}, {}, k8M);
  EXPECT_EQ(n.kind, Native::kErrno);
  EXPECT_EQ(n.code, ELOOP);
}

// ---------------------------------------------------------------- getauxval

// The probes run to completion and print getauxval(): AT_PHDR, AT_ENTRY,
// AT_BASE, AT_PHNUM, AT_EXECFN and argv as the program itself sees them.
TEST(NativeTest, ProbesSeeThePlannedAuxv) {
  for (const char* name : {"probe_pie", "probe_static", "probe_static_pie"}) {
    SCOPED_TRACE(name);
    const std::string path = ProbePath(name);
    if (!testing::IsFile(path)) {
      ADD_FAILURE() << path << " missing";
      continue;
    }
    const std::vector<std::string> argv = {name, "x y"};
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const int pers = ::personality(0xffffffff);
      ::personality(static_cast<unsigned long>(pers) | ADDR_NO_RANDOMIZE);
      struct rlimit rl = {k8M, RLIM_INFINITY};
      ::setrlimit(RLIMIT_STACK, &rl);
      ::dup2(p[1], 1);
      char* av[] = {const_cast<char*>(argv[0].c_str()), const_cast<char*>(argv[1].c_str()), nullptr};
      char* ev[] = {nullptr};
      ::execve(path.c_str(), av, ev);
      ::_exit(127);
    }
    ::close(p[1]);
    std::string out;
    char buf[4096];
    ssize_t r;
    while ((r = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(r));
    ::close(p[0]);
    int st;
    ::waitpid(pid, &st, 0);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;

    ExecRequest req;
    req.filename = path;
    req.argv = argv;
    testing::HostFiles host;
    auto img = PlanExec(req, host);
    ASSERT_TRUE(img.ok()) << ToString(img.error());
    auto hex = [](const std::string& s) {
      std::string h;
      char b[3];
      for (unsigned char c : s) std::snprintf(b, sizeof b, "%02x", c), h += b;
      return h;
    };
    char want[512];
    std::snprintf(want, sizeof want, "AT_PHDR %llx\nAT_PHNUM %llx\nAT_ENTRY %llx\nAT_BASE %llx\nAT_EXECFN %s\n",
                  (unsigned long long)img->plan.phdr, (unsigned long long)img->plan.phnum,
                  (unsigned long long)img->plan.exe_entry, (unsigned long long)img->plan.base, hex(path).c_str());
    std::string expected = want;
    for (const auto& a : argv) expected += "ARG " + hex(a) + "\n";
    EXPECT_EQ(out, expected);
  }
}

}  // namespace
}  // namespace bulkhead::loader
