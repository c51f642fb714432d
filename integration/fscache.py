# The router's attribute, handle and page caches never show the sandbox a
# stale file after the sandbox itself changed it (fs_test.cc FsCaches): run
# natively and in the sandbox, same output expected.   fscache.py DIR
import mmap, os, sys
d = sys.argv[1]
p = d + "/f"
def show(name, fn):
    try:
        print(name, fn(), flush=True)
    except OSError as e:
        print(name, "errno", e.errno, flush=True)
with open(p, "wb") as f: f.write(b"a" * 100)
for _ in range(3):  # parked handles and cached pages
    with open(p, "rb") as f: f.read()
a = os.open(p, os.O_RDONLY)
show("read a", lambda: os.pread(a, 4, 0))
show("stat size", lambda: os.stat(p).st_size)
b = os.open(p, os.O_WRONLY)
os.pwrite(b, b"bbbb", 0)
show("read a after same-size write", lambda: os.pread(a, 4, 0))
show("read new fd", lambda: open(p, "rb").read(4))
os.write(os.open(p, os.O_WRONLY | os.O_APPEND), b"tail")
show("stat size after append", lambda: os.stat(p).st_size)
show("fstat a size", lambda: os.fstat(a).st_size)
show("read a past the old end", lambda: os.pread(a, 10, 98))
show("lseek end a", lambda: os.lseek(a, 0, os.SEEK_END))
m = mmap.mmap(a, 0, mmap.MAP_PRIVATE, mmap.PROT_READ)
show("mmap sees", lambda: m[:4] + m[100:104])
os.ftruncate(b, 10)
show("stat after ftruncate", lambda: os.stat(p).st_size)
show("read after ftruncate", lambda: open(p, "rb").read())
os.chmod(p, 0o600)
show("mode", lambda: oct(os.stat(p).st_mode & 0o777))
show("missing", lambda: os.stat(d + "/g").st_size)
open(d + "/g", "w").write("x")
show("created", lambda: os.stat(d + "/g").st_size)
os.rename(d + "/g", d + "/h")
show("renamed away", lambda: os.stat(d + "/g").st_size)
show("renamed to", lambda: os.stat(d + "/h").st_size)
os.unlink(d + "/h")
show("unlinked", lambda: os.stat(d + "/h").st_size)
os.mkdir(d + "/sub")
show("dir listing", lambda: sorted(os.listdir(d)))
with open(d + "/sub/x", "w") as f: f.write("1")
show("file in new dir", lambda: open(d + "/sub/x").read())
os.symlink("sub/x", d + "/ln")
show("through new symlink", lambda: open(d + "/ln").read())
os.replace(d + "/sub/x", p)
show("replaced file", lambda: open(p).read())
show("replaced stat", lambda: os.stat(p).st_size)
# An O_TMPFILE file gets its name with linkat(fd, "", ..., AT_EMPTY_PATH).
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
t = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
os.write(t, b"anon")
show("tmpfile unnamed", lambda: "named" in os.listdir(d))
show("linkat tmpfile", lambda: libc.linkat(t, b"", -100, (d + "/named").encode(), 0x1000))
show("tmpfile named", lambda: open(d + "/named").read())
