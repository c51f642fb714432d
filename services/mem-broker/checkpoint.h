// Checkpoint primitives for the memory file: save it to a stream without its
// zero pages, load it back, or load it in the background while serving the
// ranges a task waits on first (the building blocks of checkpoint/restore).
//
// Stream format (little-endian):
//   header  "BHMEMCK1" (8 bytes), file size (u64), page size (u32 = 4096),
//           reserved (u32)
//   runs    offset (u64, page-aligned), pages (u32, 1 ... 65536), reserved
//           (u32), then pages * 4096 bytes of data; runs in ascending,
//           non-overlapping order
//   end     offset = ~0 (u64), pages = 0, reserved = 0
// Only the file's data extents (SEEK_DATA/SEEK_HOLE) are read, and within
// them pages that are all zeros are left out: a sparse 64 GiB file with 100
// MiB of data costs about 100 MiB.
//
// A stream is input from outside (a file an operator hands over): every
// field is checked (magic, sizes, order, bounds, counts, truncation) and a
// bad stream is an error naming what is wrong, never a crash or a write
// outside the file.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bulkhead::mem {

struct SaveStats {
  uint64_t file_size = 0;
  uint64_t data_bytes = 0;     // bytes in the file's data extents
  uint64_t zero_pages = 0;     // pages of those that were all zeros, left out
  uint64_t bytes_written = 0;  // the stream's size
  uint64_t runs = 0;
};

// Writes the file `mem_fd` (its whole size) to `out_fd`. Throws SysError.
SaveStats SaveMemory(int mem_fd, int out_fd);

struct LoadStats {
  uint64_t file_size = 0;
  uint64_t bytes_loaded = 0;
  uint64_t runs = 0;
};

// Reads a stream from `in_fd` into `mem_fd`, which is first cut to the
// stream's file size and emptied (so left-out pages read as zeros). Throws
// SysError for I/O errors and std::runtime_error for a malformed stream.
LoadStats LoadMemory(int in_fd, int mem_fd);

// Loads a stream (a seekable file) into `mem_fd` in the background: the runs
// are indexed first (headers only), then a thread loads them in order.
// Ensure() makes a range present now, ahead of the order (a task waits on
// it). Throws as LoadMemory from the constructor (the index) and from
// Ensure/Wait (a run that turned out bad).
class AsyncLoader {
 public:
  AsyncLoader(int in_fd, int mem_fd);
  ~AsyncLoader();
  AsyncLoader(const AsyncLoader&) = delete;
  AsyncLoader& operator=(const AsyncLoader&) = delete;

  // Returns once every page of [offset, offset + len) is loaded.
  void Ensure(uint64_t offset, uint64_t len);
  // Returns once everything is loaded.
  void Wait();

  uint64_t file_size() const { return file_size_; }
  // Runs loaded because a caller waited on them (not in stream order).
  uint64_t ensured_runs() const;

 private:
  struct Run {
    uint64_t offset = 0;  // in the memory file
    uint32_t pages = 0;
    uint64_t at = 0;      // where its data starts in the stream
    bool loaded = false;
    bool loading = false;
  };
  void Worker();
  // Loads run i (the lock is held on entry and exit, released for the I/O).
  void LoadRun(size_t i, std::unique_lock<std::mutex>& lock);

  int in_fd_, mem_fd_;
  uint64_t file_size_ = 0;
  std::vector<Run> runs_;  // by offset
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t next_ = 0;  // the worker's position
  uint64_t ensured_ = 0;
  std::string error_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace bulkhead::mem
