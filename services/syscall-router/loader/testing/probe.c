// Prints what the kernel handed this process at exec, for native_test:
// auxv values (getauxval) and argv (hex, so any byte survives). Built three
// ways by genrules: a dynamic PIE, a static ET_EXEC and a static PIE.
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

static void hex(const char* s) {
  for (; *s; ++s) printf("%02x", (unsigned char)*s);
}

int main(int argc, char** argv) {
  printf("AT_PHDR %lx\n", getauxval(AT_PHDR));
  printf("AT_PHNUM %lx\n", getauxval(AT_PHNUM));
  printf("AT_ENTRY %lx\n", getauxval(AT_ENTRY));
  printf("AT_BASE %lx\n", getauxval(AT_BASE));
  printf("AT_EXECFN ");
  hex((const char*)getauxval(AT_EXECFN));
  printf("\n");
  for (int i = 0; i < argc; ++i) {
    printf("ARG ");
    hex(argv[i]);
    printf("\n");
  }
  return 0;
}
