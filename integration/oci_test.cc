// runc's command line on OCI bundles (issue 8, first part): the container
// lifecycle through the real bulkhead binary, state that outlives the CLI,
// and hostile bundles refused with the field named and nothing left behind.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "integration/util.h"

namespace bulkhead::integration {
namespace {

namespace fs = std::filesystem;

class Oci : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = "/tmp/bulkhead-oci-test-" + std::to_string(getpid());
    fs::remove_all(base_);
    bundle_ = base_ + "/bundle";
    root_ = base_ + "/state";
    fs::create_directories(bundle_ + "/rootfs/bin");
    fs::create_directories(bundle_ + "/rootfs/etc");
    fs::copy_file("/bin/busybox", bundle_ + "/rootfs/bin/busybox");
    for (const char* c : {"sh", "echo", "sleep", "cat", "hostname"}) fs::create_symlink("busybox", bundle_ + "/rootfs/bin/" + c);
    for (const auto& d : {base_, bundle_, bundle_ + "/rootfs"}) chmod(d.c_str(), 0755);
    ASSERT_EQ(Bh("spec --bundle " + bundle_).code, 0);
  }
  void TearDown() override {
    Sh(bh_ + " --root " + root_ + " delete --force c1; " + bh_ + " --root " + root_ + " delete --force c2");
    fs::remove_all(base_);
  }
  Result Bh(const std::string& args) { return Sh(bh_ + " --root " + root_ + " " + args); }
  // create leaves the container's sandbox running with create's stdio (the
  // container's, as engines pass them): here files, so that the test's
  // pipe closes when create returns. Its stderr comes back in err.
  Result Create(const std::string& args) {
    const std::string out = base_ + "/create.out", err = base_ + "/create.err";
    Result r = Sh(bh_ + " --root " + root_ + " create " + args + " >" + out + " 2>" + err + " </dev/null");
    r.err = ReadFile(err);
    return r;
  }
  // process.args of the bundle, as a shell command line.
  void SetCommand(const std::string& sh) {
    std::string cfg = ReadFile(bundle_ + "/config.json");
    const size_t at = cfg.find("\"sh\"");
    ASSERT_NE(at, std::string::npos);
    std::string quoted;
    for (char c : sh) quoted += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    cfg.replace(at, 4, "\"sh\", \"-c\", \"" + quoted + "\"");
    std::ofstream(bundle_ + "/config.json") << cfg;
  }
  std::string Status(const std::string& id) {
    Result r = Bh("state " + id);
    const size_t at = r.out.find("\"status\": \"");
    return at == std::string::npos ? "(none: " + r.err + ")" : r.out.substr(at + 11, r.out.find('"', at + 11) - at - 11);
  }
  std::string WaitFor(const std::string& id, const std::string& status) {
    std::string s;
    for (int i = 0; i < 500 && (s = Status(id)) != status; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return s;
  }

  const std::string bh_ = Runfile("runtime/bulkhead");
  std::string base_, bundle_, root_;
};

TEST_F(Oci, CreateStartStateDelete) {
  SetCommand("echo out:$(hostname); exit 3");
  Result c = Create("--bundle " + bundle_ + " --pid-file " + base_ + "/pid c1");
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(Status("c1"), "created");
  const pid_t pid = std::atoi(ReadFile(base_ + "/pid").c_str());
  EXPECT_GT(pid, 0);
  EXPECT_EQ(kill(pid, 0), 0);  // the sandbox waits for start
  EXPECT_NE(Create("--bundle " + bundle_ + " c1").err.find("already exists"), std::string::npos);
  EXPECT_NE(Bh("delete c1").code, 0);  // not stopped, no --force
  Result st = Bh("start c1");
  EXPECT_EQ(st.code, 0) << st.err;
  EXPECT_EQ(WaitFor("c1", "stopped"), "stopped");
  EXPECT_EQ(ReadFile(root_ + "/containers/c1/exit"), "3\n");
  EXPECT_NE(Bh("start c1").code, 0);  // a stopped container does not start again
  EXPECT_NE(Bh("list").out.find("c1"), std::string::npos);
  EXPECT_EQ(Bh("delete c1").code, 0);
  EXPECT_FALSE(fs::exists(root_ + "/containers/c1"));
  EXPECT_FALSE(fs::exists(root_ + "/oci-c1"));  // the supervisor's own state went with it
  EXPECT_NE(Bh("state c1").code, 0);
}

TEST_F(Oci, RunReturnsTheExitStatusAndTheOutput) {
  SetCommand("echo hello; cat /etc/hostname 2>/dev/null; exit 7");
  Result r = Bh("run --bundle " + bundle_ + " c2");
  EXPECT_EQ(r.code, 7) << r.err;
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_FALSE(fs::exists(root_ + "/containers/c2"));
}

// start right after create always finds the sandbox waiting (the start
// FIFO is open before create returns: a race here once left a sandbox
// waiting forever and start failing).
TEST_F(Oci, StartRightAfterCreateNeverMissesTheSandbox) {
  SetCommand("exit 0");
  for (int i = 0; i < 15; ++i) {
    Result r = Bh("run --bundle " + bundle_ + " c2");
    ASSERT_EQ(r.code, 0) << "run " << i << ": " << r.err;
  }
  EXPECT_FALSE(fs::exists(root_ + "/containers/c2"));
}

// process.rlimits reach the container's first process (and its children).
TEST_F(Oci, RlimitsOfTheBundle) {
  SetCommand("ulimit -n; ulimit -Hn; sh -c 'ulimit -n'");
  std::string cfg = ReadFile(bundle_ + "/config.json");
  const size_t hard = cfg.find("\"hard\": 1024");
  ASSERT_NE(hard, std::string::npos) << cfg;
  cfg.replace(hard, std::string("\"hard\": 1024").size(), "\"hard\": 128");
  const size_t soft = cfg.find("\"soft\": 1024");
  ASSERT_NE(soft, std::string::npos) << cfg;
  cfg.replace(soft, std::string("\"soft\": 1024").size(), "\"soft\": 64");
  std::ofstream(bundle_ + "/config.json") << cfg;
  Result r = Bh("run --bundle " + bundle_ + " c2");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "64\n128\n64\n");
}

TEST_F(Oci, KillOfARunningContainerAndForcedDelete) {
  SetCommand("sleep 30");
  ASSERT_EQ(Create("--bundle " + bundle_ + " c1").code, 0);
  ASSERT_EQ(Bh("start c1").code, 0);
  EXPECT_EQ(Status("c1"), "running");
  EXPECT_EQ(Bh("kill c1 KILL").code, 0);
  EXPECT_EQ(WaitFor("c1", "stopped"), "stopped");
  EXPECT_EQ(Bh("delete c1").code, 0);
  // A created container killed, and one deleted with --force.
  ASSERT_EQ(Create("--bundle " + bundle_ + " c1").code, 0);
  EXPECT_EQ(Bh("kill c1 TERM").code, 0);
  EXPECT_EQ(WaitFor("c1", "stopped"), "stopped");
  EXPECT_EQ(Bh("delete c1").code, 0);
  ASSERT_EQ(Create("--bundle " + bundle_ + " c1").code, 0);
  ASSERT_EQ(Bh("start c1").code, 0);
  EXPECT_EQ(Bh("delete --force c1").code, 0);
  EXPECT_FALSE(fs::exists(root_ + "/containers/c1"));
  EXPECT_NE(Bh("kill c1 NOSUCHSIGNAL").code, 0);
}

// Lifecycle hooks run on the host with the container's state on stdin, at
// their stage; a failing creation hook fails create and leaves nothing.
TEST_F(Oci, HooksRunAtTheirStagesWithTheState) {
  SetCommand("exit 0");
  const std::string log = base_ + "/hooks.log";
  std::string cfg = ReadFile(bundle_ + "/config.json");
  auto hook = [&](const std::string& stage) {
    return "{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"echo " + stage +
           " $(grep -o 'status\\\": *\\\"[a-z]*' | tr -d '\\\" ') >> " + log + "\"], \"timeout\": 10}";
  };
  const std::string hooks = "\"hooks\": {\"createRuntime\": [" + hook("createRuntime") + "], \"poststart\": [" +
                            hook("poststart") + "], \"poststop\": [" + hook("poststop") + "]}, ";
  std::ofstream(bundle_ + "/config.json") << "{" << hooks << cfg.substr(cfg.find('{') + 1);
  ASSERT_EQ(Create("--bundle " + bundle_ + " c1").code, 0) << ReadFile(base_ + "/create.err");
  ASSERT_EQ(Bh("start c1").code, 0);
  EXPECT_EQ(WaitFor("c1", "stopped"), "stopped");
  ASSERT_EQ(Bh("delete c1").code, 0);
  EXPECT_EQ(ReadFile(log), "createRuntime status:creating\npoststart status:running\npoststop status:stopped\n");

  std::ofstream(bundle_ + "/config.json")
      << "{\"hooks\": {\"createRuntime\": [{\"path\": \"/bin/false\"}]}, " << cfg.substr(cfg.find('{') + 1);
  Result r = Create("--bundle " + bundle_ + " c1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("hook createRuntime[0] /bin/false: exit status 1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(root_ + "/containers/c1"));
  EXPECT_FALSE(fs::exists(root_ + "/oci-c1"));
  std::ofstream(bundle_ + "/config.json") << cfg;
}

// A hostile or broken bundle: a clear error naming the field, exit code 1,
// and no state, process or mount left behind.
TEST_F(Oci, BadBundlesAreRefusedAndLeaveNothing) {
  const std::string cfg = bundle_ + "/config.json";
  const std::string good = ReadFile(cfg);
  struct Case {
    std::string config, want;
  };
  const Case cases[] = {
      {"{not json", "invalid JSON"},
      {R"({"ociVersion": "1.0.2", "process": {"args": [], "cwd": "/"}, "root": {"path": "rootfs"}})", "process.args"},
      {R"({"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "nosuchdir"}})", "root.path"},
      {R"({"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 99, "hard": 1}]}, "root": {"path": "rootfs"}})", "rlimits"},
      {R"({"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "rootfs"}, "linux": {"namespaces": [{"type": "weird"}]}})", "namespace type weird"},
  };
  for (const auto& c : cases) {
    std::ofstream(cfg) << c.config;
    Result r = Create("--bundle " + bundle_ + " c1");
    EXPECT_EQ(r.code, 1) << c.config;
    EXPECT_NE(r.err.find(c.want), std::string::npos) << c.config << " -> " << r.err;
    EXPECT_FALSE(fs::exists(root_ + "/containers/c1")) << c.config;
    EXPECT_FALSE(fs::exists(root_ + "/oci-c1")) << c.config;
  }
  std::ofstream(cfg) << good;
  EXPECT_NE(Create("--bundle " + bundle_ + " ../escape").err.find("invalid container id"), std::string::npos);
  EXPECT_NE(Create("--bundle " + base_ + "/nobundle c1").err.find("config.json"), std::string::npos);
  EXPECT_NE(Bh("spec --bundle " + bundle_).err.find("exists"), std::string::npos);
  EXPECT_NE(Bh("features").out.find("ociVersionMax"), std::string::npos);
}

}  // namespace
}  // namespace bulkhead::integration
