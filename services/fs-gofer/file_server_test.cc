#include "services/fs-gofer/file_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>

namespace bulkhead::gofer {
namespace {

class FileServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* t = std::getenv("TEST_TMPDIR");
    base_ = std::string(t ? t : "/tmp") + "/gofer-XXXXXX";
    ASSERT_NE(mkdtemp(base_.data()), nullptr);
    root_ = base_ + "/root";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/etc").c_str(), 0755), 0);
    std::ofstream(root_ + "/etc/hostname") << "inside\n";
    std::ofstream(base_ + "/secret") << "outside\n";
    ASSERT_EQ(symlink("/etc/hostname", (root_ + "/abs-link").c_str()), 0);
    ASSERT_EQ(symlink("../../../../secret", (root_ + "/etc/escape").c_str()), 0);
    ASSERT_EQ(symlink((base_ + "/secret").c_str(), (root_ + "/host-abs").c_str()), 0);
    ASSERT_EQ(symlink("/proc/self/root/etc/passwd", (root_ + "/magic").c_str()), 0);
    ASSERT_EQ(symlink("loop2", (root_ + "/loop1").c_str()), 0);
    ASSERT_EQ(symlink("loop1", (root_ + "/loop2").c_str()), 0);
    fs_ = std::make_unique<FileServer>(UniqueFd(open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)));
  }
  void TearDown() override { std::system(("rm -rf '" + base_ + "'").c_str()); }

  std::string ReadAll(const std::string& path) {
    OpenResult o;
    int rc = fs_->Open(path, O_RDONLY, 0, &o);
    if (rc < 0) return "errno " + std::to_string(-rc);
    uint8_t buf[256];
    long n = fs_->Pread(o.handle, 0, buf);
    fs_->Close(o.handle);
    return n < 0 ? "errno " + std::to_string(-n) : std::string(reinterpret_cast<char*>(buf), n);
  }

  std::string base_, root_;
  std::unique_ptr<FileServer> fs_;
};

TEST_F(FileServerTest, ReadsFilesInsideTheRoot) {
  EXPECT_EQ(ReadAll("/etc/hostname"), "inside\n");
  EXPECT_EQ(ReadAll("/abs-link"), "inside\n");  // absolute symlinks resolve inside the root
  EXPECT_EQ(ReadAll("//etc///hostname"), "inside\n");
  struct stat st;
  ASSERT_EQ(fs_->Stat("/etc", true, &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_EQ(fs_->Stat("/abs-link", false, &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  std::string target;
  ASSERT_EQ(fs_->Readlink("/abs-link", &target), 0);
  EXPECT_EQ(target, "/etc/hostname");
  EXPECT_EQ(fs_->Readlink("/etc/hostname", &target), -EINVAL);
}

// A path with ".." (here through a relative symlink, as /etc/os-release is
// on Debian) while renames happen elsewhere on the host: the kernel answers
// such a scoped walk EAGAIN when a rename raced with it; the application
// must still get its file.
TEST_F(FileServerTest, DotDotWalksSurviveRenamesElsewhere) {
  ASSERT_EQ(symlink("../etc/hostname", (root_ + "/etc/rel-link").c_str()), 0);
  std::atomic<bool> stop{false};
  std::thread renamer([&] {
    const std::string a = base_ + "/ra", b = base_ + "/rb";
    std::ofstream(a) << "x";
    while (!stop.load()) {
      if (rename(a.c_str(), b.c_str()) != 0 || rename(b.c_str(), a.c_str()) != 0) break;
    }
  });
  int failures = 0;
  for (int i = 0; i < 3000; ++i) {
    if (ReadAll("/etc/rel-link") != "inside\n") ++failures;
    if (ReadAll("/etc/../etc/hostname") != "inside\n") ++failures;
  }
  stop = true;
  renamer.join();
  EXPECT_EQ(failures, 0);
}

TEST_F(FileServerTest, NothingLeadsOutsideTheRoot) {
  EXPECT_EQ(ReadAll("/../secret"), "errno " + std::to_string(ENOENT));  // ".." stops at the root
  EXPECT_EQ(ReadAll("/../../../../../etc/hostname"), "inside\n");
  EXPECT_EQ(ReadAll("/etc/escape"), "errno " + std::to_string(ENOENT));
  EXPECT_EQ(ReadAll("/host-abs"), "errno " + std::to_string(ENOENT));  // a host path means nothing here
  EXPECT_NE(ReadAll("/magic"), "outside\n");
  EXPECT_EQ(ReadAll("/loop1"), "errno " + std::to_string(ELOOP));
}

TEST_F(FileServerTest, HostileInputGetsLinuxErrnos) {
  OpenResult o;
  EXPECT_EQ(fs_->Open("", O_RDONLY, 0, &o), -ENOENT);
  EXPECT_EQ(fs_->Open(std::string("/etc\0/x", 7), O_RDONLY, 0, &o), -EINVAL);
  EXPECT_EQ(fs_->Open("/" + std::string(PATH_MAX, 'a'), O_RDONLY, 0, &o), -ENAMETOOLONG);
  EXPECT_EQ(fs_->Open("/" + std::string(NAME_MAX + 1, 'a'), O_RDONLY, 0, &o), -ENAMETOOLONG);
  EXPECT_EQ(fs_->Open("/etc/hostname", O_RDONLY | O_DIRECTORY, 0, &o), -ENOTDIR);
  EXPECT_EQ(fs_->Open("/etc/hostname", O_ACCMODE, 0, &o), -EINVAL);
  uint8_t buf[8];
  EXPECT_EQ(fs_->Pread(12345, 0, buf), -EBADF);
  ASSERT_EQ(fs_->Open("/etc/hostname", O_RDONLY, 0, &o), 0);
  EXPECT_EQ(fs_->Pread(o.handle, -1, buf), -EINVAL);
  EXPECT_EQ(fs_->Pread(o.handle, 1ll << 62, buf), 0);  // past the end: 0 bytes
  EXPECT_EQ(fs_->Close(o.handle), 0);
  EXPECT_EQ(fs_->Close(o.handle), -EBADF);
  EXPECT_EQ(fs_->open_handles(), 0u);
}

// Every write-side call names its object inside the root: symlinks that
// point out of it, ".." past "/" and absolute targets all land inside.
TEST_F(FileServerTest, WritesStayInsideTheRoot) {
  OpenResult o;
  // /etc/escape -> ../../../../secret: created as the root's /secret.
  ASSERT_EQ(fs_->Open("/etc/escape", O_WRONLY | O_CREAT, 0600, &o), 0);
  const uint8_t data[] = {'i', 'n'};
  WriteResult w;
  ASSERT_EQ(fs_->Pwrite(o.handle, 0, false, -1, data, &w), 0);
  EXPECT_EQ(w.count, 2);
  EXPECT_EQ(fs_->Close(o.handle), 0);
  EXPECT_EQ(ReadAll("/secret"), "in");
  std::ifstream outside(base_ + "/secret");
  std::string line;
  std::getline(outside, line);
  EXPECT_EQ(line, "outside");
  // /host-abs -> <base>/secret (an absolute host path): inside, that path
  // does not exist, so a write through it cannot reach the host file.
  EXPECT_EQ(fs_->Open("/host-abs", O_WRONLY | O_TRUNC, 0, &o), -ENOENT);
  EXPECT_EQ(fs_->Mknod("/../../made", S_IFDIR | 0755, 0), 0);  // ".." past "/" stays at "/"
  struct stat st;
  EXPECT_EQ(::stat((root_ + "/made").c_str(), &st), 0);
  EXPECT_EQ(::stat((base_ + "/made").c_str(), &st), -1);
  EXPECT_EQ(fs_->Rename("/etc/hostname", "/../../moved", 0), 0);
  EXPECT_EQ(::stat((root_ + "/moved").c_str(), &st), 0);
  EXPECT_EQ(::stat((base_ + "/moved").c_str(), &st), -1);
  // A hard link to a symlink that points out is made to the symlink's
  // target inside the root, never to the host file.
  EXPECT_EQ(fs_->Link("/host-abs", "/hl", true), -ENOENT);
  EXPECT_EQ(fs_->Link("/etc/escape", "/hl", true), 0);
  EXPECT_EQ(ReadAll("/hl"), "in");
  // chmod, times and xattrs through a symlink out of the root change the
  // file inside it.
  AttrChange c;
  c.set_mode = true;
  c.mode = 0640;
  ASSERT_EQ(fs_->SetAttr(Target{0, "/etc/escape", true}, c), 0);
  ASSERT_EQ(::stat((base_ + "/secret").c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 07777, 0640u);
  ASSERT_EQ(::stat((root_ + "/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  const uint8_t v[] = {'x'};
  EXPECT_EQ(fs_->SetXattr(Target{0, "/host-abs", true}, "user.k", v, 0), -ENOENT);
  EXPECT_EQ(fs_->Symlink("/etc/passwd", "/etc/../../sl"), 0);
  std::string target;
  EXPECT_EQ(fs_->Readlink("/sl", &target), 0);
  EXPECT_EQ(target, "/etc/passwd");
}

TEST_F(FileServerTest, NamespaceCallsAnswerAsLinux) {
  EXPECT_EQ(fs_->Mknod("/etc", S_IFDIR | 0755, 0), -EEXIST);
  EXPECT_EQ(fs_->Mknod("/", S_IFDIR | 0755, 0), -EEXIST);
  EXPECT_EQ(fs_->Mknod("/nope/x", S_IFDIR | 0755, 0), -ENOENT);
  EXPECT_EQ(fs_->Mknod("/etc/hostname/x", S_IFDIR | 0755, 0), -ENOTDIR);
  EXPECT_EQ(fs_->Unlink("/etc", false), -EISDIR);
  EXPECT_EQ(fs_->Unlink("/etc/hostname", true), -ENOTDIR);
  EXPECT_EQ(fs_->Unlink("/etc", true), -ENOTEMPTY);
  EXPECT_EQ(fs_->Unlink("/", true), -EBUSY);
  EXPECT_EQ(fs_->Unlink("/etc/.", true), -EINVAL);
  EXPECT_EQ(fs_->Unlink("/etc/hostname/", false), -ENOTDIR);
  EXPECT_EQ(fs_->Rename("/", "/x", 0), -EBUSY);
  EXPECT_EQ(fs_->Rename("/etc/hostname", "/abs-link", RENAME_NOREPLACE), -EEXIST);
  EXPECT_EQ(fs_->Rename("/etc/hostname", "/abs-link", RENAME_EXCHANGE), 0);
  std::string target;
  EXPECT_EQ(fs_->Readlink("/etc/hostname", &target), 0);
  EXPECT_EQ(target, "/etc/hostname");
  EXPECT_EQ(fs_->Symlink("", "/e"), -ENOENT);
  EXPECT_EQ(fs_->Symlink("x", "/etc"), -EEXIST);
  EXPECT_EQ(fs_->Mknod("/fifo", S_IFIFO | 0644, 0), 0);
  OpenResult o;
  ASSERT_EQ(fs_->Open("/fifo", O_WRONLY, 0, &o), -ENXIO);  // no reader: never blocks the gofer
  ASSERT_EQ(fs_->Open("/fifo", O_RDONLY, 0, &o), 0);
  EXPECT_TRUE(S_ISFIFO(o.st.st_mode));
  EXPECT_EQ(fs_->Truncate(Target{0, "/fifo", true}, 0), -EINVAL);
  EXPECT_EQ(fs_->Truncate(Target{0, "/etc", true}, 0), -EISDIR);
  EXPECT_EQ(fs_->Truncate(Target{0, "/abs-link", true}, -1), -EINVAL);
  EXPECT_EQ(fs_->Access("/etc", 8, true), -EINVAL);
}

TEST_F(FileServerTest, AppendsAreGuardedBySize) {
  OpenResult o;
  ASSERT_EQ(fs_->Open("/log", O_RDWR | O_CREAT, 0644, &o), 0);
  const uint8_t a[] = {'a', 'b'};
  WriteResult w;
  ASSERT_EQ(fs_->Pwrite(o.handle, 0, true, 0, a, &w), 0);
  EXPECT_EQ(w.count, 2);
  EXPECT_EQ(w.size, 2);
  // A retry of the same append (size 0 expected) finds size 2: nothing written.
  WriteResult again;
  ASSERT_EQ(fs_->Pwrite(o.handle, 0, true, 0, a, &again), 0);
  EXPECT_EQ(again.size_is, 2);
  EXPECT_EQ(again.count, 0);
  ASSERT_EQ(fs_->Pwrite(o.handle, 0, true, 2, a, &w), 0);
  EXPECT_EQ(w.offset, 2);
  EXPECT_EQ(ReadAll("/log"), "abab");
  EXPECT_EQ(fs_->Pwrite(o.handle, -1, false, -1, a, &w), -EINVAL);
  EXPECT_EQ(fs_->Pwrite(999, 0, false, -1, a, &w), -EBADF);
}

TEST_F(FileServerTest, ListsDirectories) {
  OpenResult o;
  ASSERT_EQ(fs_->Open("/", O_RDONLY | O_DIRECTORY, 0, &o), 0);
  EXPECT_TRUE(S_ISDIR(o.st.st_mode));
  std::set<std::string> names;
  uint8_t buf[512];
  for (;;) {
    long n = fs_->Getdents(o.handle, buf);
    ASSERT_GE(n, 0);
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<dirent64*>(buf + off);
      names.insert(d->d_name);
      off += d->d_reclen;
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{".", "..", "etc", "abs-link", "host-abs", "magic", "loop1", "loop2"}));
}

}  // namespace
}  // namespace bulkhead::gofer
