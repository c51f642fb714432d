// The router's kernel for one application process (first light): loads an
// ELF through the fs-gofer into a platform address space and serves every
// system call the task makes. Single task, single thread for now; what it
// does not serve it answers ENOSYS and counts.
#pragma once

#include <sys/stat.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "services/syscall-router/kernel/gofer_client.h"
#include "services/syscall-router/platform/platform.h"

namespace bulkhead::router {

struct RunRequest {
  std::vector<std::string> argv;  // argv[0] is the path to execute (absolute, or looked up in PATH)
  std::vector<std::string> envp;
  std::string cwd = "/";
  std::string hostname = "bulkhead";
};

struct RunResult {
  int exit_code = 0;         // 128 + signal for a signal death, as a shell reports it
  std::string error;         // set when the program could not be started
  uint64_t syscalls = 0;
  std::map<long, uint64_t> unimplemented;  // syscall number -> count (answered ENOSYS)
};

class Kernel {
 public:
  // `stdio`: host descriptors the sandbox's fds 0, 1, 2 write to and read from.
  Kernel(platform::Platform& platform, GoferClient& gofer, std::array<int, 3> stdio);
  ~Kernel();

  RunResult Run(const RunRequest& req);

 private:
  struct File;
  struct Task;

  int Exec(Task& t, const RunRequest& req, std::string* error);
  int64_t Dispatch(Task& t, long nr);
  std::string Absolute(const Task& t, const std::string& path) const;
  int64_t OpenAt(Task& t, int dirfd, uint64_t path_addr, uint32_t flags, uint32_t mode);
  int64_t Read(Task& t, int fd, uint64_t buf, uint64_t count, int64_t offset);
  int64_t Write(Task& t, int fd, uint64_t buf, uint64_t count);
  int64_t StatAt(Task& t, int dirfd, uint64_t path_addr, uint64_t statbuf, int flags);
  int64_t LookupStat(Task& t, int dirfd, uint64_t path_addr, int flags, struct stat* out);
  int64_t Mmap(Task& t);
  int64_t Brk(Task& t, uint64_t want);
  int64_t Iov(Task& t, int fd, uint64_t iov, uint64_t iovcnt, bool write);
  int NewFd(Task& t, std::shared_ptr<File> f, int min_fd = 0);
  std::shared_ptr<File> GetFile(Task& t, int fd);
  bool ReadPath(Task& t, uint64_t addr, std::string* out, int64_t* err);

  platform::Platform& platform_;
  GoferClient& gofer_;
  std::array<int, 3> stdio_;
  std::string hostname_;
};

}  // namespace bulkhead::router
