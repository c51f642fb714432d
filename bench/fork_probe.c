/* fork + exit + wait of a process with N MiB of resident private memory
 * (the child writes one byte): what copy-on-write fork saves.
 *   fork_probe [MiB]   (default 200) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double now() { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char** argv) {
  size_t mb = argc > 1 ? atoi(argv[1]) : 200;
  char* p = mmap(NULL, mb << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(p, 1, mb << 20);
  int n = argc > 2 ? atoi(argv[2]) : 10;
  double t0 = now();
  for (int i = 0; i < n; ++i) {
    pid_t c = fork();
    if (c == 0) { p[12345] = 2; _exit(p[0] == 1 ? 0 : 1); }
    int st; waitpid(c, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) { printf("child failed\n"); return 1; }
  }
  double t1 = now();
  printf("fork+exit+wait with %zu MiB resident: %.0f us (parent byte %d)\n", mb, (t1 - t0) / n * 1e6, p[12345]);
  return 0;
}
