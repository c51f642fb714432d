/* File semantics, case by case (fs_semantics_test.cc): each case works in a
 * fresh directory DIR/CASE and prints one deterministic line per check: the
 * call as written in this file and its result ("= 3", "= -1 EEXIST"), file
 * contents, and the stat fields that must match between Linux and bulkhead
 * (type, mode bits, size, link count; never inode numbers, devices, absolute
 * times other than ones set explicitly, or block counts other than as
 * relations). The same case run natively and in the sandbox must print the
 * same lines.
 *
 *   fsops DIR [CASE...]           set up and run the cases (all without CASE)
 *   fsops --setup DIR CASE...     only make the case's starting files (the
 *                                 lower_* cases: files that exist before the
 *                                 sandbox starts, to be copied up)
 *   fsops --run DIR CASE...       only run (after --setup)
 *   fsops --list                  the case names, one a line
 *
 * Descriptors from 3 up are closed first, so the numbers open() returns are
 * part of the output (lowest free descriptor). The umask is 022. Each case
 * ends with "CASE: done"; a hang ends the program by SIGALRM after 20 s. */
#define _GNU_SOURCE
/* The bad-input cases pass huge counts and bad pointers on purpose. */
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wnonnull"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef RESOLVE_BENEATH
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#define RESOLVE_IN_ROOT 0x10
#endif
#ifndef RWF_APPEND
#define RWF_APPEND 0x10
#endif

struct open_how_ {
  uint64_t flags, mode, resolve;
};

static const char* g_case = "";
static char g_dir[PATH_MAX];  /* DIR/CASE, the case's working directory */

/* ---- printing ---- */

static void say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s: ", g_case);
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
}

static const char* ename(int e) {
  const char* n = strerrorname_np(e);
  static char buf[32];
  if (n) return n;
  snprintf(buf, sizeof buf, "errno%d", e);
  return buf;
}

static void rep(const char* what, long r, int e) {
  if (r == -1)
    say("%s = -1 %s", what, ename(e));
  else
    say("%s = %ld", what, r);
}

/* V(call): runs it, prints "call = result" (or "= -1 ENAME"), gives the result. */
#define V(expr)                \
  ({                           \
    errno = 0;                 \
    long r_ = (long)(expr);    \
    int e_ = errno;            \
    rep(#expr, r_, e_);        \
    errno = e_;                \
    r_;                        \
  })
#define T(expr)                \
  do {                         \
    errno = 0;                 \
    long r_ = (long)(expr);    \
    int e_ = errno;            \
    rep(#expr, r_, e_);        \
    errno = e_;                \
  } while (0)
/* Y(label, condition): a relation that must hold the same way. */
#define Y(label, cond) say("%s: %s", label, (cond) ? "yes" : "no")

static const char* ftype(mode_t m) {
  switch (m & S_IFMT) {
    case S_IFREG: return "reg";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "lnk";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "sock";
    case S_IFCHR: return "chr";
    case S_IFBLK: return "blk";
  }
  return "?";
}

/* Subdirectories of `path` (by d_type), or -1. */
static int subdirs(const char* path) {
  DIR* d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL)
    if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) ++n;
  closedir(d);
  return n;
}

/* type, mode bits, size and link count. A directory's size is its file
 * system's business and is left out; its link count is "ok" when it counts
 * its subdirectories (2 + N) or is 1, which is how file systems that do not
 * count say so (btrfs; overlayfs for merged directories) and what find and
 * fts expect; anything else is printed. stat_nlink checks the counting
 * itself on directories made in the case. */
static void sdesc_at(const struct stat* s, const char* path, char* out, size_t n) {
  if (S_ISDIR(s->st_mode)) {
    int sub = path ? subdirs(path) : -1;
    if (s->st_nlink == 1 || (sub >= 0 && s->st_nlink == (nlink_t)(2 + sub)))
      snprintf(out, n, "%s %04o nlink ok", ftype(s->st_mode), (unsigned)(s->st_mode & 07777));
    else
      snprintf(out, n, "%s %04o nlink=%lu (subdirectories %d)", ftype(s->st_mode), (unsigned)(s->st_mode & 07777),
               (unsigned long)s->st_nlink, sub);
  } else
    snprintf(out, n, "%s %04o size=%lld nlink=%lu", ftype(s->st_mode), (unsigned)(s->st_mode & 07777),
             (long long)s->st_size, (unsigned long)s->st_nlink);
}
static void sdesc(const struct stat* s, char* out, size_t n) { sdesc_at(s, NULL, out, n); }

static void stp(const char* path) {
  struct stat s;
  char d[128];
  if (stat(path, &s) != 0) {
    say("stat(%s) = -1 %s", path, ename(errno));
    return;
  }
  sdesc_at(&s, path, d, sizeof d);
  say("stat(%s): %s", path, d);
}

static void lstp(const char* path) {
  struct stat s;
  char d[128];
  if (lstat(path, &s) != 0) {
    say("lstat(%s) = -1 %s", path, ename(errno));
    return;
  }
  sdesc_at(&s, path, d, sizeof d);
  say("lstat(%s): %s", path, d);
}

static void fstp(const char* label, int fd) {
  struct stat s;
  char d[128];
  if (fstat(fd, &s) != 0) {
    say("fstat(%s) = -1 %s", label, ename(errno));
    return;
  }
  sdesc(&s, d, sizeof d);
  say("fstat(%s): %s", label, d);
}

static struct stat sget(const char* path) {
  struct stat s;
  memset(&s, 0, sizeof s);
  if (lstat(path, &s) != 0) s.st_mode = 0;
  return s;
}

static void escape(const char* p, size_t n, char* out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 5 < cap; ++i) {
    unsigned char c = (unsigned char)p[i];
    if (c == '\\') {
      out[o++] = '\\';
      out[o++] = '\\';
    } else if (c == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
    } else if (c == 0) {
      out[o++] = '\\';
      out[o++] = '0';
    } else if (c < 32 || c >= 127) {
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    } else {
      out[o++] = (char)c;
    }
  }
  out[o] = 0;
}

static uint64_t fnv(const unsigned char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/* Prints a buffer: escaped if short, else its length and hash. */
static void showbuf(const char* label, const char* p, ssize_t n) {
  if (n < 0) {
    say("%s = -1 %s", label, ename(errno));
  } else if (n <= 200) {
    char e[1024];
    escape(p, (size_t)n, e, sizeof e);
    say("%s: \"%s\" (%zd)", label, e, n);
  } else {
    say("%s: %zd bytes fnv=%016llx", label, n, (unsigned long long)fnv((const unsigned char*)p, (size_t)n));
  }
}

/* The whole file at `path`, read through a new descriptor. */
static void show(const char* path) {
  static char buf[4 << 20];
  char label[600];
  snprintf(label, sizeof label, "contents(%s)", path);
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    say("%s = -1 %s", label, ename(errno));
    return;
  }
  ssize_t n = 0, r;
  while ((r = read(fd, buf + n, sizeof buf - (size_t)n)) > 0) n += r;
  close(fd);
  showbuf(label, buf, r < 0 ? -1 : n);
}

static void showat(const char* label, int fd, off_t off, size_t n) {
  char buf[4096];
  if (n > sizeof buf) n = sizeof buf;
  ssize_t r = pread(fd, buf, n, off);
  showbuf(label, buf, r);
}

static int put(const char* path, const char* data, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return -1;
  size_t n = strlen(data);
  ssize_t w = write(fd, data, n);
  close(fd);
  return w == (ssize_t)n ? 0 : -1;
}

static int cmpstr(const void* a, const void* b) { return strcmp(*(char* const*)a, *(char* const*)b); }

/* The directory's entries as "name" with ls -F style marks (/ dir, @ link,
 * | fifo, = socket), sorted, "." and ".." left out (their presence is
 * checked). Through raw getdents64 with a small buffer. */
static void listdir(const char* path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    say("list(%s) = -1 %s", path, ename(errno));
    return;
  }
  static char names[4096][300];
  char* ptrs[4096];
  int n = 0, dots = 0;
  char buf[1024];
  for (;;) {
    long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (r < 0) {
      say("list(%s): getdents64 = -1 %s", path, ename(errno));
      close(fd);
      return;
    }
    if (r == 0) break;
    for (long off = 0; off < r;) {
      struct {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[];
      }* e = (void*)(buf + off);
      if (!strcmp(e->name, ".") || !strcmp(e->name, "..")) {
        ++dots;
      } else if (n < 4096) {
        const char* mark = e->type == DT_DIR ? "/" : e->type == DT_LNK ? "@" : e->type == DT_FIFO ? "|"
                         : e->type == DT_SOCK ? "=" : e->type == DT_REG ? "" : "?";
        snprintf(names[n], sizeof names[n], "%s%s", e->name, mark);
        ptrs[n] = names[n];
        ++n;
      }
      off += e->reclen;
    }
  }
  close(fd);
  qsort(ptrs, (size_t)n, sizeof ptrs[0], cmpstr);
  char line[16384];
  size_t o = 0;
  line[0] = 0;
  for (int i = 0; i < n && o < sizeof line - 300; ++i) o += (size_t)snprintf(line + o, sizeof line - o, "%s%s", i ? " " : "", ptrs[i]);
  say("list(%s): [%s] (%d entries, dots %d)", path, line, n, dots);
}

/* ---- the cases ---- */

static void c_open_creat_excl(void) {
  T(open("f", O_CREAT | O_EXCL | O_WRONLY, 0644));
  T(open("f", O_CREAT | O_EXCL | O_WRONLY, 0644));
  T(open("f", O_EXCL | O_RDONLY));
  T(open("f", O_CREAT | O_RDWR, 0600));
  T(symlink("nowhere", "dangling"));
  T(open("dangling", O_CREAT | O_EXCL | O_WRONLY, 0644));
  T(access("nowhere", F_OK));
  T(mkdir("d", 0755));
  T(open("d", O_CREAT | O_EXCL | O_RDONLY, 0644));
  T(open("d", O_CREAT | O_RDONLY, 0644));
  T(open("d/new", O_CREAT | O_EXCL | O_RDWR, 0640));
  stp("f");
  stp("d/new");
  listdir(".");
}

static void c_open_creat_mode(void) {
  struct stat s;
  T(open("a", O_CREAT | O_WRONLY, 0777));
  stp("a");
  umask(077);
  T(open("b", O_CREAT | O_WRONLY, 0666));
  umask(0);
  T(open("c", O_CREAT | O_WRONLY, 06777));
  T(open("e", O_CREAT | O_WRONLY, 0));
  umask(022);
  stp("b");
  stp("c");
  stp("e");
  T(open("a", O_CREAT | O_WRONLY, 0600)); /* an existing file keeps its mode */
  stp("a");
  s = sget("a");
  Y("owner is the caller", s.st_uid == getuid() && s.st_gid == getgid());
  T(mkdir("g", 0755));
  T(chmod("g", 02755));
  T(open("g/f", O_CREAT | O_WRONLY, 0755));
  T(mkdir("g/sub", 0755));
  stp("g/f");
  stp("g/sub");
  s = sget("g/sub");
  Y("subdirectory group is the directory's", s.st_gid == sget("g").st_gid);
}

static void c_creat_trunc(void) {
  T(put("f", "hello world", 0644));
  int fd = V(creat("f", 0600));
  stp("f");
  char b[8];
  T(read(fd, b, sizeof b));
  T(write(fd, "abc", 3));
  show("f");
  T(creat("missing/f", 0644));
  T(creat(".", 0644));
}

static void c_open_trunc(void) {
  T(put("f", "0123456789", 0644));
  T(open("f", O_RDONLY | O_TRUNC));
  stp("f");
  T(put("f", "0123456789", 0644));
  T(open("f", O_WRONLY | O_TRUNC));
  stp("f");
  T(put("f", "0123456789", 0644));
  int fd = V(open("f", O_RDWR | O_TRUNC | O_APPEND));
  T(write(fd, "xy", 2));
  show("f");
  T(mkfifo("p", 0644));
  T(open("p", O_RDWR | O_TRUNC));
  T(mkdir("d", 0755));
  T(open("d", O_RDONLY | O_TRUNC));
  T(open("missing", O_WRONLY | O_TRUNC));
}

static void c_open_append(void) {
  int fd = V(open("f", O_CREAT | O_WRONLY | O_APPEND, 0644));
  T(write(fd, "abc", 3));
  T(lseek(fd, 0, SEEK_SET));
  T(write(fd, "def", 3));
  T(lseek(fd, 0, SEEK_CUR));
  T(pwrite(fd, "X", 1, 0)); /* Linux: pwrite on O_APPEND appends */
  show("f");
  int fl = (int)V(fcntl(fd, F_GETFL));
  Y("F_GETFL has O_APPEND", fl & O_APPEND);
  T(fcntl(fd, F_SETFL, fl & ~O_APPEND));
  T(lseek(fd, 0, SEEK_SET));
  T(write(fd, "Z", 1));
  T(lseek(fd, 0, SEEK_CUR));
  show("f");
  int fd2 = V(open("f", O_WRONLY | O_APPEND));
  int fd3 = V(open("f", O_WRONLY | O_APPEND));
  T(write(fd2, "1", 1));
  T(write(fd3, "2", 1));
  T(write(fd2, "3", 1));
  show("f");
  T(ftruncate(fd3, 2));
  T(write(fd2, "!", 1));
  show("f");
}

static void c_open_directory(void) {
  T(mkdir("d", 0755));
  T(put("f", "x", 0644));
  T(symlink("d", "ld"));
  T(symlink("f", "lf"));
  int dfd = V(open("d", O_DIRECTORY | O_RDONLY));
  T(open("f", O_DIRECTORY | O_RDONLY));
  T(open("d", O_WRONLY));
  T(open("d", O_RDWR));
  char b[8];
  T(read(dfd, b, sizeof b));
  T(write(dfd, "x", 1));
  T(open("new", O_DIRECTORY | O_CREAT | O_RDWR, 0644));
  T(access("new", F_OK));
  T(open("missing", O_DIRECTORY | O_RDONLY));
  T(open("ld", O_DIRECTORY | O_RDONLY));
  T(open("lf", O_DIRECTORY | O_RDONLY));
  T(open("ld", O_DIRECTORY | O_NOFOLLOW | O_RDONLY));
}

/* A trailing slash asks for a directory: on anything else it is ENOTDIR
 * (or ENOENT/EISDIR for a name to be made), and it follows a final link. */
static void c_trailing_slash(void) {
  T(put("f", "x", 0644));
  T(mkdir("d", 0755));
  T(symlink("f", "lf"));
  T(symlink("d", "ld"));
  T(open("f/", O_RDONLY));
  T(open("f/", O_WRONLY | O_CREAT, 0644));
  T(open("lf/", O_RDONLY));
  T(open("d/", O_RDONLY));
  T(open("ld/", O_RDONLY));
  T(open("new/", O_CREAT | O_WRONLY, 0644));
  T(access("new", F_OK));
  stp("f/");
  lstp("f/");
  stp("lf/");
  lstp("lf/");
  stp("ld/");
  lstp("ld/");
  T(access("f/", F_OK));
  T(truncate("f/", 0));
  T(chmod("f/", 0600));
  char b[16];
  T(readlink("ld/", b, sizeof b));
  T(readlink("lf/", b, sizeof b));
  T(unlink("f/"));
  T(unlink("lf/"));
  T(rmdir("f/"));
  T(rename("f", "f2/"));
  T(rename("f/", "f2"));
  T(rename("d/", "d2/"));
  T(rename("d2//", "d"));
  T(link("f", "new/"));
  T(link("f/", "new"));
  T(symlink("x", "new/"));
  T(mkdir("new2/", 0755));
  T(mknod("new3/", S_IFIFO | 0644, 0));
  T(setxattr("f/", "user.a", "v", 1, 0));
  listdir(".");
  stp("f");
  show("f");
}

static void c_open_nofollow(void) {
  T(put("f", "target", 0644));
  T(mkdir("d", 0755));
  T(put("d/g", "in d", 0644));
  T(symlink("f", "l"));
  T(symlink("d", "ld"));
  T(open("l", O_NOFOLLOW | O_RDONLY));
  T(open("l", O_NOFOLLOW | O_WRONLY | O_CREAT, 0644));
  int p = V(open("l", O_NOFOLLOW | O_PATH));
  fstp("O_PATH|O_NOFOLLOW of the link", p);
  char buf[64] = {0};
  T(readlinkat(p, "", buf, sizeof buf));
  say("readlinkat(p, \"\"): %s", buf);
  T(open("ld/g", O_NOFOLLOW | O_RDONLY)); /* only the last component */
  T(open("l", O_RDONLY));
  T(open("f", O_NOFOLLOW | O_RDONLY));
}

static void c_open_tmpfile(void) {
  T(put("file", "x", 0644));
  int fd = V(open(".", O_TMPFILE | O_RDWR, 0600));
  if (fd >= 0) {
    T(write(fd, "tmp data", 8));
    fstp("tmpfile", fd);
    listdir(".");
    T(linkat(fd, "", AT_FDCWD, "named", AT_EMPTY_PATH));
    fstp("tmpfile", fd);
    show("named");
    stp("named");
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    T(linkat(AT_FDCWD, proc, AT_FDCWD, "named2", AT_SYMLINK_FOLLOW));
    stp("named");
    T(linkat(fd, "", AT_FDCWD, "named", AT_EMPTY_PATH));
  }
  int ex = V(open(".", O_TMPFILE | O_EXCL | O_WRONLY, 0600));
  if (ex >= 0) T(linkat(ex, "", AT_FDCWD, "excl", AT_EMPTY_PATH));
  T(open(".", O_TMPFILE | O_RDONLY, 0600));
  T(open("file", O_TMPFILE | O_RDWR, 0600));
  T(open("missing", O_TMPFILE | O_RDWR, 0600));
  listdir(".");
}

static void c_open_path(void) {
  T(put("f", "data", 0644));
  T(mkdir("d", 0755));
  T(put("d/g", "in d", 0644));
  T(mkfifo("p", 0644));
  int fd = V(open("f", O_PATH));
  char b[8];
  T(read(fd, b, sizeof b));
  T(write(fd, "x", 1));
  T(pread(fd, b, sizeof b, 0));
  T(lseek(fd, 0, SEEK_SET));
  T(fchmod(fd, 0600));
  T(fchown(fd, getuid(), getgid()));
  T(ftruncate(fd, 0));
  T(fsync(fd));
  T(fgetxattr(fd, "user.x", b, sizeof b));
  T(flock(fd, LOCK_EX));
  T(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED ? -1 : 0);
  T(dup(fd));
  fstp("O_PATH f", fd);
  struct stat s;
  T(fstatat(fd, "", &s, AT_EMPTY_PATH));
  int fl = (int)V(fcntl(fd, F_GETFL));
  Y("F_GETFL has O_PATH", fl & O_PATH);
  int dfd = V(open("d", O_PATH | O_DIRECTORY));
  int g = V(openat(dfd, "g", O_RDONLY));
  T(read(g, b, 4));
  T(getdents64(dfd, b, sizeof b));
  T(fchdir(dfd));
  stp("g");
  T(chdir(".."));
  T(open("p", O_PATH)); /* no wait for a writer */
  fstp("O_PATH p", (int)V(open("p", O_PATH)));
  T(close(fd));
  stp("f");
}

static void c_openat_dirfd(void) {
  T(mkdir("d", 0755));
  int dfd = V(open("d", O_DIRECTORY | O_RDONLY));
  T(openat(dfd, "f", O_CREAT | O_WRONLY, 0644));
  struct stat s;
  T(fstatat(dfd, "f", &s, 0));
  stp("d/f");
  int ffd = V(open("d/f", O_RDONLY));
  T(openat(ffd, "x", O_RDONLY));
  T(openat(999, "x", O_RDONLY));
  char abs[PATH_MAX + 8];
  snprintf(abs, sizeof abs, "%s/d/f", g_dir);
  T(openat(999, abs, O_RDONLY)); /* an absolute path ignores the descriptor */
  int up = V(openat(dfd, "..", O_DIRECTORY | O_RDONLY));
  struct stat a, b;
  fstat(up, &a);
  stat(".", &b);
  Y("openat(d, \"..\") is the case directory", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
  T(openat(dfd, "", O_RDONLY));
  T(mkdirat(dfd, "sub", 0700));
  T(mkdirat(ffd, "sub", 0700));
  stp("d/sub");
  T(unlinkat(dfd, "sub", AT_REMOVEDIR));
  listdir("d");
}

static void c_openat2_resolve(void) {
  T(mkdir("d", 0755));
  T(put("f", "x", 0644));
  T(put("d/g", "y", 0644));
  T(symlink("g", "d/lg"));
  T(symlink("../f", "d/up"));
  int dfd = V(open("d", O_DIRECTORY | O_RDONLY));
  struct open_how_ how = {O_RDONLY, 0, 0};
  T(syscall(SYS_openat2, dfd, "g", &how, sizeof how));
  how.resolve = RESOLVE_BENEATH;
  T(syscall(SYS_openat2, dfd, "../f", &how, sizeof how));
  T(syscall(SYS_openat2, dfd, "up", &how, sizeof how));
  T(syscall(SYS_openat2, dfd, "lg", &how, sizeof how));
  how.resolve = RESOLVE_IN_ROOT;
  T(syscall(SYS_openat2, dfd, "../g", &how, sizeof how));
  how.resolve = RESOLVE_NO_SYMLINKS;
  T(syscall(SYS_openat2, dfd, "lg", &how, sizeof how));
  how.resolve = 0x1000;
  T(syscall(SYS_openat2, dfd, "g", &how, sizeof how));
  how.resolve = 0;
  how.mode = 0644; /* a mode without O_CREAT */
  T(syscall(SYS_openat2, dfd, "g", &how, sizeof how));
  how.mode = 0;
  T(syscall(SYS_openat2, dfd, "g", &how, 8));
}

static void c_open_errors(void) {
  T(put("f", "x", 0644));
  T(mkdir("d", 0755));
  T(open("missing", O_RDONLY));
  T(open("missing/x", O_CREAT | O_WRONLY, 0644));
  T(open("f/x", O_RDONLY));
  T(open("f/x", O_CREAT | O_WRONLY, 0644));
  T(open("", O_RDONLY));
  T(open("", O_CREAT | O_WRONLY, 0644));
  T(open("d/.", O_RDONLY));
  T(open("d/..", O_RDONLY));
  T(open(".", O_CREAT | O_RDONLY, 0644));
  int fd = V(open("f", O_ACCMODE)); /* access mode 3: neither read nor write */
  char b[4];
  T(read(fd, b, 1));
  T(write(fd, "y", 1));
  T(chmod("f", 0));
  T(open("f", O_RDWR)); /* the caller is root */
  T(chmod("d", 0555));
  T(open("d/c", O_CREAT | O_WRONLY, 0644));
  T(chmod("d", 0755));
}

static void c_rw_basic(void) {
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  char b[64];
  T(write(fd, "hello", 5));
  T(lseek(fd, 0, SEEK_CUR));
  T(read(fd, b, sizeof b));
  showat("pread(0,5)", fd, 0, 5);
  T(lseek(fd, 0, SEEK_CUR));
  T(pwrite(fd, "XY", 2, 10));
  T(lseek(fd, 0, SEEK_CUR));
  stp("f");
  show("f");
  ssize_t n = V(read(fd, b, sizeof b));
  showbuf("read from 5", b, n);
  T(write(fd, "", 0));
  T(read(fd, b, 0));
  int wo = V(open("f", O_WRONLY));
  T(read(wo, b, 1));
  int ro = V(open("f", O_RDONLY));
  T(write(ro, "x", 1));
  T(pwrite(ro, "x", 1, 0));
  /* dup shares the offset, a new open does not */
  int d = V(dup(ro));
  T(read(ro, b, 3));
  T(lseek(d, 0, SEEK_CUR));
  int ro2 = V(open("f", O_RDONLY));
  T(lseek(ro2, 0, SEEK_CUR));
  T(close(d));
  T(read(d, b, 1));
  /* a large write read back */
  static char big[1 << 20], back[1 << 20];
  for (size_t i = 0; i < sizeof big; ++i) big[i] = (char)(i * 7 + i / 251);
  int g = V(open("g", O_CREAT | O_RDWR | O_TRUNC, 0644));
  ssize_t w = 0;
  while (w < (ssize_t)sizeof big) {
    ssize_t r = write(g, big + w, sizeof big - (size_t)w);
    if (r <= 0) break;
    w += r;
  }
  say("wrote 1 MiB: %zd", w);
  ssize_t r = 0, k;
  while ((k = pread(g, back + r, sizeof back - (size_t)r, r)) > 0) r += k;
  say("read back %zd, same: %s", r, memcmp(big, back, sizeof big) ? "no" : "yes");
  stp("g");
}

static void c_rw_vectors(void) {
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  struct iovec w[3] = {{"ab", 2}, {"", 0}, {"cdef", 4}};
  T(writev(fd, w, 3));
  T(lseek(fd, 0, SEEK_SET));
  char a[3], b[10];
  struct iovec r[2] = {{a, 3}, {b, 10}};
  ssize_t n = V(readv(fd, r, 2));
  showbuf("readv[0]", a, 3);
  showbuf("readv[1]", b, n - 3);
  memset(a, 0, sizeof a);
  memset(b, 0, sizeof b);
  n = V(preadv(fd, r, 2, 2));
  showbuf("preadv[0]", a, n < 3 ? n : 3);
  showbuf("preadv[1]", b, n > 3 ? n - 3 : 0);
  T(lseek(fd, 0, SEEK_CUR));
  struct iovec w2[2] = {{"PQ", 2}, {"RS", 2}};
  T(pwritev(fd, w2, 2, 10));
  T(lseek(fd, 0, SEEK_CUR));
  show("f");
  T(writev(fd, w, 0));
  T(readv(fd, r, 0));
  static struct iovec many[1025];
  for (int i = 0; i < 1025; ++i) many[i] = (struct iovec){a, 1};
  T(readv(fd, many, 1025));
  T(writev(fd, many, 1024));
  T(readv(fd, r, -1));
  struct iovec z = {NULL, 0};
  T(writev(fd, &z, 1));
  T(preadv(fd, r, 2, -1));
  T(pwritev(fd, w, 3, -1));
  stp("f");
}

static void c_rw_v2(void) {
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  T(write(fd, "0123456789", 10));
  T(lseek(fd, 4, SEEK_SET));
  char a[4];
  struct iovec r = {a, 3};
  ssize_t n = V(preadv2(fd, &r, 1, -1, 0)); /* -1: the descriptor's offset, moved */
  showbuf("preadv2(-1)", a, n);
  T(lseek(fd, 0, SEEK_CUR));
  n = V(preadv2(fd, &r, 1, 0, 0));
  showbuf("preadv2(0)", a, n);
  T(lseek(fd, 0, SEEK_CUR));
  struct iovec w = {"AB", 2};
  T(pwritev2(fd, &w, 1, -1, 0));
  T(lseek(fd, 0, SEEK_CUR));
  T(pwritev2(fd, &w, 1, 0, RWF_APPEND));
  T(lseek(fd, 0, SEEK_CUR));
  T(pwritev2(fd, &w, 1, 1, RWF_DSYNC));
  T(pwritev2(fd, &w, 1, 1, RWF_SYNC));
  show("f");
  T(preadv2(fd, &r, 1, 0, 0x40000000));
  T(pwritev2(fd, &w, 1, 0, 0x40000000));
  T(preadv2(fd, &r, 1, -2, 0));
}

static void c_lseek_basic(void) {
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  T(write(fd, "0123456789", 10));
  T(lseek(fd, 3, SEEK_SET));
  T(lseek(fd, 2, SEEK_CUR));
  T(lseek(fd, -1, SEEK_END));
  T(lseek(fd, 100, SEEK_END));
  stp("f");
  T(write(fd, "x", 1));
  stp("f");
  T(lseek(fd, -1, SEEK_SET));
  T(lseek(fd, -1000, SEEK_CUR));
  T(lseek(fd, 0, 7));
  T(lseek(fd, 0, SEEK_CUR));
  int p[2];
  T(pipe(p));
  T(lseek(p[0], 0, SEEK_SET));
  T(mkdir("d", 0755));
  int dfd = V(open("d", O_RDONLY | O_DIRECTORY));
  T(lseek(dfd, 0, SEEK_SET));
  T(lseek(999, 0, SEEK_SET));
}

static void c_lseek_data_hole(void) {
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  static char a[4096];
  memset(a, 'a', sizeof a);
  T(pwrite(fd, a, 4096, 1 << 20));
  stp("f");
  T(lseek(fd, 0, SEEK_DATA));
  T(lseek(fd, 0, SEEK_HOLE));
  T(lseek(fd, 1 << 20, SEEK_HOLE));
  T(lseek(fd, (1 << 20) + 100, SEEK_DATA));
  T(lseek(fd, (1 << 20) + 4096, SEEK_DATA));
  T(lseek(fd, (1 << 20) + 4096, SEEK_HOLE));
  T(lseek(fd, -1, SEEK_DATA));
  showat("pread in the hole", fd, 4096, 8);
  struct stat s;
  fstat(fd, &s);
  Y("allocated less than the size", s.st_blocks * 512 < s.st_size);
  T(ftruncate(fd, 2 << 20));
  T(lseek(fd, 1 << 20, SEEK_HOLE));
  T(lseek(fd, (1 << 20) + 4096, SEEK_DATA));
  T(lseek(fd, (2 << 20) - 1, SEEK_HOLE));
  T(pwrite(fd, a, 4096, 0));
  T(lseek(fd, 0, SEEK_DATA));
  T(lseek(fd, 0, SEEK_HOLE));
  T(lseek(fd, 4096, SEEK_DATA));
  int e = V(open("empty", O_CREAT | O_RDWR, 0644));
  T(lseek(e, 0, SEEK_DATA));
  T(lseek(e, 0, SEEK_HOLE));
}

static void c_truncate_grow_shrink(void) {
  T(put("f", "hello world", 0644));
  T(truncate("f", 5));
  show("f");
  T(truncate("f", 20));
  show("f");
  stp("f");
  int fd = V(open("f", O_RDWR));
  T(lseek(fd, 11, SEEK_SET));
  T(ftruncate(fd, 3));
  T(lseek(fd, 0, SEEK_CUR));
  T(write(fd, "Z", 1));
  show("f");
  T(ftruncate(fd, 3));
  show("f");
  int ro = V(open("f", O_RDONLY));
  T(ftruncate(ro, 0));
  T(truncate("f", -1));
  T(ftruncate(fd, -1));
  T(mkdir("d", 0755));
  T(truncate("d", 0));
  int dfd = V(open("d", O_RDONLY));
  T(ftruncate(dfd, 0));
  T(truncate("missing", 0));
  T(truncate("f/x", 0));
  int p[2];
  T(pipe(p));
  T(ftruncate(p[1], 0));
  T(symlink("f", "l"));
  T(truncate("l", 1));
  show("f");
  lstp("l");
  int ap = V(open("f", O_WRONLY | O_APPEND));
  T(ftruncate(ap, 0));
  stp("f");
}

static void c_fallocate_modes(void) {
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  T(fallocate(fd, 0, 0, 8192));
  stp("f");
  struct stat s;
  fstat(fd, &s);
  Y("allocated at least the size", s.st_blocks * 512 >= 8192);
  showat("pread after fallocate", fd, 0, 8);
  T(fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 8192));
  stp("f");
  static char x[16384];
  memset(x, 'x', sizeof x);
  T(pwrite(fd, x, sizeof x, 0));
  T(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 4096));
  stp("f");
  showat("pread in the punched hole", fd, 4094, 4);
  showat("pread after the hole", fd, 8190, 4);
  T(lseek(fd, 0, SEEK_HOLE));
  T(lseek(fd, 4096, SEEK_DATA));
  T(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10000, 100));
  showat("pread in a partial punch", fd, 9998, 4);
  showat("pread after a partial punch", fd, 10098, 4);
  T(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096));
  T(fallocate(fd, 0, 0, 0));
  T(fallocate(fd, 0, -1, 10));
  T(fallocate(fd, 0, 20000, 100));
  stp("f");
  T(fallocate(fd, 0x4000, 0, 10));
  int ro = V(open("f", O_RDONLY));
  T(fallocate(ro, 0, 0, 10));
  int p[2];
  T(pipe(p));
  T(fallocate(p[1], 0, 0, 10));
  T(mkdir("d", 0755));
  int dfd = V(open("d", O_RDONLY));
  T(fallocate(dfd, 0, 0, 10));
  T(fallocate(fd, 0, LLONG_MAX - 10, 100));
}

static void c_sync_calls(void) {
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  T(write(fd, "data", 4));
  T(fsync(fd));
  T(fdatasync(fd));
  T(sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE));
  T(sync_file_range(fd, 0, 4, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER));
  T(sync_file_range(fd, 0, 0, 0x100));
  T(sync_file_range(fd, -1, 0, SYNC_FILE_RANGE_WRITE));
  T(syncfs(fd));
  sync();
  say("sync() returned");
  int ro = V(open("f", O_RDONLY));
  T(fsync(ro));
  T(fdatasync(ro));
  T(mkdir("d", 0755));
  int dfd = V(open("d", O_RDONLY | O_DIRECTORY));
  T(fsync(dfd));
  int p[2];
  T(pipe(p));
  T(fsync(p[1]));
  T(fdatasync(p[0]));
  T(fsync(999));
  int pf = V(open("f", O_PATH));
  T(fsync(pf));
  T(syncfs(999));
  show("f");
}

static void c_stat_family(void) {
  T(put("f", "abc", 0644));
  T(mkdir("d", 0750));
  T(symlink("f", "l"));
  T(symlink("d", "ld"));
  T(symlink("missing", "dangling"));
  T(mkfifo("p", 0640));
  T(mknod("s", S_IFSOCK | 0600, 0));
  const char* names[] = {"f", "d", "l", "ld", "dangling", "p", "s", "missing", "f/x", "d/.", "d/.."};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
    stp(names[i]);
    lstp(names[i]);
  }
  struct stat s;
  T(fstatat(AT_FDCWD, "l", &s, AT_SYMLINK_NOFOLLOW));
  say("fstatat(l, NOFOLLOW): %s", ftype(s.st_mode));
  T(fstatat(AT_FDCWD, "l", &s, 0));
  say("fstatat(l): %s", ftype(s.st_mode));
  T(fstatat(AT_FDCWD, "", &s, 0));
  T(fstatat(AT_FDCWD, "", &s, AT_EMPTY_PATH));
  say("fstatat(\"\", EMPTY_PATH): %s", ftype(s.st_mode));
  T(fstatat(AT_FDCWD, "f", &s, 0x10000000));
  int fd = V(open("f", O_RDONLY));
  T(fstatat(fd, "", &s, AT_EMPTY_PATH));
  say("fstatat(fd, \"\", EMPTY_PATH): %s size=%lld", ftype(s.st_mode), (long long)s.st_size);
  T(fstatat(fd, "x", &s, 0));
  fstp("fd", fd);
  T(fstat(999, &s));
  struct stat a, b;
  stat("f", &a);
  lstat("l", &b);
  Y("a link's size is its target's length", b.st_size == 1);
  stat("l", &b);
  Y("stat through the link is the file", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
  fstat(fd, &b);
  Y("fstat is stat", a.st_ino == b.st_ino && a.st_dev == b.st_dev);
  Y("blksize > 0", a.st_blksize > 0);
  Y("owner is the caller", a.st_uid == getuid() && a.st_gid == getgid());
}

static void c_statx_fields(void) {
  T(put("f", "abcdef", 0640));
  T(mkdir("d", 0755));
  T(symlink("f", "l"));
  T(link("f", "h"));
  struct statx x;
  T(statx(AT_FDCWD, "f", 0, STATX_BASIC_STATS, &x));
  say("statx(f): %s %04o size=%llu nlink=%u", ftype(x.stx_mode), x.stx_mode & 07777, (unsigned long long)x.stx_size,
      x.stx_nlink);
  Y("basic stats in the mask", (x.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS);
  Y("owner is the caller", x.stx_uid == getuid() && x.stx_gid == getgid());
  struct stat s;
  stat("f", &s);
  Y("statx agrees with stat", x.stx_ino == s.st_ino && x.stx_size == (uint64_t)s.st_size &&
                                  x.stx_blocks == (uint64_t)s.st_blocks && x.stx_mtime.tv_sec == s.st_mtim.tv_sec &&
                                  x.stx_mtime.tv_nsec == (uint32_t)s.st_mtim.tv_nsec &&
                                  x.stx_ctime.tv_sec == s.st_ctim.tv_sec);
  T(statx(AT_FDCWD, "l", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &x));
  say("statx(l, NOFOLLOW): %s %04o size=%llu", ftype(x.stx_mode), x.stx_mode & 07777, (unsigned long long)x.stx_size);
  T(statx(AT_FDCWD, "l", 0, STATX_TYPE | STATX_SIZE, &x));
  say("statx(l): %s size=%llu", ftype(x.stx_mode), (unsigned long long)x.stx_size);
  T(mkdir("d/sub", 0755));
  T(statx(AT_FDCWD, "d", 0, STATX_BASIC_STATS, &x));
  say("statx(d): %s %04o nlink=%u", ftype(x.stx_mode), x.stx_mode & 07777, x.stx_nlink);
  int fd = V(open("f", O_RDONLY));
  T(statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &x));
  say("statx(fd): %s size=%llu", ftype(x.stx_mode), (unsigned long long)x.stx_size);
  T(statx(AT_FDCWD, "f", AT_STATX_DONT_SYNC, STATX_ALL, &x));
  T(statx(AT_FDCWD, "f", AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, &x));
  T(statx(AT_FDCWD, "f", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &x));
  T(statx(AT_FDCWD, "f", 0x40000000, STATX_BASIC_STATS, &x));
  T(statx(AT_FDCWD, "f", 0, 0x80000000u, &x));
  T(statx(AT_FDCWD, "missing", 0, STATX_BASIC_STATS, &x));
  T(statx(AT_FDCWD, "", 0, STATX_BASIC_STATS, &x));
}

static void c_stat_nlink(void) {
  T(put("f", "data", 0644));
  stp("f");
  T(link("f", "g"));
  stp("f");
  stp("g");
  T(link("g", "h"));
  stp("f");
  T(unlink("f"));
  stp("g");
  int fd = V(open("h", O_RDWR));
  T(unlink("g"));
  T(unlink("h"));
  fstp("fd after its last name went", fd);
  showat("pread after unlink", fd, 0, 10);
  T(pwrite(fd, "more", 4, 4));
  fstp("fd after its last name went", fd);
  listdir(".");
  /* directories made here count their subdirectories */
  T(mkdir("p", 0755));
  struct stat p0 = sget("p");
  say("new directory nlink=%lu", (unsigned long)p0.st_nlink);
  T(mkdir("p/d", 0755));
  struct stat p1 = sget("p");
  say("after mkdir in it: nlink=%lu", (unsigned long)p1.st_nlink);
  T(mkdir("p/d/a", 0755));
  T(mkdir("p/d/b", 0755));
  T(put("p/d/file", "x", 0644));
  say("with two subdirectories and a file: nlink=%lu", (unsigned long)sget("p/d").st_nlink);
  T(rmdir("p/d/a"));
  say("after rmdir of one: nlink=%lu", (unsigned long)sget("p/d").st_nlink);
  T(rename("p/d/b", "p/b"));
  say("after one moved out: nlink=%lu, its new parent's nlink=%lu", (unsigned long)sget("p/d").st_nlink,
      (unsigned long)sget("p").st_nlink);
  T(renameat2(AT_FDCWD, "p/b", AT_FDCWD, "p/d/x", RENAME_NOREPLACE));
  say("after it moved back: nlink=%lu, p nlink=%lu", (unsigned long)sget("p/d").st_nlink,
      (unsigned long)sget("p").st_nlink);
}

static void c_statfs_calls(void) {
  T(put("f", "x", 0644));
  struct statfs s;
  T(statfs(".", &s));
  say("f_namelen=%ld", (long)s.f_namelen);
  Y("f_bsize > 0", s.f_bsize > 0);
  Y("f_blocks >= f_bfree >= f_bavail", s.f_blocks >= s.f_bfree && s.f_bfree >= s.f_bavail);
  int fd = V(open("f", O_RDONLY));
  struct statfs t;
  T(fstatfs(fd, &t));
  Y("fstatfs agrees on f_type and f_bsize", s.f_type == t.f_type && s.f_bsize == t.f_bsize);
  T(statfs("missing", &s));
  T(statfs("f/x", &s));
  T(fstatfs(999, &s));
  struct statvfs v;
  T(statvfs("f", &v));
  say("f_namemax=%lu", (unsigned long)v.f_namemax);
  int pf = V(open("f", O_PATH));
  T(fstatfs(pf, &s));
}

static void c_getdents_listing(void) {
  char name[32];
  for (int i = 0; i < 100; ++i) {
    snprintf(name, sizeof name, "f%03d", i);
    if (put(name, "x", 0644)) say("put %s failed", name);
  }
  for (int i = 0; i < 5; ++i) {
    snprintf(name, sizeof name, "dir%d", i);
    mkdir(name, 0755);
  }
  T(symlink("f000", "link"));
  listdir(".");
  int fd = V(open(".", O_RDONLY | O_DIRECTORY));
  char buf[512];
  int calls = 0, entries = 0;
  long r;
  while ((r = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    ++calls;
    for (long off = 0; off < r; off += *(unsigned short*)(buf + off + 16)) ++entries;
  }
  say("getdents64 with 512 bytes: %d entries, more than one call: %s, last = %ld", entries, calls > 1 ? "yes" : "no", r);
  T(syscall(SYS_getdents64, fd, buf, sizeof buf)); /* at the end */
  for (int i = 50; i < 100; ++i) {
    snprintf(name, sizeof name, "f%03d", i);
    unlink(name);
  }
  T(lseek(fd, 0, SEEK_SET));
  entries = 0;
  while ((r = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
    for (long off = 0; off < r; off += *(unsigned short*)(buf + off + 16)) ++entries;
  say("after unlinking 50 and rewinding: %d entries", entries);
  listdir(".");
  int ffd = V(open("f000", O_RDONLY));
  T(syscall(SYS_getdents64, ffd, buf, sizeof buf));
  T(syscall(SYS_getdents64, fd, buf, 1));
  T(syscall(SYS_getdents64, 999, buf, sizeof buf));
  T(syscall(SYS_getdents64, fd, buf, 0));
  int wfd = V(open("f000", O_WRONLY));
  T(syscall(SYS_getdents64, wfd, buf, sizeof buf));
  /* the old getdents too */
  T(lseek(fd, 0, SEEK_SET));
  entries = 0;
  while ((r = syscall(SYS_getdents, fd, buf, sizeof buf)) > 0)
    for (long off = 0; off < r; off += *(unsigned short*)(buf + off + 16)) ++entries;
  say("getdents: %d entries, last = %ld", entries, r);
}

/* A position from d_off resumes the listing where it was (telldir/seekdir). */
static void c_getdents_seek(void) {
  char name[32];
  for (int i = 0; i < 40; ++i) {
    snprintf(name, sizeof name, "entry-%02d", i);
    put(name, "", 0644);
  }
  int fd = V(open(".", O_RDONLY | O_DIRECTORY));
  char buf[8192];
  char order[64][32];
  int64_t offs[64];
  int n = 0;
  long r;
  while ((r = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long off = 0; off < r && n < 64;) {
      int64_t d_off = *(int64_t*)(buf + off + 8);
      unsigned short reclen = *(unsigned short*)(buf + off + 16);
      snprintf(order[n], sizeof order[n], "%s", buf + off + 19);
      offs[n++] = d_off;
      off += reclen;
    }
  }
  say("entries: %d", n);
  int same = 1;
  for (int k = 5; k < n - 1; k += 7) {
    if (lseek(fd, offs[k], SEEK_SET) != offs[k]) same = 0;
    r = syscall(SYS_getdents64, fd, buf, 64); /* room for one entry */
    if (r <= 0 || strcmp(buf + 19, order[k + 1]) != 0) same = 0;
  }
  Y("seeking to an entry's d_off resumes at the next entry", same);
  /* readdir(3) with telldir/seekdir, as programs use it */
  DIR* d = opendir(".");
  long pos = -1;
  char want[256] = "";
  int i = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (i == 20) pos = telldir(d);
    if (i == 21) snprintf(want, sizeof want, "%s", e->d_name);
    ++i;
  }
  seekdir(d, pos);
  e = readdir(d);
  Y("seekdir(telldir()) resumes", e && !strcmp(e->d_name, want));
  rewinddir(d);
  int again = 0;
  while (readdir(d)) ++again;
  say("after rewinddir: %d entries", again);
  closedir(d);
}

static void c_getdents_types(void) {
  T(put("f", "x", 0644));
  T(mkdir("d", 0755));
  T(symlink("f", "l"));
  T(symlink("d", "ld"));
  T(mkfifo("p", 0644));
  T(mknod("s", S_IFSOCK | 0644, 0));
  listdir(".");
  listdir("d");
  listdir("ld");
  listdir("f");
  listdir("missing");
}

static void c_mkdir_cases(void) {
  T(put("f", "x", 0644));
  T(mkdir("a", 0777));
  stp("a");
  T(mkdir("a", 0755));
  T(mkdir("f", 0755));
  T(mkdir("missing/x", 0755));
  T(mkdir("f/x", 0755));
  T(mkdir("b/", 0755));
  stp("b");
  T(mkdir("b//c//", 0755));
  stp("b/c");
  int dfd = V(open("a", O_DIRECTORY | O_RDONLY));
  T(mkdirat(dfd, "c", 0700));
  stp("a/c");
  T(mkdirat(999, "c", 0700));
  T(symlink("nowhere", "dangling"));
  T(mkdir("dangling", 0755));
  T(access("nowhere", F_OK));
  T(mkdir("sticky", 01777));
  stp("sticky");
  T(mkdir("setuid", 04777));
  stp("setuid");
  T(mkdir(".", 0755));
  T(mkdir("..", 0755));
  T(mkdir("", 0755));
  T(mkdir("a/.", 0755));
  stp("a");
  T(mkdir("a/sub", 0755));
  stp("a");
  T(chmod("a", 02755));
  T(mkdir("a/g", 0700));
  stp("a/g");
  listdir(".");
}

static void c_mknod_fifo(void) {
  T(mknod("p", S_IFIFO | 0644, 0));
  stp("p");
  T(mkfifo("q", 0600));
  stp("q");
  T(mknod("p", S_IFIFO | 0644, 0));
  T(mknod("r", S_IFREG | 0600, 0));
  stp("r");
  T(mknod("t", 0600, 0));
  stp("t");
  T(mknod("u", 0170000 | 0600, 0));
  T(mknod("missing/p", S_IFIFO | 0644, 0));
  T(open("p", O_WRONLY | O_NONBLOCK));
  int r = V(open("p", O_RDONLY | O_NONBLOCK));
  int w = V(open("p", O_WRONLY | O_NONBLOCK));
  T(write(w, "fifo", 4));
  stp("p");
  char b[16];
  ssize_t n = V(read(r, b, sizeof b));
  showbuf("read", b, n);
  T(read(r, b, sizeof b));
  T(close(w));
  T(read(r, b, sizeof b));
  int rw = V(open("p", O_RDWR));
  T(write(rw, "rw", 2));
  n = V(read(rw, b, sizeof b));
  showbuf("read", b, n);
  T(lseek(rw, 0, SEEK_SET));
  T(ftruncate(rw, 0));
  T(truncate("p", 0));
  T(fcntl(rw, F_GETPIPE_SZ) > 0);
  T(unlink("p"));
  listdir(".");
}

static void c_rmdir_cases(void) {
  T(mkdir("d", 0755));
  T(put("d/x", "x", 0644));
  T(put("f", "x", 0644));
  T(mkdir("e", 0755));
  T(mkdir("s", 0755));
  T(mkdir("s/sub", 0755));
  T(symlink("e", "le"));
  T(rmdir("d"));
  T(rmdir("f"));
  T(rmdir("missing"));
  T(rmdir("."));
  T(rmdir(".."));
  T(rmdir("d/."));
  T(rmdir("d/x/"));
  T(rmdir("le"));
  T(rmdir("le/"));
  T(rmdir("s"));
  T(rmdir(""));
  T(unlink("d/x"));
  T(rmdir("d"));
  T(rmdir("e/"));
  T(rmdir("e"));
  stp("le");
  lstp("le");
  listdir(".");
}

static void c_unlink_cases(void) {
  T(mkdir("d", 0755));
  T(put("f", "x", 0644));
  T(put("g", "g", 0644));
  T(symlink("f", "l"));
  T(symlink("nowhere", "dangling"));
  T(mkfifo("p", 0644));
  T(unlink("d"));
  T(unlink("missing"));
  T(unlink("missing/x"));
  T(unlink("f/x"));
  T(unlink("."));
  T(unlink(""));
  T(unlink("l"));
  stp("f");
  T(unlink("dangling"));
  T(unlink("p"));
  T(unlinkat(AT_FDCWD, "d", AT_REMOVEDIR));
  T(unlinkat(AT_FDCWD, "f", AT_REMOVEDIR));
  T(unlinkat(AT_FDCWD, "f", 0x1));
  T(unlinkat(AT_FDCWD, "d", 0));
  int fd = V(open("g", O_RDWR));
  T(unlinkat(AT_FDCWD, "g", 0));
  showat("pread after unlink", fd, 0, 4);
  fstp("fd", fd);
  T(unlinkat(fd, "x", 0));
  listdir(".");
}

static void c_rename_cases(void) {
  T(put("a", "A", 0644));
  T(put("c", "C", 0600));
  T(rename("a", "b"));
  T(access("a", F_OK));
  show("b");
  T(rename("b", "c"));
  show("c");
  stp("c");
  T(rename("c", "c"));
  T(rename("missing", "x"));
  T(rename("c", "nodir/c"));
  T(mkdir("d1", 0755));
  T(mkdir("d2", 0755));
  T(rename("d1", "d2"));
  T(access("d1", F_OK));
  T(mkdir("e", 0755));
  T(put("e/x", "x", 0644));
  T(mkdir("g", 0755));
  T(rename("g", "e"));
  T(rename("c", "e"));
  T(rename("e", "c"));
  T(rename("e", "e/sub"));
  T(rename(".", "x"));
  T(rename("c", "."));
  T(rename("c", ".."));
  T(rename("e/.", "x"));
  T(link("c", "h"));
  T(rename("c", "h")); /* two names of one file: nothing happens */
  stp("c");
  stp("h");
  T(symlink("h", "l"));
  T(rename("l", "l2"));
  lstp("l2");
  T(put("t", "T", 0644));
  T(rename("t", "l2")); /* replaces the link, not its target */
  lstp("l2");
  show("h");
  T(rename("e", "e2"));
  listdir("e2");
  T(rename("d2", "d3"));
  T(rename("e2", "d3/e2"));
  listdir("d3");
  listdir(".");
}

static void c_renameat2_flags(void) {
  T(put("a", "A", 0644));
  T(put("b", "B", 0600));
  T(mkdir("d", 0755));
  T(put("d/in", "in", 0644));
  T(mkdir("e", 0700));
  T(put("e/other", "o", 0644));
  T(mkdir("empty", 0755));
  T(renameat2(AT_FDCWD, "a", AT_FDCWD, "b", RENAME_NOREPLACE));
  T(renameat2(AT_FDCWD, "a", AT_FDCWD, "n", RENAME_NOREPLACE));
  show("n");
  T(renameat2(AT_FDCWD, "d", AT_FDCWD, "empty", RENAME_NOREPLACE));
  T(renameat2(AT_FDCWD, "n", AT_FDCWD, "b", RENAME_EXCHANGE));
  show("n");
  show("b");
  stp("n");
  stp("b");
  T(renameat2(AT_FDCWD, "n", AT_FDCWD, "d", RENAME_EXCHANGE));
  stp("n");
  stp("d");
  listdir("n");
  T(renameat2(AT_FDCWD, "n", AT_FDCWD, "e", RENAME_EXCHANGE)); /* two non-empty directories */
  listdir("n");
  listdir("e");
  stp("n");
  stp("e");
  T(renameat2(AT_FDCWD, "b", AT_FDCWD, "missing", RENAME_EXCHANGE));
  T(renameat2(AT_FDCWD, "missing", AT_FDCWD, "b", RENAME_EXCHANGE));
  T(renameat2(AT_FDCWD, "b", AT_FDCWD, "x", RENAME_NOREPLACE | RENAME_EXCHANGE));
  T(renameat2(AT_FDCWD, "b", AT_FDCWD, "x", 0x100));
  T(renameat2(AT_FDCWD, "b", AT_FDCWD, "b", RENAME_NOREPLACE));
  T(renameat2(AT_FDCWD, "b", AT_FDCWD, "b", RENAME_EXCHANGE));
  T(renameat2(AT_FDCWD, "n", AT_FDCWD, "n/in", RENAME_EXCHANGE));
  int dfd = V(open("e", O_DIRECTORY | O_RDONLY));
  T(renameat2(dfd, "in", AT_FDCWD, "moved", 0));
  show("moved");
  listdir(".");
}

static void c_rename_open_file(void) {
  T(put("f", "first", 0644));
  int fd = V(open("f", O_RDWR));
  T(rename("f", "g"));
  showat("pread after rename", fd, 0, 10);
  T(pwrite(fd, "FIRST", 5, 0));
  show("g");
  T(put("h", "second", 0644));
  T(rename("h", "g")); /* replaces the open file */
  showat("pread of the replaced file", fd, 0, 10);
  fstp("fd", fd);
  show("g");
  /* a file open in a directory that is renamed */
  T(mkdir("e", 0755));
  T(put("e/inner", "inner data", 0644));
  int in = V(open("e/inner", O_RDWR));
  T(rename("e", "e2"));
  showat("pread after its directory moved", in, 0, 20);
  T(pwrite(in, "INNER", 5, 0));
  fstp("it", in);
  show("e2/inner");
  /* a directory descriptor follows its directory */
  T(mkdir("d", 0755));
  int dfd = V(open("d", O_RDONLY | O_DIRECTORY));
  T(rename("d", "d2"));
  T(openat(dfd, "inside", O_CREAT | O_WRONLY, 0644));
  listdir("d2");
  T(fchdir(dfd));
  T(access("inside", F_OK));
}

static void c_link_cases(void) {
  T(put("f", "data", 0644));
  T(mkdir("d", 0755));
  T(symlink("f", "l"));
  T(link("f", "g"));
  stp("f");
  T(link("f", "g"));
  T(link("d", "dl"));
  T(link("missing", "x"));
  T(link("f", "missing/x"));
  T(link("f", "f/x"));
  T(linkat(AT_FDCWD, "l", AT_FDCWD, "lf", AT_SYMLINK_FOLLOW));
  lstp("lf");
  T(linkat(AT_FDCWD, "l", AT_FDCWD, "ll", 0));
  lstp("ll");
  char b[16] = {0};
  T(readlink("ll", b, sizeof b));
  say("readlink(ll): %s", b);
  lstp("l");
  T(linkat(AT_FDCWD, "f", AT_FDCWD, "x", 0x1));
  int fd = V(open("f", O_RDWR));
  T(linkat(fd, "", AT_FDCWD, "byfd", AT_EMPTY_PATH));
  stp("f");
  T(pwrite(fd, "DATA", 4, 0));
  show("g");
  show("byfd");
  int dfd = V(open("d", O_DIRECTORY | O_RDONLY));
  T(linkat(AT_FDCWD, "f", dfd, "f", 0));
  stp("d/f");
  T(unlink("f"));
  stp("g");
  T(link(".", "dot"));
  T(link("p", "p2"));
  T(mkfifo("p", 0644));
  T(link("p", "p2"));
  stp("p");
}

static void c_symlink_cases(void) {
  T(put("f", "data", 0644));
  T(mkdir("d", 0755));
  T(symlink("f", "l"));
  lstp("l");
  char b[64];
  memset(b, 0, sizeof b);
  T(readlink("l", b, sizeof b));
  say("readlink(l): %s", b);
  T(symlink("target-name", "t"));
  memset(b, 0, sizeof b);
  T(readlink("t", b, 2));
  say("readlink(t, 2): %s", b);
  T(readlink("t", b, 0));
  T(readlink("f", b, sizeof b));
  T(readlink("missing", b, sizeof b));
  T(readlink("d", b, sizeof b));
  T(symlink("x", "f"));
  T(symlink("", "e"));
  T(symlink("x", "missing/l"));
  int dfd = V(open("d", O_DIRECTORY | O_RDONLY));
  T(symlinkat("../f", dfd, "up"));
  memset(b, 0, sizeof b);
  T(readlinkat(dfd, "up", b, sizeof b));
  say("readlinkat(d, up): %s", b);
  show("d/up");
  lstp("d/up");
  static char target[PATH_MAX + 2];
  memset(target, 'a', PATH_MAX - 1);
  target[PATH_MAX - 1] = 0;
  T(symlink(target, "long"));
  lstp("long");
  memset(target, 'a', PATH_MAX);
  target[PATH_MAX] = 0;
  T(symlink(target, "toolong"));
  T(symlink("d", "ld"));
  T(put("ld/g", "via link", 0644));
  show("d/g");
  T(symlink("/", "root"));
  T(access("root/.", F_OK));
  T(symlink("f", "sl"));
  T(chmod("f", 0600));
  lstp("sl");
}

static void c_symlink_loops(void) {
  T(put("f", "data", 0644));
  T(symlink("b", "a"));
  T(symlink("a", "b"));
  T(symlink("self", "self"));
  T(open("a", O_RDONLY));
  stp("a");
  lstp("a");
  T(open("self", O_RDONLY));
  T(open("a/x", O_RDONLY));
  T(chdir("a"));
  T(mkdir("a/x", 0755));
  T(open("a", O_CREAT | O_WRONLY, 0644));
  char name[16], prev[16];
  T(symlink("f", "c0"));
  for (int i = 1; i <= 40; ++i) {
    snprintf(name, sizeof name, "c%d", i);
    snprintf(prev, sizeof prev, "c%d", i - 1);
    symlink(prev, name);
  }
  T(open("c39", O_RDONLY)); /* 40 links */
  T(open("c40", O_RDONLY)); /* 41 */
  T(symlink("nowhere", "dangling"));
  T(open("dangling", O_RDONLY));
  stp("dangling");
  lstp("dangling");
  T(open("dangling", O_CREAT | O_EXCL | O_WRONLY, 0644));
  T(open("dangling", O_CREAT | O_WRONLY, 0644)); /* makes "nowhere" */
  stp("nowhere");
  T(symlink("missing/x", "dangling2"));
  T(open("dangling2", O_CREAT | O_WRONLY, 0644));
  T(open("f", O_NOFOLLOW | O_RDONLY));
  T(symlink("f", "lf"));
  T(open("lf", O_NOFOLLOW | O_RDONLY));
  T(symlink("lf", "llf"));
  T(open("llf", O_NOFOLLOW | O_RDONLY));
  show("llf");
}

static void c_chmod_cases(void) {
  T(put("f", "x", 0644));
  T(mkdir("d", 0755));
  T(symlink("f", "l"));
  T(chmod("f", 0600));
  stp("f");
  int fd = V(open("f", O_RDONLY));
  T(fchmod(fd, 0640));
  stp("f");
  T(fchmodat(AT_FDCWD, "f", 0751, 0));
  stp("f");
  T(chmod("f", 04755));
  stp("f");
  T(chmod("f", 07777));
  stp("f");
  T(chmod("f", 0170644)); /* type bits are ignored */
  stp("f");
  T(chmod("d", 0700));
  stp("d");
  T(chmod("d", 01777));
  stp("d");
  T(chmod("l", 0604)); /* the target */
  stp("f");
  lstp("l");
  T(chmod("missing", 0644));
  T(chmod("f/x", 0644));
  T(fchmodat(AT_FDCWD, "f", 0644, 0x1));
  int p[2];
  T(pipe(p));
  T(fchmod(p[0], 0600));
  T(mkfifo("fifo", 0644));
  T(chmod("fifo", 0600));
  stp("fifo");
  T(chmod("f", 0));
  stp("f");
  show("f"); /* the caller is root */
  T(fchmod(999, 0644));
}

/* glibc's fchmodat(AT_SYMLINK_NOFOLLOW) goes through an O_PATH descriptor
 * and /proc/self/fd; fchmodat2 is the system call that takes the flag. */
static void c_chmod_nofollow(void) {
  T(put("f", "x", 0644));
  T(symlink("f", "l"));
  T(fchmodat(AT_FDCWD, "f", 0600, AT_SYMLINK_NOFOLLOW));
  stp("f");
  T(fchmodat(AT_FDCWD, "l", 0600, AT_SYMLINK_NOFOLLOW));
  lstp("l");
  T(syscall(452, AT_FDCWD, "f", 0640, AT_SYMLINK_NOFOLLOW));
  stp("f");
  T(syscall(452, AT_FDCWD, "l", 0640, AT_SYMLINK_NOFOLLOW));
  T(syscall(452, AT_FDCWD, "f", 0640, 0x4));
  int fd = V(open("f", O_RDONLY));
  T(syscall(452, fd, "", 0604, AT_EMPTY_PATH));
  stp("f");
}

static void c_chown_cases(void) {
  uid_t u = getuid();
  gid_t g = getgid();
  T(put("f", "x", 0644));
  T(mkdir("d", 0755));
  T(symlink("f", "l"));
  T(chown("f", u, g));
  int fd = V(open("f", O_RDONLY));
  T(fchown(fd, u, g));
  T(lchown("l", u, g));
  T(chown("f", (uid_t)-1, (gid_t)-1));
  T(fchownat(AT_FDCWD, "l", u, g, AT_SYMLINK_NOFOLLOW));
  T(fchownat(AT_FDCWD, "f", u, g, 0x1));
  T(chown("missing", u, g));
  T(chown("f/x", u, g));
  T(fchown(999, u, g));
  struct stat s = sget("f");
  Y("owner unchanged", s.st_uid == u && s.st_gid == g);
  T(chmod("f", 06755));
  T(chown("f", u, g)); /* clears set-user-ID and set-group-ID of a file */
  stp("f");
  T(chmod("f", 06755));
  T(chown("f", (uid_t)-1, (gid_t)-1));
  stp("f");
  T(chmod("d", 06755));
  T(chown("d", u, g)); /* not of a directory */
  stp("d");
  T(chmod("f", 02755));
  T(fchown(fd, u, (gid_t)-1));
  stp("f");
}

static void c_utimens_cases(void) {
  T(put("f", "x", 0644));
  T(mkdir("d", 0755));
  T(symlink("f", "l"));
  struct timespec t[2] = {{1000000000, 123456789}, {1100000000, 987654321}};
  struct stat s;
  T(utimensat(AT_FDCWD, "f", t, 0));
  s = sget("f");
  say("atime=%lld.%09ld mtime=%lld.%09ld", (long long)s.st_atim.tv_sec, s.st_atim.tv_nsec,
      (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
  struct timespec o[2] = {{0, UTIME_OMIT}, {1200000000, 5}};
  T(utimensat(AT_FDCWD, "f", o, 0));
  s = sget("f");
  say("atime=%lld.%09ld mtime=%lld.%09ld", (long long)s.st_atim.tv_sec, s.st_atim.tv_nsec,
      (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
  struct timespec o2[2] = {{7, 0}, {0, UTIME_OMIT}};
  int fd = V(open("f", O_RDONLY));
  T(futimens(fd, o2));
  s = sget("f");
  say("atime=%lld.%09ld mtime=%lld.%09ld", (long long)s.st_atim.tv_sec, s.st_atim.tv_nsec,
      (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
  struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
  T(utimensat(AT_FDCWD, "f", omit, 0));
  time_t before = time(NULL) - 2;
  struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  T(utimensat(AT_FDCWD, "d", now, 0));
  s = sget("d");
  Y("UTIME_NOW is now", s.st_mtim.tv_sec >= before && s.st_atim.tv_sec >= before && s.st_mtim.tv_sec < before + 60);
  T(utimensat(AT_FDCWD, "f", NULL, 0));
  s = sget("f");
  Y("NULL is now", s.st_mtim.tv_sec >= before && s.st_mtim.tv_sec < before + 60);
  struct timespec lt[2] = {{1300000000, 1}, {1300000000, 2}};
  struct stat fs0 = sget("f");
  T(utimensat(AT_FDCWD, "l", lt, AT_SYMLINK_NOFOLLOW));
  s = sget("l");
  say("link mtime=%lld.%09ld", (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
  struct stat fs1 = sget("f");
  Y("the target's mtime unchanged", fs0.st_mtim.tv_sec == fs1.st_mtim.tv_sec && fs0.st_mtim.tv_nsec == fs1.st_mtim.tv_nsec);
  struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
  T(utimensat(AT_FDCWD, "f", bad, 0));
  struct timespec neg[2] = {{0, -5}, {0, 0}};
  T(utimensat(AT_FDCWD, "f", neg, 0));
  T(utimensat(AT_FDCWD, "missing", t, 0));
  T(utimensat(AT_FDCWD, "f", t, 0x1));
  T(syscall(SYS_utimensat, fd, NULL, t, 0)); /* the descriptor itself */
  s = sget("f");
  say("mtime=%lld.%09ld", (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
  struct timespec pre[2] = {{-1000000, 500}, {-1, 0}};
  T(utimensat(AT_FDCWD, "f", pre, 0));
  s = sget("f");
  say("before 1970: atime=%lld.%09ld mtime=%lld.%09ld", (long long)s.st_atim.tv_sec, s.st_atim.tv_nsec,
      (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
  struct timeval tv[2] = {{1400000000, 250000}, {1400000001, 750000}};
  T(utimes("f", tv));
  s = sget("f");
  say("utimes: atime=%lld.%09ld mtime=%lld.%09ld", (long long)s.st_atim.tv_sec, s.st_atim.tv_nsec,
      (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
  struct utimbuf ub = {1500000000, 1500000001};
  T(utime("f", &ub));
  s = sget("f");
  say("utime: atime=%lld.%09ld mtime=%lld.%09ld", (long long)s.st_atim.tv_sec, s.st_atim.tv_nsec,
      (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
  T(utimensat(AT_FDCWD, "d", t, 0));
  s = sget("d");
  say("dir mtime=%lld.%09ld", (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
}

/* Which calls move mtime and ctime: mtime is set far back first, ctime is
 * compared across a 30 ms pause. */
static int mtime_old(const char* p) {
  struct timespec t[2] = {{1000000000, 0}, {1000000000, 0}};
  return utimensat(AT_FDCWD, p, t, AT_SYMLINK_NOFOLLOW);
}
static void after(const char* what, const char* path, struct stat* before) {
  struct stat s = sget(path);
  say("%s: mtime %s, ctime %s", what, s.st_mtim.tv_sec > 1000000000 ? "advanced" : "kept",
      (s.st_ctim.tv_sec > before->st_ctim.tv_sec ||
       (s.st_ctim.tv_sec == before->st_ctim.tv_sec && s.st_ctim.tv_nsec > before->st_ctim.tv_nsec))
          ? "advanced"
          : "kept");
}
#define TIMED2(what, path, later, call) \
  do {                                  \
    mtime_old(path);                    \
    struct stat b_ = sget(path);        \
    usleep(30000);                      \
    errno = 0;                          \
    long r_ = (long)(call);             \
    rep(#call, r_, errno);              \
    after(what, later, &b_);            \
  } while (0)
#define TIMED(what, path, call)  \
  do {                           \
    mtime_old(path);             \
    struct stat b_ = sget(path); \
    usleep(30000);               \
    errno = 0;                   \
    long r_ = (long)(call);      \
    rep(#call, r_, errno);       \
    after(what, path, &b_);      \
  } while (0)

static void c_times_update(void) {
  T(put("f", "0123456789", 0644));
  T(mkdir("d", 0755));
  int fd = V(open("f", O_RDWR));
  char b[4];
  TIMED("write", "f", write(fd, "x", 1));
  TIMED("pwrite of nothing", "f", pwrite(fd, "", 0, 0));
  TIMED("read", "f", read(fd, b, 2));
  TIMED("truncate smaller", "f", truncate("f", 5));
  TIMED("truncate to the same size", "f", truncate("f", 5));
  TIMED("ftruncate to the same size", "f", ftruncate(fd, 5));
  TIMED("open O_TRUNC", "f", close(open("f", O_WRONLY | O_TRUNC)));
  TIMED("open O_TRUNC of an empty file", "f", close(open("f", O_WRONLY | O_TRUNC)));
  TIMED("fallocate", "f", fallocate(fd, 0, 0, 100));
  TIMED("chmod", "f", chmod("f", 0600));
  TIMED("chown", "f", chown("f", getuid(), getgid()));
  TIMED("link", "f", link("f", "g"));
  TIMED2("rename", "g", "h", rename("g", "h"));
  TIMED("unlink of another name", "f", unlink("h"));
  TIMED("setxattr", "f", setxattr("f", "user.t", "v", 1, 0));
  TIMED("fsync", "f", fsync(fd));
  TIMED("create in a directory", "d", close(open("d/x", O_CREAT | O_WRONLY, 0644)));
  TIMED("write to a file in it", "d", put("d/x", "y", 0644));
  TIMED("mkdir in it", "d", mkdir("d/sub", 0755));
  TIMED("rename in it", "d", rename("d/x", "d/y"));
  TIMED("rename out of it", "d", rename("d/y", "y"));
  TIMED("rename into it", "d", rename("y", "d/y"));
  TIMED("unlink in it", "d", unlink("d/y"));
  TIMED("rmdir in it", "d", rmdir("d/sub"));
  TIMED("symlink in it", "d", symlink("x", "d/l"));
  TIMED("list it", "d", (listdir("d"), 0));
}

static void c_access_cases(void) {
  T(put("f", "x", 0644));
  T(mkdir("d", 0755));
  T(symlink("nowhere", "dangling"));
  T(access("f", F_OK));
  T(access("missing", F_OK));
  T(access("f", R_OK | W_OK));
  T(access("f", X_OK));
  T(chmod("f", 0));
  T(access("f", R_OK));
  T(access("f", W_OK));
  T(access("f", X_OK));
  T(chmod("f", 0100));
  T(access("f", X_OK));
  T(chmod("f", 0001));
  T(access("f", X_OK));
  T(chmod("d", 0));
  T(access("d", X_OK));
  T(access("d", R_OK | W_OK | X_OK));
  T(chmod("d", 0755));
  T(access("f/x", F_OK));
  T(access("f", 8));
  T(faccessat(AT_FDCWD, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));
  T(faccessat(AT_FDCWD, "dangling", F_OK, 0));
  T(faccessat(AT_FDCWD, "f", X_OK, AT_EACCESS));
  T(syscall(SYS_faccessat2, AT_FDCWD, "f", X_OK, AT_EACCESS));
  T(syscall(SYS_faccessat2, AT_FDCWD, "f", F_OK, 0x1));
  T(syscall(SYS_faccessat2, AT_FDCWD, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));
  int fd = V(open("f", O_RDONLY));
  T(syscall(SYS_faccessat2, fd, "", R_OK, AT_EMPTY_PATH));
  T(syscall(SYS_faccessat2, fd, "", R_OK, 0));
  int dfd = V(open("d", O_RDONLY));
  T(faccessat(dfd, "../f", F_OK, 0));
  T(faccessat(999, "f", F_OK, 0));
  T(syscall(SYS_faccessat, AT_FDCWD, "f", 8));
}

static void c_xattr_cases(void) {
  T(put("f", "x", 0644));
  T(mkdir("d", 0755));
  T(symlink("f", "l"));
  T(mkfifo("p", 0644));
  char b[8192];
  T(setxattr("f", "user.a", "v1", 2, 0));
  T(getxattr("f", "user.a", NULL, 0));
  ssize_t n = V(getxattr("f", "user.a", b, sizeof b));
  showbuf("user.a", b, n);
  T(getxattr("f", "user.a", b, 1));
  T(setxattr("f", "user.b", "", 0, 0));
  T(getxattr("f", "user.b", b, sizeof b));
  T(setxattr("f", "user.bin", "a\0b\xff", 4, 0));
  n = V(getxattr("f", "user.bin", b, sizeof b));
  showbuf("user.bin", b, n);
  n = listxattr("f", b, sizeof b);
  ssize_t q = listxattr("f", NULL, 0);
  Y("listxattr size query agrees", q == n);
  /* only user.* names (a host may add security.* ones), sorted */
  char* un[64];
  int k = 0;
  for (ssize_t i = 0; i < n && k < 64; i += (ssize_t)strlen(b + i) + 1)
    if (!strncmp(b + i, "user.", 5)) un[k++] = b + i;
  qsort(un, (size_t)k, sizeof un[0], cmpstr);
  char names[1024] = "";
  for (int i = 0; i < k; ++i) {
    strcat(names, un[i]);
    strcat(names, " ");
  }
  say("user names: %s", names);
  T(listxattr("f", b, 1));
  T(setxattr("f", "user.a", "v2", 2, XATTR_CREATE));
  T(setxattr("f", "user.c", "v", 1, XATTR_REPLACE));
  T(setxattr("f", "user.a", "v2", 2, XATTR_REPLACE));
  n = V(getxattr("f", "user.a", b, sizeof b));
  showbuf("user.a", b, n);
  T(setxattr("f", "user.a", "v3", 2, XATTR_CREATE | XATTR_REPLACE));
  T(setxattr("f", "user.a", "v3", 2, 0x4));
  T(removexattr("f", "user.a"));
  T(removexattr("f", "user.a"));
  T(getxattr("f", "user.a", b, sizeof b));
  T(getxattr("f", "user.zz", b, sizeof b));
  T(setxattr("f", "foo", "v", 1, 0));
  T(getxattr("f", "foo", b, sizeof b));
  T(setxattr("f", "user.", "v", 1, 0));
  T(setxattr("f", "", "v", 1, 0));
  char longname[300];
  memcpy(longname, "user.", 5);
  memset(longname + 5, 'n', 250);
  longname[255] = 0;
  T(setxattr("f", longname, "v", 1, 0));
  longname[255] = 'n';
  longname[256] = 0;
  T(setxattr("f", longname, "v", 1, 0));
  T(getxattr("f", longname, b, sizeof b));
  static char big[70000];
  memset(big, 'v', sizeof big);
  T(setxattr("f", "user.big", big, 65537, 0));
  T(setxattr("f", "user.mid", big, 3000, 0));
  n = V(getxattr("f", "user.mid", b, sizeof b));
  showbuf("user.mid", b, n);
  T(setxattr("missing", "user.a", "v", 1, 0));
  T(lsetxattr("l", "user.a", "v", 1, 0));
  T(setxattr("l", "user.vialink", "v", 1, 0));
  n = V(getxattr("f", "user.vialink", b, sizeof b));
  T(lgetxattr("l", "user.vialink", b, sizeof b));
  T(setxattr("d", "user.d", "dv", 2, 0));
  n = V(getxattr("d", "user.d", b, sizeof b));
  showbuf("user.d", b, n);
  T(setxattr("p", "user.p", "v", 1, 0));
  T(getxattr("p", "user.p", b, sizeof b));
  T(rename("f", "g"));
  n = V(getxattr("g", "user.mid", b, 10));
  T(link("g", "h"));
  T(setxattr("h", "user.h", "hv", 2, 0));
  n = V(getxattr("g", "user.h", b, sizeof b));
  showbuf("user.h via the other name", b, n);
}

static void c_xattr_fd(void) {
  T(put("f", "x", 0644));
  char b[256];
  int fd = V(open("f", O_RDONLY));
  T(fsetxattr(fd, "user.a", "fd", 2, 0));
  ssize_t n = V(fgetxattr(fd, "user.a", b, sizeof b));
  showbuf("user.a", b, n);
  n = V(getxattr("f", "user.a", b, sizeof b));
  n = flistxattr(fd, b, sizeof b);
  int found = 0;
  for (ssize_t i = 0; i < n; i += (ssize_t)strlen(b + i) + 1) found += !strcmp(b + i, "user.a");
  Y("flistxattr lists user.a", found == 1);
  T(fremovexattr(fd, "user.a"));
  T(fgetxattr(fd, "user.a", b, sizeof b));
  T(fremovexattr(fd, "user.a"));
  int pf = V(open("f", O_PATH));
  T(fsetxattr(pf, "user.a", "v", 1, 0));
  T(fgetxattr(pf, "user.a", b, sizeof b));
  T(fgetxattr(999, "user.a", b, sizeof b));
  int p[2];
  T(pipe(p));
  T(fsetxattr(p[0], "user.a", "v", 1, 0));
  T(fgetxattr(p[0], "user.a", b, sizeof b));
  T(unlink("f"));
  T(fsetxattr(fd, "user.after", "u", 1, 0));
  n = V(fgetxattr(fd, "user.after", b, sizeof b));
  showbuf("after unlink", b, n);
}

static void c_locks_posix_ofd(void) {
  T(put("f", "0123456789abcdef", 0644));
  int fd1 = V(open("f", O_RDWR));
  int fd2 = V(open("f", O_RDWR));
  struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  T(fcntl(fd1, F_SETLK, &l));
  struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  T(fcntl(fd2, F_GETLK, &q));
  say("F_GETLK (own lock): type %s", q.l_type == F_UNLCK ? "F_UNLCK" : "locked");
  struct flock o = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 10};
  T(fcntl(fd2, F_OFD_SETLK, &o)); /* an OFD lock conflicts with the process's own POSIX lock */
  struct flock og = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 10};
  T(fcntl(fd2, F_OFD_GETLK, &og));
  say("F_OFD_GETLK: type %s start %lld len %lld pid %s", og.l_type == F_WRLCK ? "F_WRLCK" : og.l_type == F_UNLCK ? "F_UNLCK" : "F_RDLCK",
      (long long)og.l_start, (long long)og.l_len, og.l_pid == getpid() ? "self" : og.l_pid == -1 ? "-1" : "other");
  struct flock o2 = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
  T(fcntl(fd2, F_OFD_SETLK, &o2));
  struct flock pg = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 25, .l_len = 1};
  T(fcntl(fd1, F_GETLK, &pg));
  say("F_GETLK over an OFD lock: type %s start %lld len %lld pid %d", pg.l_type == F_WRLCK ? "F_WRLCK" : pg.l_type == F_UNLCK ? "F_UNLCK" : "F_RDLCK",
      (long long)pg.l_start, (long long)pg.l_len, (int)pg.l_pid);
  struct flock og2 = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
  T(fcntl(fd2, F_OFD_GETLK, &og2));
  say("F_OFD_GETLK of its own lock: type %s", og2.l_type == F_UNLCK ? "F_UNLCK" : "locked");
  int wo = V(open("f", O_WRONLY));
  struct flock r = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 1};
  T(fcntl(wo, F_SETLK, &r));
  int ro = V(open("f", O_RDONLY));
  struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 1};
  T(fcntl(ro, F_SETLK, &w));
  struct flock bad = {.l_type = 99, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
  T(fcntl(fd1, F_SETLK, &bad));
  struct flock badpid = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1, .l_pid = 1};
  T(fcntl(fd1, F_OFD_SETLK, &badpid));
  struct flock badwh = {.l_type = F_RDLCK, .l_whence = 9, .l_start = 0, .l_len = 1};
  T(fcntl(fd1, F_SETLK, &badwh));
  struct flock negs = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = -5, .l_len = 1};
  T(fcntl(fd1, F_SETLK, &negs));
  struct flock negl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = -2};
  T(fcntl(fd1, F_SETLK, &negl)); /* [3, 5) */
  struct flock toeof = {.l_type = F_RDLCK, .l_whence = SEEK_END, .l_start = 0, .l_len = 0};
  T(fcntl(fd1, F_SETLK, &toeof));
  struct flock far = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1000000, .l_len = 1};
  T(fcntl(fd2, F_OFD_SETLK, &far));
  /* closing any descriptor of the file drops the process's POSIX locks */
  int fd3 = V(open("f", O_RDONLY));
  T(close(fd3));
  struct flock again = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  T(fcntl(fd2, F_OFD_SETLK, &again));
  struct flock un = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  T(fcntl(fd2, F_OFD_SETLK, &un));
  T(fcntl(fd1, F_SETLK, &l));
  T(fcntl(999, F_SETLK, &l));
  T(fcntl(fd1, F_SETLKW, &l));
}

static void c_locks_flock(void) {
  T(put("f", "x", 0644));
  int fd1 = V(open("f", O_RDONLY));
  int fd2 = V(open("f", O_RDONLY));
  T(flock(fd1, LOCK_EX));
  T(flock(fd2, LOCK_EX | LOCK_NB));
  T(flock(fd2, LOCK_SH | LOCK_NB));
  T(flock(fd1, LOCK_SH)); /* converts */
  T(flock(fd2, LOCK_SH | LOCK_NB));
  T(flock(fd2, LOCK_EX | LOCK_NB));
  T(flock(fd2, LOCK_UN));
  int d = V(dup(fd1));
  T(flock(d, LOCK_UN)); /* the lock belongs to the open file description */
  T(flock(fd2, LOCK_EX | LOCK_NB));
  T(flock(fd1, LOCK_SH | LOCK_NB));
  T(close(fd2));
  T(flock(fd1, LOCK_EX | LOCK_NB));
  T(flock(fd1, 0));
  T(flock(fd1, LOCK_NB));
  T(flock(fd1, LOCK_SH | LOCK_EX));
  T(flock(999, LOCK_EX));
  int pf = V(open("f", O_PATH));
  T(flock(pf, LOCK_EX));
  T(mkdir("d", 0755));
  int dfd = V(open("d", O_RDONLY));
  T(flock(dfd, LOCK_EX | LOCK_NB));
  /* flock and fcntl locks do not see each other */
  int rw = V(open("f", O_RDWR));
  struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  T(fcntl(rw, F_OFD_SETLK, &l));
  T(flock(fd1, LOCK_EX | LOCK_NB));
  T(fcntl(fd1, F_OFD_SETLK, &l));
}

static void c_copy_sendfile(void) {
  T(put("src", "0123456789abcdef", 0644));
  int in = V(open("src", O_RDONLY));
  int out = V(open("dst", O_CREAT | O_WRONLY, 0644));
  T(sendfile(out, in, NULL, 5));
  T(lseek(in, 0, SEEK_CUR));
  off_t o = 10;
  T(sendfile(out, in, &o, 100));
  say("offset now %lld", (long long)o);
  T(lseek(in, 0, SEEK_CUR));
  T(sendfile(out, in, NULL, 0));
  show("dst");
  int p[2];
  T(pipe(p));
  o = 3;
  T(sendfile(p[1], in, &o, 4));
  char b[32];
  ssize_t n = V(read(p[0], b, sizeof b));
  showbuf("from the pipe", b, n);
  T(write(p[1], "pipe", 4));
  T(sendfile(out, p[0], NULL, 4));
  show("dst");
  T(sendfile(out, out, NULL, 4));
  int wo = V(open("src", O_WRONLY));
  T(sendfile(out, wo, NULL, 4));
  T(sendfile(in, in, NULL, 4));
  o = -1;
  T(sendfile(out, in, &o, 4));
  int ap = V(open("dst", O_WRONLY | O_APPEND));
  o = 0;
  T(sendfile(ap, in, &o, 4));
  show("dst");
  T(mkdir("d", 0755));
  int dfd = V(open("d", O_RDONLY));
  T(sendfile(out, dfd, NULL, 4));
  o = 100;
  T(sendfile(out, in, &o, 4)); /* past the end of the input */
}

static void c_copy_splice_tee(void) {
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  int p1[2], p2[2], p3[2];
  T(pipe(p1));
  T(pipe(p2));
  T(pipe(p3));
  T(write(p1[1], "pipe data", 9));
  loff_t off = 3;
  T(splice(p1[0], NULL, fd, &off, 100, 0));
  say("offset now %lld", (long long)off);
  T(lseek(fd, 0, SEEK_CUR));
  show("f");
  off = 0;
  T(splice(fd, &off, p2[1], NULL, 5, 0));
  T(tee(p2[0], p3[1], 5, 0));
  char b[32];
  ssize_t n = V(read(p3[0], b, sizeof b));
  showbuf("teed", b, n);
  n = V(read(p2[0], b, sizeof b));
  showbuf("still in the first pipe", b, n);
  T(write(p1[1], "xyz", 3));
  T(splice(p1[0], NULL, fd, NULL, 2, 0)); /* at the descriptor's offset, moved */
  T(lseek(fd, 0, SEEK_CUR));
  show("f");
  int g = V(open("g", O_CREAT | O_RDWR, 0644));
  T(splice(fd, NULL, g, NULL, 5, 0));
  T(tee(fd, p3[1], 5, 0));
  off = 0;
  T(splice(p1[0], &off, fd, NULL, 1, 0));
  T(splice(p1[0], NULL, fd, NULL, 1, SPLICE_F_NONBLOCK)); /* one byte left */
  T(splice(p1[0], NULL, fd, NULL, 1, SPLICE_F_NONBLOCK)); /* empty */
  T(tee(p1[0], p3[1], 1, SPLICE_F_NONBLOCK));
  int ap = V(open("f", O_WRONLY | O_APPEND));
  T(write(p1[1], "ap", 2));
  T(splice(p1[0], NULL, ap, NULL, 2, 0));
  show("f");
  T(splice(p1[0], NULL, fd, NULL, 0, 0));
  off = -1;
  T(splice(fd, &off, p2[1], NULL, 1, 0));
  T(write(p1[1], "q", 1));
  T(splice(p1[0], NULL, p2[1], NULL, 1, 0)); /* pipe to pipe */
  n = V(read(p2[0], b, sizeof b));
  showbuf("pipe to pipe", b, n);
}

static void c_copy_file_range_cases(void) {
  T(put("in", "0123456789", 0644));
  int in = V(open("in", O_RDONLY));
  int out = V(open("out", O_CREAT | O_RDWR, 0644));
  T(copy_file_range(in, NULL, out, NULL, 5, 0));
  T(lseek(in, 0, SEEK_CUR));
  T(lseek(out, 0, SEEK_CUR));
  loff_t oi = 8, oo = 20;
  T(copy_file_range(in, &oi, out, &oo, 100, 0));
  say("offsets now %lld %lld", (long long)oi, (long long)oo);
  T(lseek(in, 0, SEEK_CUR));
  show("out");
  T(copy_file_range(in, &oi, out, &oo, 100, 0)); /* at the input's end */
  T(copy_file_range(in, NULL, out, NULL, 0, 0));
  T(copy_file_range(in, NULL, out, NULL, 5, 1));
  loff_t a = 0, b = 2;
  T(copy_file_range(out, &a, out, &b, 4, 0)); /* overlapping */
  a = 0;
  b = 30;
  T(copy_file_range(out, &a, out, &b, 4, 0));
  show("out");
  int ro = V(open("out", O_RDONLY));
  T(copy_file_range(in, NULL, ro, NULL, 1, 0));
  int ap = V(open("out", O_WRONLY | O_APPEND));
  T(copy_file_range(in, NULL, ap, NULL, 1, 0));
  int wo = V(open("in", O_WRONLY));
  T(copy_file_range(wo, NULL, out, NULL, 1, 0));
  T(mkdir("d", 0755));
  int dfd = V(open("d", O_RDONLY));
  T(copy_file_range(dfd, NULL, out, NULL, 1, 0));
  int p[2];
  T(pipe(p));
  T(copy_file_range(in, NULL, p[1], NULL, 1, 0));
  a = -1;
  T(copy_file_range(in, &a, out, NULL, 1, 0));
  static char big[1 << 20];
  for (size_t i = 0; i < sizeof big; ++i) big[i] = (char)(i % 253);
  int bf = V(open("big", O_CREAT | O_RDWR, 0644));
  T(write(bf, big, sizeof big));
  int bc = V(open("bigcopy", O_CREAT | O_RDWR, 0644));
  a = 0;
  ssize_t total = 0, r;
  while ((r = copy_file_range(bf, &a, bc, NULL, sizeof big, 0)) > 0) total += r;
  say("copied %zd", total);
  show("bigcopy");
  stp("bigcopy");
}

static char* map(int fd, size_t len, int prot, int flags) {
  errno = 0;
  void* p = mmap(NULL, len, prot, flags, fd, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void c_mmap_private(void) {
  static char a[8192];
  memset(a, 'a', sizeof a);
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  T(write(fd, a, sizeof a));
  char* p = map(fd, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  say("mmap private: %s", p ? "ok" : ename(errno));
  if (!p) return;
  showbuf("map[0..4]", p, 4);
  p[0] = 'X';
  p[5000] = 'Y';
  showbuf("map[0..4]", p, 4);
  showat("pread(0)", fd, 0, 4);
  showat("pread(5000)", fd, 5000, 1);
  T(msync(p, 8192, MS_SYNC));
  showat("pread(0) after msync", fd, 0, 4);
  T(munmap(p, 8192));
  show("f");
  stp("f");
  int ro = V(open("f", O_RDONLY));
  p = map(ro, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  say("writable private map of a read-only descriptor: %s", p ? "ok" : ename(errno));
  if (p) {
    p[1] = 'Z';
    showbuf("map[0..4]", p, 4);
  }
  showat("pread(0)", ro, 0, 4);
  /* the last page of a file past its end reads as zeros */
  T(ftruncate(fd, 5000));
  char* big = map(fd, 8192, PROT_READ, MAP_PRIVATE);
  say("map longer than the file: %s", big ? "ok" : ename(errno));
  if (big) showbuf("across the end", big + 4998, 4);
}

/* Writes to the file after a private map was made: pages the map has not
 * written see them (Linux shares the page cache until copy-on-write). */
static void c_mmap_private_later_write(void) {
  static char a[8192];
  memset(a, 'a', sizeof a);
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  T(write(fd, a, sizeof a));
  char* p = map(fd, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  say("mmap private: %s", p ? "ok" : ename(errno));
  if (!p) return;
  volatile char c = p[0];
  (void)c;
  T(pwrite(fd, "W", 1, 1));
  showbuf("map[0..4] (read page, then written by pwrite)", p, 4);
  T(pwrite(fd, "V", 1, 4096));
  showbuf("map[4096..4100] (untouched page)", p + 4096, 4);
  p[0] = 'X';
  T(pwrite(fd, "U", 1, 2));
  showbuf("map[0..4] (after copy-on-write)", p, 4);
}

static void c_mmap_shared(void) {
  static char a[8192];
  memset(a, 'a', sizeof a);
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  T(write(fd, a, sizeof a));
  char* p = map(fd, 8192, PROT_READ | PROT_WRITE, MAP_SHARED);
  say("mmap shared: %s", p ? "ok" : ename(errno));
  if (!p) return;
  memcpy(p, "hello", 5);
  showat("pread before msync", fd, 0, 5);
  T(msync(p, 8192, MS_SYNC));
  showat("pread after msync", fd, 0, 5);
  T(pwrite(fd, "WORLD", 5, 100));
  showbuf("map[100..105]", p + 100, 5);
  T(msync(p, 8192, MS_ASYNC));
  T(msync(p, 8192, MS_INVALIDATE));
  T(msync(p, 8192, MS_SYNC | MS_ASYNC));
  T(msync(p + 1, 4096, MS_SYNC));
  T(msync(p, 8192, 0x100));
  memcpy(p + 8000, "tail", 4);
  int fd2 = V(open("f", O_RDONLY));
  char* q = map(fd2, 8192, PROT_READ, MAP_SHARED);
  if (q) showbuf("another map sees it", q + 8000, 4);
  T(munmap(p, 8192));
  T(msync(p, 8192, MS_SYNC));
  showat("pread after munmap", fd, 7998, 8);
  show("f");
  stp("f");
  /* a shared map longer than the file: past the end's page is SIGBUS */
  p = map(fd, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED);
  say("map longer than the file: %s", p ? "ok" : ename(errno));
  if (!p) return;
  T(ftruncate(fd, 5000));
  showbuf("across the end", p + 4998, 4);
  T(ftruncate(fd, 8192));
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    volatile char c = p[3 * 4096];
    (void)c;
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  say("touching past the end: %s", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "no signal");
  T(ftruncate(fd, 4 * 4096));
  memcpy(p + 3 * 4096, "grown", 5);
  showat("pread of the grown part", fd, 3 * 4096, 5);
  T(ftruncate(fd, 4096));
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    volatile char c = p[4096];
    (void)c;
    _exit(0);
  }
  waitpid(pid, &st, 0);
  say("touching a truncated page: %s", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "no signal");
  stp("f");
}

static void c_mmap_errors(void) {
  T(put("f", "0123456789", 0644));
  int wo = V(open("f", O_WRONLY));
  int ro = V(open("f", O_RDONLY));
  int rw = V(open("f", O_RDWR));
  int ap = V(open("f", O_RDWR | O_APPEND));
  say("mmap(O_WRONLY, read, shared): %s", map(wo, 4096, PROT_READ, MAP_SHARED) ? "ok" : ename(errno));
  say("mmap(O_RDONLY, write, shared): %s", map(ro, 4096, PROT_READ | PROT_WRITE, MAP_SHARED) ? "ok" : ename(errno));
  say("mmap(O_RDONLY, read, shared): %s", map(ro, 4096, PROT_READ, MAP_SHARED) ? "ok" : ename(errno));
  say("mmap(len 0): %s", map(rw, 0, PROT_READ, MAP_SHARED) ? "ok" : ename(errno));
  say("mmap(O_APPEND, write, shared): %s", map(ap, 4096, PROT_READ | PROT_WRITE, MAP_SHARED) ? "ok" : ename(errno));
  errno = 0;
  say("mmap(offset 1): %s", mmap(NULL, 4096, PROT_READ, MAP_SHARED, rw, 1) != MAP_FAILED ? "ok" : ename(errno));
  errno = 0;
  say("mmap(offset far past the end): %s",
      mmap(NULL, 4096, PROT_READ, MAP_SHARED, rw, 1 << 30) != MAP_FAILED ? "ok" : ename(errno));
  T(mkdir("d", 0755));
  int dfd = V(open("d", O_RDONLY));
  say("mmap(directory): %s", map(dfd, 4096, PROT_READ, MAP_PRIVATE) ? "ok" : ename(errno));
  int pf = V(open("f", O_PATH));
  say("mmap(O_PATH): %s", map(pf, 4096, PROT_READ, MAP_PRIVATE) ? "ok" : ename(errno));
  int p[2];
  T(pipe(p));
  say("mmap(pipe): %s", map(p[0], 4096, PROT_READ, MAP_PRIVATE) ? "ok" : ename(errno));
  say("mmap(bad fd): %s", map(999, 4096, PROT_READ, MAP_PRIVATE) ? "ok" : ename(errno));
  say("mmap(no type): %s", map(rw, 4096, PROT_READ, 0) ? "ok" : ename(errno));
  char* m = map(ro, 4096, PROT_READ, MAP_SHARED);
  if (m) {
    T(mprotect(m, 4096, PROT_READ | PROT_WRITE));
    T(mprotect(m, 4096, PROT_READ | PROT_EXEC));
  }
  char* w = map(rw, 4096, PROT_READ, MAP_SHARED);
  if (w) T(mprotect(w, 4096, PROT_READ | PROT_WRITE));
  T(close(rw));
  if (w) {
    w[0] = 'M'; /* the map outlives its descriptor */
    T(munmap(w, 4096));
  }
  show("f");
}

/* Names and paths past the limits. */
static void c_bad_paths(void) {
  static char p[PATH_MAX + 64];
  memset(p, 'a', sizeof p - 1);
  p[sizeof p - 1] = 0;
  for (int i = 200; i < PATH_MAX; i += 201) p[i] = '/';
  T(open(p, O_RDONLY));
  T(open(p, O_CREAT | O_WRONLY, 0644));
  struct stat s;
  T(stat(p, &s));
  T(mkdir(p, 0755));
  T(unlink(p));
  T(rmdir(p));
  T(rename(p, "x"));
  T(put("f", "x", 0644));
  T(rename("f", p));
  T(link("f", p));
  T(symlink("f", p));
  T(chmod(p, 0644));
  T(truncate(p, 0));
  T(access(p, F_OK));
  T(setxattr(p, "user.a", "v", 1, 0));
  char b[16];
  T(readlink(p, b, sizeof b));
  T(chdir(p));
  struct statfs sf;
  T(statfs(p, &sf));
  /* a component of 256 and of 255 */
  char n256[260], n255[260];
  memset(n256, 'n', 256);
  n256[256] = 0;
  memset(n255, 'n', 255);
  n255[255] = 0;
  T(open(n256, O_CREAT | O_WRONLY, 0644));
  T(open(n256, O_RDONLY));
  T(mkdir(n256, 0755));
  T(stat(n256, &s));
  T(symlink("f", n256));
  T(rename("f", n256));
  T(open(n255, O_CREAT | O_WRONLY, 0644));
  stp(n255);
  T(mkdir("d", 0755));
  char sub[300];
  snprintf(sub, sizeof sub, "d/%s", n256);
  T(mkdir(sub, 0755));
  snprintf(sub, sizeof sub, "d/%s/x", n256);
  T(open(sub, O_RDONLY));
  listdir(".");
  /* a path of 4095 characters is fine; 4096 is not */
  static char ok[PATH_MAX + 8];
  size_t k = 0;
  while (k + 2 < PATH_MAX - 2) {
    ok[k++] = '.';
    ok[k++] = '/';
  }
  while (k < PATH_MAX - 2) ok[k++] = '/';
  ok[k++] = 'f';
  ok[k] = 0;
  say("path length %zu", strlen(ok));
  T(put(n255, "y", 0644));
  T(put("f", "y", 0644));
  T(open(ok, O_RDONLY));
  memmove(ok + 1, ok, strlen(ok) + 1);
  ok[0] = '/';
  memmove(ok + 1, ok, strlen(ok) + 1);
  say("path length %zu", strlen(ok));
  T(open(ok + 1, O_RDONLY));
  T(open(ok, O_RDONLY));
}

static void c_bad_pointers(void) {
  T(put("f", "0123456789", 0644));
  char* page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(page + 4096, 4096);
  char* gone = page + 4096; /* unmapped */
  const char* volatile null = NULL;
  char* kernel = (char*)0xffff800000000000ull;
  T(open(null, O_RDONLY));
  T(open(gone, O_RDONLY));
  T(open(kernel, O_RDONLY));
  T(mkdir(null, 0755));
  T(unlink(gone));
  T(rename(null, "x"));
  T(rename("f", gone));
  T(symlink(gone, "l"));
  T(symlink("f", null));
  T(stat(null, (struct stat*)page));
  T(stat("f", (struct stat*)gone));
  T(stat("f", (struct stat*)null));
  int fd = V(open("f", O_RDWR));
  T(fstat(fd, (struct stat*)gone));
  T(statx(AT_FDCWD, "f", 0, STATX_BASIC_STATS, (struct statx*)gone));
  T(read(fd, (char*)null, 10));
  T(read(fd, gone, 10));
  T(pread(fd, kernel, 10, 0));
  T(write(fd, gone, 10));
  T(write(fd, (char*)null, 0));
  T(pwrite(fd, kernel, 4, 0));
  struct iovec iov[2] = {{page, 4}, {gone, 4}};
  T(readv(fd, (struct iovec*)gone, 1));
  T(lseek(fd, 0, SEEK_SET));
  T(writev(fd, iov + 1, 1));
  T(readlink("f", gone, 10));
  T(symlink("f", "l"));
  T(readlink("l", gone, 10));
  T(readlink("l", (char*)null, 10));
  T(syscall(SYS_getdents64, open(".", O_RDONLY | O_DIRECTORY), null, 4096));
  T(setxattr("f", "user.a", gone, 4, 0));
  T(setxattr("f", gone, "v", 1, 0));
  T(getxattr("f", "user.a", gone, 4));
  T(utimensat(AT_FDCWD, "f", (struct timespec*)gone, 0));
  T(truncate(null, 0));
  T(access(gone, F_OK));
  T(chmod(null, 0644));
  T(pipe((int*)gone));
  T(fcntl(fd, F_SETLK, (struct flock*)gone));
  loff_t* badoff = (loff_t*)gone;
  int p[2];
  T(pipe(p));
  T(splice(fd, badoff, p[1], NULL, 4, 0));
  T(sendfile(p[1], fd, (off_t*)gone, 4));
  T(copy_file_range(fd, badoff, fd, NULL, 1, 0));
  show("f");
}

/* A write from a buffer whose second page is unmapped: Linux writes the
 * first page and returns the short count. */
static void c_partial_fault_io(void) {
  char* page = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(page, 'p', 8192);
  munmap(page + 4096, 4096);
  int fd = V(open("f", O_CREAT | O_RDWR, 0644));
  T(write(fd, page, 8192));
  stp("f");
  T(lseek(fd, 0, SEEK_SET));
  T(read(fd, page + 4000, 200)); /* crosses into the unmapped page */
  T(lseek(fd, 0, SEEK_CUR));
  struct iovec iov[2] = {{page, 100}, {page + 4096, 100}};
  T(lseek(fd, 0, SEEK_SET));
  T(writev(fd, iov, 2));
  T(readv(fd, iov, 2));
  stp("f");
}

static void c_bad_offsets_counts(void) {
  T(put("f", "0123456789", 0644));
  int fd = V(open("f", O_RDWR));
  static char buf[1 << 16];
  T(pread(fd, buf, 4, -1));
  T(pwrite(fd, "x", 1, -1));
  struct iovec iov = {buf, 4};
  T(preadv(fd, &iov, 1, -1));
  T(pwritev(fd, &iov, 1, -1));
  T(lseek(fd, -1, SEEK_SET));
  T(pread(fd, buf, 10, LLONG_MAX - 5));
  T(pwrite(fd, buf, 10, LLONG_MAX - 5));
  T(read(fd, buf, (size_t)1 << 40)); /* a huge count on a short file */
  T(lseek(fd, 0, SEEK_SET));
  T(read(fd, buf, SIZE_MAX));
  T(read(fd, buf, (size_t)SSIZE_MAX + 1));
  T(pread(fd, buf, (size_t)1 << 40, 0));
  struct iovec huge[2] = {{buf, (size_t)SSIZE_MAX}, {buf, 2}};
  T(readv(fd, huge, 2));
  struct iovec neg = {buf, (size_t)SSIZE_MAX + 1};
  T(readv(fd, &neg, 1));
  T(truncate("f", -1));
  T(fallocate(fd, 0, LLONG_MAX, 2));
  T(syscall(SYS_getdents64, open(".", O_RDONLY | O_DIRECTORY), buf, (size_t)1 << 30));
  T(readlink("f", buf, (size_t)1 << 40));
  T(write(fd, buf, 0));
  T(sendfile(fd, fd, NULL, SIZE_MAX));
  T(copy_file_range(fd, NULL, open("g", O_CREAT | O_WRONLY, 0644), NULL, SIZE_MAX, 0));
  show("f");
  show("g");
}

static void c_dir_cwd(void) {
  char cwd[PATH_MAX];
  T(mkdir("a", 0755));
  T(mkdir("a/b", 0755));
  T(chdir("a/b"));
  say("getcwd: %s", getcwd(cwd, sizeof cwd) ? cwd : ename(errno));
  int up = V(open("..", O_RDONLY | O_DIRECTORY));
  T(fchdir(up));
  say("getcwd: %s", getcwd(cwd, sizeof cwd) ? cwd : ename(errno));
  T(rename("b", "c"));
  T(chdir("c"));
  say("getcwd: %s", getcwd(cwd, sizeof cwd) ? cwd : ename(errno));
  T(put("x", "x", 0644));
  T(chdir("."));
  T(chdir("x"));
  T(chdir("missing"));
  T(fchdir(open("x", O_RDONLY)));
  T(getcwd(cwd, 1) == NULL ? -1 : 0);
  T(unlink("x"));
  T(rmdir("../c")); /* the working directory itself */
  say("getcwd: %s", getcwd(cwd, sizeof cwd) ? cwd : ename(errno));
  T(open("y", O_CREAT | O_WRONLY, 0644));
  T(mkdir("z", 0755));
  T(access(".", F_OK));
  stp(".");
  listdir(".");
  T(chdir(".."));
  say("getcwd: %s", getcwd(cwd, sizeof cwd) ? cwd : ename(errno));
  T(chdir(g_dir));
}

/* ---- files that exist before the sandbox: copied up on the first change ---- */

static void lower_setup(void) {
  if (put("f", "lower data\n", 0640)) goto bad;
  if (setxattr("f", "user.x", "xv", 2, 0)) goto bad;
  struct timespec t[2] = {{1000000000, 0}, {1000000000, 0}};
  if (utimensat(AT_FDCWD, "f", t, 0)) goto bad;
  static char big[100000];
  for (size_t i = 0; i < sizeof big; ++i) big[i] = (char)('a' + i % 26);
  int fd = open("big", O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0 || write(fd, big, sizeof big) != (ssize_t)sizeof big) goto bad;
  close(fd);
  if (mkdir("d", 0755) || put("d/a", "a", 0644) || put("d/b", "b", 0644) || mkdir("d/s", 0700) ||
      put("d/s/t", "t", 0600))
    goto bad;
  if (symlink("f", "l") || put("h1", "linked", 0644) || link("h1", "h2") || mkfifo("p", 0644)) goto bad;
  if (put("x1", "plain", 0644)) goto bad;
  if (mkdir("e", 0755) || mkdir("e/sub", 0755) || put("e/sub/deep", "deep", 0644)) goto bad;
  return;
bad:
  printf("setup of %s failed: %s\n", g_case, strerror(errno));
  exit(2);
}

static void c_lower_copy_up(void) {
  stp("f");
  struct stat s = sget("f");
  Y("mtime as set", s.st_mtim.tv_sec == 1000000000);
  char b[64];
  ssize_t n = V(getxattr("f", "user.x", b, sizeof b));
  showbuf("user.x", b, n);
  int ro = V(open("f", O_RDONLY));
  int fd = V(open("f", O_WRONLY | O_APPEND));
  T(write(fd, "more\n", 5));
  show("f");
  showat("pread through the earlier descriptor", ro, 0, 64);
  fstp("the earlier descriptor", ro);
  stp("f");
  s = sget("f");
  Y("mtime advanced", s.st_mtim.tv_sec > 1000000000);
  n = V(getxattr("f", "user.x", b, sizeof b));
  showbuf("user.x after the copy-up", b, n);
  int bg = V(open("big", O_RDWR));
  T(pwrite(bg, "XYZ", 3, 50000));
  show("big");
  stp("big");
  showat("big[49998..50005]", bg, 49998, 7);
  T(truncate("big", 10));
  show("big");
  T(chmod("d/a", 0600));
  stp("d/a");
  show("d/a");
  T(chown("d/b", getuid(), getgid()));
  stp("d/b");
  struct timespec t[2] = {{1100000000, 5}, {1100000000, 6}};
  T(utimensat(AT_FDCWD, "d/s/t", t, 0));
  s = sget("d/s/t");
  say("d/s/t mtime=%lld.%09ld", (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
  stp("d/s");
  stp("d/s/t");
  T(setxattr("d/s", "user.dir", "dv", 2, 0));
  stp("d/s");
  char lb[16] = {0};
  T(readlink("l", lb, sizeof lb));
  say("readlink(l): %s", lb);
  T(open("l", O_WRONLY | O_APPEND));
  lstp("l");
  T(truncate("d/b", 0));
  stp("d/b");
  T(open("p", O_RDWR));
  stp("p");
}

static void c_lower_listing(void) {
  listdir("d");
  T(unlink("d/a"));
  T(put("d/c", "c", 0644));
  listdir("d");
  T(rmdir("d/s"));
  T(unlink("d/s/t"));
  T(rmdir("d/s"));
  T(access("d/s", F_OK));
  T(mkdir("d/s", 0755));
  listdir("d/s");
  stp("d/s");
  T(rename("d/b", "d/b2"));
  listdir("d");
  T(unlink("f"));
  T(open("f", O_RDONLY));
  T(put("f", "new\n", 0644));
  stp("f");
  show("f");
  char b[16];
  T(getxattr("f", "user.x", b, sizeof b));
  T(unlink("d/b2"));
  T(unlink("d/c"));
  T(rmdir("d/s"));
  listdir("d");
  T(rmdir("d"));
  T(access("d", F_OK));
  T(mkdir("d", 0700));
  listdir("d");
  stp("d");
  T(rmdir("e"));
  T(unlink("e/sub/deep"));
  T(rmdir("e/sub"));
  T(rmdir("e"));
  T(mkdir("e", 0755));
  T(access("e/sub", F_OK));
  T(mkdir("e/sub", 0755));
  listdir("e/sub");
  listdir(".");
}

static void c_lower_hardlink(void) {
  stp("h1");
  stp("h2");
  int fd = V(open("h1", O_WRONLY | O_APPEND));
  T(write(fd, "+", 1));
  show("h1");
  show("h2");
  stp("h2");
  T(link("h1", "h3"));
  stp("h1");
  stp("h2");
  T(unlink("h2"));
  stp("h1");
  stp("h3");
  show("h3");
  T(chmod("h3", 0600));
  stp("h1");
}

static void c_lower_open_fd(void) {
  int ro = V(open("f", O_RDONLY));
  char b[4];
  T(read(ro, b, 2));
  int rw = V(open("f", O_RDWR));
  T(pwrite(rw, "LOWER", 5, 0));
  showat("pread through the read-only descriptor", ro, 0, 64);
  T(read(ro, b, 3));
  showbuf("read continues at its offset", b, 3);
  T(truncate("f", 3));
  fstp("read-only descriptor after truncate", ro);
  showat("pread through the read-only descriptor", ro, 0, 64);
  int big = V(open("big", O_RDONLY));
  char* m = map(big, 8192, PROT_READ, MAP_SHARED);
  say("shared read-only map of a lower file: %s", m ? "ok" : ename(errno));
  T(put("big", "replaced", 0644));
  if (m) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      volatile char c = m[100];
      (void)c;
      _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    say("touching the map in the new last page: %s", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "no signal");
    showbuf("map[0..8]", m, 8);
  }
  int lf = V(open("x1", O_RDONLY));
  T(unlink("x1"));
  showat("pread after unlink", lf, 0, 16);
  fstp("after unlink", lf);
  T(access("x1", F_OK));
}

static void c_lower_rename_dir(void) {
  T(rename("d", "dd"));
  listdir("dd");
  T(access("d", F_OK));
  show("dd/a");
  stp("dd/s");
  T(rename("dd/s", "s2"));
  show("s2/t");
  listdir("dd");
  T(rename("e", "dd/e")); /* a lower directory into another one */
  listdir("dd/e/sub");
  show("dd/e/sub/deep");
  T(put("g", "upper", 0644));
  T(rename("g", "f")); /* an upper file over a lower one */
  show("f");
  char b[16];
  T(getxattr("f", "user.x", b, sizeof b));
  T(put("g", "upper2", 0644));
  T(renameat2(AT_FDCWD, "g", AT_FDCWD, "big", RENAME_EXCHANGE));
  show("g");
  show("big");
  T(renameat2(AT_FDCWD, "s2", AT_FDCWD, "x1", RENAME_EXCHANGE));
  stp("s2");
  stp("x1");
  listdir("x1");
  T(mkdir("x", 0755));
  T(rename("x", "dd")); /* over a non-empty lower directory */
  T(unlink("dd/a"));
  T(unlink("dd/b"));
  T(rename("dd/e", "ee"));
  T(rename("x", "dd")); /* over a lower directory that is now empty */
  listdir("dd");
  listdir(".");
}

/* ---- table ---- */

struct fscase {
  const char* name;
  void (*run)(void);
  void (*setup)(void);
};

#define C(n) {#n, c_##n, NULL}
#define L(n) {#n, c_##n, lower_setup}
static const struct fscase cases[] = {
    C(open_creat_excl),
    C(open_creat_mode),
    C(creat_trunc),
    C(open_trunc),
    C(open_append),
    C(open_directory),
    C(trailing_slash),
    C(open_nofollow),
    C(open_tmpfile),
    C(open_path),
    C(openat_dirfd),
    C(openat2_resolve),
    C(open_errors),
    C(rw_basic),
    C(rw_vectors),
    C(rw_v2),
    C(lseek_basic),
    C(lseek_data_hole),
    C(truncate_grow_shrink),
    C(fallocate_modes),
    C(sync_calls),
    C(stat_family),
    C(statx_fields),
    C(stat_nlink),
    C(statfs_calls),
    C(getdents_listing),
    C(getdents_seek),
    C(getdents_types),
    C(mkdir_cases),
    C(mknod_fifo),
    C(rmdir_cases),
    C(unlink_cases),
    C(rename_cases),
    C(renameat2_flags),
    C(rename_open_file),
    C(link_cases),
    C(symlink_cases),
    C(symlink_loops),
    C(chmod_cases),
    C(chmod_nofollow),
    C(chown_cases),
    C(utimens_cases),
    C(times_update),
    C(access_cases),
    C(xattr_cases),
    C(xattr_fd),
    C(locks_posix_ofd),
    C(locks_flock),
    C(copy_sendfile),
    C(copy_splice_tee),
    C(copy_file_range_cases),
    C(mmap_private),
    C(mmap_private_later_write),
    C(mmap_shared),
    C(mmap_errors),
    C(bad_paths),
    C(bad_pointers),
    C(partial_fault_io),
    C(bad_offsets_counts),
    C(dir_cwd),
    L(lower_copy_up),
    L(lower_listing),
    L(lower_hardlink),
    L(lower_open_fd),
    L(lower_rename_dir),
};
#define NCASES (sizeof cases / sizeof cases[0])

static void closefds(void) {
  for (int fd = 3; fd < 1024; ++fd) close(fd);
}

/* Makes DIR/CASE (or finds it) and enters it. */
static void enter(const char* dir, const char* name) {
  snprintf(g_dir, sizeof g_dir, "%s/%s", dir, name);
  if (mkdir(g_dir, 0755) != 0 && errno != EEXIST) {
    printf("%s: mkdir(%s): %s\n", name, g_dir, strerror(errno));
    exit(2);
  }
  if (chdir(g_dir) != 0) {
    printf("%s: chdir(%s): %s\n", name, g_dir, strerror(errno));
    exit(2);
  }
}

static int run_one(const char* dir, const char* name, int setup, int run) {
  const struct fscase* c = NULL;
  for (size_t i = 0; i < NCASES; ++i)
    if (!strcmp(cases[i].name, name)) c = &cases[i];
  if (!c) {
    printf("unknown case %s\n", name);
    return 2;
  }
  g_case = c->name;
  umask(022);
  closefds();
  enter(dir, c->name);
  if (setup && c->setup) c->setup();
  if (run) {
    c->run();
    say("done");
  }
  fflush(stdout);
  closefds();
  if (chdir("/") != 0) return 2;
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int setup = 1, run = 1, a = 1;
  if (argc > 1 && !strcmp(argv[1], "--list")) {
    for (size_t i = 0; i < NCASES; ++i) printf("%s\n", cases[i].name);
    return 0;
  }
  if (argc > 1 && !strcmp(argv[1], "--setup")) run = 0, ++a;
  else if (argc > 1 && !strcmp(argv[1], "--run")) setup = 0, ++a;
  if (a >= argc) {
    fprintf(stderr, "usage: fsops [--setup|--run] DIR [CASE...] | fsops --list\n");
    return 2;
  }
  const char* dir = argv[a++];
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    printf("mkdir(%s): %s\n", dir, strerror(errno));
    return 2;
  }
  alarm(20);
  int rc = 0;
  if (a == argc)
    for (size_t i = 0; i < NCASES && rc == 0; ++i) rc = run_one(dir, cases[i].name, setup, run);
  for (; a < argc && rc == 0; ++a) rc = run_one(dir, argv[a], setup, run);
  return rc;
}
