# Locks between two processes (fs_test.cc FsLocks): run natively and in the
# sandbox, same output expected. fslocks.py DIR
import fcntl, os, struct, time, sys
d = sys.argv[1]
p = d + "/lockf"
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    fd2 = os.open(p, os.O_RDWR)
    try:
        fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0); print("child: got it (wrong)", flush=True)
    except OSError as e: print("child: busy", e.errno, flush=True)
    fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 10); print("child: other range ok", flush=True)
    # F_GETLK
    data = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 5, 0)
    res = fcntl.fcntl(fd2, fcntl.F_GETLK, data)
    t, wh, st, ln, lp = struct.unpack("hhqqi", res[:struct.calcsize("hhqqi")])
    print("child: getlk type", t == fcntl.F_WRLCK, "start", st, "len", ln, "pid is parent", lp == os.getppid(), flush=True)
    os.write(w, b"x")
    t0 = time.time(); fcntl.lockf(fd2, fcntl.LOCK_EX, 10, 0); print("child: waited for unlock", time.time() - t0 > 0.1, flush=True)
    f3 = os.open(p, os.O_RDWR)
    try: fcntl.flock(f3, fcntl.LOCK_EX | fcntl.LOCK_NB); print("child flock ok", flush=True)
    except OSError as e: print("child flock busy", e.errno, flush=True)
    os._exit(0)
os.read(r, 1)
time.sleep(0.3)
fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
print("child status", os.waitpid(pid, 0)[1], flush=True)
a = os.open(p, os.O_RDWR); b = os.open(p, os.O_RDWR)
fcntl.flock(a, fcntl.LOCK_EX)
try: fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB); print("flock: wrong", flush=True)
except OSError as e: print("flock: busy", e.errno, flush=True)
os.close(a)
fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB); print("flock: after close ok", flush=True)
