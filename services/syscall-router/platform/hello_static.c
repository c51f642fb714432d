// First-light test program: an ordinary C program, linked statically against
// glibc, that the platform tests run inside a stub with a toy syscall handler.
// Nothing in it knows about bulkhead.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  char* buf = malloc(64);
  if (buf == NULL) return 2;
  strcpy(buf, "first light");
  printf("hello, %s: pid %d, argc %d, argv[0] %s\n", buf, (int)getpid(), argc, argv[0]);
  free(buf);
  return 7;
}
