# The file API, case by case (fs_test.cc FsApi): return values, errnos,
# contents and the stat fields that must match, printed one line per check;
# run natively and in the sandbox on a fresh directory, same output
# expected.   fsapi.py DIR
import ctypes, errno, os, stat, sys
d = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)

def show(name, fn):
    try:
        r = fn()
    except OSError as e:
        r = "errno " + errno.errorcode.get(e.errno, str(e.errno))
    print(name + ":", r, flush=True)

def raw(name, rc):
    e = ctypes.get_errno()
    print(name + ":", rc if rc >= 0 else "errno " + errno.errorcode.get(e, str(e)), flush=True)

def kind(m):
    return "dir" if stat.S_ISDIR(m) else "reg" if stat.S_ISREG(m) else "lnk" if stat.S_ISLNK(m) else \
        "fifo" if stat.S_ISFIFO(m) else "sock" if stat.S_ISSOCK(m) else "other"

def st(p, follow=True):
    s = os.stat(p, follow_symlinks=follow)
    # (A directory's size is its file system's business: not compared.)
    size = "" if stat.S_ISDIR(s.st_mode) else " size=%d" % s.st_size
    return "%s %o%s nlink=%d" % (kind(s.st_mode), s.st_mode & 0o7777, size, s.st_nlink)

def f(name): return d + "/" + name
os.umask(0o022)

# --- open flags
show("open missing", lambda: os.open(f("a"), os.O_RDONLY))
fd = os.open(f("a"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640)
show("created", lambda: st(f("a")))
show("O_EXCL again", lambda: os.open(f("a"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640))
show("write", lambda: os.write(fd, b"hello world"))
show("O_TRUNC", lambda: (os.close(os.open(f("a"), os.O_WRONLY | os.O_TRUNC)), st(f("a")))[1])
show("O_DIRECTORY on file", lambda: os.open(f("a"), os.O_RDONLY | os.O_DIRECTORY))
show("O_DIRECTORY on dir", lambda: os.close(os.open(d, os.O_RDONLY | os.O_DIRECTORY)) or "ok")
show("O_WRONLY dir", lambda: os.open(d, os.O_WRONLY))
os.symlink("a", f("lnk"))
show("O_NOFOLLOW symlink", lambda: os.open(f("lnk"), os.O_RDONLY | os.O_NOFOLLOW))
show("O_PATH symlink", lambda: os.close(os.open(f("lnk"), os.O_PATH | os.O_NOFOLLOW)) or "ok")
show("O_PATH read", lambda: os.read(os.open(f("a"), os.O_PATH), 1))
show("creat", lambda: (os.close(os.open(f("c"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)), st(f("c")))[1])
ap = os.open(f("ap"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(ap, b"one"); os.lseek(ap, 0, os.SEEK_SET); os.write(ap, b"two")
show("O_APPEND", lambda: open(f("ap"), "rb").read())
show("pwrite on O_APPEND", lambda: (os.pwrite(ap, b"X", 0), open(f("ap"), "rb").read())[1])
os.close(ap)
show("O_CREAT in missing dir", lambda: os.open(f("nodir/x"), os.O_WRONLY | os.O_CREAT, 0o644))
show("O_CREAT through file", lambda: os.open(f("a/x"), os.O_WRONLY | os.O_CREAT, 0o644))
show("dangling symlink create", lambda: (os.symlink("target", f("dang")), os.close(os.open(f("dang"), os.O_WRONLY | os.O_CREAT, 0o644)), os.path.exists(f("target")))[2])
show("O_EXCL on dangling symlink", lambda: (os.symlink("t2", f("dang2")), os.open(f("dang2"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))[1])

# --- read/write family
fd = os.open(f("rw"), os.O_RDWR | os.O_CREAT, 0o644)
show("write", lambda: os.write(fd, b"0123456789"))
show("pread", lambda: os.pread(fd, 4, 3))
show("pwrite", lambda: (os.pwrite(fd, b"AB", 8), os.pread(fd, 20, 0))[1])
show("position", lambda: os.lseek(fd, 0, os.SEEK_CUR))
show("writev", lambda: os.writev(fd, [b"x", b"yz"]))
os.lseek(fd, 0, os.SEEK_SET)
b1, b2 = bytearray(3), bytearray(4)
show("readv", lambda: (os.readv(fd, [b1, b2]), bytes(b1), bytes(b2)))
show("preadv", lambda: (os.preadv(fd, [b1], 5), bytes(b1)))
show("pwritev", lambda: (os.pwritev(fd, [b"Q", b"R"], 0), os.pread(fd, 4, 0))[1])
if hasattr(os, "RWF_APPEND"):
    show("pwritev2 RWF_APPEND-free", lambda: os.pwritev(fd, [b"S"], 1, 0))
show("read at end", lambda: (os.lseek(fd, 0, os.SEEK_END), os.read(fd, 10))[1])
show("pread negative", lambda: os.pread(fd, 1, -1))
show("pwrite negative", lambda: os.pwrite(fd, b"x", -1))
show("write to O_RDONLY", lambda: os.write(os.open(f("rw"), os.O_RDONLY), b"x"))
show("read from O_WRONLY", lambda: os.read(os.open(f("rw"), os.O_WRONLY), 1))
show("read dir", lambda: os.read(os.open(d, os.O_RDONLY), 1))
raw("write EFAULT", libc.write(fd, ctypes.c_void_p(0x1000), 10))
raw("read EFAULT", libc.read(os.open(f("rw"), os.O_RDONLY), ctypes.c_void_p(0x1000), 10))

# --- lseek, holes
sp = os.open(f("sparse"), os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(sp, b"data", 1 << 20)
show("size", lambda: os.fstat(sp).st_size)
show("SEEK_DATA", lambda: os.lseek(sp, 0, os.SEEK_DATA))
show("SEEK_HOLE", lambda: os.lseek(sp, 0, os.SEEK_HOLE))
show("SEEK_HOLE in data", lambda: os.lseek(sp, (1 << 20) + 1, os.SEEK_HOLE))
show("SEEK_DATA past end", lambda: os.lseek(sp, 2 << 20, os.SEEK_DATA))
show("SEEK_END", lambda: os.lseek(sp, -2, os.SEEK_END))
show("lseek negative", lambda: os.lseek(sp, -1, os.SEEK_SET))
show("lseek bad whence", lambda: os.lseek(sp, 0, 17))
show("hole reads zeros", lambda: os.pread(sp, 4, 100))

# --- truncate, fallocate, sync
show("truncate grow", lambda: (os.truncate(f("rw"), 100), os.stat(f("rw")).st_size)[1])
show("truncate shrink", lambda: (os.truncate(f("rw"), 3), open(f("rw"), "rb").read())[1])
show("ftruncate", lambda: (os.ftruncate(fd, 5), os.fstat(fd).st_size)[1])
show("truncate negative", lambda: os.truncate(f("rw"), -1))
show("truncate dir", lambda: os.truncate(d, 0))
show("ftruncate O_RDONLY", lambda: os.ftruncate(os.open(f("rw"), os.O_RDONLY), 0))
show("fallocate", lambda: (os.posix_fallocate(fd, 0, 8192), os.fstat(fd).st_size)[1])
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
raw("punch hole", libc.fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, ctypes.c_long(0), ctypes.c_long(4096)))
show("punched reads zeros", lambda: (os.fstat(fd).st_size, os.pread(fd, 2, 0)))
raw("fallocate bad len", libc.fallocate(fd, 0, ctypes.c_long(0), ctypes.c_long(0)))
show("fsync", lambda: os.fsync(fd))
show("fdatasync", lambda: os.fdatasync(fd))
raw("syncfs", libc.syncfs(fd))
raw("sync_file_range", libc.sync_file_range(fd, ctypes.c_long(0), ctypes.c_long(0), 2))
raw("sync_file_range bad flags", libc.sync_file_range(fd, ctypes.c_long(0), ctypes.c_long(0), 64))
show("fsync bad fd", lambda: os.fsync(999))

# --- stat family
show("stat", lambda: st(f("a")))
show("lstat symlink", lambda: st(f("lnk"), False))
show("stat symlink", lambda: st(f("lnk")))
show("fstat", lambda: (lambda s: kind(s.st_mode))(os.fstat(fd)))
show("fstatat AT_EMPTY_PATH", lambda: kind(os.stat(fd).st_mode))
show("stat missing", lambda: os.stat(f("missing")))
show("stat through file", lambda: os.stat(f("a/b")))
class Statx(ctypes.Structure):
    _fields_ = [("mask", ctypes.c_uint32), ("blksize", ctypes.c_uint32), ("attributes", ctypes.c_uint64),
                ("nlink", ctypes.c_uint32), ("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32), ("mode", ctypes.c_uint16),
                ("pad", ctypes.c_uint16), ("ino", ctypes.c_uint64), ("size", ctypes.c_uint64), ("rest", ctypes.c_char * 200)]
sx = Statx()
raw("statx", libc.statx(-100, f("a").encode(), 0, 0x7ff, ctypes.byref(sx)))
print("statx fields:", "%o" % (sx.mode & 0o7777), sx.size, sx.nlink, kind(sx.mode), flush=True)
raw("statx bad flags", libc.statx(-100, f("a").encode(), 0x80000000, 0x7ff, ctypes.byref(sx)))
show("statvfs", lambda: os.statvfs(d).f_namemax)
show("fstatvfs", lambda: os.fstatvfs(fd).f_namemax)

# --- directories
os.mkdir(f("dir"))
for n in range(40):
    open(f("dir/e%02d" % n), "w").close()
show("listdir", lambda: len(os.listdir(f("dir"))))
show("listdir names", lambda: sorted(os.listdir(f("dir")))[:3])
def records(dfd, size):
    b = ctypes.create_string_buffer(size)
    n = libc.syscall(217, dfd, b, size)
    if n < 0:
        return "errno " + errno.errorcode.get(ctypes.get_errno(), "?")
    count, pos = 0, 0
    while pos < n:
        count += 1
        pos += int.from_bytes(b.raw[pos + 16:pos + 18], "little")
    return count
dfd = os.open(f("dir"), os.O_RDONLY | os.O_DIRECTORY)
show("getdents small buffers", lambda: [records(dfd, 256) for _ in range(8)])
show("getdents rest", lambda: (records(dfd, 65536), records(dfd, 65536)))
show("rewinddir", lambda: (os.lseek(dfd, 0, os.SEEK_SET), records(dfd, 65536)))
show("getdents tiny buffer", lambda: (os.lseek(dfd, 0, os.SEEK_SET), records(dfd, 8)))
show("getdents on file", lambda: records(os.open(f("a"), os.O_RDONLY), 4096))
show("mkdir exists", lambda: os.mkdir(f("dir")))
show("mkdir missing parent", lambda: os.mkdir(f("nope/x")))
show("mkdir under file", lambda: os.mkdir(f("a/x")))
show("mkdir mode", lambda: (os.mkdir(f("m"), 0o751), st(f("m")))[1])
show("rmdir non-empty", lambda: os.rmdir(f("dir")))
show("rmdir file", lambda: os.rmdir(f("a")))
show("unlink dir", lambda: os.unlink(f("dir")))
show("rmdir .", lambda: os.rmdir(f("m/.")))
show("rmdir", lambda: os.rmdir(f("m")))
show("dir nlink", lambda: (os.mkdir(f("n")), os.mkdir(f("n/s1")), os.mkdir(f("n/s2")), os.stat(f("n")).st_nlink)[3])
show("mkfifo", lambda: (os.mkfifo(f("fifo"), 0o644), st(f("fifo")))[1])
show("mknod reg", lambda: (os.mknod(f("node"), 0o600 | stat.S_IFREG), st(f("node")))[1])
show("mknod sock", lambda: (os.mknod(f("sock"), 0o600 | stat.S_IFSOCK), st(f("sock")))[1])
show("mkdir x/.", lambda: os.mkdir(f("dir/.")))
show("unlink x/..", lambda: os.unlink(f("dir/..")))
show("rename x/.", lambda: os.rename(f("dir/."), f("dd")))
show("rmdir x/..", lambda: os.rmdir(f("dir/..")))

# --- unlink, rename, link, symlink
show("unlink", lambda: (os.unlink(f("node")), os.path.exists(f("node")))[1])
show("unlink missing", lambda: os.unlink(f("node")))
open(f("r1"), "w").write("one")
open(f("r2"), "w").write("two")
show("rename over", lambda: (os.rename(f("r1"), f("r2")), open(f("r2")).read(), os.path.exists(f("r1")))[1:])
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
open(f("r3"), "w").write("three")
raw("renameat2 NOREPLACE", libc.renameat2(-100, f("r3").encode(), -100, f("r2").encode(), RENAME_NOREPLACE))
raw("renameat2 EXCHANGE", libc.renameat2(-100, f("r3").encode(), -100, f("r2").encode(), RENAME_EXCHANGE))
show("exchanged", lambda: (open(f("r2")).read(), open(f("r3")).read()))
raw("renameat2 EXCHANGE missing", libc.renameat2(-100, f("r3").encode(), -100, f("zz").encode(), RENAME_EXCHANGE))
raw("renameat2 bad flags", libc.renameat2(-100, f("r3").encode(), -100, f("r4").encode(), 3))
show("rename dir over non-empty dir", lambda: os.rename(f("m2") if os.mkdir(f("m2")) is None else "", f("n")))
show("rename file over dir", lambda: os.rename(f("r2"), f("n")))
show("rename dir over file", lambda: os.rename(f("m2"), f("r2")))
show("rename into itself", lambda: os.rename(f("n"), f("n/s1/x")))
show("rename missing", lambda: os.rename(f("zz"), f("yy")))
show("link", lambda: (os.link(f("r2"), f("r2link")), os.stat(f("r2")).st_nlink)[1])
show("link exists", lambda: os.link(f("r2"), f("r3")))
show("link dir", lambda: os.link(f("n"), f("nlink")))
show("unlink one link", lambda: (os.unlink(f("r2link")), os.stat(f("r2")).st_nlink)[1])
show("symlink", lambda: (os.symlink("r2", f("s")), os.readlink(f("s")), open(f("s")).read())[1:])
show("symlink exists", lambda: os.symlink("x", f("s")))
show("readlink not link", lambda: os.readlink(f("r2")))
show("readlink missing", lambda: os.readlink(f("zz")))
os.symlink("loop2", f("loop1")); os.symlink("loop1", f("loop2"))
show("symlink loop", lambda: os.stat(f("loop1")))
show("dangling", lambda: os.stat(f("dang2")))
show("lstat dangling", lambda: kind(os.lstat(f("dang2")).st_mode))
buf = ctypes.create_string_buffer(2)
raw("readlink short buffer", libc.readlink(f("s").encode(), buf, 1))

# --- attributes
show("chmod", lambda: (os.chmod(f("r2"), 0o4755), st(f("r2")))[1])
show("fchmod", lambda: (os.fchmod(fd, 0o600), oct(os.fstat(fd).st_mode & 0o7777))[1])
show("chmod missing", lambda: os.chmod(f("zz"), 0o600))
show("chown same", lambda: os.chown(f("r2"), 0, 0))
show("lchown symlink", lambda: os.lchown(f("s"), -1, -1))
show("utime", lambda: (os.utime(f("r2"), ns=(1_000_000_123, 2_000_000_456)), os.stat(f("r2")).st_atime_ns, os.stat(f("r2")).st_mtime_ns)[1:])
UTIME_OMIT = (1 << 30) - 2
class TS(ctypes.Structure):
    _fields_ = [("s", ctypes.c_long), ("ns", ctypes.c_long)]
ts = (TS * 2)(TS(5, UTIME_OMIT), TS(7, 0))
raw("utimensat omit", libc.utimensat(-100, f("r2").encode(), ts, 0))
show("times after omit", lambda: (os.stat(f("r2")).st_atime_ns, os.stat(f("r2")).st_mtime_ns))
ts = (TS * 2)(TS(5, 2_000_000_000), TS(7, 0))
raw("utimensat bad nsec", libc.utimensat(-100, f("r2").encode(), ts, 0))
show("access F_OK", lambda: os.access(f("r2"), os.F_OK))
show("access missing", lambda: os.access(f("zz"), os.F_OK))
show("access X_OK on 644", lambda: (os.chmod(f("c"), 0o644), os.access(f("c"), os.X_OK))[1])
show("access W_OK", lambda: os.access(f("c"), os.W_OK))
raw("faccessat2 bad flags", libc.syscall(439, -100, f("c").encode(), 0, 0x1))
raw("faccessat2 nofollow", libc.syscall(439, -100, f("s").encode(), 0, 0x100))
raw("access bad mode", libc.access(f("c").encode(), 64))

# --- xattrs
show("setxattr", lambda: os.setxattr(f("r2"), "user.k", b"v1"))
show("getxattr", lambda: os.getxattr(f("r2"), "user.k"))
show("listxattr", lambda: sorted(x for x in os.listxattr(f("r2")) if x.startswith("user.")))
show("XATTR_CREATE exists", lambda: os.setxattr(f("r2"), "user.k", b"v2", os.XATTR_CREATE))
show("XATTR_REPLACE missing", lambda: os.setxattr(f("r2"), "user.q", b"v2", os.XATTR_REPLACE))
show("getxattr missing", lambda: os.getxattr(f("r2"), "user.q"))
raw("getxattr size query", libc.getxattr(f("r2").encode(), b"user.k", None, 0))
small = ctypes.create_string_buffer(1)
raw("getxattr small buffer", libc.getxattr(f("r2").encode(), b"user.k", small, 1))
show("fsetxattr", lambda: (os.setxattr(fd, "user.f", b"fd"), os.getxattr(fd, "user.f"))[1])
show("removexattr", lambda: (os.removexattr(f("r2"), "user.k"), os.getxattr(f("r2"), "user.k"))[1])
show("removexattr missing", lambda: os.removexattr(f("r2"), "user.k"))
show("xattr long name", lambda: os.setxattr(f("r2"), "user." + "n" * 300, b"x"))

# --- bad input
show("ENAMETOOLONG path", lambda: os.stat("/" + "a" * 5000))
show("ENAMETOOLONG name", lambda: os.open(f("n" * 300), os.O_RDONLY | os.O_CREAT, 0o644))
raw("EFAULT path", libc.open(ctypes.c_void_p(0x1000), 0))
raw("NULL path", libc.mkdir(None, 0o755))
show("empty path", lambda: os.stat(""))
show(".. past root", lambda: st("/../../../" + d.lstrip("/") + "/c"))
show("huge read count", lambda: len(os.pread(os.open(f("c"), os.O_RDONLY), 1 << 30, 0)))
show("bad fd", lambda: os.read(12345, 1))
