// Helpers shared by the loader's tests.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "base/fd.h"
#include "services/syscall-router/loader/elf.h"
#include "services/syscall-router/loader/exec.h"

namespace bulkhead::loader::testing {

inline std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Parses a whole in-memory file (every byte available).
inline Result<ElfImage> ParseBytes(const std::vector<uint8_t>& bytes, ElfRole role) {
  ParseOutcome out = ParseElf(bytes, bytes.size(), role);
  if (auto* img = std::get_if<ElfImage>(&out)) return std::move(*img);
  if (auto* err = std::get_if<LoadError>(&out)) return *err;
  return Error(-1, "NeedBytes for a whole file");
}

inline Result<ElfImage> ParseFile(const std::string& path, ElfRole role) { return ParseBytes(ReadAll(path), role); }

// ExecFiles over in-memory files; counts opens and reads.
class MemFiles : public ExecFiles {
 public:
  std::map<std::string, std::vector<uint8_t>> files;
  std::map<std::string, int> open_errors;  // path -> errno
  int opens = 0, reads = 0;

  int64_t Open(const std::string& path, FileRole role) override {
    ++opens;
    if (auto it = open_errors.find(path); it != open_errors.end()) return -it->second;
    auto it = files.find(path);
    if (it == files.end()) return -ENOENT;
    current_[static_cast<int>(role)] = &it->second;
    return static_cast<int64_t>(it->second.size());
  }
  int64_t Read(FileRole role, uint64_t offset, std::span<uint8_t> out) override {
    ++reads;
    const std::vector<uint8_t>* f = current_[static_cast<int>(role)];
    if (f == nullptr) return -EBADF;
    if (offset >= f->size()) return 0;
    const size_t n = std::min<uint64_t>(out.size(), f->size() - offset);
    if (n != 0) std::memcpy(out.data(), f->data() + offset, n);
    return static_cast<int64_t>(n);
  }

 private:
  const std::vector<uint8_t>* current_[2] = {nullptr, nullptr};
};

// ExecFiles over the host's files (open + pread), as the gofer would serve them.
class HostFiles : public ExecFiles {
 public:
  int64_t Open(const std::string& path, FileRole role) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return -errno;
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return -errno;
    if (!S_ISREG(st.st_mode)) return -EACCES;
    fds_[static_cast<int>(role)] = std::move(fd);
    return st.st_size;
  }
  int64_t Read(FileRole role, uint64_t offset, std::span<uint8_t> out) override {
    const ssize_t n = ::pread(fds_[static_cast<int>(role)].get(), out.data(), out.size(), static_cast<off_t>(offset));
    return n < 0 ? -errno : n;
  }

 private:
  UniqueFd fds_[2];
};

}  // namespace bulkhead::loader::testing
