/* Random arguments for every system call number (implemented or not),
 * thrown from short-lived child processes inside the sandbox for a bounded
 * time. The sandbox's init (this program's parent process) then checks that
 * the sandbox still works: fork, pipe, exec. Prints "usable after N calls". */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static char buf[65536];

static uint64_t arg(void) {
  switch (next() % 12) {
    case 0: return 0;
    case 1: return next() % 8;
    case 2: return (uint64_t)-1;
    case 3: return next();
    case 4: return (uint64_t)buf + next() % 4096;
    case 5: return (uint64_t)buf;
    case 6: return 0xffffffffff600000ull;        /* vsyscall page */
    case 7: return 0xffff800000000000ull;        /* kernel half */
    case 8: return 0x1000;                       /* unmapped low page */
    case 9: return next() % 65536;
    case 10: return (uint64_t)&arg;              /* read-only code */
    default: return 1ull << (next() % 64);
  }
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int skip(long nr) {
  /* Calls that end the fuzzing child at once teach nothing new. */
  return nr == SYS_exit || nr == SYS_exit_group || nr == SYS_rt_sigreturn || nr == SYS_pause ||
         nr == SYS_vfork;
}

static void fuzz_child(uint64_t seed, long* counter) {
  rng = seed | 1;
  int devnull = open("/dev/null", O_RDWR);
  dup2(devnull, 1);
  dup2(devnull, 2);
  setpgid(0, 0);
  const pid_t me = getpid();
  for (int i = 0; i < 2000; ++i) {
    long nr = (long)(next() % 460);
    if (skip(nr)) continue;
    syscall(nr, arg(), arg(), arg(), arg(), arg(), arg());
    __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
    if (getpid() != me) _exit(0); /* a successful fork/clone: the copy leaves */
  }
  _exit(0);
}

int main(int argc, char** argv) {
  const long budget_ms = argc > 1 ? atol(argv[1]) : 3000;
  for (int s = 1; s < 32; ++s) signal(s, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);
  /* A shared counter: the children report how many calls they made. */
  long* counter = (long*)syscall(SYS_mmap, 0, 4096, 3, 0x21 /* MAP_SHARED|MAP_ANONYMOUS */, -1, 0);
  if ((long)counter < 0) return 1;
  const long end = now_ms() + budget_ms;
  /* The seed is printed, and taken from argv[2] when given, so that a run
   * that broke the sandbox can be replayed. */
  uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)now_ms() * 2654435761u;
  printf("seed %llu\n", (unsigned long long)seed);
  fflush(stdout);
  int children = 0;
  while (now_ms() < end) {
    pid_t c = fork();
    if (c < 0) return 2;
    if (c == 0) fuzz_child(seed + (uint64_t)children * 7919, counter);
    ++children;
    const long deadline = now_ms() + 200;
    for (;;) {
      pid_t r = waitpid(-1, NULL, WNOHANG);
      if (r == c) break;
      if (now_ms() > deadline) {
        kill(-c, SIGKILL);
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
        break;
      }
      struct timespec ts = {0, 2000000};
      nanosleep(&ts, NULL);
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
  /* Leftovers of forks made by the fuzzing calls. */
  kill(-1, SIGKILL);
  while (wait(NULL) > 0) {
  }
  /* Still usable? */
  int p[2];
  if (pipe(p) != 0) return 3;
  pid_t c = fork();
  if (c == 0) {
    dup2(p[1], 1);
    execl("/bin/busybox", "busybox", "echo", "alive", (char*)NULL);
    _exit(127);
  }
  close(p[1]);
  char out[16] = {0};
  ssize_t n = read(p[0], out, sizeof out - 1);
  int st = 0;
  waitpid(c, &st, 0);
  if (n != 6 || strcmp(out, "alive\n") != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    printf("not usable: read %zd '%s' status %d\n", n, out, st);
    return 4;
  }
  printf("usable after %ld calls from %d children\n", *counter, children);
  return 0;
}
