// tmpfs: a writable in-memory file system of the router's own, mounted at
// /tmp and /dev/shm of every sandbox (the root stays the read-only host tree
// served by the fs-gofer). As gVisor does, tmpfs belongs to the application
// kernel, not to the file server: nothing of it ever touches a host file.
//
// Directories, regular files and symlinks; sizes, modes, times, link counts;
// a byte budget per mount (ENOSPC). File data lives in the sandbox's memory
// file (tmpfs chunks of the mem-broker) from a file's first byte, on the
// router's heap only where there is no memory file (unit tests).
#pragma once

#include <sys/stat.h>
#include <fcntl.h>

#include <algorithm>
#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "services/syscall-router/kernel/memory.h"

namespace bulkhead::router {

// A tmpfs file's bytes: in a chunk of the memory file (which MAP_SHARED
// mappings share, so that stores through a mapping and write() see each
// other), or on the router's heap when there is no memory file.
class FileData {
 public:
  uint64_t size() const { return size_; }
  // n == 0 copies nothing: an empty heap has no data pointer to offset.
  void Get(uint64_t off, uint8_t* dst, uint64_t n) const {
    if (n != 0) std::memcpy(dst, ptr() + off, n);
  }
  void Put(uint64_t off, const uint8_t* src, uint64_t n) {
    if (n != 0) std::memcpy(ptr() + off, src, n);
  }
  // New bytes read as zeros. False when the memory file is full.
  bool Resize(uint64_t n, MemoryFile* mem);
  // A memory-file chunk holding the data, at least `need` bytes long. A chunk
  // that has to grow is replaced: mappings made before keep the old pages.
  std::shared_ptr<Chunk> Share(MemoryFile& mem, uint64_t need);
  bool shared() const { return chunk_ != nullptr; }
  // The memory-file range holding the data (nullptr: on the heap or empty).
  const Chunk* chunk() const { return chunk_.get(); }
  static constexpr uint64_t kMinCapacity = 64 << 10;
  static constexpr uint64_t kKeepOnTruncate = 1 << 20;

 private:
  uint8_t* ptr() const { return chunk_ ? chunk_->file.at(chunk_->offset) : const_cast<uint8_t*>(heap_.data()); }
  bool Move(MemoryFile& mem, uint64_t capacity);
  std::vector<uint8_t> heap_;
  std::shared_ptr<Chunk> chunk_;
  uint64_t size_ = 0;
};

class Tmpfs {
 public:
  struct Node {
    uint64_t ino = 0;
    mode_t mode = 0;  // S_IFDIR / S_IFREG / S_IFLNK | permissions
    uint32_t nlink = 1;
    timespec atime{}, mtime{}, ctime{};
    std::map<std::string, std::shared_ptr<Node>> children;  // directories
    std::weak_ptr<Node> parent;                             // directories
    FileData data;                                          // regular files
    std::string target;                                     // symlinks
    std::shared_ptr<void> fifo;                             // FIFOs: the kernel's pipe, made at first open
    std::map<std::string, std::string> xattrs;              // user.* extended attributes
    // File seals (F_ADD_SEALS): every file but a memfd made with
    // MFD_ALLOW_SEALING is born sealed against new seals, as on Linux.
    int seals = F_SEAL_SEAL;
    // The file system's byte count: a node's data leaves it when the node
    // goes (its last name and its last open file), not at the last unlink.
    std::shared_ptr<uint64_t> budget;
    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    ~Node() {
      if (budget) *budget -= std::min<uint64_t>(*budget, data.size());
    }
  };
  using NodePtr = std::shared_ptr<Node>;

  explicit Tmpfs(uint64_t max_bytes = uint64_t{256} << 20, dev_t dev = 0x2a);

  // `rel` is the path below the mount point, normalized ("" is the root).
  // Symlinks are followed in every component but the last (and the last
  // too with `follow`); results are 0 or -errno.
  int Lookup(const std::string& rel, bool follow, NodePtr* out) const;
  // Opens or creates a regular file (O_CREAT, O_EXCL, O_TRUNC, O_DIRECTORY).
  int Open(const std::string& rel, int flags, mode_t mode, NodePtr* out);
  int Mkdir(const std::string& rel, mode_t mode);
  int Rmdir(const std::string& rel);
  int Unlink(const std::string& rel);
  int Symlink(const std::string& target, const std::string& rel);
  // A FIFO (mknod S_IFIFO, mkfifo).
  int Mkfifo(const std::string& rel, mode_t mode);
  // A FIFO or a socket node (S_IFIFO, S_IFSOCK in mode).
  int Mknod(const std::string& rel, mode_t mode);
  // renameat2(RENAME_EXCHANGE): both names exist; they trade places.
  int Exchange(const std::string& a, const std::string& b);
  // A hard link (regular files and symlinks; directories: EPERM).
  int Link(const std::string& from, const std::string& to, bool follow);
  int Rename(const std::string& from, const std::string& to, bool noreplace);
  // A regular file with no name (memfd_create, O_TMPFILE): it lives while
  // open or mapped.
  NodePtr NewUnlinked(mode_t mode);

  // File data. Read returns bytes copied; Write -ENOSPC past the budget.
  long Read(const Node& n, uint64_t off, uint8_t* dst, uint64_t len) const;
  long Write(Node& n, uint64_t off, const uint8_t* src, uint64_t len);
  int Truncate(Node& n, uint64_t len);

  void Stat(const Node& n, struct stat* st) const;
  // linux_dirent64 records of a directory: ".", "..", then its entries.
  std::string Dirents(const Node& n) const;
  static void Touch(Node& n, bool modified);

  uint64_t used() const { return *used_; }
  uint64_t max_bytes() const { return max_bytes_; }
  // Where MAP_SHARED file data goes (none: such mappings are refused).
  void SetMemoryFile(MemoryFile* mem) { mem_ = mem; }
  MemoryFile* memory_file() const { return mem_; }

 private:
  // The parent directory of `rel` and its last component.
  int Parent(const std::string& rel, NodePtr* dir, std::string* name) const;
  int Walk(const std::string& rel, bool follow_last, NodePtr* out, int depth) const;
  NodePtr NewNode(mode_t mode);
  // One name of `n` went away: its data leaves the budget with the last one.
  void DropLink(Node& n);

  NodePtr root_;
  uint64_t next_ino_ = 2;
  const uint64_t max_bytes_;
  std::shared_ptr<uint64_t> used_ = std::make_shared<uint64_t>(0);
  const dev_t dev_;
  MemoryFile* mem_ = nullptr;
};

}  // namespace bulkhead::router
