// The real fs-gofer process, hardened, serving files from a sandbox root
// over its ring: this test plays the supervisor (bootstrap) and the router.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

#include "base/memfd.h"
#include "integration/util.h"
#include "ipc/channel.h"
#include "schemas/control.capnp.h"
#include "schemas/gofer.capnp.h"
#include "services/common/channel_holder.h"
#include "services/common/service_kind.h"
#include "services/common/wire.h"
#include "services/syscall-router/kernel/gofer_client.h"

namespace bulkhead::integration {
namespace {

namespace ctl = schema::control;
namespace g = schema::gofer;

class GoferProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = TestDir("gofer");
    root_ = base_ + "/root";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root_ + "/etc").c_str(), 0755), 0);
    std::ofstream(root_ + "/etc/motd") << "hello from inside\n";
    std::ofstream(base_ + "/secret") << "host secret\n";
    chmod((root_ + "/etc/motd").c_str(), 0644);
    ASSERT_EQ(symlink("../../secret", (root_ + "/etc/escape").c_str()), 0);
    std::string big(300000, 'x');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    std::ofstream(root_ + "/big") << big;
    chmod((root_ + "/big").c_str(), 0644);

    const size_t stats_size = (sizeof(ipc::ServiceStatsBlock) + 4095) & ~size_t{4095};
    UniqueFd stats = CreateSealedMemfd("bulkhead-stats-test", stats_size);
    UniqueFd control = ipc::CreateSegment({16, 4096, 0}, "control-test");
    UniqueFd link = ipc::CreateSegment({64, 1024, 1u << 20}, "router-gofer-test");
    UniqueFd rootfs(open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    boot_.Reset(sv[0]);
    UniqueFd theirs(sv[1]);
    const std::string bin = Runfile("services/fs-gofer/fs-gofer");
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int b = fcntl(theirs.get(), F_DUPFD, 10);
      dup2(b, 3);
      execl(bin.c_str(), "fs-gofer", "--sandbox-id", "gofer-test", "--bootstrap-fd", "3", "--log-level", "warn",
            nullptr);
      _exit(127);
    }
    capnp::MallocMessageBuilder mb;
    auto boot = mb.initRoot<ctl::Bootstrap>();
    boot.setService(ServiceKind::FS_GOFER);
    boot.setSandboxId("gofer-test");
    boot.setHasRootfs(true);
    auto chans = boot.initChannels(2);
    chans[0].setName("control");
    chans[0].setRole(ctl::ChannelGrant::Role::SERVER);
    chans[1].setName("router");
    chans[1].setPeer(ServiceKind::SYSCALL_ROUTER);
    chans[1].setRole(ctl::ChannelGrant::Role::SERVER);
    int fds[] = {stats.get(), control.get(), link.get(), rootfs.get()};
    ASSERT_EQ(wire::SendMessage(boot_.get(), mb, fds), 0);
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid_, 0)));
    ch_ = ipc::Channel::Attach(std::move(link), ipc::Channel::Role::kClient, "router", ipc::PeerWatch(std::move(pidfd)));
  }

  void TearDown() override {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

  template <typename Fill>
  ipc::Status Call(Fill&& fill, ipc::Decoded<g::Response>* out) {
    return ch_->Call<g::Request, g::Response>(std::forward<Fill>(fill), &scratch_, out, ipc::DeadlineIn(5'000'000'000ull));
  }

  // Opens, reads everything, closes; "errno N" on failure.
  std::string ReadFile(const std::string& path) {
    ipc::Decoded<g::Response> r;
    if (Call([&](g::Request::Builder b) { b.initOpen().setPath(path); }, &r) != ipc::Status::kOk) return "ring error";
    if (r.root().isError()) return "errno " + std::to_string(r.root().getError().getErrno());
    const uint64_t h = r.root().getOpened().getHandle();
    std::string data;
    for (;;) {
      ipc::Decoded<g::Response> rr;
      if (Call([&](g::Request::Builder b) {
            auto p = b.initPread();
            p.setHandle(h);
            p.setOffset(static_cast<int64_t>(data.size()));
            p.setCount(65536);
          }, &rr) != ipc::Status::kOk) {
        return "ring error";
      }
      if (rr.root().isError()) return "errno " + std::to_string(rr.root().getError().getErrno());
      uint32_t n = rr.root().getRead();
      if (n != scratch_.bulk().size()) return "bulk size mismatch";
      data.append(reinterpret_cast<const char*>(scratch_.bulk().data()), n);
      ch_->ReleaseBulk(scratch_);
      if (n == 0) break;
    }
    ipc::Decoded<g::Response> rc;
    Call([&](g::Request::Builder b) { b.initClose().setHandle(h); }, &rc);
    return data;
  }

  std::string base_, root_;
  pid_t pid_ = -1;
  UniqueFd boot_;
  std::unique_ptr<ipc::Channel> ch_;
  ipc::ReceivedMessage scratch_;
};

TEST_F(GoferProcess, ServesFilesFromTheSandboxRootOnly) {
  EXPECT_EQ(ReadFile("/etc/motd"), "hello from inside\n");
  std::string big = ReadFile("/big");
  ASSERT_EQ(big.size(), 300000u);
  EXPECT_EQ(big[299999], static_cast<char>('a' + 299999 % 26));
  EXPECT_EQ(ReadFile("/etc/escape"), "errno " + std::to_string(ENOENT));
  EXPECT_EQ(ReadFile("/../secret"), "errno " + std::to_string(ENOENT));
  EXPECT_EQ(ReadFile(base_ + "/secret"), "errno " + std::to_string(ENOENT));
  ipc::Decoded<g::Response> r;
  ASSERT_EQ(Call([&](g::Request::Builder b) {
              auto o = b.initOpen();
              o.setPath("/etc/motd");
              o.setFlags(O_WRONLY);
            }, &r), ipc::Status::kOk);
  ASSERT_TRUE(r.root().isOpened());  // writable: the supervisor makes the tree read-only or an overlay
  ASSERT_EQ(Call([&](g::Request::Builder b) {
              auto s = b.initStat();
              s.setPath("/etc");
              s.setFollowLinks(true);
            }, &r), ipc::Status::kOk);
  ASSERT_TRUE(r.root().isStat());
  EXPECT_TRUE(S_ISDIR(r.root().getStat().getMode()));
  ASSERT_EQ(Call([&](g::Request::Builder b) { b.initReadlink().setPath("/etc/escape"); }, &r), ipc::Status::kOk);
  ASSERT_TRUE(r.root().isTarget());
  EXPECT_STREQ(r.root().getTarget().cStr(), "../../secret");
  ASSERT_EQ(Call([&](g::Request::Builder b) { b.initFstat().setHandle(999); }, &r), ipc::Status::kOk);
  EXPECT_EQ(r.root().getError().getErrno(), EBADF);
  // The process is still alive and hardened after all of it.
  std::string status = integration::ReadFile("/proc/" + std::to_string(pid_) + "/status");
  EXPECT_NE(status.find("Seccomp:\t2"), std::string::npos);
}

// The router's gofer client keeps closed read-only files open (parked): the
// same path opened again costs no round trip and reads the same bytes;
// directories and other flags are not parked; at most kMaxParked are kept.
TEST_F(GoferProcess, ClosedFilesAreParkedAndTakenBackByTheNextOpen) {
  for (int i = 0; i < 70; ++i) {
    std::ofstream(root_ + "/f" + std::to_string(i)) << "file " << i;
    chmod((root_ + "/f" + std::to_string(i)).c_str(), 0644);
  }
  service::ChannelHolder holder;
  holder.Replace(std::move(ch_), 1);
  router::GoferClient gc(&holder);
  auto read_all = [&](uint64_t h) {
    std::string out(64, '\0');
    long n = gc.Pread(h, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    out.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return out;
  };
  uint64_t h = 0;
  struct stat st;
  ASSERT_EQ(gc.Open("/etc/motd", O_RDONLY, 0, &h, &st), 0);
  EXPECT_EQ(read_all(h), "hello from inside\n");
  ASSERT_EQ(gc.Close(h), 0);
  EXPECT_EQ(gc.parked(), 1u);
  struct stat again;
  ASSERT_EQ(gc.Open("/etc/motd", O_RDONLY, 0, &h, &again), 0);
  EXPECT_EQ(gc.parked_hits(), 1u);
  EXPECT_EQ(again.st_ino, st.st_ino);
  EXPECT_EQ(again.st_size, st.st_size);
  EXPECT_EQ(read_all(h), "hello from inside\n");
  // Other flags are another file description: not the parked one.
  uint64_t h2 = 0;
  ASSERT_EQ(gc.Open("/etc/motd", O_RDONLY | O_NOFOLLOW, 0, &h2, &st), 0);
  EXPECT_EQ(gc.parked_hits(), 1u);
  ASSERT_EQ(gc.Close(h2), 0);
  ASSERT_EQ(gc.Close(h), 0);
  EXPECT_EQ(gc.parked(), 2u);
  // A directory keeps its listing position: never parked.
  ASSERT_EQ(gc.Open("/etc", O_RDONLY | O_DIRECTORY, 0, &h, &st), 0);
  ASSERT_EQ(gc.Close(h), 0);
  EXPECT_EQ(gc.parked(), 2u);
  // Bounded: the least recently used go (and are closed in the gofer).
  for (int i = 0; i < 70; ++i) {
    ASSERT_EQ(gc.Open("/f" + std::to_string(i), O_RDONLY, 0, &h, &st), 0) << i;
    ASSERT_EQ(gc.Close(h), 0);
  }
  EXPECT_EQ(gc.parked(), router::GoferClient::kMaxParked);
  ASSERT_EQ(gc.Open("/f69", O_RDONLY, 0, &h, &st), 0);
  EXPECT_EQ(read_all(h), "file 69");
  EXPECT_EQ(gc.parked_hits(), 2u);
  ASSERT_EQ(gc.Open("/etc/motd", O_RDONLY, 0, &h2, &st), 0);  // evicted long since: a real open
  EXPECT_EQ(gc.parked_hits(), 2u);
  EXPECT_EQ(read_all(h2), "hello from inside\n");
}

}  // namespace
}  // namespace bulkhead::integration
