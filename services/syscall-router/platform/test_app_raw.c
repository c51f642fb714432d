// A freestanding static test program (no libc) for the platform tests: every
// system call it makes is one the test chose, with the `syscall` instruction
// written out here. argv[1] picks what it does; results go to fd 1 as text.
//
// Built by a genrule with -nostdlib -static -fno-pie (see BUILD.bazel).

typedef unsigned long u64;
typedef long i64;

#define SYS_write 1
#define SYS_mmap 9
#define SYS_getpid 39
#define SYS_exit_group 231
#define SYS_openat 257
#define SYS_arch_prctl 158
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define AT_FDCWD (-100)
// Not a Linux system call: the test kernel records rdi as the address to
// resume at after a fault.
#define SYS_TEST_SET_RECOVERY 1000

static inline i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
  register i64 r10 __asm__("r10") = d;
  register i64 r8 __asm__("r8") = e;
  register i64 r9 __asm__("r9") = f;
  i64 ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
static inline i64 sys1(i64 n, i64 a) { return sys6(n, a, 0, 0, 0, 0, 0); }
static inline i64 sys3(i64 n, i64 a, i64 b, i64 c) { return sys6(n, a, b, c, 0, 0, 0); }

// gcc may emit calls to these even with -ffreestanding.
void* memset(void* d, int c, unsigned long n) {
  unsigned char* p = d;
  while (n--) *p++ = (unsigned char)c;
  return d;
}
void* memcpy(void* d, const void* s, unsigned long n) {
  unsigned char* p = d;
  const unsigned char* q = s;
  while (n--) *p++ = *q++;
  return d;
}

static u64 slen(const char* s) {
  u64 n = 0;
  while (s[n]) n++;
  return n;
}
static int seq(const char* a, const char* b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}
static __attribute__((noreturn)) void exit_group(i64 code) {
  for (;;) sys1(SYS_exit_group, code);
}

// Output is collected in a buffer and written with one write(2) per line.
static char line[256];
static u64 line_len;
static void put(const char* s) {
  while (*s && line_len < sizeof line) line[line_len++] = *s++;
}
static void put_dec(i64 v) {
  char buf[24];
  int n = 0;
  u64 u = v < 0 ? (u64)(-v) : (u64)v;
  do buf[n++] = (char)('0' + u % 10), u /= 10; while (u);
  if (v < 0) buf[n++] = '-';
  while (n) {
    char c[2] = {buf[--n], 0};
    put(c);
  }
}
static void put_hex(u64 v) {
  char buf[17];
  int n = 0;
  do buf[n++] = "0123456789abcdef"[v & 15], v >>= 4; while (v);
  put("0x");
  while (n) {
    char c[2] = {buf[--n], 0};
    put(c);
  }
}
static void flush(void) {
  put("\n");
  sys3(SYS_write, 1, (i64)line, (i64)line_len);
  line_len = 0;
}
static u64 parse_u64(const char* s) {
  u64 v = 0;
  if (s[0] == '0' && s[1] == 'x') {
    for (s += 2; *s; s++) v = v * 16 + (u64)(*s <= '9' ? *s - '0' : (*s | 32) - 'a' + 10);
  } else {
    for (; *s; s++) v = v * 10 + (u64)(*s - '0');
  }
  return v;
}

__attribute__((noreturn, used)) void recovered(i64 sig, u64 addr) {
  put("recovered sig=");
  put_dec(sig);
  put(" addr=");
  put_hex(addr);
  flush();
  exit_group(0);
}

static u64 tls_block[4] = {0, 0x1234abcd, 0, 0};

__attribute__((noreturn, used)) void app_main(u64* sp) {
  const i64 argc = (i64)sp[0];
  char** argv = (char**)(sp + 1);
  const char* mode = argc > 1 ? argv[1] : "";

  if (seq(mode, "getpid")) {
    put("getpid=");
    put_dec(sys1(SYS_getpid, 0));
    flush();
    exit_group(0);
  }
  if (seq(mode, "write")) {
    const char msg[] = "hello from the stub\n";
    i64 r = sys3(SYS_write, 1, (i64)msg, (i64)slen(msg));
    exit_group(r == (i64)slen(msg) ? 0 : 1);
  }
  if (seq(mode, "openat")) {
    put("openat=");
    put_dec(sys6(SYS_openat, AT_FDCWD, (i64) "/etc/passwd", 0, 0, 0, 0));
    flush();
    exit_group(0);
  }
  if (seq(mode, "exit")) exit_group(37);
  if (seq(mode, "mmap")) {
    i64 p = sys6(SYS_mmap, 0, 8192, 3 /* RW */, 0x22 /* PRIVATE|ANON */, -1, 0);
    if (p < 0 && p > -4096) {
      put("mmap failed ");
      put_dec(p);
      flush();
      exit_group(1);
    }
    unsigned char* m = (unsigned char*)p;
    u64 sum = 0;
    for (u64 i = 0; i < 8192; i++) m[i] = (unsigned char)(i * 7);
    for (u64 i = 0; i < 8192; i++) sum += m[i];
    put("mmap=");
    put_hex((u64)p);
    put(" sum=");
    put_dec((i64)sum);
    flush();
    exit_group(0);
  }
  if (seq(mode, "shared") && argc > 2) {
    // argv[2]: address of a page the test mapped from a memfd. Echo the
    // string there, then answer at +64.
    char* page = (char*)parse_u64(argv[2]);
    put("shared read: ");
    put(page);
    flush();
    memcpy(page + 64, "pong", 5);
    exit_group(0);
  }
  if (seq(mode, "fault")) {
    sys1(SYS_TEST_SET_RECOVERY, (i64)&recovered);
    *(volatile int*)0 = 1;
    put("fault did not fault");
    flush();
    exit_group(1);
  }
  if (seq(mode, "loop") && argc > 2) {
    const u64 n = parse_u64(argv[2]);
    u64 bad = 0;
    for (u64 i = 0; i < n; i++) bad += sys1(SYS_getpid, 0) != 4242;
    exit_group(bad == 0 ? 0 : 1);
  }
  if (seq(mode, "fsbase")) {
    i64 r = sys6(SYS_arch_prctl, ARCH_SET_FS, (i64)tls_block, 0, 0, 0, 0);
    u64 via_fs;
    __asm__ volatile("mov %%fs:8, %0" : "=r"(via_fs));
    u64 got = 0;
    i64 r2 = sys6(SYS_arch_prctl, ARCH_GET_FS, (i64)&got, 0, 0, 0, 0);
    put("set=");
    put_dec(r);
    put(" fs:8=");
    put_hex(via_fs);
    put(" get=");
    put_dec(r2);
    put(got == (u64)tls_block ? " same" : " different");
    flush();
    exit_group(0);
  }
  if (seq(mode, "vsyscall")) {
    // time(NULL) through the legacy vsyscall page: the host kernel emulates
    // it without a ptrace system-call stop.
    i64 (*vtime)(u64*) = (i64(*)(u64*))0xffffffffff600400UL;
    i64 t = vtime(0);
    put("vsyscall time=");
    put_dec(t);
    flush();
    exit_group(0);
  }
  if (seq(mode, "int80")) {
    // i386 getpid is 20; in the x86-64 table 20 is writev.
    i64 r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    put("int80=");
    put_dec(r);
    flush();
    exit_group(0);
  }
  // Attacks on the trap platform (trap_platform.h, "Threats").
  // stubcall ADDR NR: a system call made from the address ADDR (the stub's
  // own `syscall` instruction), with argument 0 = 0; prints the result if it
  // comes back.
  if (seq(mode, "stubcall") && argc > 3) {
    u64 addr = parse_u64(argv[2]);
    i64 nr = (i64)parse_u64(argv[3]);
    i64 ret;
    __asm__ volatile("lea 1f(%%rip), %%rcx\n\tpush %%rcx\n\tjmp *%[addr]\n1:"
                     : "=a"(ret)
                     : "a"(nr), "D"(0L), "S"(0L), "d"(0L), [addr] "r"(addr)
                     : "rcx", "r11", "memory");
    put("stubcall=");
    put_dec(ret);
    flush();
    exit_group(0);
  }
  // poke ADDR: writes one byte at ADDR, then (if that did not fault) exits 0.
  if (seq(mode, "poke") && argc > 2) {
    *(volatile unsigned char*)parse_u64(argv[2]) = 0x90;
    exit_group(0);
  }
  // forge ADDR: scribbles over the 4 KiB at ADDR (a trap slot), then makes
  // a system call and prints its result.
  if (seq(mode, "forge") && argc > 2) {
    volatile u64* p = (volatile u64*)parse_u64(argv[2]);
    for (int i = 0; i < 512; ++i) p[i] = 0xdeadbeefcafe0000UL + (u64)i;
    put("forged getpid=");
    put_dec(sys1(SYS_getpid, 0));
    flush();
    exit_group(0);
  }
  if (seq(mode, "spin")) {
    for (;;) __asm__ volatile("" ::: "memory");
  }
  put("unknown mode: ");
  put(mode);
  flush();
  exit_group(2);
}

__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  xor %ebp, %ebp\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call app_main\n"
    "  ud2\n");
