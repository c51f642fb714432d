#include "runtime/oci.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <unistd.h>

namespace bulkhead::runtime {
namespace {

const char* kGood = R"({
  "ociVersion": "1.0.2",
  "process": {"args": ["/bin/sh", "-c", "echo hi"], "env": ["PATH=/bin", "A=b=c"], "cwd": "/work/../tmp",
              "user": {"uid": 0, "gid": 0}, "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
              "noNewPrivileges": true},
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "box",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]},
    {"destination": "/cache", "type": "tmpfs", "source": "tmpfs", "options": ["size=16m"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts"}
  ],
  "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/x"}]},
  "annotations": {"k": "v"}
})";

TEST(OciSpec, ParsesWhatASandboxNeeds) {
  OciSpec s;
  ASSERT_EQ(ParseOciSpec(kGood, "/bundles/b", &s), "");
  EXPECT_EQ(s.args.size(), 3u);
  EXPECT_EQ(s.env[1], "A=b=c");
  EXPECT_EQ(s.cwd, "/tmp");
  EXPECT_EQ(s.rootfs, "/bundles/b/rootfs");
  EXPECT_TRUE(s.root_readonly);
  EXPECT_EQ(s.hostname, "box");
  ASSERT_EQ(s.volumes.size(), 1u);
  EXPECT_EQ(s.volumes[0].host, "/srv/data");
  EXPECT_EQ(s.volumes[0].guest, "/data");
  EXPECT_TRUE(s.volumes[0].readonly);
  ASSERT_EQ(s.tmpfs.size(), 1u);
  EXPECT_EQ(s.tmpfs[0].size, uint64_t{16} << 20);
  EXPECT_EQ(s.ignored_mounts.size(), 2u);  // proc, devpts: the router's own
  EXPECT_EQ(s.network_namespace, "/var/run/netns/x");
  EXPECT_EQ(s.annotations.at("k"), "v");
  ASSERT_EQ(s.rlimits.size(), 1u);
  EXPECT_EQ(s.rlimits[0].hard, 4096u);
}

TEST(OciSpec, TheDefaultSpecParses) {
  OciSpec s;
  EXPECT_EQ(ParseOciSpec(DefaultOciSpec(), "/b", &s), "");
  EXPECT_EQ(s.args[0], "sh");
}

// Every refusal names the field at fault.
TEST(OciSpec, HostileBundlesGetAnErrorNamingTheField) {
  struct Case {
    const char* json;
    const char* field;
  };
  const Case cases[] = {
      {"{", "invalid JSON"},
      {"[]", "JSON object"},
      {R"({"process": {}})", "ociVersion"},
      {R"({"ociVersion": "2.0", "process": {}})", "ociVersion"},
      {R"({"ociVersion": "1.0", "root": {"path": "r"}})", "process"},
      {R"({"ociVersion": "1.0", "process": {"args": [], "cwd": "/"}, "root": {"path": "r"}})", "process.args"},
      {R"({"ociVersion": "1.0", "process": {"args": [1], "cwd": "/"}, "root": {"path": "r"}})", "process.args"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "rel"}, "root": {"path": "r"}})", "process.cwd"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "/", "env": ["NOEQUALS"]}, "root": {"path": "r"}})", "process.env"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "/", "user": {"uid": -1, "gid": 0}}, "root": {"path": "r"}})", "process.user.uid"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "/", "rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}, "root": {"path": "r"}})", "process.rlimits"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 9, "hard": 1}]}, "root": {"path": "r"}})", "soft above hard"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "/"}})", "root"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "/"}, "root": {"path": ""}})", "root.path"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "/"}, "root": {"path": "r"}, "mounts": [{"destination": "rel"}]})", "destination"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "/"}, "root": {"path": "r"}, "mounts": [{"destination": "/x", "type": "nfs"}]})", "mounts[/x].type"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "/"}, "root": {"path": "r"}, "linux": {"namespaces": [{"type": "bogus"}]}})", "linux.namespaces"},
      {R"({"ociVersion": "1.0", "process": {"args": ["a"], "cwd": "/"}, "root": {"path": "r"}, "hostname": 7})", "hostname"},
  };
  for (const auto& c : cases) {
    OciSpec s;
    const std::string err = ParseOciSpec(c.json, "/b", &s);
    EXPECT_NE(err.find(c.field), std::string::npos) << c.json << " -> " << err;
  }
}

TEST(OciHooks, ParsedAndRunWithTheStateOnStdin) {
  const char* spec = R"({"ociVersion": "1.0.2", "process": {"args": ["a"], "cwd": "/"}, "root": {"path": "r"},
    "hooks": {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > \"$OUT\""], "env": ["OUT=OUTFILE"], "timeout": 5}],
              "poststop": [{"path": "/bin/false"}]}})";
  const char* t = std::getenv("TEST_TMPDIR");
  const std::string out = std::string(t ? t : "/tmp") + "/hook-state-" + std::to_string(getpid());
  std::string text = spec;
  text.replace(text.find("OUTFILE"), 7, out);
  OciSpec s;
  ASSERT_EQ(ParseOciSpec(text, "/b", &s), "");
  ASSERT_EQ(s.hooks["createRuntime"].size(), 1u);
  EXPECT_EQ(s.hooks["createRuntime"][0].timeout_s, 5);
  EXPECT_EQ(RunHooks(s.hooks["createRuntime"], "createRuntime", "{\"id\": \"x\"}"), "");
  std::ifstream in(out);
  std::string got((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(got, "{\"id\": \"x\"}");
  std::remove(out.c_str());
  EXPECT_NE(RunHooks(s.hooks["poststop"], "poststop", "{}").find("exit status 1"), std::string::npos);
  // A hook that hangs is killed at its timeout.
  OciHook hang{"/bin/sleep", {"sleep", "30"}, {}, 1};
  const std::string err = RunHooks({hang}, "prestart", "{}");
  EXPECT_NE(err.find("timed out after 1 s"), std::string::npos) << err;
  OciHook missing{"/nonexistent/hook", {}, {}, 1};
  EXPECT_NE(RunHooks({missing}, "prestart", "{}").find("could not be run"), std::string::npos);
  // Refusals name the hook's field.
  for (const char* bad : {R"("hooks": {"whenever": []})", R"("hooks": {"poststop": [{"path": "rel"}]})",
                          R"("hooks": {"poststop": [{"path": "/x", "timeout": 0}]})", R"("hooks": {"poststop": {}})"}) {
    std::string b = R"({"ociVersion": "1.0.2", "process": {"args": ["a"], "cwd": "/"}, "root": {"path": "r"}, )" +
                    std::string(bad) + "}";
    EXPECT_NE(ParseOciSpec(b, "/b", &s).find("hooks"), std::string::npos) << bad;
  }
}

TEST(OciSpec, ContainerIds) {
  EXPECT_TRUE(ValidContainerId("abc-1.2_x+y"));
  EXPECT_FALSE(ValidContainerId(""));
  EXPECT_FALSE(ValidContainerId("-x"));
  EXPECT_FALSE(ValidContainerId("a/b"));
  EXPECT_FALSE(ValidContainerId("../x"));
  EXPECT_FALSE(ValidContainerId(std::string(2000, 'a')));
}

}  // namespace
}  // namespace bulkhead::runtime
