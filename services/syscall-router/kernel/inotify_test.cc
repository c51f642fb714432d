#include "services/syscall-router/kernel/inotify.h"

#include <sys/inotify.h>

#include <gtest/gtest.h>

#include <cstring>

namespace bulkhead::router {
namespace {

struct Ev {
  int wd;
  uint32_t mask, cookie;
  std::string name;
};

std::vector<Ev> Drain(Inotify& i) {
  std::string buf;
  std::vector<Ev> out;
  if (i.Read(&buf, 65536) <= 0) return out;
  for (size_t pos = 0; pos + sizeof(inotify_event) <= buf.size();) {
    inotify_event e;
    std::memcpy(&e, buf.data() + pos, sizeof(e));
    out.push_back({e.wd, e.mask, e.cookie, std::string(buf.data() + pos + sizeof(e), strnlen(buf.data() + pos + sizeof(e), e.len))});
    pos += sizeof(e) + e.len;
  }
  return out;
}

TEST(Inotify, DirectoryWatchesSeeNamesAndFileWatchesSeeThemselves) {
  InotifyHub hub;
  auto i = hub.Create();
  const int dir = i->AddWatch("/d", IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO);
  const int file = i->AddWatch("/d/f", IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF);
  ASSERT_GT(dir, 0);
  ASSERT_GT(file, dir);
  hub.Event("/d/f", IN_CREATE, false);
  hub.Event("/d/f", IN_MODIFY, false);
  hub.Event("/d/sub", IN_CREATE, true);
  hub.Event("/elsewhere/x", IN_CREATE, false);
  const uint32_t c = hub.NextCookie();
  hub.Event("/d/f", IN_MOVED_FROM, false, c);
  hub.Event("/d/g", IN_MOVED_TO, false, c);
  auto ev = Drain(*i);
  ASSERT_EQ(ev.size(), 6u);
  EXPECT_EQ(ev[0].wd, dir);
  EXPECT_EQ(ev[0].mask, IN_CREATE);
  EXPECT_EQ(ev[0].name, "f");
  EXPECT_EQ(ev[1].wd, dir);  // the directory's watch first, then the file's
  EXPECT_EQ(ev[1].mask, IN_MODIFY);
  EXPECT_EQ(ev[2].wd, file);
  EXPECT_EQ(ev[2].name, "");
  EXPECT_EQ(ev[3].mask, IN_CREATE | IN_ISDIR);
  EXPECT_EQ(ev[4].mask, IN_MOVED_FROM);
  EXPECT_EQ(ev[5].mask, IN_MOVED_TO);
  EXPECT_EQ(ev[4].cookie, ev[5].cookie);
  EXPECT_NE(ev[4].cookie, 0u);
}

TEST(Inotify, AnEventLikeTheLastQueuedOneIsMerged) {
  InotifyHub hub;
  auto i = hub.Create();
  i->AddWatch("/d", IN_MODIFY);
  hub.Event("/d/f", IN_MODIFY, false);
  hub.Event("/d/f", IN_MODIFY, false);
  hub.Event("/d/g", IN_MODIFY, false);
  EXPECT_EQ(Drain(*i).size(), 2u);
}

TEST(Inotify, DeletingTheWatchedFileEndsItsWatch) {
  InotifyHub hub;
  auto i = hub.Create();
  const int w = i->AddWatch("/f", IN_DELETE_SELF | IN_ATTRIB);
  hub.Event("/f", IN_DELETE_SELF, false);
  auto ev = Drain(*i);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].mask, IN_DELETE_SELF);
  EXPECT_EQ(ev[1].mask, IN_IGNORED);
  EXPECT_EQ(ev[1].wd, w);
  EXPECT_EQ(i->RemoveWatch(w), -EINVAL);
}

TEST(Inotify, FlagsAndLimits) {
  Inotify i;
  EXPECT_EQ(i.AddWatch("/a", 0), -EINVAL);
  const int w = i.AddWatch("/a", IN_MODIFY);
  EXPECT_EQ(i.AddWatch("/a", IN_ATTRIB | IN_MASK_ADD), w);
  EXPECT_EQ(i.AddWatch("/a", IN_ATTRIB | IN_MASK_CREATE), -EEXIST);
  EXPECT_EQ(i.AddWatch("/a", IN_ATTRIB | IN_MASK_CREATE | IN_MASK_ADD), -EINVAL);
  i.Event("/a", IN_ATTRIB, 0, false);
  std::string buf;
  EXPECT_EQ(i.Read(&buf, 4), -EINVAL);  // the record does not fit
  EXPECT_EQ(i.Read(&buf, 4096), static_cast<long>(sizeof(inotify_event)));
  for (size_t k = 0; k < Inotify::kMaxQueued + 10; ++k) i.Event("/a", (k % 2) ? IN_MODIFY : IN_ATTRIB, 0, false);
  std::string all;
  size_t n = 0;
  while (i.Read(&buf, 1 << 20) > 0) {
    all += buf;
    n += buf.size() / sizeof(inotify_event);
  }
  inotify_event last;
  std::memcpy(&last, all.data() + all.size() - sizeof(last), sizeof(last));
  EXPECT_EQ(last.mask, static_cast<uint32_t>(IN_Q_OVERFLOW));
  EXPECT_EQ(n, Inotify::kMaxQueued + 1);
}

}  // namespace
}  // namespace bulkhead::router
