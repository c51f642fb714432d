# inotify for changes made inside the sandbox (fs_test.cc FsNotify): run
# natively and in the sandbox, same output expected.   fsnotify.py DIR
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
NAMES = {0x1: "ACCESS", 0x2: "MODIFY", 0x4: "ATTRIB", 0x8: "CLOSE_WRITE", 0x10: "CLOSE_NOWRITE", 0x20: "OPEN",
         0x40: "MOVED_FROM", 0x80: "MOVED_TO", 0x100: "CREATE", 0x200: "DELETE", 0x400: "DELETE_SELF",
         0x800: "MOVE_SELF", 0x8000: "IGNORED", 0x40000000: "ISDIR"}
d = sys.argv[1]
fd = libc.inotify_init1(os.O_NONBLOCK)
wds = {}
def watch(path, mask, label):
    wd = libc.inotify_add_watch(fd, path.encode(), mask)
    wds[wd] = label
    return wd
def drain(step):
    out = []
    try:
        buf = os.read(fd, 65536)
    except BlockingIOError:
        buf = b""
    pos = 0
    cookies = {}
    while pos + 16 <= len(buf):
        wd, mask, cookie, ln = struct.unpack("iIII", buf[pos:pos + 16])
        name = buf[pos + 16:pos + 16 + ln].rstrip(b"\0").decode()
        bits = "|".join(v for k, v in NAMES.items() if mask & k)
        c = "" if not cookie else " cookie#%d" % cookies.setdefault(cookie, len(cookies) + 1)
        out.append("%s %s %s%s" % (wds.get(wd, wd), bits, name, c))
        pos += 16 + ln
    print(step + ": " + "; ".join(out), flush=True)
ALL = 0xfff
os.mkdir(d + "/w")
watch(d + "/w", ALL, "dir")
print("bad fd:", libc.inotify_add_watch(999, d.encode(), ALL), ctypes.get_errno(), flush=True)
print("missing path:", libc.inotify_add_watch(fd, (d + "/nope").encode(), ALL), ctypes.get_errno(), flush=True)
print("empty mask:", libc.inotify_add_watch(fd, d.encode(), 0), ctypes.get_errno(), flush=True)
f = os.open(d + "/w/a", os.O_WRONLY | os.O_CREAT, 0o644); drain("create")
os.write(f, b"hello"); drain("write")
os.close(f); drain("close")
watch(d + "/w/a", 0x2 | 0x4 | 0x400 | 0x800, "file")
os.chmod(d + "/w/a", 0o600); drain("chmod")
os.truncate(d + "/w/a", 2); drain("truncate")
os.rename(d + "/w/a", d + "/w/b"); drain("rename")
os.mkdir(d + "/w/sub"); drain("mkdir")
os.rmdir(d + "/w/sub"); drain("rmdir")
os.symlink("b", d + "/w/l"); drain("symlink")
os.unlink(d + "/w/l"); drain("unlink symlink")
os.unlink(d + "/w/b"); drain("unlink watched")
g = os.open(d + "/w/c", os.O_RDONLY | os.O_CREAT, 0o644); os.close(g); drain("create read-only")
print("rm_watch bad:", libc.inotify_rm_watch(fd, 12345), ctypes.get_errno(), flush=True)
