#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "base/error.h"
#include "base/fdpass.h"
#include "base/log.h"
#include "base/mapping.h"
#include "base/memfd.h"

namespace bulkhead {
namespace {

TEST(Error, MessageNamesCallContextAndErrno) {
  SysError e(ENOENT, "open", "/nope");
  EXPECT_STREQ(e.what(), "open(/nope): No such file or directory (ENOENT)");
  EXPECT_EQ(e.err(), ENOENT);
  EXPECT_THROW(CheckSys(-1, "x"), SysError);
}

TEST(Memfd, SealedSizeCannotChange) {
  UniqueFd fd = CreateSealedMemfd("t", 8192);
  EXPECT_EQ(FdSize(fd.get()), 8192);
  EXPECT_TRUE(HasSizeSeals(fd.get()));
  EXPECT_LT(ftruncate(fd.get(), 4096), 0);
  EXPECT_EQ(errno, EPERM);
  Mapping m = Mapping::MapShared(fd.get(), 8192);
  m.data()[8191] = 7;
  EXPECT_EQ(m.data()[8191], 7);
}

TEST(FdPass, PassesDescriptorsAndData) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  UniqueFd memfd = CreateSealedMemfd("p", 4096);
  const uint8_t hello[] = {'h', 'i'};
  int fds[] = {memfd.get()};
  ASSERT_EQ(SendWithFds(a.get(), hello, fds), 0);
  ReceivedDatagram d;
  ASSERT_EQ(RecvWithFds(b.get(), 64, &d), 0);
  ASSERT_EQ(d.data.size(), 2u);
  EXPECT_EQ(d.data[0], 'h');
  ASSERT_EQ(d.fds.size(), 1u);
  EXPECT_EQ(FdSize(d.fds[0].get()), 4096);
  EXPECT_TRUE(fcntl(d.fds[0].get(), F_GETFD) & FD_CLOEXEC);
}

TEST(FdPass, TruncatedDatagramIsAnErrorAndLeaksNothing) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  uint8_t big[100] = {};
  UniqueFd memfd = CreateSealedMemfd("p", 4096);
  int fds[] = {memfd.get()};
  ASSERT_EQ(SendWithFds(a.get(), big, fds), 0);
  ReceivedDatagram d;
  EXPECT_EQ(RecvWithFds(b.get(), 10, &d), -EMSGSIZE);
  EXPECT_TRUE(d.fds.empty());
  a.Reset();
  EXPECT_EQ(RecvWithFds(b.get(), 10, &d), -ECONNRESET);
}

TEST(Log, JsonEscape) {
  EXPECT_EQ(JsonEscape("a\"b\\c\n\x01"), "a\\\"b\\\\c\\n\\u0001");
  LogFormat f;
  EXPECT_TRUE(ParseLogFormat("json", &f));
  EXPECT_EQ(f, LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml", &f));
}

}  // namespace
}  // namespace bulkhead
