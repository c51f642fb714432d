#include "runtime/mount_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace bulkhead::runtime {
namespace {

class MountTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = std::getenv("TEST_TMPDIR");
    base_ = std::string(t ? t : "/tmp") + "/mt-XXXXXX";
    ASSERT_NE(mkdtemp(base_.data()), nullptr);
    image_ = base_ + "/image";
    ASSERT_EQ(mkdir(image_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((image_ + "/etc").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((image_ + "/dir").c_str(), 0755), 0);
    std::ofstream(image_ + "/etc/hostname") << "image\n";
    std::ofstream(image_ + "/dir/a") << "a\n";
    vol_ = base_ + "/vol";
    ASSERT_EQ(mkdir(vol_.c_str(), 0755), 0);
    std::ofstream(vol_ + "/data") << "volume\n";
  }
  void TearDown() override { std::system(("rm -rf '" + base_ + "'").c_str()); }

  static std::string Read(int root, const char* rel) {
    int fd = openat(root, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "errno " + std::to_string(errno);
    char buf[256];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    return n < 0 ? "read errno" : std::string(buf, static_cast<size_t>(n));
  }
  static int Write(int root, const char* rel, const std::string& data, int flags = O_TRUNC) {
    int fd = openat(root, rel, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    if (fd < 0) return -errno;
    ssize_t n = write(fd, data.data(), data.size());
    close(fd);
    return n < 0 ? -errno : 0;
  }

  std::string base_, image_, vol_;
};

TEST_F(MountTreeTest, OverlayKeepsTheImageUntouched) {
  MountTreeOptions o;
  o.rootfs = image_;
  MountTree t = MountTree::Build(o);
  EXPECT_EQ(Read(t.root(), "etc/hostname"), "image\n");
  ASSERT_EQ(Write(t.root(), "etc/hostname", "changed\n"), 0);  // copy-up
  EXPECT_EQ(Read(t.root(), "etc/hostname"), "changed\n");
  ASSERT_EQ(Write(t.root(), "new", "fresh\n"), 0);
  ASSERT_EQ(unlinkat(t.root(), "dir/a", 0), 0);  // a whiteout
  EXPECT_EQ(faccessat(t.root(), "dir/a", F_OK, 0), -1);
  ASSERT_EQ(renameat(t.root(), "dir", t.root(), "moved"), 0) << strerror(errno);  // redirect_dir
  // The image is as it was.
  std::ifstream in(image_ + "/etc/hostname");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "image");
  EXPECT_EQ(access((image_ + "/new").c_str(), F_OK), -1);
  EXPECT_EQ(access((image_ + "/dir/a").c_str(), F_OK), 0);
}

TEST_F(MountTreeTest, VolumesAttachBelowTheRootAndReadOnlyOnesRefuseWrites) {
  MountTreeOptions o;
  o.rootfs = image_;
  o.volumes = {{vol_, "/mnt/rw", false}, {vol_, "/mnt/ro", true}, {vol_ + "/data", "/etc/data", true}};
  MountTree t = MountTree::Build(o);
  EXPECT_EQ(Read(t.root(), "mnt/rw/data"), "volume\n");
  EXPECT_EQ(Read(t.root(), "etc/data"), "volume\n");
  ASSERT_EQ(Write(t.root(), "mnt/rw/out", "through\n"), 0);
  std::ifstream in(vol_ + "/out");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "through");  // a read-write volume is the host directory
  EXPECT_EQ(Write(t.root(), "mnt/ro/out2", "x"), -EROFS);
  EXPECT_EQ(Write(t.root(), "etc/data", "x"), -EROFS);
  EXPECT_EQ(unlinkat(t.root(), "mnt/ro/data", 0), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(mkdirat(t.root(), "mnt/ro/d", 0755), -1);
  EXPECT_EQ(errno, EROFS);
}

TEST_F(MountTreeTest, ReadOnlyRootRefusesWrites) {
  MountTreeOptions o;
  o.rootfs = image_;
  o.mode = RootMode::kReadOnly;
  MountTree t = MountTree::Build(o);
  EXPECT_EQ(Read(t.root(), "etc/hostname"), "image\n");
  EXPECT_EQ(Write(t.root(), "etc/hostname", "x"), -EROFS);
}

TEST_F(MountTreeTest, AVolumeMountPointStaysInsideAHostileImage) {
  // /mnt in the image is a symlink out of it: the mount point is made
  // inside the root (the symlink resolves there), never on the host.
  ASSERT_EQ(symlink(base_.c_str(), (image_ + "/mnt").c_str()), 0);
  MountTreeOptions o;
  o.rootfs = image_;
  o.volumes = {{vol_, "/mnt/escape", false}};
  EXPECT_THROW(MountTree::Build(o), std::exception);  // base_/ is not inside the root: the walk finds no such dir
  EXPECT_EQ(access((base_ + "/escape").c_str(), F_OK), -1);
}

TEST(ParseTmpfs, AcceptsAndRefuses) {
  TmpfsSpec t;
  EXPECT_EQ(ParseTmpfs("/scratch", &t), "");
  EXPECT_EQ(t.path, "/scratch");
  EXPECT_EQ(t.size, 0u);
  EXPECT_EQ(ParseTmpfs("/a/b/:64M", &t), "");
  EXPECT_EQ(t.path, "/a/b");
  EXPECT_EQ(t.size, uint64_t{64} << 20);
  EXPECT_EQ(ParseTmpfs("/c:4096", &t), "");
  EXPECT_EQ(t.size, 4096u);
  EXPECT_NE(ParseTmpfs("rel", &t), "");
  EXPECT_NE(ParseTmpfs("/", &t), "");
  EXPECT_NE(ParseTmpfs("/a/../b", &t), "");
  EXPECT_NE(ParseTmpfs("/proc/x", &t), "");
  EXPECT_NE(ParseTmpfs("/dev", &t), "");
  EXPECT_NE(ParseTmpfs("/a:", &t), "");
  EXPECT_NE(ParseTmpfs("/a:12Q", &t), "");
  EXPECT_NE(ParseTmpfs("/a:0", &t), "");
  EXPECT_NE(ParseTmpfs("/a:99999999999G", &t), "");
}

TEST(ParseVolume, AcceptsAndRefuses) {
  Volume v;
  EXPECT_EQ(ParseVolume("/a:/b", &v), "");
  EXPECT_FALSE(v.readonly);
  EXPECT_EQ(ParseVolume("/a:/b:ro", &v), "");
  EXPECT_TRUE(v.readonly);
  EXPECT_NE(ParseVolume("a:/b", &v), "");
  EXPECT_NE(ParseVolume("/a:b", &v), "");
  EXPECT_NE(ParseVolume("/a", &v), "");
  EXPECT_NE(ParseVolume("/a:/", &v), "");
  EXPECT_NE(ParseVolume("/a:/b/../c", &v), "");
  EXPECT_NE(ParseVolume("/a:/b:rx", &v), "");
  RootMode m;
  EXPECT_TRUE(ParseRootMode("readonly", &m));
  EXPECT_EQ(m, RootMode::kReadOnly);
  EXPECT_FALSE(ParseRootMode("ro", &m));
}

}  // namespace
}  // namespace bulkhead::runtime
