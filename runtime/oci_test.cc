#include "runtime/oci.h"

#include <gtest/gtest.h>

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
