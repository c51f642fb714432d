#include "services/syscall-router/kernel/tmpfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace bulkhead::router {
namespace {

constexpr int kMaxSymlinks = 40;
constexpr size_t kNameMax = 255;

timespec Now() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

std::vector<std::string> Split(const std::string& rel) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    if (j > i) parts.push_back(rel.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

std::string Join(const std::vector<std::string>& parts, size_t from, size_t to) {
  std::string s;
  for (size_t i = from; i < to; ++i) s += (s.empty() ? "" : "/") + parts[i];
  return s;
}

}  // namespace

Tmpfs::Tmpfs(uint64_t max_bytes, dev_t dev) : max_bytes_(max_bytes), dev_(dev) {
  root_ = NewNode(S_IFDIR | 01777);
  root_->nlink = 2;
}

Tmpfs::NodePtr Tmpfs::NewNode(mode_t mode) {
  auto n = std::make_shared<Node>();
  n->ino = next_ino_++;
  n->mode = mode;
  n->atime = n->mtime = n->ctime = Now();
  n->budget = used_;
  return n;
}

Tmpfs::NodePtr Tmpfs::NewUnlinked(mode_t mode) {
  NodePtr n = NewNode(S_IFREG | (mode & 07777));
  n->nlink = 0;
  return n;
}

void Tmpfs::Touch(Node& n, bool modified) {
  const timespec t = Now();
  n.ctime = t;
  if (modified) n.mtime = t;
}

int Tmpfs::Walk(const std::string& rel, bool follow_last, NodePtr* out, int depth) const {
  if (depth > kMaxSymlinks) return -ELOOP;
  const std::vector<std::string> parts = Split(rel);
  NodePtr cur = root_;
  std::vector<NodePtr> stack = {root_};
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p.size() > kNameMax) return -ENAMETOOLONG;
    if (!S_ISDIR(cur->mode)) return -ENOTDIR;
    if (p == ".") continue;
    if (p == "..") {
      if (stack.size() > 1) stack.pop_back();  // never above the mount point
      cur = stack.back();
      continue;
    }
    auto it = cur->children.find(p);
    if (it == cur->children.end()) return -ENOENT;
    NodePtr next = it->second;
    const bool last = i + 1 == parts.size();
    if (S_ISLNK(next->mode) && (!last || follow_last)) {
      // Relative targets resolve from the link's directory, absolute ones
      // from the mount point (the kernel re-roots paths outside it).
      const std::string& tg = next->target;
      std::string base = tg.size() && tg[0] == '/' ? "" : Join(parts, 0, i);
      std::string rest = Join(parts, i + 1, parts.size());
      std::string path = tg.size() && tg[0] == '/' ? tg.substr(1) : (base.empty() ? tg : base + "/" + tg);
      if (!rest.empty()) path += "/" + rest;
      return Walk(path, follow_last, out, depth + 1);
    }
    cur = next;
    stack.push_back(cur);
  }
  *out = cur;
  return 0;
}

int Tmpfs::Lookup(const std::string& rel, bool follow, NodePtr* out) const { return Walk(rel, follow, out, 0); }

int Tmpfs::Parent(const std::string& rel, NodePtr* dir, std::string* name) const {
  const std::vector<std::string> parts = Split(rel);
  if (parts.empty()) return -EBUSY;  // the mount point itself
  *name = parts.back();
  if (*name == "." || *name == "..") return -EINVAL;
  if (name->size() > kNameMax) return -ENAMETOOLONG;
  if (int rc = Walk(Join(parts, 0, parts.size() - 1), true, dir, 0); rc < 0) return rc;
  return S_ISDIR((*dir)->mode) ? 0 : -ENOTDIR;
}

int Tmpfs::Open(const std::string& rel, int flags, mode_t mode, NodePtr* out) {
  NodePtr n;
  int rc = Walk(rel, !(flags & O_NOFOLLOW), &n, 0);
  if (rc == 0) {
    if ((flags & O_CREAT) && (flags & O_EXCL)) return -EEXIST;
    if (S_ISLNK(n->mode)) return -ELOOP;
    if ((flags & O_DIRECTORY) && !S_ISDIR(n->mode)) return -ENOTDIR;
    if (S_ISDIR(n->mode) && (flags & O_ACCMODE) != O_RDONLY) return -EISDIR;
    if ((flags & O_TRUNC) && S_ISREG(n->mode) && (flags & O_ACCMODE) != O_RDONLY) Truncate(*n, 0);
    *out = n;
    return 0;
  }
  if (rc != -ENOENT || !(flags & O_CREAT)) return rc;
  if (flags & O_DIRECTORY) return -EINVAL;
  NodePtr dir;
  std::string name;
  if (int p = Parent(rel, &dir, &name); p < 0) return p;
  if (auto it = dir->children.find(name); it != dir->children.end()) {
    // A dangling symlink: O_CREAT without O_EXCL creates its target (a
    // relative one, in this file system), as Linux does.
    const NodePtr& l = it->second;
    if (!S_ISLNK(l->mode) || (flags & (O_EXCL | O_NOFOLLOW)) || l->target.empty() || l->target[0] == '/') return -EEXIST;
    const size_t cut = rel.rfind('/');
    const std::string target = (cut == std::string::npos ? "" : rel.substr(0, cut + 1)) + l->target;
    return Open(target, flags, mode, out);
  }
  n = NewNode(S_IFREG | (mode & 07777));
  dir->children[name] = n;
  Touch(*dir, true);
  *out = n;
  return 0;
}

int Tmpfs::Mkdir(const std::string& rel, mode_t mode) {
  NodePtr dir;
  std::string name;
  if (int rc = Parent(rel, &dir, &name); rc < 0) return rc == -EBUSY ? -EEXIST : rc;
  if (dir->children.count(name)) return -EEXIST;
  NodePtr n = NewNode(S_IFDIR | (mode & 07777));
  n->nlink = 2;
  n->parent = dir;
  dir->children[name] = n;
  ++dir->nlink;
  Touch(*dir, true);
  return 0;
}

int Tmpfs::Rmdir(const std::string& rel) {
  NodePtr dir;
  std::string name;
  if (int rc = Parent(rel, &dir, &name); rc < 0) return rc;
  auto it = dir->children.find(name);
  if (it == dir->children.end()) return -ENOENT;
  if (!S_ISDIR(it->second->mode)) return -ENOTDIR;
  if (!it->second->children.empty()) return -ENOTEMPTY;
  it->second->nlink = 0;
  dir->children.erase(it);
  --dir->nlink;
  Touch(*dir, true);
  return 0;
}

int Tmpfs::Unlink(const std::string& rel) {
  NodePtr dir;
  std::string name;
  if (int rc = Parent(rel, &dir, &name); rc < 0) return rc == -EBUSY ? -EISDIR : rc;
  auto it = dir->children.find(name);
  if (it == dir->children.end()) return -ENOENT;
  if (S_ISDIR(it->second->mode)) return -EISDIR;
  // The data stays while a descriptor holds the node; the budget is freed
  // when the last name goes (approximated: open descriptors are not waited for).
  DropLink(*it->second);
  dir->children.erase(it);
  Touch(*dir, true);
  return 0;
}

void Tmpfs::DropLink(Node& n) {
  if (n.nlink > 0) --n.nlink;
  Touch(n, false);
}

int Tmpfs::Link(const std::string& from, const std::string& to, bool follow) {
  NodePtr n;
  if (int rc = Walk(from, follow, &n, 0); rc < 0) return rc;
  if (S_ISDIR(n->mode)) return -EPERM;
  NodePtr dir;
  std::string name;
  if (int rc = Parent(to, &dir, &name); rc < 0) return rc == -EBUSY ? -EEXIST : rc;
  if (dir->children.count(name)) return -EEXIST;
  dir->children[name] = n;
  ++n->nlink;
  Touch(*n, false);
  Touch(*dir, true);
  return 0;
}

int Tmpfs::Mkfifo(const std::string& rel, mode_t mode) { return Mknod(rel, S_IFIFO | (mode & 07777)); }

int Tmpfs::Mknod(const std::string& rel, mode_t mode) {
  const mode_t type = mode & S_IFMT;
  if (type != S_IFIFO && type != S_IFSOCK) return -EINVAL;
  NodePtr dir;
  std::string name;
  if (int rc = Parent(rel, &dir, &name); rc < 0) return rc == -EBUSY ? -EEXIST : rc;
  if (dir->children.count(name)) return -EEXIST;
  dir->children[name] = NewNode(type | (mode & 07777));
  Touch(*dir, true);
  return 0;
}

int Tmpfs::Exchange(const std::string& a, const std::string& b) {
  NodePtr adir, bdir;
  std::string aname, bname;
  if (int rc = Parent(a, &adir, &aname); rc < 0) return rc;
  if (int rc = Parent(b, &bdir, &bname); rc < 0) return rc;
  auto ai = adir->children.find(aname);
  auto bi = bdir->children.find(bname);
  if (ai == adir->children.end() || bi == bdir->children.end()) return -ENOENT;
  NodePtr an = ai->second, bn = bi->second;
  if (an == bn) return 0;
  // Neither may end up below itself.
  for (NodePtr d = bdir; d; d = d->parent.lock()) {
    if (d == an) return -EINVAL;
  }
  for (NodePtr d = adir; d; d = d->parent.lock()) {
    if (d == bn) return -EINVAL;
  }
  ai->second = bn;
  bi->second = an;
  if (adir != bdir) {
    const bool ad = S_ISDIR(an->mode), bd = S_ISDIR(bn->mode);
    if (ad) {
      an->parent = bdir;
      --adir->nlink;
      ++bdir->nlink;
    }
    if (bd) {
      bn->parent = adir;
      --bdir->nlink;
      ++adir->nlink;
    }
  }
  Touch(*adir, true);
  Touch(*bdir, true);
  Touch(*an, false);
  Touch(*bn, false);
  return 0;
}

int Tmpfs::Symlink(const std::string& target, const std::string& rel) {
  if (target.empty()) return -ENOENT;
  NodePtr dir;
  std::string name;
  if (int rc = Parent(rel, &dir, &name); rc < 0) return rc == -EBUSY ? -EEXIST : rc;
  if (dir->children.count(name)) return -EEXIST;
  NodePtr n = NewNode(S_IFLNK | 0777);
  n->target = target;
  dir->children[name] = n;
  Touch(*dir, true);
  return 0;
}

int Tmpfs::Rename(const std::string& from, const std::string& to, bool noreplace) {
  NodePtr fdir, tdir;
  std::string fname, tname;
  if (int rc = Parent(from, &fdir, &fname); rc < 0) return rc;
  if (int rc = Parent(to, &tdir, &tname); rc < 0) return rc;
  auto src = fdir->children.find(fname);
  if (src == fdir->children.end()) return -ENOENT;
  NodePtr moving = src->second;
  // A directory cannot move below itself.
  for (NodePtr d = tdir; d; d = d->parent.lock()) {
    if (d == moving) return -EINVAL;
  }
  auto dst = tdir->children.find(tname);
  if (dst != tdir->children.end()) {
    if (dst->second == moving) return 0;
    if (noreplace) return -EEXIST;
    const bool sd = S_ISDIR(moving->mode), dd = S_ISDIR(dst->second->mode);
    if (sd && !dd) return -ENOTDIR;
    if (!sd && dd) return -EISDIR;
    if (dd && !dst->second->children.empty()) return -ENOTEMPTY;
    if (dd) {
      --tdir->nlink;
      dst->second->nlink = 0;
    } else {
      DropLink(*dst->second);
    }
    tdir->children.erase(dst);
  }
  fdir->children.erase(fname);
  tdir->children[tname] = moving;
  if (S_ISDIR(moving->mode)) {
    --fdir->nlink;
    ++tdir->nlink;
    moving->parent = tdir;
  }
  Touch(*fdir, true);
  Touch(*tdir, true);
  Touch(*moving, false);
  return 0;
}

long Tmpfs::Read(const Node& n, uint64_t off, uint8_t* dst, uint64_t len) const {
  if (off >= n.data.size()) return 0;
  const uint64_t k = std::min<uint64_t>(len, n.data.size() - off);
  n.data.Get(off, dst, k);
  return static_cast<long>(k);
}

long Tmpfs::Write(Node& n, uint64_t off, const uint8_t* src, uint64_t len) {
  if (off > max_bytes_ || len > max_bytes_) return -EFBIG;
  if (n.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) return -EPERM;
  const uint64_t end = off + len;
  if (end > n.data.size()) {
    if (n.seals & F_SEAL_GROW) return -EPERM;
    const uint64_t grow = end - n.data.size();
    if (*used_ + grow > max_bytes_) return -ENOSPC;
    if (!n.data.Resize(end, mem_)) return -ENOSPC;
    *used_ += grow;
  }
  n.data.Put(off, src, len);
  Touch(n, true);
  return static_cast<long>(len);
}

int Tmpfs::Truncate(Node& n, uint64_t len) {
  if (!S_ISREG(n.mode)) return -EINVAL;
  if (len > max_bytes_) return -EFBIG;
  if (len > n.data.size() && (n.seals & F_SEAL_GROW)) return -EPERM;
  if (len < n.data.size() && (n.seals & F_SEAL_SHRINK)) return -EPERM;
  if (len > n.data.size()) {
    const uint64_t grow = len - n.data.size();
    if (*used_ + grow > max_bytes_) return -ENOSPC;
    if (!n.data.Resize(len, mem_)) return -ENOSPC;
    *used_ += grow;
  } else {
    *used_ -= std::min<uint64_t>(*used_, n.data.size() - len);
    n.data.Resize(len, mem_);
  }
  Touch(n, true);
  return 0;
}

bool FileData::Move(MemoryFile& mem, uint64_t capacity) {
  // Room to grow (the pages are not touched until written: the memory file
  // is sparse), so that a file written in pieces moves rarely.
  capacity = std::max<uint64_t>({capacity, chunk_ ? chunk_->len * 2 : 0, kMinCapacity});
  capacity = (capacity + 4095) & ~uint64_t{4095};
  auto chunk = AllocateChunk(mem, capacity, MemKind::kTmpfs);
  if (!chunk) return false;
  if (size_) std::memcpy(mem.at(chunk->offset), ptr(), size_);
  chunk_ = std::move(chunk);
  heap_.clear();
  heap_.shrink_to_fit();
  return true;
}

bool FileData::Resize(uint64_t n, MemoryFile* mem) {
  if (!chunk_ && mem != nullptr && n > 0) {
    // With a memory file the data lives there from its first byte: accounted
    // as tmpfs pages by the mem-broker, bounded by the sandbox's memory limit.
    if (!Move(*mem, n)) return false;
  }
  if (!chunk_) {
    heap_.resize(n);
    size_ = n;
    return true;
  }
  if (n > chunk_->len) {
    if (!mem || !Move(*mem, n)) return false;
  }
  // Shrunk to nothing (O_TRUNC) or to a quarter: the pages go back, unless
  // a shared mapping still holds them (then they are zeroed in place) or
  // the range is at most kKeepOnTruncate (zeroed and kept for the rewrite
  // that usually follows: a fresh range costs a host page fault per page).
  if (n < size_ && n < chunk_->len / 4 && chunk_.use_count() == 1 && mem != nullptr &&
      !(n == 0 && chunk_->len <= kKeepOnTruncate)) {
    if (n == 0) {
      chunk_.reset();
      size_ = 0;
      return true;
    }
    const uint64_t keep = std::min(n, size_);
    auto small = AllocateChunk(*mem, (std::max<uint64_t>(n, 4096) + 4095) & ~uint64_t{4095}, MemKind::kTmpfs);
    if (small) {
      std::memcpy(mem->at(small->offset), ptr(), keep);
      chunk_ = std::move(small);
      size_ = n;
      return true;
    }
  }
  if (n < size_) std::memset(ptr() + n, 0, size_ - n);  // regrowth reads zeros
  size_ = n;
  return true;
}

std::shared_ptr<Chunk> FileData::Share(MemoryFile& mem, uint64_t need) {
  need = std::max<uint64_t>(need, size_);
  if (!chunk_ || chunk_->len < need) {
    if (!Move(mem, std::max<uint64_t>(need, 65536))) return nullptr;
  }
  return chunk_;
}

void Tmpfs::Stat(const Node& n, struct stat* st) const {
  std::memset(st, 0, sizeof *st);
  st->st_dev = dev_;
  st->st_ino = n.ino;
  st->st_mode = n.mode;
  st->st_nlink = n.nlink;
  st->st_blksize = 4096;
  st->st_size = S_ISREG(n.mode)   ? static_cast<off_t>(n.data.size())
                : S_ISLNK(n.mode) ? static_cast<off_t>(n.target.size())
                : S_ISDIR(n.mode) ? 4096
                                  : 0;
  st->st_blocks = (st->st_size + 511) / 512;
  st->st_atim = n.atime;
  st->st_mtim = n.mtime;
  st->st_ctim = n.ctime;
}

std::string Tmpfs::Dirents(const Node& n) const {
  std::string out;
  auto add = [&](uint64_t ino, const std::string& name, unsigned char type) {
    const size_t reclen = (19 + name.size() + 1 + 7) & ~size_t{7};
    std::string rec(reclen, '\0');
    const uint64_t off = out.size() + reclen;
    std::memcpy(&rec[0], &ino, 8);
    std::memcpy(&rec[8], &off, 8);
    const uint16_t rl = static_cast<uint16_t>(reclen);
    std::memcpy(&rec[16], &rl, 2);
    rec[18] = static_cast<char>(type);
    std::memcpy(&rec[19], name.data(), name.size());
    out += rec;
  };
  auto parent = n.parent.lock();
  add(n.ino, ".", DT_DIR);
  add(parent ? parent->ino : n.ino, "..", DT_DIR);
  for (const auto& [name, c] : n.children) {
    add(c->ino, name, S_ISDIR(c->mode) ? DT_DIR : S_ISLNK(c->mode) ? DT_LNK : S_ISFIFO(c->mode) ? DT_FIFO : DT_REG);
  }
  return out;
}

}  // namespace bulkhead::router
