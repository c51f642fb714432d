// bulkhead under systemd (issue 8, part 4), tested without systemd as pid 1:
// the test plays systemd's side of the notify protocol (NOTIFY_SOCKET,
// WATCHDOG_USEC) and checks the messages, and the shipped unit passes
// `systemd-analyze verify`.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/fd.h"
#include "integration/util.h"

namespace bulkhead::integration {
namespace {

namespace fs = std::filesystem;

// The next datagram within `ms`, or "".
std::string Receive(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return "";
  char buf[1024];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST(Systemd, NotifiesReadyWatchdogAndStopping) {
  // An abstract socket, as systemd's own is named "@..." in some setups
  // (and a test directory's path is longer than sun_path).
  const std::string name = "bulkhead-notify-test-" + std::to_string(getpid());
  const std::string sock = "@" + name;
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(fd);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.c_str(), name.size());
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len), 0) << strerror(errno);
  const std::string root = TestDir("notify-root");
  const std::string bh = Runfile("runtime/bulkhead");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("NOTIFY_SOCKET", sock.c_str(), 1);
    ::setenv("WATCHDOG_USEC", "100000", 1);  // 100 ms: pings every 50 ms
    ::execl(bh.c_str(), "bulkhead", "--root", root.c_str(), "supervise", "--id", "unit", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const std::string ready = Receive(fd.get(), 10000);
  EXPECT_NE(ready.find("READY=1"), std::string::npos) << ready;
  EXPECT_NE(ready.find("STATUS=sandbox unit: 4 services running"), std::string::npos) << ready;
  EXPECT_NE(ready.find("MAINPID=" + std::to_string(pid)), std::string::npos) << ready;
  int pings = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(600);
  while (std::chrono::steady_clock::now() < until) {
    if (Receive(fd.get(), 100) == "WATCHDOG=1") ++pings;
  }
  EXPECT_GE(pings, 4);  // about 12 in 600 ms; bounded low for a loaded machine
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  std::string msg;
  for (int i = 0; i < 50 && msg.find("STOPPING=1") == std::string::npos; ++i) msg = Receive(fd.get(), 200);
  EXPECT_NE(msg.find("STOPPING=1"), std::string::npos) << msg;
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(fs::exists(root + "/unit"));  // nothing left behind
}

TEST(Systemd, WithoutNotifySocketNothingIsSent) {
  // A plain `supervise` (no NOTIFY_SOCKET) starts and stops as before.
  const std::string root = TestDir("notify-root2");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::unsetenv("NOTIFY_SOCKET");
    const std::string bh = Runfile("runtime/bulkhead");
    ::execl(bh.c_str(), "bulkhead", "--root", root.c_str(), "supervise", "--id", "plain", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 500 && !fs::exists(root + "/plain/control.sock"); ++i) ::usleep(10000);
  EXPECT_TRUE(fs::exists(root + "/plain/control.sock"));
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(Systemd, TheUnitVerifies) {
  // The shipped unit with its ExecStart pointing at this build's binary.
  std::string unit = ReadFile(Runfile("deploy/systemd/bulkhead@.service"));
  ASSERT_FALSE(unit.empty());
  const std::string bh = Runfile("runtime/bulkhead");
  for (size_t at; (at = unit.find("/usr/local/bin/bulkhead")) != std::string::npos;) unit.replace(at, 23, bh);
  const std::string dir = TestDir("unit");
  std::ofstream(dir + "/bulkhead@test.service") << unit;
  Result r = Sh("SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no " + dir + "/bulkhead@test.service 2>&1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "") << r.out;
}

}  // namespace
}  // namespace bulkhead::integration
