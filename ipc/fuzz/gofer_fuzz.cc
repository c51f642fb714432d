// libFuzzer target: the fs-gofer as a hostile router sees it. The router
// forwards the application's paths, counts, offsets and bytes, so every
// request field is hostile. The gofer serves a scratch root (a few files, a
// directory, symlinks out of it, a loop) whose parent also holds a file that
// must never be reached.
//
// The input is a sequence of frames [kind u8][len u16][len bytes]:
//   kind % 2 == 0  the bytes are a Cap'n Proto flat array: decoded with
//                  ipc::Decoded<gofer::Request> and, if accepted, served
//                  (the frame's tail is the request's bulk bytes);
//   kind % 2 == 1  a well-formed request made from the bytes: an operation
//                  and paths built from a vocabulary of names, "..", "."
//                  and symlinks, with the bytes' numbers: deep sequences of
//                  valid requests that create, rename, link and write.
// Checked: no crash or hang; every request gets exactly one answer; the file
// outside the root keeps its contents and nothing new appears beside the
// root (the walk out of the root that confinement must prevent).
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ipc/fuzz/decode_walk.h"
#include "ipc/message.h"
#include "ipc/test_util.h"
#include "schemas/gofer.capnp.h"
#include "services/fs-gofer/gofer_service.h"

namespace {

namespace g = bulkhead::schema::gofer;

struct Reader {
  const uint8_t* p;
  size_t n;
  uint64_t Take(size_t bytes) {
    uint64_t v = 0;
    for (size_t i = 0; i < bytes && n > 0; ++i, --n) v |= uint64_t{*p++} << (8 * i);
    return v;
  }
};

void CheckAt(bool ok, const char* what, int line) {
  if (ok) return;
  std::fprintf(stderr, "gofer_fuzz: line %d: %s does not hold\n", line, what);
  std::abort();
}
#define Check(x) CheckAt((x), #x, __LINE__)

struct Scratch {
  std::string base, root;
  std::unique_ptr<bulkhead::gofer::FileServer> fs;
  bulkhead::ipc::testing::Pair pair;
  uint64_t served = 0;

  Scratch() {
    const char* t = std::getenv("TMPDIR");
    base = std::string(t ? t : "/tmp") + "/gofer-fuzz-XXXXXX";
    Check(mkdtemp(base.data()) != nullptr);
    Reset();
    bulkhead::ipc::ChannelGeometry geo{64, 1024, 1u << 20};
    pair = bulkhead::ipc::testing::MakePair(geo);
  }
  // A fresh root: the previous input's files go.
  void Reset() {
    fs.reset();
    root = base + "/root";
    nftw(root.c_str(), [](const char* p, const struct stat*, int, FTW*) { return ::remove(p); }, 16,
         FTW_DEPTH | FTW_PHYS);
    for (const char* d : {"", "/etc", "/dir", "/dir/sub"}) Check(mkdir((root + d).c_str(), 0755) == 0);
    Put(base + "/secret", "outside\n");
    Put(root + "/etc/hostname", "inside\n");
    Put(root + "/dir/file", "data\n");
    Check(symlink("../../secret", (root + "/etc/escape").c_str()) == 0);
    Check(symlink((base + "/secret").c_str(), (root + "/abs").c_str()) == 0);
    Check(symlink("loop", (root + "/loop").c_str()) == 0);
    Check(symlink("/proc/self/root", (root + "/magic").c_str()) == 0);
    fs = std::make_unique<bulkhead::gofer::FileServer>(
        bulkhead::UniqueFd(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)));
  }
  static void Put(const std::string& path, const char* s) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    Check(fd >= 0);
    Check(write(fd, s, std::strlen(s)) == static_cast<ssize_t>(std::strlen(s)));
    close(fd);
  }
  // Nothing beside the root but the secret, and the secret as it was.
  void CheckOutside() {
    DIR* d = opendir(base.c_str());
    Check(d != nullptr);
    int others = 0;
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != ".." && n != "root" && n != "secret") ++others;
    }
    closedir(d);
    Check(others == 0);
    char buf[32] = {};
    int fd = open((base + "/secret").c_str(), O_RDONLY | O_CLOEXEC);
    Check(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    Check(n == 8 && std::memcmp(buf, "outside\n", 8) == 0);
    struct stat st;
    Check(stat((base + "/secret").c_str(), &st) == 0 && (st.st_mode & 07777) == 0644 && st.st_nlink == 1);
  }

  // Serves one request and takes its one answer off the client side.
  void Serve(g::Request::Reader r, std::span<const uint8_t> bulk) {
    bulkhead::gofer::HandleFileRequest(*fs, *pair.server, ++served, r, bulk);
    bulkhead::ipc::ReceivedMessage m;
    Check(pair.client->TryReceive(&m) == bulkhead::ipc::Status::kOk);
    Check(m.id() == served);
    bulkhead::ipc::Decoded<g::Response> resp;
    Check(resp.Decode(m) == bulkhead::ipc::Status::kOk);
    pair.client->ReleaseBulk(m);
    bulkhead::ipc::ReceivedMessage none;
    Check(pair.client->TryReceive(&none) != bulkhead::ipc::Status::kOk);
  }
};

const char* const kNames[] = {"etc", "hostname", "escape", "abs", "loop", "magic", "dir", "sub",
                              "file", "new", "..", ".", "", "x", "y", "secret"};

std::string MakePath(Reader& in) {
  std::string p;
  const int parts = static_cast<int>(in.Take(1) % 5);
  for (int i = 0; i < parts; ++i) p += "/" + std::string(kNames[in.Take(1) % std::size(kNames)]);
  if (in.Take(1) % 16 == 0) p += "/";
  if (p.empty() || in.Take(1) % 32 == 0) p = "/" + p;
  return p;
}

void BuildRequest(Reader& in, uint64_t handle, g::Request::Builder b) {
  const std::string a = MakePath(in), c = MakePath(in);
  const uint64_t n = in.Take(4);
  const int64_t off = static_cast<int64_t>(in.Take(8));
  auto target = [&](g::Target::Builder t) {
    if (in.Take(1) & 1) {
      t.setHandle(handle);
    } else {
      t.setPath(a);
    }
    t.setFollow(in.Take(1) & 1);
  };
  switch (in.Take(1) % 22) {
    case 0: {
      auto o = b.initOpen();
      o.setPath(a);
      o.setFlags(static_cast<uint32_t>(n));
      o.setMode(static_cast<uint32_t>(off));
      break;
    }
    case 1: b.initPread().setHandle(handle), b.getPread().setOffset(off), b.getPread().setCount(static_cast<uint32_t>(n)); break;
    case 2: {
      auto w = b.initPwrite();
      w.setHandle(handle);
      w.setOffset(off % (1 << 20));
      w.setAppend(n & 1);
      w.setIfSize(static_cast<int64_t>(n >> 1) - 1);
      break;
    }
    case 3: b.initFstat().setHandle(handle); break;
    case 4: b.initStat().setPath(a), b.getStat().setFollowLinks(n & 1); break;
    case 5: b.initGetdents().setHandle(handle), b.getGetdents().setCount(static_cast<uint32_t>(n)); break;
    case 6: b.initReadlink().setPath(a); break;
    case 7: b.initClose().setHandle(handle); break;
    case 8: {
      auto t = b.initTruncate();
      if (n & 1) t.setHandle(handle); else t.setPath(a);
      t.setLength(off % (1 << 22));
      break;
    }
    case 9: {
      auto f = b.initFallocate();
      f.setHandle(handle);
      f.setMode(static_cast<uint32_t>(n & 0x7f));
      f.setOffset(off % (1 << 20));
      f.setLength(static_cast<int64_t>(n % (1 << 20)));
      break;
    }
    case 10: b.initFsync().setHandle(handle), b.getFsync().setDataOnly(n & 1); break;
    case 11: {
      auto m = b.initMknod();
      m.setPath(a);
      m.setMode(static_cast<uint32_t>(n));
      m.setDev(static_cast<uint64_t>(off));
      break;
    }
    case 12: b.initUnlink().setPath(a), b.getUnlink().setDirectory(n & 1); break;
    case 13: {
      auto r = b.initRename();
      r.setFrom(a);
      r.setTo(c);
      r.setFlags(static_cast<uint32_t>(n & 7));
      break;
    }
    case 14: {
      auto l = b.initLink();
      l.setFrom(a);
      l.setTo(c);
      l.setFollow(n & 1);
      break;
    }
    case 15: {
      auto s = b.initSymlink();
      s.setTarget(n & 1 ? c : std::string("../../../secret"));
      s.setPath(a);
      break;
    }
    case 16: {
      auto s = b.initSetattr();
      target(s.initTarget());
      s.setSetMode(n & 1);
      s.setMode(static_cast<uint32_t>(off));
      s.setSetOwner(n & 2);
      s.setUid(static_cast<uint32_t>(n >> 8));
      s.setGid(static_cast<uint32_t>(n >> 16));
      s.setSetTimes(n & 4);
      s.initAtime().setSec(off);
      s.getAtime().setNsec(static_cast<uint32_t>(n));
      s.initMtime().setNsec((1u << 30) - 2);  // UTIME_OMIT
      break;
    }
    case 17: target(b.initStatfs()); break;
    case 18: {
      auto x = b.initGetxattr();
      target(x.initTarget());
      x.setName(n & 1 ? "user.k" : c);
      x.setSize(static_cast<uint32_t>(n % 70000));
      break;
    }
    case 19: {
      auto x = b.initSetxattr();
      target(x.initTarget());
      x.setName(n & 1 ? "user.k" : c);
      x.setFlags(static_cast<uint32_t>(n >> 1) & 3);
      break;
    }
    case 20: {
      auto x = b.initListxattr();
      target(x.initTarget());
      x.setSize(static_cast<uint32_t>(n % 70000));
      break;
    }
    default: {
      auto s = b.initSeek();
      s.setHandle(handle);
      s.setOffset(off);
      s.setWhence(static_cast<uint32_t>(n % 6));
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulkhead;
  ++ipc::fuzz::Stats().inputs;
  static Scratch s;
  s.Reset();
  Reader in{data, size};
  int frames = 0;
  while (in.n >= 3 && frames++ < 64) {
    const uint8_t kind = static_cast<uint8_t>(in.Take(1));
    const size_t len = std::min<size_t>(in.Take(2), in.n);
    Reader frame{in.p, len};
    in.p += len;
    in.n -= len;
    if (kind % 2 == 0) {
      // Hostile bytes: a flat array, then bulk bytes.
      const size_t words = std::min<size_t>(frame.n / 8, 512);
      std::vector<uint64_t> buf(words);
      if (words) std::memcpy(buf.data(), frame.p, words * 8);
      ipc::Decoded<g::Request> req;
      if (req.DecodeWords(buf.data(), words) != ipc::Status::kOk) continue;
      ++ipc::fuzz::Stats().decoded_ok;
      const auto which = req.root().which();
      if (which == g::Request::HELLO || which == g::Request::PING || which == g::Request::STATS) continue;
      s.Serve(req.root(), {frame.p + words * 8, frame.n - words * 8});
    } else {
      capnp::MallocMessageBuilder mb;
      auto b = mb.initRoot<g::Request>();
      const uint64_t handle = frame.Take(1) % 6;  // small: handles the gofer gave out
      BuildRequest(frame, handle, b);
      auto words = capnp::messageToFlatArray(mb);
      ipc::Decoded<g::Request> req;
      Check(req.DecodeWords(reinterpret_cast<const uint64_t*>(words.begin()), words.size()) == ipc::Status::kOk);
      ++ipc::fuzz::Stats().decoded_ok;
      s.Serve(req.root(), {frame.p, frame.n});
    }
  }
  s.CheckOutside();
  return 0;
}
