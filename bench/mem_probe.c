/* Runs inside each contender (native, runsc do, bulkhead do) and prints the
 * cost of memory operations, measured with CLOCK_MONOTONIC, one
 * `figure value` line each (nanoseconds):
 *   mmap_touch_munmap_4k  a 4 KiB private anonymous mapping, one store, munmap
 *   touch_per_page        1 MiB mapped, every page written once, per page
 *                         (the map and unmap included, spread over 256 pages)
 *   brk_grow_64k          the break raised by 64 KiB and every new page written
 *   fork_exit_200m        fork of a process with 200 MiB resident, the child
 *                         writes one byte and exits, the parent waits
 *   cow_write_per_page    after such a fork, the child writes every page of
 *                         the 200 MiB (copy-on-write), per page
 *   mem_bench_probe [iterations]   (default 2000) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

#define RESIDENT (200L << 20)

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 2000;
  if (n < 10) n = 10;

  double t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    volatile char* m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    m[0] = 1;
    if (munmap((void*)m, 4096) != 0) { perror("munmap"); return 1; }
  }
  double t1 = now_ns();

  long nt = n / 10;
  for (long i = 0; i < nt; ++i) {
    volatile char* m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    for (long off = 0; off < (1 << 20); off += 4096) m[off] = 1;
    if (munmap((void*)m, 1 << 20) != 0) { perror("munmap"); return 1; }
  }
  double t2 = now_ns();

  /* brk: grow by 64 KiB steps, write each new page; then give it back. */
  long nb = n / 10;
  char* base = sbrk(0);
  if (base == (void*)-1) { perror("sbrk"); return 1; }
  double t3 = now_ns();
  for (long i = 0; i < nb; ++i) {
    volatile char* p = sbrk(64 << 10);
    if (p == (void*)-1) { perror("sbrk grow"); return 1; }
    for (long off = 0; off < (64 << 10); off += 4096) p[off] = 1;
  }
  double t4 = now_ns();
  if (brk(base) != 0) { perror("brk shrink"); return 1; }

  /* fork of a process with 200 MiB resident. */
  char* r = mmap(NULL, RESIDENT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (r == MAP_FAILED) { perror("mmap 200 MiB"); return 1; }
  memset(r, 7, RESIDENT);
  int nf = 10;
  double t5 = now_ns();
  for (int i = 0; i < nf; ++i) {
    pid_t c = fork();
    if (c < 0) { perror("fork"); return 1; }
    if (c == 0) {
      r[12345] = 2;
      _exit(r[0] == 7 ? 0 : 1);
    }
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "fork child failed\n");
      return 1;
    }
    r[12345] = 7; /* the parent writes too: its copy-on-write ends */
  }
  double t6 = now_ns();

  /* Copy-on-write: the child rewrites every page; the parent's stay. */
  int cw[2];
  if (pipe(cw) != 0) { perror("pipe"); return 1; }
  pid_t c = fork();
  if (c < 0) { perror("fork"); return 1; }
  if (c == 0) {
    double a = now_ns();
    for (long off = 0; off < RESIDENT; off += 4096) r[off] = 9;
    double b = now_ns();
    double per = (b - a) / (RESIDENT / 4096);
    if (write(cw[1], &per, sizeof per) != sizeof per) _exit(1);
    _exit(0);
  }
  double per_page = 0;
  if (read(cw[0], &per_page, sizeof per_page) != sizeof per_page) { fprintf(stderr, "cow child failed\n"); return 1; }
  int st;
  waitpid(c, &st, 0);
  for (long off = 0; off < RESIDENT; off += 4096) {
    if (r[off] != 7) { fprintf(stderr, "the child's write reached the parent at %ld\n", off); return 1; }
  }

  printf("mmap_touch_munmap_4k %.1f\ntouch_per_page %.1f\nbrk_grow_64k %.1f\nfork_exit_200m %.1f\n"
         "cow_write_per_page %.1f\n",
         (t1 - t0) / n, (t2 - t1) / nt / 256, (t4 - t3) / nb, (t6 - t5) / nf, per_page);
  return 0;
}
