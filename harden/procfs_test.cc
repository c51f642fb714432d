#include "harden/procfs.h"

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "base/error.h"

namespace bulkhead::harden {
namespace {

TEST(Procfs, StatusField) {
  const std::string s = "Name:\tx\nUid:\t0\t0\t0\t0\nCapEff:\t0000000000000000\n";
  EXPECT_EQ(StatusField(s, "Name"), "x");
  EXPECT_EQ(StatusField(s, "Uid"), "0\t0\t0\t0");
  EXPECT_EQ(StatusField(s, "CapEff"), "0000000000000000");
  EXPECT_EQ(StatusField(s, "Cap"), std::nullopt);  // prefix of another key
  EXPECT_EQ(StatusField(s, "Gid"), std::nullopt);
}

TEST(Procfs, ReadsAndCountsThreads) {
  std::string status = ReadSmallFile("/proc/self/status");
  EXPECT_TRUE(StatusField(status, "Pid").has_value());
  ASSERT_EQ(CountThreads(), 1);
  std::thread t([] { EXPECT_EQ(CountThreads(), 2); });
  t.join();
}

TEST(Procfs, ErrorsNameCallAndPath) {
  try {
    ReadSmallFile("/nonexistent/file");
    FAIL();
  } catch (const SysError& e) {
    EXPECT_EQ(e.err(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("open(/nonexistent/file)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(WriteProcFile("/nonexistent/file", "x"), SysError);
}

TEST(Procfs, WritesInOneCall) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/procfs_testXXXXXX";
  int fd = ::mkstemp(path.data());
  ASSERT_GE(fd, 0);
  ::close(fd);
  WriteProcFile(path, "0 65534 1\n");
  EXPECT_EQ(ReadSmallFile(path), "0 65534 1\n");
  EXPECT_EQ(ReadSmallFile(path, 4), "0 65");
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace bulkhead::harden
