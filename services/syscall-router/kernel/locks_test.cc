#include "services/syscall-router/kernel/locks.h"

#include <fcntl.h>
#include <sys/file.h>

#include <gtest/gtest.h>

namespace bulkhead::router {
namespace {

const LockTable::Key kFile{1, 2};

LockTable::Owner Proc(int pid) { return LockTable::Owner{pid, {}, nullptr}; }
LockTable::Owner Ofd(const std::shared_ptr<int>& f, int pid = 9) { return LockTable::Owner{pid, f, f.get()}; }

TEST(LockTable, RecordLocksConflictByRangeAndType) {
  LockTable t;
  EXPECT_EQ(t.Set(kFile, Proc(1), F_WRLCK, 0, 100), 0);
  EXPECT_EQ(t.Set(kFile, Proc(2), F_RDLCK, 50, 60), -EAGAIN);
  EXPECT_EQ(t.Set(kFile, Proc(2), F_WRLCK, 100, 200), 0);  // adjacent, not overlapping
  const auto* c = t.Conflict(kFile, Proc(3), F_RDLCK, 90, 110);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->owner.pid, 1);  // the first one found over the range
  EXPECT_EQ(t.Set(kFile, Proc(1), F_UNLCK, 40, 60), 0);  // a hole in the middle
  EXPECT_EQ(t.Set(kFile, Proc(2), F_RDLCK, 45, 55), 0);
  EXPECT_EQ(t.Set(kFile, Proc(2), F_RDLCK, 35, 45), -EAGAIN);
  EXPECT_EQ(t.Conflict(kFile, Proc(1), F_WRLCK, 0, 40), nullptr);  // one's own locks never conflict
}

TEST(LockTable, ReadLocksShareAndAnOwnerReplacesItsOwn) {
  LockTable t;
  EXPECT_EQ(t.Set(kFile, Proc(1), F_RDLCK, 0, LockTable::kToEnd), 0);
  EXPECT_EQ(t.Set(kFile, Proc(2), F_RDLCK, 10, 20), 0);
  EXPECT_EQ(t.Set(kFile, Proc(1), F_WRLCK, 0, 5), 0);       // upgrade where nobody else reads
  EXPECT_EQ(t.Set(kFile, Proc(1), F_WRLCK, 0, 15), -EAGAIN);  // 2 reads 10..20
  EXPECT_EQ(t.Set(kFile, Proc(2), F_UNLCK, 0, LockTable::kToEnd), 0);
  EXPECT_EQ(t.Set(kFile, Proc(1), F_WRLCK, 0, 15), 0);
  EXPECT_EQ(t.locks(kFile), 2u);  // write [0,15) and read [15, end)
}

TEST(LockTable, PosixLocksGoWithAnyCloseAndExit) {
  LockTable t;
  t.Set(kFile, Proc(1), F_WRLCK, 0, 10);
  t.Set({1, 3}, Proc(1), F_WRLCK, 0, 10);
  t.ClosedBy(kFile, 1);
  EXPECT_EQ(t.Set(kFile, Proc(2), F_WRLCK, 0, 10), 0);
  EXPECT_EQ(t.Set({1, 3}, Proc(2), F_WRLCK, 0, 10), -EAGAIN);
  t.ExitedProcess(1);
  EXPECT_EQ(t.Set({1, 3}, Proc(2), F_WRLCK, 0, 10), 0);
}

TEST(LockTable, OfdLocksBelongToTheDescriptionAndGoWithIt) {
  LockTable t;
  auto a = std::make_shared<int>(0), b = std::make_shared<int>(0);
  EXPECT_EQ(t.Set(kFile, Ofd(a, 1), F_WRLCK, 0, 10), 0);
  EXPECT_EQ(t.Set(kFile, Ofd(b, 1), F_WRLCK, 0, 10), -EAGAIN);  // same process, other description
  EXPECT_EQ(t.Set(kFile, Proc(1), F_RDLCK, 0, 10), -EAGAIN);     // record locks meet OFD locks
  t.ClosedBy(kFile, 1);                                          // a close does not drop OFD locks
  EXPECT_EQ(t.Set(kFile, Ofd(b, 1), F_WRLCK, 0, 10), -EAGAIN);
  a.reset();                                                     // its last descriptor closed
  EXPECT_EQ(t.Set(kFile, Ofd(b, 1), F_WRLCK, 0, 10), 0);
}

TEST(LockTable, FlockIsASpaceOfItsOwn) {
  LockTable t;
  auto a = std::make_shared<int>(0), b = std::make_shared<int>(0);
  EXPECT_EQ(t.Flock(kFile, Ofd(a), LOCK_SH), 0);
  EXPECT_EQ(t.Flock(kFile, Ofd(b), LOCK_SH), 0);
  EXPECT_EQ(t.Flock(kFile, Ofd(b), LOCK_EX), -EWOULDBLOCK);
  EXPECT_EQ(t.Set(kFile, Proc(1), F_WRLCK, 0, 10), 0);  // record locks do not see flock
  EXPECT_EQ(t.Flock(kFile, Ofd(a), LOCK_UN), 0);
  EXPECT_EQ(t.Flock(kFile, Ofd(b), LOCK_EX), 0);
  EXPECT_EQ(t.Flock(kFile, Ofd(a), LOCK_SH), -EWOULDBLOCK);
  b.reset();
  EXPECT_EQ(t.Flock(kFile, Ofd(a), LOCK_EX), 0);
}

}  // namespace
}  // namespace bulkhead::router
