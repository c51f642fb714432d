/* A file workload with content checks (the fs-gofer chaos test,
 * tasks_test.cc CrashSurvival.FilesSurviveTwentyGoferKills): in DIR it makes
 * FILES files (each written to a temporary name, then renamed over its final
 * name), then keeps rewriting random ones the same way, and appends one
 * fixed-size record per change to DIR/log (opened O_APPEND), until the file
 * STOP exists (or SECONDS passed). It checks files as it goes, and at the end
 * every file's contents (its latest version) and the log (exactly one record
 * per change, in order: none lost, none twice).
 *   fschurn DIR FILES STOP SECONDS
 * Prints "ok files=N rewrites=M appends=K" or what went wrong (exit 1). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REC 24

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char dir[512];
static int logfd = -1;
static long appends = 0;

/* Contents of file i at version v: a header and bytes from a seed of both. */
static size_t content(int i, int v, char* buf) {
  uint64_t s = (uint64_t)i * 1000003u + (uint64_t)v * 7919u + 1;
  size_t len = 64 + (size_t)(s % 1900);
  int h = snprintf(buf, 64, "file %d version %d\n", i, v);
  for (size_t k = (size_t)h; k < len; ++k) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    buf[k] = (char)('a' + (s >> 59) % 26);
  }
  return len;
}

static int fail(const char* what, int i) {
  printf("FAIL %s (file %d): %s\n", what, i, strerror(errno));
  fflush(stdout);
  exit(1);
}

static void put(int i, int v) {
  char path[600], tmp[600], buf[2048];
  snprintf(path, sizeof path, "%s/f%05d", dir, i);
  snprintf(tmp, sizeof tmp, "%s/.tmp%05d", dir, i);
  size_t len = content(i, v, buf);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("open tmp", i);
  if (write(fd, buf, len) != (ssize_t)len) fail("write", i);
  if (close(fd) != 0) fail("close", i);
  if (rename(tmp, path) != 0) fail("rename", i);
  char rec[64];
  snprintf(rec, sizeof rec, "%010ld %05d %06d\n", appends, i, v % 1000000);
  if (write(logfd, rec, REC) != REC) fail("append", i);
  ++appends;
}

static void check(int i, int v) {
  char path[600], want[2048], got[2100];
  snprintf(path, sizeof path, "%s/f%05d", dir, i);
  size_t len = content(i, v, want);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open to check", i);
  ssize_t n = read(fd, got, sizeof got);
  close(fd);
  if (n != (ssize_t)len || memcmp(got, want, len) != 0) {
    printf("FAIL contents of file %d: want version %d (%zu bytes), got %zd bytes: %.24s\n", i, v, len, n, n > 0 ? got : "");
    exit(1);
  }
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: fschurn DIR FILES STOP SECONDS\n");
    return 2;
  }
  snprintf(dir, sizeof dir, "%s", argv[1]);
  const int files = atoi(argv[2]);
  const char* stop = argv[3];
  const long end = now_ms() + atol(argv[4]) * 1000;
  if (files <= 0 || files > 100000) return 2;
  int* version = calloc((size_t)files, sizeof(int));
  if (!version) return 2;
  char logpath[600];
  snprintf(logpath, sizeof logpath, "%s/log", dir);
  logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logfd < 0) fail("open log", -1);
  for (int i = 0; i < files; ++i) {
    put(i, 0);
    if (i % 97 == 0) check(i, 0);
  }
  long rewrites = 0;
  while (now_ms() < end) {
    for (int k = 0; k < 200; ++k) {
      int i = (int)(next() % (uint64_t)files);
      put(i, ++version[i]);
      ++rewrites;
      if (k % 7 == 0) check(i, version[i]);
    }
    if (access(stop, F_OK) == 0) break;
  }
  for (int i = 0; i < files; ++i) check(i, version[i]);
  close(logfd);
  int fd = open(logpath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open log to check", -1);
  struct stat st;
  if (fstat(fd, &st) != 0) fail("fstat log", -1);
  if (st.st_size != (off_t)appends * REC) {
    printf("FAIL log is %lld bytes, want %ld records of %d (%s)\n", (long long)st.st_size, appends, REC,
           st.st_size > (off_t)appends * REC ? "an append applied twice" : "an append lost");
    return 1;
  }
  char rec[REC];
  for (long k = 0; k < appends; ++k) {
    if (read(fd, rec, REC) != REC) fail("read log", -1);
    if (atol(rec) != k) {
      printf("FAIL log record %ld reads %.10s\n", k, rec);
      return 1;
    }
  }
  close(fd);
  printf("ok files=%d rewrites=%ld appends=%ld\n", files, rewrites, appends);
  return 0;
}
