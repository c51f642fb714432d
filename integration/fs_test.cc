// The sandbox's file system end to end (issue 5). Escapes: a program in the sandbox tries
// every way out of its root and into a read-only volume (integration/
// fsescape.c prints any answer that differs from Linux's confined one), and
// the host side is checked afterwards: the file outside the root, the image
// and the read-only volume are as they were.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "integration/util.h"

namespace bulkhead::integration {
namespace {

namespace fs = std::filesystem;

std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.insert(e.path().string().substr(dir.size()));
  return out;
}

TEST(FsEscape, NothingLeavesTheRootAndReadOnlyVolumesStayUnchanged) {
  const std::string base = "/tmp/bulkhead-fsescape-" + std::to_string(getpid());
  const std::string root = base + "/root", outside = base + "/outside", ro = base + "/ro", rw = base + "/rw";
  fs::remove_all(base);
  for (const auto& d : {root + "/bin", root + "/etc", outside, ro + "/sub", rw}) fs::create_directories(d);
  fs::copy_file(Runfile("integration/fsescape"), root + "/bin/fsescape");
  chmod((root + "/bin/fsescape").c_str(), 0755);
  std::ofstream(root + "/etc/hostname") << "image\n";
  std::ofstream(outside + "/secret") << "outside\n";
  std::ofstream(ro + "/keep") << "keep\n";
  std::ofstream(rw + "/f") << "f\n";
  fs::create_symlink(outside + "/secret", root + "/abs");
  fs::create_symlink("../outside/secret", root + "/rel");
  fs::create_symlink("../outside", root + "/dirup");
  for (const auto& d : {base, root, outside, ro, rw}) chmod(d.c_str(), 0755);
  const auto image_before = Listing(root);
  const auto ro_before = Listing(ro);

  Result r = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("fsescape-state") + " do --rootfs " + root +
                " -v " + ro + ":/ro:ro -v " + rw + ":/rw -- /bin/fsescape " + outside);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("checks "), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
  std::printf("[ measure  ] %s", r.out.c_str());

  EXPECT_EQ(ReadFile(outside + "/secret"), "outside\n");
  EXPECT_EQ(Listing(outside), std::set<std::string>{"/secret"});
  EXPECT_EQ(Listing(root), image_before);  // writes went to the sandbox's own layer
  EXPECT_EQ(ReadFile(root + "/etc/hostname"), "image\n");
  EXPECT_EQ(Listing(ro), ro_before);
  EXPECT_EQ(ReadFile(ro + "/keep"), "keep\n");
  EXPECT_TRUE(fs::exists(rw + "/written"));  // a read-write volume is the host directory
  EXPECT_TRUE(fs::exists(rw + "/f"));
  fs::remove_all(base);
}

// /proc/self/mounts tells the truth: the overlay root, each volume with its
// own flag, the router's own file systems.
TEST(FsMounts, ProcMountsListsTheRootAndVolumes) {
  const std::string ro = TestDir("mounts-ro"), rw = TestDir("mounts-rw");
  Result r = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("mounts-state") + " do -v " + ro + ":/data:ro -v " +
                rw + ":/srv/rw -- /bin/cat /proc/self/mounts");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("overlay / overlay rw,", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(ro + " /data "), std::string::npos) << r.out;
  const size_t at = r.out.find(" /data ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const std::string data_line = r.out.substr(at, r.out.find('\n', at) - at);
  EXPECT_NE(data_line.find(" ro,"), std::string::npos) << data_line;
  EXPECT_NE(r.out.find(rw + " /srv/rw "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("proc /proc proc "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tmpfs /tmp tmpfs "), std::string::npos) << r.out;
  Result ro_root = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("mounts-state") +
                      " do --rootfs-mode readonly -- /bin/sh -c 'head -1 /proc/self/mounts; touch /x'");
  EXPECT_NE(ro_root.out.find(" / "), std::string::npos) << ro_root.out;
  EXPECT_NE(ro_root.out.find(" ro,"), std::string::npos) << ro_root.out;
  EXPECT_NE(ro_root.code, 0);
  EXPECT_NE(ro_root.err.find("Read-only file system"), std::string::npos) << ro_root.err;
}

// --tmpfs PATH[:SIZE]: a tmpfs of the router at PATH, in /proc/mounts, with
// its size as its limit, its mount point listed in its parent, gone with the
// sandbox.
TEST(FsMounts, ExtraTmpfsMounts) {
  Result r = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("tmpfs-state") +
                " do --tmpfs /scratch:1M -- /bin/sh -c 'echo hi > /scratch/f && cat /scratch/f; "
                "grep \" /scratch \" /proc/mounts; ls / | grep -c scratch; "
                "dd if=/dev/zero of=/scratch/big bs=64k count=32 2>&1 | grep -c \"No space\"'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hi\ntmpfs /scratch tmpfs rw,nosuid,nodev,size=1024k 0 0\n1\n1\n") << r.err;
  EXPECT_NE(access("/scratch", F_OK), 0);
}

TEST(FsMounts, BadVolumeFlagsAreRefusedWithAMessage) {
  const std::string bh = Runfile("runtime/bulkhead") + " --root " + TestDir("mounts-state2") + " do ";
  Result r = Sh(bh + "-v relative:/x -- /bin/true");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("absolute"), std::string::npos) << r.err;
  r = Sh(bh + "-v /tmp:/x:rx -- /bin/true");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("ro or rw"), std::string::npos) << r.err;
  r = Sh(bh + "--tmpfs /proc/x -- /bin/true");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("below /proc"), std::string::npos) << r.err;
  r = Sh(bh + "--rootfs-mode sideways -- /bin/true");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("overlay, readonly or writable"), std::string::npos) << r.err;
  r = Sh(bh + "-v /nonexistent-bulkhead-dir:/x -- /bin/true");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("/nonexistent-bulkhead-dir"), std::string::npos) << r.err;
}

// MAP_SHARED of a file of the root: stores reach the file (msync, munmap),
// write() reaches the mapping, a forked child's stores reach the parent,
// and a read-only descriptor cannot map it writable. Same output natively.
TEST(FsSharedMaps, SharedFileMappingsMatchLinux) {
  const std::string dir = "/var/tmp/bulkhead-shmap-" + std::to_string(getpid());
  fs::create_directories(dir);
  const std::string script = dir + "/mm.py";
  std::ofstream(script) << R"(import mmap, os, sys
p = sys.argv[1] + "/mm"
with open(p, "wb") as f: f.write(b"a" * 8192)
fd = os.open(p, os.O_RDWR)
m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[0:5] = b"hello"
print("read before msync:", os.pread(fd, 5, 0))
m.flush()
os.pwrite(fd, b"WORLD", 10)
print("map sees write:", m[10:15])
pid = os.fork()
if pid == 0:
    m[100:103] = b"kid"
    os._exit(0)
os.waitpid(pid, 0)
print("parent sees child:", m[100:103])
m[8000:8003] = b"end"
m.close()
os.close(fd)
data = open(p, "rb").read()
print("file:", data[:16], data[100:103], data[8000:8003], len(data))
ro = os.open(p, os.O_RDONLY)
try:
    mmap.mmap(ro, 4096, mmap.MAP_SHARED, mmap.PROT_WRITE | mmap.PROT_READ)
except OSError as e:
    print("read-only fd:", e.errno)
)";
  Result native = Sh("/usr/bin/python3 " + script + " " + dir);
  Result sandboxed = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("shmap-state") + " do -- /usr/bin/python3 " +
                        script + " " + dir);
  fs::remove_all(dir);
  ASSERT_EQ(native.code, 0) << native.err;
  EXPECT_EQ(sandboxed.code, 0) << sandboxed.err;
  EXPECT_EQ(sandboxed.out, native.out);
  EXPECT_NE(native.out.find("parent sees child: b'kid'"), std::string::npos) << native.out;
}

// Record locks, OFD semantics and flock between processes of the sandbox
// (the router's lock table): conflicts, F_GETLK's report, a blocked
// F_SETLKW woken by the unlock, flock released by close. Same output as
// native.
// A python script run natively and in the sandbox on fresh directories
// under /var/tmp: the outputs must be the same.
void SameAsNative(const std::string& script) {
  const std::string base = "/var/tmp/bulkhead-" + script + "-" + std::to_string(getpid());
  fs::create_directories(base + "/native");
  fs::create_directories(base + "/sandbox");
  fs::copy_file(Runfile("integration/" + script), base + "/" + script);
  Result native = Sh("/usr/bin/python3 " + base + "/" + script + " " + base + "/native");
  Result sandboxed = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir(script + "-state") +
                        " do -- /usr/bin/python3 " + base + "/" + script + " " + base + "/sandbox");
  fs::remove_all(base);
  ASSERT_EQ(native.code, 0) << native.err;
  EXPECT_EQ(sandboxed.code, 0) << sandboxed.err;
  EXPECT_EQ(sandboxed.out, native.out);
  EXPECT_FALSE(native.out.empty());
}

// Record locks, OFD semantics and flock between processes of the sandbox
// (the router's lock table): conflicts, F_GETLK's report, a blocked
// F_SETLKW woken by the unlock, flock released by close.
TEST(FsLocks, LocksBetweenProcessesMatchLinux) { SameAsNative("fslocks.py"); }

// sendfile, splice, tee and copy_file_range between files and pipes, with
// and without offsets, and their refusals.
TEST(FsCopy, SendfileSpliceTeeAndCopyFileRangeMatchLinux) { SameAsNative("fscopy.py"); }

// inotify of changes made inside the sandbox: create, open, write, close,
// chmod, truncate, rename (cookies, the watch follows the file), mkdir,
// rmdir, symlink, unlink of a watched file (IN_DELETE_SELF, IN_IGNORED),
// and the calls' refusals.
TEST(FsNotify, InotifyEventsMatchLinux) { SameAsNative("fsnotify.py"); }

// The router's caches (parked handles, attributes and misses, page cache)
// after every kind of change the sandbox makes: no stale size, contents,
// mode or name.
TEST(FsCaches, NoStaleAnswerAfterTheSandboxChangesAFile) { SameAsNative("fscache.py"); }

// The file API case by case (fsapi.py, about 150 checks: open flags, the
// read/write family, holes, truncate/fallocate/sync, the stat family,
// directories, FIFOs and socket nodes, unlink/rename/renameat2/link/symlink,
// "." and ".." as last components, attributes and times, access, xattrs,
// bad input) on the root: the overlay through the fs-gofer.
TEST(FsApi, OnTheRootMatchesLinux) { SameAsNative("fsapi.py"); }

// The same cases on the router's tmpfs (/tmp inside; natively /dev/shm).
TEST(FsApi, OnTmpfsMatchesLinux) {
  const std::string base = "/var/tmp/bulkhead-fsapi-tmpfs-" + std::to_string(getpid());
  const std::string native_dir = "/dev/shm/bulkhead-fsapi-" + std::to_string(getpid());
  fs::create_directories(base);
  fs::create_directories(native_dir);
  fs::copy_file(Runfile("integration/fsapi.py"), base + "/fsapi.py");
  Result native = Sh("/usr/bin/python3 " + base + "/fsapi.py " + native_dir);
  Result sandboxed = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("fsapi-tmpfs-state") +
                        " do -- /bin/sh -c 'mkdir /tmp/t && exec /usr/bin/python3 " + base + "/fsapi.py /tmp/t'");
  fs::remove_all(base);
  fs::remove_all(native_dir);
  ASSERT_EQ(native.code, 0) << native.err;
  EXPECT_EQ(sandboxed.code, 0) << sandboxed.err;
  EXPECT_EQ(sandboxed.out, native.out);
}

}  // namespace
}  // namespace bulkhead::integration
