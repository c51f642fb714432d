/* An allocation-heavy workload with content checks (the mem-broker chaos
 * test, tasks_test.cc CrashSurvival.MemoryChurnsOnAcrossBrokerKills): for a
 * bounded time, mappings of random sizes (4 KiB to 8 MiB) are made, filled
 * with a pattern of their own, checked in full and unmapped, and now and then
 * a forked child checks every live one. Two mappings that shared memory-file
 * pages (a chunk handed out twice) would overwrite each other's patterns.
 * Stops after SECONDS (argv[1], default 3), or earlier once the file
 * argv[2] exists (the test creates it when its drill is over).
 * Prints "ok N mappings" or what went wrong. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 48

static uint64_t rng = 88172645463325252ull;
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

struct slot {
  uint64_t* p;
  size_t len;
  uint64_t tag;
};
static struct slot s[SLOTS];

static void fill(struct slot* x) {
  /* One word per 512 bytes: enough to catch a shared page. */
  for (size_t i = 0; i < x->len / 8; i += 64) x->p[i] = x->tag ^ i;
}
static int check(const struct slot* x) {
  for (size_t i = 0; i < x->len / 8; i += 64) {
    if (x->p[i] != (x->tag ^ i)) {
      printf("corrupt: mapping %llx at word %zu: %llx\n", (unsigned long long)x->tag, i, (unsigned long long)x->p[i]);
      return 0;
    }
  }
  return 1;
}

int main(int argc, char** argv) {
  const long end = now_ms() + (argc > 1 ? atol(argv[1]) : 3) * 1000;
  const char* stop_file = argc > 2 ? argv[2] : NULL;
  long made = 0;
  uint64_t tags = 1;
  for (long round = 0; now_ms() < end; ++round) {
    if (stop_file && round % 256 == 0 && access(stop_file, F_OK) == 0) break;
    struct slot* x = &s[next() % SLOTS];
    if (x->p) {
      if (!check(x)) return 1;
      if (munmap(x->p, x->len) != 0) {
        perror("munmap");
        return 1;
      }
      x->p = NULL;
      continue;
    }
    const size_t sizes[] = {4096, 65536, 1 << 20, 3 << 20, 8 << 20};
    x->len = sizes[next() % 5];
    x->p = mmap(NULL, x->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (x->p == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    x->tag = (tags++ << 20) ^ 0x5a5a5a5a5a5aull;
    fill(x);
    ++made;
    if (made % 500 == 0) {
      pid_t c = fork();
      if (c == 0) {
        for (int i = 0; i < SLOTS; ++i) {
          if (s[i].p && !check(&s[i])) _exit(1);
        }
        _exit(0);
      }
      int st = 0;
      waitpid(c, &st, 0);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("a forked child found corruption\n");
        return 1;
      }
    }
  }
  for (int i = 0; i < SLOTS; ++i) {
    if (s[i].p && !check(&s[i])) return 1;
  }
  printf("ok %ld mappings\n", made);
  return 0;
}
