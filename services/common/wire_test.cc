#include "services/common/wire.h"

#include <sys/socket.h>

#include <gtest/gtest.h>

#include "base/memfd.h"
#include "schemas/control.capnp.h"
#include "services/common/service_kind.h"

namespace bulkhead {
namespace {

namespace ctl = schema::control;

TEST(Wire, BootstrapWithDescriptorsRoundTrips) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  capnp::MallocMessageBuilder mb;
  auto boot = mb.initRoot<ctl::Bootstrap>();
  boot.setService(ServiceKind::FS_GOFER);
  boot.setSandboxId("s1");
  auto chans = boot.initChannels(1);
  chans[0].setName("control");
  UniqueFd seg = CreateSealedMemfd("x", 4096);
  int fds[] = {seg.get()};
  ASSERT_EQ(wire::SendMessage(a.get(), mb, fds), 0);
  wire::Received<ctl::Bootstrap> r;
  ASSERT_EQ(wire::ReceiveMessage(b.get(), &r), 0);
  EXPECT_EQ(r.root().getService(), ServiceKind::FS_GOFER);
  EXPECT_STREQ(r.root().getSandboxId().cStr(), "s1");
  EXPECT_EQ(r.fds.size(), 1u);
}

TEST(Wire, GarbageDatagramIsRefused) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  const uint8_t junk[] = {1, 2, 3};
  ASSERT_EQ(SendWithFds(a.get(), junk, {}), 0);
  wire::Received<ctl::Bootstrap> r;
  EXPECT_EQ(wire::ReceiveMessage(b.get(), &r), -EBADMSG);
  uint64_t words[4] = {0xffffffff00000000ull, 1, 2, 3};
  ASSERT_EQ(SendWithFds(a.get(), {reinterpret_cast<uint8_t*>(words), sizeof(words)}, {}), 0);
  EXPECT_EQ(wire::ReceiveMessage(b.get(), &r), -EBADMSG);
}

TEST(ServiceKind, Names) {
  EXPECT_EQ(ServiceName(ServiceKind::FS_GOFER), "fs-gofer");
  EXPECT_EQ(ParseServiceName("router"), ServiceKind::SYSCALL_ROUTER);
  EXPECT_EQ(ParseServiceName("net-stack"), ServiceKind::NET_STACK);
  EXPECT_FALSE(ParseServiceName("nope").has_value());
}

}  // namespace
}  // namespace bulkhead
