#include "services/mem-broker/checkpoint.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "base/error.h"

namespace bulkhead::mem {
namespace {

constexpr char kMagic[8] = {'B', 'H', 'M', 'E', 'M', 'C', 'K', '1'};
constexpr uint64_t kPage = 4096;
constexpr uint32_t kMaxRunPages = 65536;  // 256 MiB
constexpr uint64_t kEnd = ~uint64_t{0};
constexpr uint64_t kMaxFile = uint64_t{1} << 46;  // 64 TiB: anything larger is not a memory file of ours

struct Header {
  char magic[8];
  uint64_t size;
  uint32_t page;
  uint32_t reserved;
};
struct RunHeader {
  uint64_t offset;
  uint32_t pages;
  uint32_t reserved;
};
static_assert(sizeof(Header) == 24 && sizeof(RunHeader) == 16);

void WriteAll(int fd, const void* p, size_t n, uint64_t* counter) {
  const auto* c = static_cast<const uint8_t*>(p);
  while (n > 0) {
    ssize_t w = RetryEintr([&] { return ::write(fd, c, n); });
    if (w <= 0) throw SysError(w < 0 ? errno : EIO, "write", "the checkpoint stream");
    c += w;
    n -= static_cast<size_t>(w);
    *counter += static_cast<uint64_t>(w);
  }
}

// Reads exactly n bytes at `at` (pread), or sequentially when at is kEnd.
void ReadAll(int fd, void* p, size_t n, uint64_t at, const char* what) {
  auto* c = static_cast<uint8_t*>(p);
  while (n > 0) {
    ssize_t r = RetryEintr([&] { return at == kEnd ? ::read(fd, c, n) : ::pread(fd, c, n, static_cast<off_t>(at)); });
    if (r < 0) throw SysError(errno, "read", std::string("the checkpoint stream (") + what + ")");
    if (r == 0) throw std::runtime_error(std::string("checkpoint stream: truncated in ") + what);
    c += r;
    n -= static_cast<size_t>(r);
    if (at != kEnd) at += static_cast<uint64_t>(r);
  }
}

void PwriteAll(int fd, const uint8_t* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = RetryEintr([&] { return ::pwrite(fd, p, n, static_cast<off_t>(off)); });
    if (w <= 0) throw SysError(w < 0 ? errno : EIO, "pwrite", "the memory file");
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
}

bool AllZero(const uint8_t* p, size_t n) {
  uint64_t acc = 0;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    acc |= v;
  }
  return acc == 0;
}

uint64_t CheckHeader(const Header& h) {
  if (std::memcmp(h.magic, kMagic, 8) != 0) throw std::runtime_error("checkpoint stream: bad magic (not a memory checkpoint)");
  if (h.page != kPage) throw std::runtime_error("checkpoint stream: page size " + std::to_string(h.page) + ", want 4096");
  if (h.size % kPage != 0 || h.size > kMaxFile) {
    throw std::runtime_error("checkpoint stream: file size " + std::to_string(h.size) + " is not a page multiple up to 64 TiB");
  }
  return h.size;
}

// A run header after `prev_end` in a file of `size`: false for the end record.
bool CheckRun(const RunHeader& r, uint64_t size, uint64_t prev_end) {
  if (r.offset == kEnd) {
    if (r.pages != 0) throw std::runtime_error("checkpoint stream: end record with pages");
    return false;
  }
  if (r.offset % kPage != 0 || r.pages == 0 || r.pages > kMaxRunPages || r.offset < prev_end || r.offset > size ||
      uint64_t{r.pages} * kPage > size - r.offset) {
    throw std::runtime_error("checkpoint stream: bad run at offset " + std::to_string(r.offset) + " (" +
                             std::to_string(r.pages) + " pages): unaligned, out of order, empty, too long or past " +
                             "the file's end");
  }
  return true;
}

void Prepare(int mem_fd, uint64_t size) {
  // Empty, then the stream's size: pages the stream leaves out read as zeros.
  CheckSys(::ftruncate(mem_fd, 0), "ftruncate", "the memory file");
  CheckSys(::ftruncate(mem_fd, static_cast<off_t>(size)), "ftruncate", "the memory file");
}

}  // namespace

SaveStats SaveMemory(int mem_fd, int out_fd) {
  struct stat st;
  CheckSys(::fstat(mem_fd, &st), "fstat", "the memory file");
  SaveStats s;
  s.file_size = static_cast<uint64_t>(st.st_size) / kPage * kPage;
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.size = s.file_size;
  h.page = kPage;
  WriteAll(out_fd, &h, sizeof h, &s.bytes_written);
  std::vector<uint8_t> buf(kMaxRunPages * kPage);
  // Pending run: pages collected in buf.
  uint64_t run_off = 0;
  uint32_t run_pages = 0;
  auto flush = [&] {
    if (run_pages == 0) return;
    RunHeader r{run_off, run_pages, 0};
    WriteAll(out_fd, &r, sizeof r, &s.bytes_written);
    WriteAll(out_fd, buf.data(), uint64_t{run_pages} * kPage, &s.bytes_written);
    ++s.runs;
    run_pages = 0;
  };
  uint64_t pos = 0;
  std::vector<uint8_t> page(kPage);
  while (pos < s.file_size) {
    off_t data = ::lseek(mem_fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // no data after pos
      throw SysError(errno, "lseek(SEEK_DATA)", "the memory file");
    }
    off_t hole = ::lseek(mem_fd, data, SEEK_HOLE);
    if (hole < 0) throw SysError(errno, "lseek(SEEK_HOLE)", "the memory file");
    const uint64_t from = static_cast<uint64_t>(data) / kPage * kPage;
    const uint64_t to = std::min<uint64_t>((static_cast<uint64_t>(hole) + kPage - 1) / kPage * kPage, s.file_size);
    for (uint64_t p = from; p < to; p += kPage) {
      ReadAll(mem_fd, page.data(), kPage, p, "the memory file");
      s.data_bytes += kPage;
      if (AllZero(page.data(), kPage)) {
        ++s.zero_pages;
        flush();
        continue;
      }
      if (run_pages > 0 && (run_off + uint64_t{run_pages} * kPage != p || run_pages == kMaxRunPages)) flush();
      if (run_pages == 0) run_off = p;
      std::memcpy(buf.data() + uint64_t{run_pages} * kPage, page.data(), kPage);
      ++run_pages;
    }
    flush();
    pos = std::max(to, pos + kPage);
  }
  flush();
  RunHeader end{kEnd, 0, 0};
  WriteAll(out_fd, &end, sizeof end, &s.bytes_written);
  return s;
}

LoadStats LoadMemory(int in_fd, int mem_fd) {
  Header h;
  ReadAll(in_fd, &h, sizeof h, kEnd, "the header");
  LoadStats s;
  s.file_size = CheckHeader(h);
  Prepare(mem_fd, s.file_size);
  std::vector<uint8_t> buf;
  uint64_t prev_end = 0;
  for (;;) {
    RunHeader r;
    ReadAll(in_fd, &r, sizeof r, kEnd, "a run header");
    if (!CheckRun(r, s.file_size, prev_end)) break;
    const size_t n = size_t{r.pages} * kPage;
    buf.resize(n);
    ReadAll(in_fd, buf.data(), n, kEnd, "a run's data");
    PwriteAll(mem_fd, buf.data(), n, r.offset);
    prev_end = r.offset + n;
    s.bytes_loaded += n;
    ++s.runs;
  }
  return s;
}

// ---------------------------------------------------------------- AsyncLoader

AsyncLoader::AsyncLoader(int in_fd, int mem_fd) : in_fd_(in_fd), mem_fd_(mem_fd) {
  Header h;
  ReadAll(in_fd_, &h, sizeof h, 0, "the header");
  file_size_ = CheckHeader(h);
  // The index: run headers only, the data is skipped.
  struct stat st;
  CheckSys(::fstat(in_fd_, &st), "fstat", "the checkpoint stream");
  const uint64_t stream_size = static_cast<uint64_t>(st.st_size);
  uint64_t at = sizeof h, prev_end = 0;
  for (;;) {
    RunHeader r;
    ReadAll(in_fd_, &r, sizeof r, at, "a run header");
    at += sizeof r;
    if (!CheckRun(r, file_size_, prev_end)) break;
    const uint64_t n = uint64_t{r.pages} * kPage;
    if (n > stream_size || at > stream_size - n) throw std::runtime_error("checkpoint stream: truncated in a run's data");
    runs_.push_back({r.offset, r.pages, at, false, false});
    at += n;
    prev_end = r.offset + n;
  }
  Prepare(mem_fd_, file_size_);
  worker_ = std::thread([this] { Worker(); });
}

AsyncLoader::~AsyncLoader() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void AsyncLoader::LoadRun(size_t i, std::unique_lock<std::mutex>& lock) {
  Run& r = runs_[i];
  r.loading = true;
  const Run copy = r;
  lock.unlock();
  std::string err;
  try {
    std::vector<uint8_t> buf(size_t{copy.pages} * kPage);
    ReadAll(in_fd_, buf.data(), buf.size(), copy.at, "a run's data");
    PwriteAll(mem_fd_, buf.data(), buf.size(), copy.offset);
  } catch (const std::exception& e) {
    err = e.what();
  }
  lock.lock();
  r.loading = false;
  r.loaded = err.empty();
  if (!err.empty() && error_.empty()) error_ = err;
  cv_.notify_all();
}

void AsyncLoader::Worker() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_ && next_ < runs_.size() && error_.empty()) {
    Run& r = runs_[next_];
    if (r.loaded || r.loading) {
      ++next_;
      continue;
    }
    LoadRun(next_, l);
  }
  cv_.notify_all();
}

void AsyncLoader::Ensure(uint64_t offset, uint64_t len) {
  if (len == 0) return;
  const uint64_t end = offset + len < offset ? kEnd : offset + len;
  std::unique_lock<std::mutex> l(mu_);
  // Runs overlapping [offset, end): the first one whose end is past offset.
  auto it = std::lower_bound(runs_.begin(), runs_.end(), offset,
                             [](const Run& r, uint64_t o) { return r.offset + uint64_t{r.pages} * kPage <= o; });
  for (size_t i = static_cast<size_t>(it - runs_.begin()); i < runs_.size() && runs_[i].offset < end; ++i) {
    for (;;) {
      if (!error_.empty()) throw std::runtime_error(error_);
      if (runs_[i].loaded) break;
      if (!runs_[i].loading) {
        ++ensured_;
        LoadRun(i, l);  // ahead of the worker: this caller waits on it
        continue;
      }
      cv_.wait(l);
    }
  }
}

void AsyncLoader::Wait() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] {
    if (!error_.empty()) return true;
    return std::all_of(runs_.begin(), runs_.end(), [](const Run& r) { return r.loaded; });
  });
  if (!error_.empty()) throw std::runtime_error(error_);
}

uint64_t AsyncLoader::ensured_runs() const {
  std::lock_guard<std::mutex> l(mu_);
  return ensured_;
}

}  // namespace bulkhead::mem
