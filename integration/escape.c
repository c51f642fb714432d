/* Runs inside `bulkhead do`: raw system calls that would reach the host
 * kernel if the sandbox let them. Prints what each returned. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char** argv) {
/* syscall() returns -1 and sets errno: report -errno like the raw call. */
#define RAW(...) ({ long r_ = syscall(__VA_ARGS__); r_ < 0 ? -(long)errno : r_; })
  long pid = RAW(SYS_getpid);
  long fd = RAW(SYS_openat, AT_FDCWD, argc > 1 ? argv[1] : "/etc/hostname", O_RDONLY);
  long k = RAW(SYS_kill, argc > 2 ? atol(argv[2]) : 1, SIGKILL);
  long s = RAW(SYS_socket, 2, 1, 0);
  printf("getpid=%ld open=%ld kill=%ld socket=%ld\n", pid, fd < 0 ? fd : 0, k, s);
  return 0;
}
