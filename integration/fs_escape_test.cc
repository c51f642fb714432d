// Escape tests for the file system (issue 5): a program in the sandbox tries
// every way out of its root and into a read-only volume (integration/
// fsescape.c prints any answer that differs from Linux's confined one), and
// the host side is checked afterwards: the file outside the root, the image
// and the read-only volume are as they were.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "integration/util.h"

namespace bulkhead::integration {
namespace {

namespace fs = std::filesystem;

std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.insert(e.path().string().substr(dir.size()));
  return out;
}

TEST(FsEscape, NothingLeavesTheRootAndReadOnlyVolumesStayUnchanged) {
  const std::string base = "/tmp/bulkhead-fsescape-" + std::to_string(getpid());
  const std::string root = base + "/root", outside = base + "/outside", ro = base + "/ro", rw = base + "/rw";
  fs::remove_all(base);
  for (const auto& d : {root + "/bin", root + "/etc", outside, ro + "/sub", rw}) fs::create_directories(d);
  fs::copy_file(Runfile("integration/fsescape"), root + "/bin/fsescape");
  chmod((root + "/bin/fsescape").c_str(), 0755);
  std::ofstream(root + "/etc/hostname") << "image\n";
  std::ofstream(outside + "/secret") << "outside\n";
  std::ofstream(ro + "/keep") << "keep\n";
  std::ofstream(rw + "/f") << "f\n";
  fs::create_symlink(outside + "/secret", root + "/abs");
  fs::create_symlink("../outside/secret", root + "/rel");
  fs::create_symlink("../outside", root + "/dirup");
  for (const auto& d : {base, root, outside, ro, rw}) chmod(d.c_str(), 0755);
  const auto image_before = Listing(root);
  const auto ro_before = Listing(ro);

  Result r = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("fsescape-state") + " do --rootfs " + root +
                " -v " + ro + ":/ro:ro -v " + rw + ":/rw -- /bin/fsescape " + outside);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("checks "), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
  std::printf("[ measure  ] %s", r.out.c_str());

  EXPECT_EQ(ReadFile(outside + "/secret"), "outside\n");
  EXPECT_EQ(Listing(outside), std::set<std::string>{"/secret"});
  EXPECT_EQ(Listing(root), image_before);  // writes went to the sandbox's own layer
  EXPECT_EQ(ReadFile(root + "/etc/hostname"), "image\n");
  EXPECT_EQ(Listing(ro), ro_before);
  EXPECT_EQ(ReadFile(ro + "/keep"), "keep\n");
  EXPECT_TRUE(fs::exists(rw + "/written"));  // a read-write volume is the host directory
  EXPECT_TRUE(fs::exists(rw + "/f"));
  fs::remove_all(base);
}

// /proc/self/mounts tells the truth: the overlay root, each volume with its
// own flag, the router's own file systems.
TEST(FsMounts, ProcMountsListsTheRootAndVolumes) {
  const std::string ro = TestDir("mounts-ro"), rw = TestDir("mounts-rw");
  Result r = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("mounts-state") + " do -v " + ro + ":/data:ro -v " +
                rw + ":/srv/rw -- /bin/cat /proc/self/mounts");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("overlay / overlay rw,", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(ro + " /data "), std::string::npos) << r.out;
  const size_t at = r.out.find(" /data ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string data_line = r.out.substr(at, r.out.find('\n', at) - at);
  EXPECT_NE(data_line.find(" ro,"), std::string::npos) << data_line;
  EXPECT_NE(r.out.find(rw + " /srv/rw "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("proc /proc proc "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tmpfs /tmp tmpfs "), std::string::npos) << r.out;
  Result ro_root = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("mounts-state") +
                      " do --rootfs-mode readonly -- /bin/sh -c 'head -1 /proc/self/mounts; touch /x'");
  EXPECT_NE(ro_root.out.find(" / "), std::string::npos) << ro_root.out;
  EXPECT_NE(ro_root.out.find(" ro,"), std::string::npos) << ro_root.out;
  EXPECT_NE(ro_root.code, 0);
  EXPECT_NE(ro_root.err.find("Read-only file system"), std::string::npos) << ro_root.err;
}

TEST(FsMounts, BadVolumeFlagsAreRefusedWithAMessage) {
  const std::string bh = Runfile("runtime/bulkhead") + " --root " + TestDir("mounts-state2") + " do ";
  Result r = Sh(bh + "-v relative:/x -- /bin/true");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("absolute"), std::string::npos) << r.err;
  r = Sh(bh + "-v /tmp:/x:rx -- /bin/true");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("ro or rw"), std::string::npos) << r.err;
  r = Sh(bh + "--rootfs-mode sideways -- /bin/true");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("overlay, readonly or writable"), std::string::npos) << r.err;
  r = Sh(bh + "-v /nonexistent-bulkhead-dir:/x -- /bin/true");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("/nonexistent-bulkhead-dir"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace bulkhead::integration
