/* Runs inside each contender (native, runsc do, bulkhead do) and prints the
 * per-call cost of a few system calls, measured with CLOCK_MONOTONIC. */
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Futex ping-pong between two threads of this process: `turn` says whose
 * move it is (0: main thread, 1: the other thread). A round trip is: hand
 * the turn over, FUTEX_WAKE the other thread, FUTEX_WAIT until it hands the
 * turn back. */
static int turn;
static long futex_rounds;

static long futex(int* addr, int op, int val) {
  return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

static void pass_turn(int to) {
  __atomic_store_n(&turn, to, __ATOMIC_SEQ_CST);
  futex(&turn, FUTEX_WAKE_PRIVATE, 1);
}

static void wait_turn(int mine) {
  int v;
  while ((v = __atomic_load_n(&turn, __ATOMIC_SEQ_CST)) != mine) futex(&turn, FUTEX_WAIT_PRIVATE, v);
}

static void* futex_partner(void* arg) {
  (void)arg;
  for (long i = 0; i < futex_rounds; ++i) {
    wait_turn(1);
    pass_turn(0);
  }
  return NULL;
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
  /* fork + exit + wait: a tenth of the iterations (each is a whole process). */
  long nf = n / 10 > 0 ? n / 10 : 1;
  for (long i = 0; i < nf; ++i) {
    pid_t p = fork();
    if (p < 0) { perror("fork"); return 1; }
    if (p == 0) _exit(0);
    if (waitpid(p, NULL, 0) != p) { perror("waitpid"); return 1; }
  }
  double t4 = now_ns();
  /* Pipe ping-pong between two processes: one byte there and back. */
  int a[2], b[2];
  if (pipe(a) || pipe(b)) { perror("pipe"); return 1; }
  pid_t child = fork();
  if (child == 0) {
    char c;
    close(a[1]);
    close(b[0]);
    while (read(a[0], &c, 1) == 1) write(b[1], &c, 1);
    _exit(0);
  }
  close(a[0]);
  close(b[1]);
  double t5 = now_ns();
  for (long i = 0; i < n; ++i) {
    char c = 'x';
    if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1) { perror("ping-pong"); return 1; }
  }
  double t6 = now_ns();
  close(a[1]);
  waitpid(child, NULL, 0);
  /* clock_gettime(CLOCK_MONOTONIC) through libc: the vDSO when the auxv
   * provides one (AT_SYSINFO_EHDR), a system call otherwise. */
  struct timespec ts;
  volatile long sink = 0; /* keeps the calls */
  double t7 = now_ns();
  for (long i = 0; i < n; ++i) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sink = ts.tv_nsec;
  }
  double t8 = now_ns();
  (void)sink;
  /* Futex ping-pong between two threads. */
  futex_rounds = n;
  turn = 0;
  pthread_t th;
  if (pthread_create(&th, NULL, futex_partner, NULL) != 0) { fprintf(stderr, "pthread_create failed\n"); return 1; }
  double t9 = now_ns();
  for (long i = 0; i < n; ++i) {
    pass_turn(1);
    wait_turn(0);
  }
  double t10 = now_ns();
  pthread_join(th, NULL);
  /* Memory: a 4 KiB anonymous mapping made, written, unmapped; and 64 MiB
   * made, every page written, unmapped (per MiB), a twentieth as often. */
  double t11 = now_ns();
  for (long i = 0; i < n; ++i) {
    volatile char* m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    m[0] = 1;
    munmap((void*)m, 4096);
  }
  double t12 = now_ns();
  long nb = n / 20 > 0 ? n / 20 : 1;
  for (long i = 0; i < nb; ++i) {
    volatile char* m = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    for (long off = 0; off < (64 << 20); off += 4096) m[off] = 1;
    munmap((void*)m, 64 << 20);
  }
  double t13 = now_ns();
  printf("getpid %.1f\nclock_gettime %.1f\nopen_close %.1f\nread_4k %.1f\nfork_wait %.1f\npipe_pingpong %.1f\n"
         "futex_pingpong %.1f\nmmap_4k %.1f\nalloc_per_mib %.1f\n",
         (t1 - t0) / n, (t8 - t7) / n, (t2 - t1) / n, (t3 - t2) / n, (t4 - t3) / nf,
         (t6 - t5) / n, (t10 - t9) / n, (t12 - t11) / n, (t13 - t12) / nb / 64);
  return 0;
}
