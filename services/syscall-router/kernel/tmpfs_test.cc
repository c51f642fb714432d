// The router's tmpfs: lookups, symlinks, creation flags, directories,
// rename rules, data, budget, dirents.
#include "services/syscall-router/kernel/tmpfs.h"

#include <dirent.h>
#include <fcntl.h>

#include <gtest/gtest.h>

#include <cstring>

namespace bulkhead::router {
namespace {

std::vector<std::string> Names(const std::string& dirents) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < dirents.size();) {
    uint16_t rl;
    std::memcpy(&rl, dirents.data() + pos + 16, 2);
    out.emplace_back(dirents.c_str() + pos + 19);
    pos += rl;
  }
  return out;
}

TEST(Tmpfs, CreateWriteReadStat) {
  Tmpfs fs;
  Tmpfs::NodePtr n;
  EXPECT_EQ(fs.Open("f", O_RDWR, 0644, &n), -ENOENT);
  ASSERT_EQ(fs.Open("f", O_RDWR | O_CREAT, 0644, &n), 0);
  EXPECT_EQ(fs.Open("f", O_RDWR | O_CREAT | O_EXCL, 0644, &n), -EEXIST);
  ASSERT_EQ(fs.Write(*n, 3, reinterpret_cast<const uint8_t*>("abc"), 3), 3);
  uint8_t buf[8] = {};
  EXPECT_EQ(fs.Read(*n, 0, buf, sizeof buf), 6);
  EXPECT_EQ(std::memcmp(buf, "\0\0\0abc", 6), 0);  // a hole reads as zeros
  struct stat st;
  fs.Stat(*n, &st);
  EXPECT_EQ(st.st_size, 6);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  Tmpfs::NodePtr again;
  ASSERT_EQ(fs.Open("f", O_WRONLY | O_TRUNC, 0, &again), 0);
  EXPECT_EQ(again, n);
  fs.Stat(*n, &st);
  EXPECT_EQ(st.st_size, 0);
}

TEST(Tmpfs, DirectoriesAndTheirRules) {
  Tmpfs fs;
  ASSERT_EQ(fs.Mkdir("d", 0755), 0);
  EXPECT_EQ(fs.Mkdir("d", 0755), -EEXIST);
  EXPECT_EQ(fs.Mkdir("x/y", 0755), -ENOENT);
  ASSERT_EQ(fs.Mkdir("d/e", 0755), 0);
  Tmpfs::NodePtr f;
  ASSERT_EQ(fs.Open("d/e/f", O_CREAT | O_WRONLY, 0600, &f), 0);
  EXPECT_EQ(fs.Open("d/e/f/g", O_CREAT | O_WRONLY, 0600, &f), -ENOTDIR);
  EXPECT_EQ(fs.Rmdir("d/e"), -ENOTEMPTY);
  EXPECT_EQ(fs.Unlink("d/e"), -EISDIR);
  EXPECT_EQ(fs.Rmdir("d/e/f"), -ENOTDIR);
  Tmpfs::NodePtr d;
  ASSERT_EQ(fs.Lookup("d", true, &d), 0);
  EXPECT_EQ(Names(fs.Dirents(*d)), (std::vector<std::string>{".", "..", "e"}));
  struct stat st;
  fs.Stat(*d, &st);
  EXPECT_EQ(st.st_nlink, 3u);  // ., its entry in the root, e/..
  EXPECT_EQ(fs.Unlink("d/e/f"), 0);
  EXPECT_EQ(fs.Rmdir("d/e"), 0);
  EXPECT_EQ(fs.Lookup("d/e", true, &d), -ENOENT);
  // ".." never leaves the mount.
  ASSERT_EQ(fs.Lookup("../../d", true, &d), 0);
}

TEST(Tmpfs, RenameReplacesAndRefuses) {
  Tmpfs fs;
  Tmpfs::NodePtr a, b;
  ASSERT_EQ(fs.Open("a", O_CREAT | O_WRONLY, 0600, &a), 0);
  ASSERT_EQ(fs.Open("b", O_CREAT | O_WRONLY, 0600, &b), 0);
  EXPECT_EQ(fs.Rename("a", "b", true), -EEXIST);
  EXPECT_EQ(fs.Rename("a", "b", false), 0);
  Tmpfs::NodePtr n;
  ASSERT_EQ(fs.Lookup("b", true, &n), 0);
  EXPECT_EQ(n, a);
  EXPECT_EQ(fs.Lookup("a", true, &n), -ENOENT);
  ASSERT_EQ(fs.Mkdir("d", 0755), 0);
  ASSERT_EQ(fs.Mkdir("d/sub", 0755), 0);
  EXPECT_EQ(fs.Rename("d", "d/sub/x", false), -EINVAL);  // into itself
  EXPECT_EQ(fs.Rename("b", "d", false), -EISDIR);
  EXPECT_EQ(fs.Rename("d", "b", false), -ENOTDIR);
  EXPECT_EQ(fs.Rename("d/sub", "e", false), 0);
  EXPECT_EQ(fs.Lookup("e", true, &n), 0);
}

TEST(Tmpfs, SymlinksAreFollowedWhereAsked) {
  Tmpfs fs;
  ASSERT_EQ(fs.Mkdir("real", 0755), 0);
  Tmpfs::NodePtr f;
  ASSERT_EQ(fs.Open("real/file", O_CREAT | O_WRONLY, 0600, &f), 0);
  ASSERT_EQ(fs.Symlink("real", "link"), 0);
  ASSERT_EQ(fs.Symlink("loop", "loop"), 0);
  Tmpfs::NodePtr n;
  ASSERT_EQ(fs.Lookup("link/file", false, &n), 0);
  EXPECT_EQ(n, f);
  ASSERT_EQ(fs.Lookup("link", false, &n), 0);
  EXPECT_TRUE(S_ISLNK(n->mode));
  EXPECT_EQ(fs.Lookup("loop", true, &n), -ELOOP);
  EXPECT_EQ(fs.Open("link", O_RDONLY | O_NOFOLLOW, 0, &n), -ELOOP);
}

TEST(Tmpfs, HardLinksShareTheFileAndTheBudget) {
  Tmpfs fs(8192);
  Tmpfs::NodePtr n;
  ASSERT_EQ(fs.Open("a", O_CREAT | O_RDWR, 0600, &n), 0);
  ASSERT_EQ(fs.Write(*n, 0, reinterpret_cast<const uint8_t*>("data"), 4), 4);
  ASSERT_EQ(fs.Mkdir("d", 0755), 0);
  ASSERT_EQ(fs.Link("a", "d/b", false), 0);
  EXPECT_EQ(fs.Link("a", "d/b", false), -EEXIST);
  EXPECT_EQ(fs.Link("d", "e", false), -EPERM);
  Tmpfs::NodePtr b;
  ASSERT_EQ(fs.Lookup("d/b", true, &b), 0);
  EXPECT_EQ(b, n);
  struct stat st;
  fs.Stat(*n, &st);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(fs.Unlink("a"), 0);
  EXPECT_EQ(fs.used(), 4u);  // still linked as d/b
  EXPECT_EQ(fs.Unlink("d/b"), 0);
  // No name left, but still open (n, b): its data still counts, as on Linux.
  EXPECT_EQ(fs.used(), 4u);
  n.reset();
  b.reset();
  EXPECT_EQ(fs.used(), 0u);
}

// memfd_create's nameless files: budgeted while they live, released with
// their last reference; seals refuse what they seal.
TEST(Tmpfs, UnlinkedFilesAreBudgetedAndSealsHold) {
  Tmpfs fs(8192);
  Tmpfs::NodePtr n = fs.NewUnlinked(0600);
  EXPECT_EQ(n->nlink, 0u);
  std::vector<uint8_t> page(4096, 'x');
  EXPECT_EQ(fs.Write(*n, 0, page.data(), page.size()), 4096);
  EXPECT_EQ(fs.used(), 4096u);
  n->seals = F_SEAL_GROW;
  EXPECT_EQ(fs.Write(*n, 4096, page.data(), 1), -EPERM);
  EXPECT_EQ(fs.Truncate(*n, 8192), -EPERM);
  EXPECT_EQ(fs.Truncate(*n, 100), 0);
  n->seals |= F_SEAL_SHRINK | F_SEAL_WRITE;
  EXPECT_EQ(fs.Truncate(*n, 10), -EPERM);
  EXPECT_EQ(fs.Write(*n, 0, page.data(), 1), -EPERM);
  EXPECT_EQ(fs.used(), 100u);
  n.reset();
  EXPECT_EQ(fs.used(), 0u);
}

TEST(Tmpfs, FifosAreNodesOfTheirOwnType) {
  Tmpfs fs;
  ASSERT_EQ(fs.Mkfifo("p", 0644), 0);
  EXPECT_EQ(fs.Mkfifo("p", 0644), -EEXIST);
  Tmpfs::NodePtr n;
  ASSERT_EQ(fs.Lookup("p", true, &n), 0);
  struct stat st;
  fs.Stat(*n, &st);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_size, 0);
  Tmpfs::NodePtr root;
  ASSERT_EQ(fs.Lookup("", true, &root), 0);
  const std::string d = fs.Dirents(*root);
  EXPECT_EQ(Names(d), (std::vector<std::string>{".", "..", "p"}));
}

TEST(Tmpfs, BudgetGivesEnospc) {
  Tmpfs fs(8192);
  Tmpfs::NodePtr n;
  ASSERT_EQ(fs.Open("f", O_CREAT | O_RDWR, 0600, &n), 0);
  std::vector<uint8_t> big(8192, 'x');
  EXPECT_EQ(fs.Write(*n, 0, big.data(), big.size()), 8192);
  EXPECT_EQ(fs.Write(*n, 8192, big.data(), 1), -ENOSPC);
  EXPECT_EQ(fs.Truncate(*n, 100), 0);
  EXPECT_EQ(fs.used(), 100u);
  EXPECT_EQ(fs.Unlink("f"), 0);
  n.reset();  // the last reference (an open file on Linux)
  EXPECT_EQ(fs.used(), 0u);
}

}  // namespace
}  // namespace bulkhead::router

namespace bulkhead::router {
namespace {

// With a memory file, data lives there; truncating a big file to nothing
// gives its range back, a small one is zeroed and kept for the rewrite, and
// growing again reads zeros.
TEST(FileData, LivesInTheMemoryFileAndTruncateGivesItBack) {
  MemoryFile mem(uint64_t{64} << 20);
  FileData small, big;
  ASSERT_TRUE(small.Resize(100, &mem));
  EXPECT_TRUE(small.shared());  // in the memory file from the first byte
  const uint8_t x[4] = {'a', 'b', 'c', 'd'};
  small.Put(0, x, 4);
  ASSERT_TRUE(small.Resize(0, &mem));
  EXPECT_TRUE(small.shared());  // kept: at most kKeepOnTruncate
  ASSERT_TRUE(small.Resize(4, &mem));
  uint8_t got[4] = {1, 1, 1, 1};
  small.Get(0, got, 4);
  EXPECT_EQ(std::memcmp(got, "\0\0\0\0", 4), 0);  // regrowth reads zeros

  ASSERT_TRUE(big.Resize(uint64_t{4} << 20, &mem));
  big.Put((uint64_t{4} << 20) - 4, x, 4);
  ASSERT_TRUE(big.Resize(0, &mem));
  EXPECT_FALSE(big.shared());  // the range went back
  ASSERT_TRUE(big.Resize(uint64_t{4} << 20, &mem));
  big.Get((uint64_t{4} << 20) - 4, got, 4);
  EXPECT_EQ(std::memcmp(got, "\0\0\0\0", 4), 0);
  // A shrink to under a quarter moves to a smaller range, keeping the head.
  big.Put(0, x, 4);
  ASSERT_TRUE(big.Resize(8, &mem));
  big.Get(0, got, 4);
  EXPECT_EQ(std::memcmp(got, x, 4), 0);
  EXPECT_EQ(big.size(), 8u);
}

}  // namespace
}  // namespace bulkhead::router
