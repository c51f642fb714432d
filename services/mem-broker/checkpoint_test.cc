#include "services/mem-broker/checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/fd.h"

namespace bulkhead::mem {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kSize = 64 << 20;

UniqueFd Memfd(uint64_t size) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_memfd_create, "checkpoint-test", MFD_CLOEXEC)));
  EXPECT_TRUE(fd);
  EXPECT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0);
  return fd;
}

void Put(int fd, uint64_t off, const std::vector<uint8_t>& bytes) {
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(off)), static_cast<ssize_t>(bytes.size()));
}

std::vector<uint8_t> Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng() | 1);  // never a zero page
  return v;
}

std::vector<uint8_t> Get(int fd, uint64_t off, size_t n) {
  std::vector<uint8_t> v(n);
  EXPECT_EQ(::pread(fd, v.data(), n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
  return v;
}

bool SameContents(int a, int b, uint64_t size) {
  for (uint64_t off = 0; off < size; off += 1 << 20) {
    if (Get(a, off, 1 << 20) != Get(b, off, 1 << 20)) return false;
  }
  return true;
}

// A stream in a temporary file (seekable, as AsyncLoader wants).
UniqueFd TempFile() {
  char path[] = "/tmp/bh-checkpoint-XXXXXX";
  UniqueFd fd(::mkstemp(path));
  ::unlink(path);
  return fd;
}

// Memory with data in a few places, and a zero page inside a data extent.
UniqueFd Sample() {
  UniqueFd m = Memfd(kSize);
  Put(m.get(), 0, Random(3 * kPage, 1));
  Put(m.get(), 10 * kPage, Random(kPage, 2));
  Put(m.get(), 11 * kPage, std::vector<uint8_t>(kPage, 0));  // written, but zeros
  Put(m.get(), 12 * kPage, Random(kPage, 3));
  Put(m.get(), 40 << 20, Random(5 << 20, 4));  // 5 MiB: runs longer than one page
  Put(m.get(), kSize - kPage, Random(kPage, 5));
  return m;
}

TEST(Checkpoint, RoundTripSkipsHolesAndZeroPages) {
  UniqueFd m = Sample();
  UniqueFd stream = TempFile();
  SaveStats s = SaveMemory(m.get(), stream.get());
  EXPECT_EQ(s.file_size, kSize);
  EXPECT_GE(s.zero_pages, 1u);
  const uint64_t data = 3 * kPage + 2 * kPage + (5 << 20) + kPage;
  EXPECT_GE(s.bytes_written, data);
  EXPECT_LT(s.bytes_written, data + 4096);  // headers only on top: 64 MiB became ~5 MiB
  ASSERT_EQ(::lseek(stream.get(), 0, SEEK_SET), 0);
  UniqueFd back = Memfd(kPage);  // any size: the load sets it
  LoadStats l = LoadMemory(stream.get(), back.get());
  EXPECT_EQ(l.file_size, kSize);
  EXPECT_EQ(l.bytes_loaded, data);
  EXPECT_TRUE(SameContents(m.get(), back.get(), kSize));
}

TEST(Checkpoint, AsyncLoadServesAWaitedRangeFirst) {
  UniqueFd m = Memfd(kSize);
  for (uint64_t i = 0; i < 300; ++i) Put(m.get(), i * 2 * kPage, Random(kPage, 100 + i));  // 300 runs
  Put(m.get(), 48 << 20, Random(8 << 20, 7));  // the last run: 8 MiB
  UniqueFd stream = TempFile();
  SaveMemory(m.get(), stream.get());
  UniqueFd back = Memfd(kPage);
  AsyncLoader loader(stream.get(), back.get());
  EXPECT_EQ(loader.file_size(), kSize);
  // A task waits on a page in the last run: it is there when Ensure returns.
  loader.Ensure((52 << 20) + 5, 100);
  EXPECT_EQ(Get(back.get(), 52 << 20, kPage), Get(m.get(), 52 << 20, kPage));
  loader.Ensure(0, kSize);
  EXPECT_TRUE(SameContents(m.get(), back.get(), kSize));
  loader.Wait();
}

TEST(Checkpoint, HostileStreamsAreRefusedWithTheReason) {
  UniqueFd m = Sample();
  UniqueFd stream = TempFile();
  SaveMemory(m.get(), stream.get());
  const off_t len = ::lseek(stream.get(), 0, SEEK_END);
  std::vector<uint8_t> good(static_cast<size_t>(len));
  ASSERT_EQ(::pread(stream.get(), good.data(), good.size(), 0), len);
  auto load = [&](const std::vector<uint8_t>& bytes) -> std::string {
    UniqueFd f = TempFile();
    if (!bytes.empty()) EXPECT_EQ(::write(f.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::lseek(f.get(), 0, SEEK_SET);
    UniqueFd out = Memfd(kPage);
    std::string err;
    try {
      LoadMemory(f.get(), out.get());
    } catch (const std::exception& e) {
      err = e.what();
    }
    std::string async_err;
    try {
      AsyncLoader a(f.get(), out.get());
      a.Wait();
    } catch (const std::exception& e) {
      async_err = e.what();
    }
    EXPECT_EQ(err.empty(), async_err.empty()) << err << " / " << async_err;
    return err;
  };
  EXPECT_EQ(load(good), "");
  auto bad = good;
  bad[0] = 'X';
  EXPECT_NE(load(bad).find("bad magic"), std::string::npos);
  EXPECT_NE(load({good.begin(), good.begin() + 10}).find("truncated"), std::string::npos);
  EXPECT_NE(load({good.begin(), good.begin() + 100}).find("truncated"), std::string::npos);
  bad = good;
  const uint64_t huge = uint64_t{1} << 60;
  std::memcpy(&bad[8], &huge, 8);
  EXPECT_NE(load(bad).find("file size"), std::string::npos);
  bad = good;
  const uint64_t past = kSize;  // the first run's offset: at the end of the file
  std::memcpy(&bad[24], &past, 8);
  EXPECT_NE(load(bad).find("bad run"), std::string::npos);
  bad = good;
  const uint32_t zero = 0;
  std::memcpy(&bad[32], &zero, 4);
  EXPECT_NE(load(bad).find("bad run"), std::string::npos);
  // Random garbage after a good header: an error, never a crash.
  std::mt19937_64 rng(9);
  for (int i = 0; i < 100; ++i) {
    std::vector<uint8_t> g(good.begin(), good.begin() + 24);
    for (int j = 0; j < 200; ++j) g.push_back(static_cast<uint8_t>(rng()));
    EXPECT_NE(load(g), "");
  }
}

}  // namespace
}  // namespace bulkhead::mem
