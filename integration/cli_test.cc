// The bulkhead binary as a user runs it: a supervisor in the foreground,
// the CLI talking to it, SIGTERM and kill -9 leaving nothing behind.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "integration/util.h"

namespace bulkhead::integration {
namespace {

namespace fs = std::filesystem;

std::string Bulkhead() { return Runfile("runtime/bulkhead"); }

struct Result {
  int code;
  std::string out;
};

// Runs bulkhead with `args`, capturing stdout and stderr together.
Result RunCli(const std::vector<std::string>& args) {
  std::string cmd = Bulkhead();
  for (auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  Result r{-1, ""};
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

pid_t StartSupervisor(const std::string& root, const std::string& id, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(Bulkhead().c_str(), "bulkhead", "--root", root.c_str(), "--log-format", "json", "supervise", "--id",
          id.c_str(), "--allow-test-hooks", nullptr);
    _exit(127);
  }
  // Ready once the state directory names this supervisor and holds its state.
  for (int i = 0; i < 500; ++i) {
    std::string owner = ReadFile(root + "/" + id + "/supervisor.pid");
    if (std::atoi(owner.c_str()) == pid && fs::exists(root + "/" + id + "/state.json")) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pid;
}

int WaitExit(pid_t pid, int timeout_ms) {
  for (int i = 0; i < timeout_ms / 10; ++i) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

TEST(Cli, HelpAndBadInput) {
  Result r = RunCli({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("selftest"), std::string::npos);
  r = RunCli({"frobnicate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("unknown command 'frobnicate'"), std::string::npos) << r.out;
  r = RunCli({"--bogus", "stats"});
  EXPECT_EQ(r.code, 2);
  r = RunCli({"--root", TestDir("empty"), "stats", "nosuch"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("no running sandbox named 'nosuch'"), std::string::npos) << r.out;
  r = RunCli({"stats", "../../etc"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("invalid sandbox id"), std::string::npos) << r.out;
  r = RunCli({"--log-format", "xml", "stats", "x"});
  EXPECT_EQ(r.code, 2);
  r = RunCli({"--service", "nosuch", "--sandbox-id", "x"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("no service called 'nosuch'"), std::string::npos) << r.out;
}

TEST(Cli, SuperviseStatsPingKillAndSigtermLeaveNothing) {
  const std::string root = TestDir("cli-root"), id = "cli1", log = TestDir("cli-log") + "/supervisor.log";
  const std::string mounts_before = ReadFile("/proc/self/mountinfo");
  pid_t sup = StartSupervisor(root, id, log);
  ASSERT_TRUE(fs::exists(root + "/" + id + "/control.sock")) << ReadFile(log);
  ASSERT_EQ(ProcessesOf(id).size(), 5u);  // supervisor + 4 services
  // One executable for all of them: every service is `bulkhead --service NAME`.
  const fs::path self = fs::canonical(Bulkhead());
  for (pid_t pid : ProcessesOf(id)) {
    EXPECT_EQ(fs::read_symlink("/proc/" + std::to_string(pid) + "/exe"), self) << "pid " << pid;
  }

  Result r = RunCli({"--root", root, "ping", id});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("fs-gofer        ok"), std::string::npos) << r.out;

  r = RunCli({"--root", root, "kill-service", id, "gofer"});
  EXPECT_EQ(r.code, 0) << r.out;
  r = RunCli({"--root", root, "forbidden-syscall", id, "net-stack", "165"});
  EXPECT_EQ(r.code, 0) << r.out;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  r = RunCli({"--root", root, "stats", id});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("syscall-router"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("seccomp refused mount"), std::string::npos) << r.out;
  r = RunCli({"--root", root, "stats", "--json", id});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("\"service\":\"fs-gofer\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"restarts\":1"), std::string::npos) << r.out;

  ASSERT_EQ(kill(sup, SIGTERM), 0);
  EXPECT_EQ(WaitExit(sup, 10000), 0);
  EXPECT_TRUE(ProcessesOf(id).empty());
  EXPECT_FALSE(fs::exists(root + "/" + id));
  EXPECT_EQ(ReadFile("/proc/self/mountinfo"), mounts_before) << "a mount was left behind";
  // JSON logs, one object per line, with the restart reason.
  std::string logs = ReadFile(log);
  EXPECT_NE(logs.find("{\"time\":\""), std::string::npos) << logs;
  EXPECT_NE(logs.find("forbidden system call mount"), std::string::npos) << logs;
}

TEST(Cli, KillNineOfTheSupervisorTakesTheServicesAlongAndTheIdCanBeReused) {
  const std::string root = TestDir("k9-root"), id = "k9", log = TestDir("k9-log") + "/supervisor.log";
  pid_t sup = StartSupervisor(root, id, log);
  ASSERT_TRUE(fs::exists(root + "/" + id + "/control.sock")) << ReadFile(log);
  kill(sup, SIGKILL);
  waitpid(sup, nullptr, 0);
  for (int i = 0; i < 200 && !ProcessesOf(id).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(ProcessesOf(id).empty()) << "services outlived their supervisor";
  // The stale state directory is recognised and replaced.
  sup = StartSupervisor(root, id, log);
  Result r = RunCli({"--root", root, "stop", id});
  EXPECT_EQ(r.code, 0) << r.out << ReadFile(log);
  EXPECT_EQ(WaitExit(sup, 10000), 0);
  EXPECT_FALSE(fs::exists(root + "/" + id));
}

TEST(Cli, SelftestPasses) {
  Result r = RunCli({"--root", TestDir("selftest-root"), "selftest", "--id", "st1"});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("selftest passed"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace bulkhead::integration
