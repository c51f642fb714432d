/* Runs inside each contender (native, runsc do, bulkhead do) and prints the
 * per-call cost of a few system calls, measured with CLOCK_MONOTONIC. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 2000;
  const char* file = argc > 2 ? argv[2] : "/etc/os-release";
  char buf[4096];
  double t0 = now_ns();
  for (long i = 0; i < n; ++i) syscall(SYS_getpid);
  double t1 = now_ns();
  for (long i = 0; i < n; ++i) {
    int fd = open(file, O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    close(fd);
  }
  double t2 = now_ns();
  int fd = open(file, O_RDONLY);
  if (fd < 0) { perror("open"); return 1; }
  for (long i = 0; i < n; ++i) {
    if (pread(fd, buf, sizeof(buf), 0) < 0) { perror("pread"); return 1; }
  }
  double t3 = now_ns();
  printf("getpid %.1f\nopen_close %.1f\nread_4k %.1f\n", (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n);
  return 0;
}
