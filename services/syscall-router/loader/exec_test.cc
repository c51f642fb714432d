#include "services/syscall-router/loader/exec.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "services/syscall-router/loader/testing/elf_builder.h"
#include "services/syscall-router/loader/testing/test_util.h"

namespace bulkhead::loader {
namespace {

using testing::Build;
using testing::ElfSpec;
using testing::MemFiles;

std::vector<uint8_t> Bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

ExecRequest Req(const std::string& path, std::vector<std::string> argv) {
  ExecRequest r;
  r.filename = path;
  r.argv = std::move(argv);
  r.envp = {"HOME=/", "TERM=dumb"};
  for (int i = 0; i < 16; ++i) r.random[i] = static_cast<uint8_t>(i * 7);
  return r;
}

ElfSpec With(ElfSpec s, auto&& edit) {
  edit(s);
  return s;
}

DecodedStack Decode(const ExecImage& img) {
  auto d = DecodeStack(img.stack.bytes, img.stack.top);
  EXPECT_TRUE(d.ok()) << ToString(d.error());
  return d.ok() ? *d : DecodedStack{};
}

MemFiles WithApp() {
  MemFiles fs;
  fs.files["/bin/app"] = Build(testing::StaticExec());
  fs.files["/bin/pie"] = Build(testing::Pie("/lib/ld.so"));
  fs.files["/lib/ld.so"] = Build(testing::Interp());
  return fs;
}

TEST(ExecTest, StaticExecutable) {
  MemFiles fs = WithApp();
  auto img = PlanExec(Req("/bin/app", {"app", "x"}), fs);
  ASSERT_TRUE(img.ok()) << ToString(img.error());
  EXPECT_EQ(img->exe_path, "/bin/app");
  EXPECT_FALSE(img->interp.has_value());
  EXPECT_EQ(img->plan.entry, 0x400200u);
  EXPECT_EQ(img->stack.top, kStackTop);
  EXPECT_EQ(img->stack.rsp % 16, 0u);
  EXPECT_EQ(fs.opens, 1);
  EXPECT_EQ(fs.reads, 1);
  const DecodedStack d = Decode(*img);
  EXPECT_EQ(d.argv, (std::vector<std::string>{"app", "x"}));
  EXPECT_EQ(d.envp, (std::vector<std::string>{"HOME=/", "TERM=dumb"}));
  EXPECT_EQ(*d.Aux(kAtEntry), 0x400200u);
  EXPECT_EQ(*d.Aux(kAtPhdr), 0x400040u);
  EXPECT_EQ(*d.Aux(kAtBase), 0u);
  EXPECT_EQ(StringAt(img->stack.bytes, img->stack.top, *d.Aux(kAtExecfn)), "/bin/app");
}

TEST(ExecTest, PieWithInterpreter) {
  MemFiles fs = WithApp();
  auto img = PlanExec(Req("/bin/pie", {"pie"}), fs);
  ASSERT_TRUE(img.ok()) << ToString(img.error());
  ASSERT_TRUE(img->interp.has_value());
  EXPECT_EQ(img->plan.exe_bias, 0x555555554000u);
  EXPECT_EQ(img->plan.entry, img->plan.interp_bias + 0x1000);
  const DecodedStack d = Decode(*img);
  EXPECT_EQ(*d.Aux(kAtBase), img->plan.interp_bias);
  EXPECT_EQ(*d.Aux(kAtEntry), 0x555555555000u);
  EXPECT_EQ(*d.Aux(kAtPhdr), 0x555555554040u);
  EXPECT_EQ(*d.Aux(kAtPhnum), 4u);
  EXPECT_EQ(fs.opens, 2);
}

TEST(ExecTest, InterpreterErrors) {
  struct Case {
    const char* name;
    std::vector<uint8_t> interp;
    int err;
  };
  const auto good = Build(testing::Interp());
  const std::vector<Case> cases = {
      {"not ELF", Bytes("#!/bin/sh\n" + std::string(100, '#')), ELIBBAD},
      {"shorter than an ELF header", Bytes("#!/bin/sh\n"), EIO},  // the 64-byte read comes up short first
      {"truncated header", std::vector<uint8_t>(good.begin(), good.begin() + 40), EIO},
      {"i386", Build(With(testing::Interp(), [](ElfSpec& s) { s.machine = EM_386; })), ELIBBAD},
      {"ET_REL", Build(With(testing::Interp(), [](ElfSpec& s) { s.type = ET_REL; })), EINVAL},
      {"filesz > memsz", Build(With(testing::Interp(), [](ElfSpec& s) { s.phdrs[1].p_memsz = 1; })), ENOMEM},
      {"no PT_LOAD", Build(With(testing::Interp(), [](ElfSpec& s) { s.phdrs.resize(0); s.phdrs.push_back(testing::Phdr(PT_NOTE, 0, 0, 0, 0, 0, 4)); })), EINVAL},
      {"bad phnum", Build(With(testing::Interp(), [](ElfSpec& s) { s.phnum = 0; })), ELIBBAD},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    MemFiles fs = WithApp();
    fs.files["/lib/ld.so"] = c.interp;
    EXPECT_EQ(PlanExec(Req("/bin/pie", {"pie"}), fs).err(), c.err);
  }
}

TEST(ExecTest, MissingOrEmptyInterpreterIsEnoent) {
  MemFiles fs = WithApp();
  fs.files.erase("/lib/ld.so");
  auto r = PlanExec(Req("/bin/pie", {"pie"}), fs);
  EXPECT_EQ(r.err(), ENOENT);
  EXPECT_NE(r.error().message.find("/lib/ld.so"), std::string::npos) << r.error().message;

  fs = WithApp();
  fs.files["/bin/pie"] = Build(testing::Pie(std::string(1, '\0')));  // PT_INTERP "\0\0": the path ""
  EXPECT_EQ(PlanExec(Req("/bin/pie", {"pie"}), fs).err(), ENOENT);
  EXPECT_EQ(fs.opens, 1);  // "" is not looked up
  fs.open_errors["/lib/ld.so"] = EACCES;
  fs.files["/bin/pie"] = Build(testing::Pie("/lib/ld.so"));
  EXPECT_EQ(PlanExec(Req("/bin/pie", {"pie"}), fs).err(), EACCES);
}

TEST(ExecTest, OpenComesBeforeArgumentLimits) {
  MemFiles fs = WithApp();
  ExecRequest r = Req("/nope", {std::string(kMaxArgStrlen, 'a')});
  EXPECT_EQ(PlanExec(r, fs).err(), ENOENT);
  r.filename = "/bin/app";
  EXPECT_EQ(PlanExec(r, fs).err(), E2BIG);
  EXPECT_EQ(fs.reads, 0);  // refused before reading anything
  r.filename = "";
  EXPECT_EQ(PlanExec(r, fs).err(), ENOENT);
}

TEST(ExecTest, NotExecutableFormats) {
  MemFiles fs;
  fs.files["/empty"] = {};
  fs.files["/text"] = Bytes("echo hi\n");
  fs.files["/bad-elf"] = Build(With(testing::StaticExec(), [](ElfSpec& s) { s.machine = EM_AARCH64; }));
  fs.files["/bad-segment"] = Build(With(testing::StaticExec(), [](ElfSpec& s) { s.phdrs[1].p_memsz = 1; }));
  EXPECT_EQ(PlanExec(Req("/empty", {"x"}), fs).err(), ENOEXEC);
  EXPECT_EQ(PlanExec(Req("/text", {"x"}), fs).err(), ENOEXEC);
  EXPECT_EQ(PlanExec(Req("/bad-elf", {"x"}), fs).err(), ENOEXEC);
  EXPECT_EQ(PlanExec(Req("/bad-segment", {"x"}), fs).err(), EINVAL);
}

TEST(ExecTest, ScriptRewritesArgvAndKeepsExecfn) {
  MemFiles fs = WithApp();
  fs.files["/s"] = Bytes("#!/bin/app -v\nbody\n");
  auto img = PlanExec(Req("/s", {"s", "1", "2"}), fs);
  ASSERT_TRUE(img.ok()) << ToString(img.error());
  EXPECT_EQ(img->argv, (std::vector<std::string>{"/bin/app", "-v", "/s", "1", "2"}));
  EXPECT_EQ(img->scripts, std::vector<std::string>{"/s"});
  EXPECT_EQ(img->exe_path, "/bin/app");
  const DecodedStack d = Decode(*img);
  EXPECT_EQ(d.argv, img->argv);
  EXPECT_EQ(StringAt(img->stack.bytes, img->stack.top, *d.Aux(kAtExecfn)), "/s");  // the script, not the interpreter
}

TEST(ExecTest, ScriptChainsUpToTheLinuxLimit) {
  MemFiles fs = WithApp();
  fs.files["/s0"] = Bytes("#!/bin/app\n");
  for (int i = 1; i <= kMaxInterpreterRewrites; ++i) {
    fs.files["/s" + std::to_string(i)] = Bytes("#!/s" + std::to_string(i - 1) + "\n");
  }
  const std::string last = "/s" + std::to_string(kMaxInterpreterRewrites - 1);
  auto img = PlanExec(Req(last, {"me", "arg"}), fs);
  ASSERT_TRUE(img.ok()) << ToString(img.error());
  EXPECT_EQ(img->scripts.size(), static_cast<size_t>(kMaxInterpreterRewrites));
  // Each level puts its interpreter in front: /bin/app /s0 /s1 ... last arg.
  std::vector<std::string> want = {"/bin/app"};
  for (int i = 0; i < kMaxInterpreterRewrites; ++i) want.push_back("/s" + std::to_string(i));
  want.push_back("arg");
  EXPECT_EQ(img->argv, want);
  // One more level is ELOOP.
  EXPECT_EQ(PlanExec(Req("/s" + std::to_string(kMaxInterpreterRewrites), {"me"}), fs).err(), ELOOP);
  // A script that runs itself.
  fs.files["/loop"] = Bytes("#!/loop\n");
  EXPECT_EQ(PlanExec(Req("/loop", {"loop"}), fs).err(), ELOOP);
}

TEST(ExecTest, ScriptErrors) {
  MemFiles fs = WithApp();
  fs.files["/missing"] = Bytes("#!/no/such/interp\n");
  fs.files["/blank"] = Bytes("#!   \n");
  fs.files["/bare"] = Bytes("#!");
  fs.files["/to-text"] = Bytes("#!/text\n");
  fs.files["/text"] = Bytes("hello\n");
  EXPECT_EQ(PlanExec(Req("/missing", {"m"}), fs).err(), ENOENT);
  EXPECT_EQ(PlanExec(Req("/blank", {"b"}), fs).err(), ENOEXEC);
  EXPECT_EQ(PlanExec(Req("/bare", {"b"}), fs).err(), ENOENT);  // interpreter "" as Linux
  EXPECT_EQ(PlanExec(Req("/to-text", {"t"}), fs).err(), ENOEXEC);
}

TEST(ExecTest, ScriptRewriteIsChargedToTheArgumentBudget) {
  MemFiles fs = WithApp();
  fs.files["/s"] = Bytes("#!/bin/app\n");
  // Fill the budget exactly: "/s" (the filename), "s", and big strings.
  ExecRequest r = Req("/s", {"s"});
  r.envp.clear();
  const int argc = 17;
  const uint64_t budget = (2u << 20) - 8 * argc;
  uint64_t used = 3 + 2;
  for (int i = 1; i < argc; ++i) {
    const uint64_t n = std::min<uint64_t>(kMaxArgStrlen - 1, budget - used - 1);
    r.argv.push_back(std::string(n, 'a'));
    used += n + 1;
  }
  ASSERT_EQ(used, budget);
  // The same total run directly ("/bin/app" is 6 bytes longer than "/s").
  ExecRequest direct = r;
  direct.filename = "/bin/app";
  direct.argv.back().resize(direct.argv.back().size() - 6);
  ASSERT_TRUE(PlanExec(direct, fs).ok());
  // The script drops "s" (2 bytes) and adds "/bin/app" and "/s" (12): E2BIG.
  EXPECT_EQ(PlanExec(r, fs).err(), E2BIG);
}

TEST(ExecTest, StepwiseProtocolOnTheHost) {
  if (!testing::IsFile("/bin/true")) GTEST_SKIP();
  testing::HostFiles host;
  ExecPlanner p(Req("/bin/true", {"true"}));
  std::vector<std::string> log;
  while (p.step() == ExecPlanner::Step::kOpen || p.step() == ExecPlanner::Step::kRead) {
    const char* role = p.open_role() == FileRole::kExecutable ? "exe" : "interp";
    if (p.step() == ExecPlanner::Step::kOpen) {
      log.push_back(std::string("open ") + role + " " + p.open_path());
      const int64_t size = host.Open(p.open_path(), p.open_role());
      ASSERT_GE(size, 0);
      p.Opened(static_cast<uint64_t>(size));
    } else {
      log.push_back(std::string("read ") + role + " " + std::to_string(p.read_offset()) + "+" +
                    std::to_string(p.read_length()));
      std::vector<uint8_t> buf(p.read_length());
      const int64_t n = host.Read(p.open_role(), p.read_offset(), buf);
      ASSERT_GE(n, 0);
      buf.resize(static_cast<size_t>(n));
      p.ReadDone(buf);
    }
  }
  ASSERT_EQ(p.step(), ExecPlanner::Step::kDone) << ToString(p.error());
  EXPECT_EQ(log, (std::vector<std::string>{"open exe /bin/true", "read exe 0+4096",
                                           "open interp /lib64/ld-linux-x86-64.so.2", "read interp 0+4096"}));
  EXPECT_EQ(p.image().plan.exe_bias, 0x555555554000u);
}

TEST(ExecTest, ReadFailures) {
  ExecPlanner p(Req("/x", {"x"}));
  p.Opened(10000);
  ASSERT_EQ(p.step(), ExecPlanner::Step::kRead);
  p.ReadFailed(EIO);
  EXPECT_EQ(p.step(), ExecPlanner::Step::kFailed);
  EXPECT_EQ(p.error().err, EIO);

  // Program headers beyond the first page, and a read of them that comes back short.
  auto far = Build(With(testing::StaticExec(), [](ElfSpec& s) { s.phoff = 0x1400; s.min_size = 0x2000; }));
  ExecPlanner q(Req("/far", {"far"}));
  q.Opened(far.size());
  ASSERT_EQ(q.step(), ExecPlanner::Step::kRead);
  q.ReadDone(std::span<const uint8_t>(far).first(q.read_length()));
  ASSERT_EQ(q.step(), ExecPlanner::Step::kRead);
  EXPECT_EQ(q.read_offset(), 0x1400u);
  q.ReadDone(std::span<const uint8_t>(far).subspan(0x1400, 10));
  EXPECT_EQ(q.step(), ExecPlanner::Step::kFailed);
  EXPECT_EQ(q.error().err, EIO);

  // The same file read in full succeeds, with one extra read.
  MemFiles fs;
  fs.files["/far"] = far;
  ASSERT_TRUE(PlanExec(Req("/far", {"far"}), fs).ok());
  EXPECT_EQ(fs.reads, 2);
}

TEST(ExecTest, RandomizedExecIsConsistent) {
  if (!testing::IsFile("/bin/true")) GTEST_SKIP();
  testing::HostFiles host;
  for (uint64_t seed = 1; seed < 50; ++seed) {
    ExecRequest r = Req("/bin/true", {"true"});
    r.aslr = Aslr::FromSeed(seed);
    auto img = PlanExec(r, host);
    ASSERT_TRUE(img.ok()) << ToString(img.error());
    EXPECT_EQ(img->stack.top, img->layout.stack_top);
    EXPECT_EQ(img->stack.rsp % 16, 0u);
    EXPECT_GE(img->plan.exe_bias, 0x555555554000u);
    EXPECT_LT(img->plan.interp_bias + img->interp->span_end, img->layout.mmap_base + 1);
    const DecodedStack d = Decode(*img);
    EXPECT_EQ(*d.Aux(kAtBase), img->plan.interp_bias);
  }
}

}  // namespace
}  // namespace bulkhead::loader
