# sendfile, splice, tee and copy_file_range between files and pipes
# (fs_test.cc FsCopy): run natively and in the sandbox, same output expected.
#   fscopy.py DIR
import os, sys
d = sys.argv[1]
src = d + "/src"
with open(src, "wb") as f:
    f.write(bytes(range(256)) * 1024)  # 256 KiB
def show(name, fn):
    try:
        print(name, fn(), flush=True)
    except OSError as e:
        print(name, "errno", e.errno, flush=True)
fi = os.open(src, os.O_RDONLY)
fo = os.open(d + "/dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
show("sendfile file->file", lambda: os.sendfile(fo, fi, 0, 300000))
show("sendfile offset", lambda: os.sendfile(fo, fi, 1000, 10))
show("position after offset sendfile", lambda: os.lseek(fi, 0, os.SEEK_CUR))
show("sendfile at position", lambda: os.sendfile(fo, fi, None, 5))
show("position after", lambda: os.lseek(fi, 0, os.SEEK_CUR))
os.close(fo)
show("dst size", lambda: os.stat(d + "/dst").st_size)
show("dst equal", lambda: open(d + "/dst", "rb").read(262144) == open(src, "rb").read())
fo = os.open(d + "/cfr", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
show("copy_file_range", lambda: os.copy_file_range(fi, fo, 100000, 0, 10))
show("copy_file_range offsets", lambda: os.copy_file_range(fi, fo, 50, 7, 1000))
show("cfr contents", lambda: os.pread(fo, 8, 1000) == open(src, "rb").read()[7:15])
show("copy_file_range to pipe", lambda: os.copy_file_range(fi, os.pipe()[1], 10))
r, w = os.pipe()
show("splice file->pipe", lambda: os.splice(fi, w, 1000, offset_src=0))
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
r2, w2 = os.pipe()
show("tee pipe->pipe", lambda: libc.tee(r, w2, 400, 0))
show("tee copy", lambda: os.read(r2, 400) == open(src, "rb").read()[:400])
show("tee same pipe", lambda: (libc.tee(r, w, 10, 0), ctypes.get_errno()))
show("splice pipe->file", lambda: os.splice(r, fo, 1000, offset_dst=4096))
show("splice contents", lambda: os.pread(fo, 1000, 4096) == open(src, "rb").read()[:1000])
show("splice no pipe", lambda: os.splice(fi, fo, 10))
show("splice pipe offset", lambda: os.splice(r, fo, 10, offset_src=0))
show("sendfile from pipe", lambda: os.sendfile(fo, r, None, 10))
show("sendfile bad fd", lambda: os.sendfile(fo, 999, None, 10))
