/* Runs inside each contender (native, runsc do, bulkhead do) and prints the
 * cost of file operations in one or more directories, measured with
 * CLOCK_MONOTONIC, one `LABEL.figure value` line each (nanoseconds per
 * operation):
 *   open_close     open(O_RDONLY) and close of a 4 KiB file, by absolute path
 *   stat           stat() of that file, by absolute path
 *   read_4k        pread() of 4 KiB at offset 0 of that file, already read once
 *   seq_read_1m    a 1 MiB file (already read once) read from offset 0 to EOF
 *                  in 64 KiB read()s: per MiB
 *   seq_write_1m   open(O_CREAT|O_TRUNC), 1 MiB written in 64 KiB write()s,
 *                  close: per MiB (no fsync)
 *   create_unlink  open(O_CREAT|O_EXCL) of a new file, close, unlink
 *   getdents_1000  open(O_DIRECTORY) of a directory of 1000 files, getdents64
 *                  (32 KiB buffer) to the end, close
 * For every LABEL=PARENT argument it makes a fresh directory PARENT/fsprobe.XXXXXX,
 * measures there and removes it. An operation that fails prints
 * `LABEL.figure NA what failed: errno N (text)` after the figures and the
 * others go on (the writes and unlinks are checked afterwards, untimed: a
 * wrong size or content, or a file still there, is an NA too); `# ...` lines say what each directory is (statfs type).
 *   fs_probe ITERATIONS LABEL=PARENT [LABEL=PARENT...]
 * Each figure runs ITERATIONS times (a tenth as many for create_unlink, a
 * twentieth for the 1 MiB and getdents figures), at least 5, stopping early
 * once it has run for 200 ms; a few untimed runs come first. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

#define MIB (1 << 20)
#define CHUNK (64 << 10)
#define NFILES 1000
#define BUDGET_NS 200e6

static char dir[4096], small[4200], big[4200], wfile[4200], sub[4200];
static char chunk[CHUNK]; /* what is written */
static char rbuf[CHUNK];  /* what is read */
static char last_stamp;   /* what op_seq_write_1m put first in every chunk, last time */
static long created_last; /* the number of op_create_unlink's last file */
static char dents[32 << 10];
static char failure[8192]; /* why the current figure failed */
static char notes[65536];  /* NA lines, printed after the figures */

static int fail(const char* what, const char* path) {
  int e = errno;
  snprintf(failure, sizeof failure, "%s(%s): errno %d (%s)", what, path, e, strerror(e));
  return -1;
}

static int failf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(failure, sizeof failure, fmt, ap);
  va_end(ap);
  return -1;
}

/* One operation per figure: 0, or -1 with `failure` set. */
typedef int (*op_fn)(long i);

static int fd_small = -1, fd_big = -1;

static int op_open_close(long i) {
  (void)i;
  int fd = open(small, O_RDONLY);
  if (fd < 0) return fail("open", small);
  if (close(fd) != 0) return fail("close", small);
  return 0;
}

static int op_stat(long i) {
  (void)i;
  struct stat st;
  if (stat(small, &st) != 0) return fail("stat", small);
  if (st.st_size != 4096) return failf("stat(%s): size %lld, want 4096", small, (long long)st.st_size);
  return 0;
}

static int op_read_4k(long i) {
  (void)i;
  ssize_t n = pread(fd_small, rbuf, 4096, 0);
  if (n < 0) return fail("pread", small);
  if (n != 4096) return failf("pread(%s): %zd bytes, want 4096", small, n);
  return 0;
}

static int op_seq_read_1m(long i) {
  (void)i;
  if (lseek(fd_big, 0, SEEK_SET) != 0) return fail("lseek", big);
  long total = 0;
  for (;;) {
    ssize_t n = read(fd_big, rbuf, CHUNK);
    if (n < 0) return fail("read", big);
    if (n == 0) break;
    total += n;
  }
  if (total != MIB) return failf("read(%s): %ld bytes to EOF, want %d", big, total, MIB);
  return 0;
}

static int op_seq_write_1m(long i) {
  last_stamp = (char)('a' + i % 26);
  chunk[0] = last_stamp;
  int fd = open(wfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return fail("open(O_CREAT|O_TRUNC)", wfile);
  for (long off = 0; off < MIB; off += CHUNK) {
    ssize_t n = write(fd, chunk, CHUNK);
    if (n < 0) {
      fail("write", wfile);
      close(fd);
      return -1;
    }
    if (n != CHUNK) {
      close(fd);
      return failf("write(%s): %zd bytes, want %d", wfile, n, CHUNK);
    }
  }
  if (close(fd) != 0) return fail("close", wfile);
  return 0;
}

static int op_create_unlink(long i) {
  char p[4200];
  created_last = i;
  snprintf(p, sizeof p, "%s/c%ld", dir, i);
  int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return fail("open(O_CREAT|O_EXCL)", p);
  if (close(fd) != 0) return fail("close", p);
  if (unlink(p) != 0) return fail("unlink", p);
  return 0;
}

static int op_getdents_1000(long i) {
  (void)i;
  int fd = open(sub, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return fail("open(O_DIRECTORY)", sub);
  long entries = 0;
  for (;;) {
    long n = syscall(SYS_getdents64, fd, dents, sizeof dents);
    if (n < 0) {
      fail("getdents64", sub);
      close(fd);
      return -1;
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      unsigned short reclen;
      memcpy(&reclen, dents + off + 16, sizeof reclen); /* d_ino, d_off, then d_reclen */
      if (reclen == 0) {
        close(fd);
        return failf("getdents64(%s): a zero d_reclen", sub);
      }
      off += reclen;
      ++entries;
    }
  }
  if (close(fd) != 0) return fail("close", sub);
  if (entries != NFILES + 2) return failf("getdents64(%s): %ld entries, want %d", sub, entries, NFILES + 2);
  return 0;
}

/* Checks, untimed, after the figures that leave something behind. */
static int check_written(void) {
  struct stat st;
  if (stat(wfile, &st) != 0) return fail("stat", wfile);
  if (st.st_size != MIB) return failf("stat(%s): size %lld after the writes, want %d", wfile, (long long)st.st_size, MIB);
  int fd = open(wfile, O_RDONLY);
  if (fd < 0) return fail("open", wfile);
  for (long off = 0; off < MIB; off += CHUNK) {
    char b[2];
    if (pread(fd, b, 2, off) != 2 || b[0] != last_stamp || b[1] != 'x') {
      close(fd);
      return failf("%s: wrong data at %ld after the writes", wfile, off);
    }
  }
  close(fd);
  return 0;
}

static int check_unlinked(void) {
  char p[4200];
  snprintf(p, sizeof p, "%s/c%ld", dir, created_last);
  struct stat st;
  if (stat(p, &st) == 0) return failf("stat(%s): still there after unlink", p);
  if (errno != ENOENT) return fail("stat (want ENOENT)", p);
  return 0;
}

/* Times `n` runs of op (after a few untimed ones); prints the figure or
 * keeps an NA note. Returns 0 if it ran. */
static int measure(const char* label, const char* figure, op_fn op, long n, long* next, int (*check)(void)) {
  if (n < 5) n = 5;
  long warm = n / 50 < 2 ? 2 : n / 50;
  for (long i = 0; i < warm; ++i) {
    if (op((*next)++) != 0) goto failed;
  }
  double t0 = now_ns(), t1 = t0;
  long done = 0;
  while (done < n) {
    if (op((*next)++) != 0) goto failed;
    ++done;
    if ((done & 3) == 0 && (t1 = now_ns()) - t0 > BUDGET_NS && done >= 5) break;
  }
  t1 = now_ns();
  if (check && check() != 0) goto failed;
  printf("%s.%s %.1f\n", label, figure, (t1 - t0) / done);
  return 0;
failed:;
  size_t used = strlen(notes);
  snprintf(notes + used, sizeof notes - used, "%s.%s NA %s\n", label, figure, failure);
  return -1;
}

static void note_setup(const char* label, const char* const* figures, int count) {
  for (int k = 0; k < count; ++k) {
    size_t used = strlen(notes);
    snprintf(notes + used, sizeof notes - used, "%s.%s NA setup: %s\n", label, figures[k], failure);
  }
}

/* Writes `size` bytes of chunk to path (created or truncated). */
static int write_file(const char* path, long size) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return fail("open(O_CREAT)", path);
  for (long off = 0; off < size;) {
    long want = size - off < CHUNK ? size - off : CHUNK;
    ssize_t n = write(fd, chunk, want);
    if (n <= 0) {
      fail("write", path);
      close(fd);
      return -1;
    }
    off += n;
  }
  if (close(fd) != 0) return fail("close", path);
  return 0;
}

static int read_all(int fd, const char* path) {
  if (lseek(fd, 0, SEEK_SET) != 0) return fail("lseek", path);
  ssize_t n;
  while ((n = read(fd, rbuf, CHUNK)) > 0) {
  }
  if (n < 0) return fail("read", path);
  return 0;
}

/* Writes path, opens it for reading and reads it once (cached from then on). */
static int open_read_file(const char* path, long size, int* fd) {
  if (write_file(path, size) != 0) return -1;
  if ((*fd = open(path, O_RDONLY)) < 0) return fail("open", path);
  return read_all(*fd, path);
}

static void location(const char* label, const char* parent, long n) {
  static const char* const all[] = {"open_close",    "stat",         "read_4k",      "seq_read_1m",
                                    "seq_write_1m",  "create_unlink", "getdents_1000"};
  const int nall = sizeof all / sizeof all[0];
  struct statfs sf;
  if (statfs(parent, &sf) == 0) {
    size_t used = strlen(notes);
    snprintf(notes + used, sizeof notes - used, "# %s %s f_type 0x%lx\n", label, parent, (unsigned long)sf.f_type);
  }
  snprintf(dir, sizeof dir, "%s/fsprobe.XXXXXX", parent);
  if (!mkdtemp(dir)) {
    fail("mkdtemp", dir);
    note_setup(label, all, nall);
    return;
  }
  snprintf(small, sizeof small, "%s/small", dir);
  snprintf(big, sizeof big, "%s/big", dir);
  snprintf(wfile, sizeof wfile, "%s/written", dir);
  snprintf(sub, sizeof sub, "%s/d", dir);
  long next = 0;

  /* The 4 KiB file: open_close, stat, read_4k. */
  if (open_read_file(small, 4096, &fd_small) != 0) {
    note_setup(label, all, 3);
  } else {
    measure(label, "open_close", op_open_close, n, &next, NULL);
    measure(label, "stat", op_stat, n, &next, NULL);
    measure(label, "read_4k", op_read_4k, n, &next, NULL);
  }
  failure[0] = 0;

  /* The 1 MiB file. */
  if (open_read_file(big, MIB, &fd_big) != 0) {
    note_setup(label, all + 3, 1);
  } else {
    measure(label, "seq_read_1m", op_seq_read_1m, n / 20, &next, NULL);
  }
  failure[0] = 0;
  measure(label, "seq_write_1m", op_seq_write_1m, n / 20, &next, check_written);
  measure(label, "create_unlink", op_create_unlink, n / 10, &next, check_unlinked);

  /* A directory of 1000 files. */
  int made = 0;
  if (mkdir(sub, 0755) != 0) {
    fail("mkdir", sub);
    note_setup(label, all + 6, 1);
  } else {
    char p[4300];
    for (; made < NFILES; ++made) {
      snprintf(p, sizeof p, "%s/f%04d", sub, made);
      int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
      if (fd < 0) {
        fail("open(O_CREAT|O_EXCL)", p);
        break;
      }
      close(fd);
    }
    if (made < NFILES)
      note_setup(label, all + 6, 1);
    else
      measure(label, "getdents_1000", op_getdents_1000, n / 20, &next, NULL);
  }
  failure[0] = 0;

  /* Clean up; a failure here is a note, the figures stand. */
  if (fd_small >= 0) close(fd_small);
  if (fd_big >= 0) close(fd_big);
  fd_small = fd_big = -1;
  char p[4300];
  for (int k = 0; k < made; ++k) {
    snprintf(p, sizeof p, "%s/f%04d", sub, k);
    unlink(p);
  }
  rmdir(sub);
  unlink(small);
  unlink(big);
  unlink(wfile);
  if (rmdir(dir) != 0) {
    fail("rmdir", dir);
    size_t used = strlen(notes);
    snprintf(notes + used, sizeof notes - used, "# %s cleanup: %s\n", label, failure);
  }
}

int main(int argc, char** argv) {
  if (argc < 3 || atol(argv[1]) <= 0) {
    fprintf(stderr, "usage: fs_probe ITERATIONS LABEL=PARENT [LABEL=PARENT...]\n");
    return 2;
  }
  long n = atol(argv[1]);
  memset(chunk, 'x', sizeof chunk);
  last_stamp = 'x';
  for (int a = 2; a < argc; ++a) {
    char label[256];
    const char* eq = strchr(argv[a], '=');
    if (!eq || eq == argv[a] || (size_t)(eq - argv[a]) >= sizeof label) {
      fprintf(stderr, "fs_probe: want LABEL=PARENT, got %s\n", argv[a]);
      return 2;
    }
    memcpy(label, argv[a], eq - argv[a]);
    label[eq - argv[a]] = 0;
    location(label, eq + 1, n);
  }
  fputs(notes, stdout);
  return 0;
}
