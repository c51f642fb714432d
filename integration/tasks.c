/* Runs natively and inside `bulkhead do`; the two outputs must match.
 * One mode per kernel mechanism: threads and futexes, signals (to threads,
 * from faults, on an alternate stack, with FPU state), fork/wait, pipes,
 * job-control stops, timers, epoll, eventfd, vfork/posix_spawn. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long counter;
static int turn;

static void* adder(void* arg) {
  (void)arg;
  for (int i = 0; i < 20000; ++i) {
    pthread_mutex_lock(&mu);
    ++counter;
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

static void* pong(void* arg) {
  (void)arg;
  for (int i = 0; i < 500; ++i) {
    pthread_mutex_lock(&mu);
    while (turn != 1) pthread_cond_wait(&cv, &mu);
    turn = 0;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

static int threads(void) {
  pthread_t t[8];
  for (int i = 0; i < 8; ++i) pthread_create(&t[i], NULL, adder, NULL);
  for (int i = 0; i < 8; ++i) pthread_join(t[i], NULL);
  printf("counter %ld\n", counter);
  pthread_t p;
  pthread_create(&p, NULL, pong, NULL);
  for (int i = 0; i < 500; ++i) {
    pthread_mutex_lock(&mu);
    turn = 1;
    pthread_cond_signal(&cv);
    while (turn != 0) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
  }
  pthread_join(p, NULL);
  printf("ping-pong done\n");
  return 0;
}

static _Atomic pid_t handled_by;
static _Atomic int worker_ready;
static void on_usr1(int sig) {
  (void)sig;
  handled_by = (pid_t)syscall(SYS_gettid);
}
static _Atomic pid_t worker_tid;
static void* worker(void* arg) {
  (void)arg;
  worker_tid = (pid_t)syscall(SYS_gettid);
  worker_ready = 1;
  while (handled_by == 0) usleep(1000);
  return NULL;
}

static int tsignal(void) {
  signal(SIGUSR1, on_usr1);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  pthread_sigmask(SIG_BLOCK, &s, NULL); /* only the worker may take it */
  while (!worker_ready) usleep(1000);
  pthread_kill(t, SIGUSR1);
  pthread_join(t, NULL);
  printf("delivered to %s\n", handled_by == worker_tid ? "worker" : "someone else");
  return 0;
}

static sigjmp_buf jb;
static _Atomic int on_alt;
static char altstack[65536];
static void on_segv(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  char here;
  on_alt = &here >= altstack && &here < altstack + sizeof altstack;
  printf("SIGSEGV sig=%d addr=%p\n", sig, si->si_addr);
  siglongjmp(jb, 1);
}

static int segv(void) {
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigaction(SIGSEGV, &sa, NULL);
  if (sigsetjmp(jb, 1) == 0) {
    *(volatile int*)16 = 1;
    printf("not reached\n");
  }
  printf("recovered, on alternate stack: %d\n", on_alt);
  return 0;
}

static volatile double fp_in_handler;
static void on_alrm(int sig) {
  (void)sig;
  volatile double x = 1.5;
  for (int i = 0; i < 100; ++i) x = x * 1.0001 + 0.5;
  fp_in_handler = x;
}
static int fpu(void) {
  signal(SIGALRM, on_alrm);
  struct itimerval it = {{0, 2000}, {0, 2000}};
  setitimer(ITIMER_REAL, &it, NULL);
  double acc = 0;
  for (long i = 1; i <= 20000000; ++i) acc += 1.0 / (double)i;
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  printf("harmonic %.9f handler ran: %d\n", acc, fp_in_handler > 0);
  return 0;
}

static int forks(void) {
  long sum = 0;
  for (int i = 0; i < 1000; ++i) {
    pid_t p = fork();
    if (p == 0) _exit(i % 200);
    int st;
    if (waitpid(p, &st, 0) != p) return 1;
    sum += WEXITSTATUS(st);
  }
  printf("1000 forks, status sum %ld\n", sum);
  errno = 0;
  int w = wait(NULL);
  printf("wait with no children: %d errno ECHILD=%d\n", w, errno == ECHILD);
  return 0;
}

static int pipes(void) {
  int a[2], b[2];
  if (pipe(a) || pipe(b)) return 1;
  pid_t p = fork();
  if (p == 0) {
    close(a[1]);
    close(b[0]);
    char c;
    while (read(a[0], &c, 1) == 1) {
      c++;
      write(b[1], &c, 1);
    }
    _exit(0);
  }
  close(a[0]);
  close(b[1]);
  char c = 0;
  for (int i = 0; i < 1000; ++i) {
    write(a[1], &c, 1);
    read(b[0], &c, 1);
  }
  close(a[1]);
  int st;
  waitpid(p, &st, 0);
  printf("pipe ping-pong: %d, child exit %d\n", (unsigned char)c, WEXITSTATUS(st));
  /* a big write completes in full through a 64 KiB pipe */
  if (pipe(a)) return 1;
  p = fork();
  if (p == 0) {
    static char big[1 << 20];
    memset(big, 'x', sizeof big);
    ssize_t n = write(a[1], big, sizeof big);
    _exit(n == (ssize_t)sizeof big ? 0 : 1);
  }
  close(a[1]);
  static char buf[65536];
  long total = 0;
  ssize_t n;
  while ((n = read(a[0], buf, sizeof buf)) > 0) total += n;
  waitpid(p, &st, 0);
  printf("big write: %ld bytes, writer exit %d\n", total, WEXITSTATUS(st));
  /* EPIPE and SIGPIPE */
  if (pipe(a)) return 1;
  close(a[0]);
  signal(SIGPIPE, SIG_IGN);
  errno = 0;
  printf("write to a closed pipe: %zd EPIPE=%d\n", write(a[1], "x", 1), errno == EPIPE);
  return 0;
}

static int stops(void) {
  pid_t p = fork();
  if (p == 0) {
    for (;;) pause();
  }
  int st;
  kill(p, SIGSTOP);
  waitpid(p, &st, WUNTRACED);
  printf("stopped: %d by %d\n", WIFSTOPPED(st), WSTOPSIG(st));
  kill(p, SIGCONT);
  waitpid(p, &st, WCONTINUED);
  printf("continued: %d\n", WIFCONTINUED(st));
  kill(p, SIGTERM);
  waitpid(p, &st, 0);
  printf("terminated: %d by %d\n", WIFSIGNALED(st), WTERMSIG(st));
  /* a busy child is interrupted too */
  p = fork();
  if (p == 0) {
    for (volatile long i = 0;; ++i) {
    }
  }
  usleep(20000);
  kill(p, SIGKILL);
  waitpid(p, &st, 0);
  printf("busy child killed by %d\n", WTERMSIG(st));
  return 0;
}

static _Atomic int ticks;
static void on_tick(int sig) {
  (void)sig;
  ++ticks;
}
static void on_chld(int sig) { (void)sig; }
static int timers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_tick;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 10000}, {0, 10000}};
  setitimer(ITIMER_REAL, &it, NULL);
  while (ticks < 3) pause();
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  printf("ticks >= 3: %d\n", ticks >= 3);
  struct timespec ts = {0, 20000000};
  nanosleep(&ts, NULL);
  /* sigsuspend until a child's SIGCHLD */
  signal(SIGCHLD, on_chld);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGCHLD);
  sigprocmask(SIG_BLOCK, &block, &old);
  pid_t p = fork();
  if (p == 0) _exit(3);
  sigsuspend(&old);
  int st;
  waitpid(p, &st, 0);
  printf("sigsuspend woke, child exit %d\n", WEXITSTATUS(st));
  /* sigtimedwait */
  sigaddset(&block, SIGUSR2);
  sigprocmask(SIG_BLOCK, &block, NULL);
  kill(getpid(), SIGUSR2);
  siginfo_t si;
  struct timespec zero = {1, 0};
  printf("sigtimedwait: %d from self %d\n", sigtimedwait(&block, &si, &zero), si.si_pid == getpid());
  return 0;
}

static int events(void) {
  int p[2];
  if (pipe(p)) return 1;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  struct epoll_event out[4];
  printf("epoll before: %d\n", epoll_wait(ep, out, 4, 10));
  pid_t c = fork();
  if (c == 0) {
    usleep(10000);
    write(p[1], "z", 1);
    _exit(0);
  }
  int n = epoll_wait(ep, out, 4, 5000);
  printf("epoll after: %d data %llu\n", n, (unsigned long long)out[0].data.u64);
  waitpid(c, NULL, 0);
  int efd = eventfd(0, EFD_NONBLOCK);
  uint64_t v = 5;
  write(efd, &v, 8);
  write(efd, &v, 8);
  v = 0;
  read(efd, &v, 8);
  printf("eventfd %llu, then %zd\n", (unsigned long long)v, read(efd, &v, 8));
  struct pollfd pf = {.fd = p[0], .events = POLLIN};
  printf("poll: %d revents %d\n", poll(&pf, 1, 1000), pf.revents);
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(p[0], &rd);
  struct timeval tv = {1, 0};
  printf("select: %d\n", select(p[0] + 1, &rd, NULL, NULL, &tv));
  return 0;
}

static int spawn(void) {
  pid_t p;
  char* argv[] = {"busybox", "sh", "-c", "exit 9", NULL};
  int rc = posix_spawn(&p, "/bin/busybox", NULL, NULL, argv, environ);
  int st;
  waitpid(p, &st, 0);
  printf("posix_spawn rc %d exit %d\n", rc, WEXITSTATUS(st));
  p = vfork();
  if (p == 0) {
    execl("/bin/busybox", "busybox", "true", (char*)NULL);
    _exit(127);
  }
  waitpid(p, &st, 0);
  printf("vfork+exec exit %d\n", WEXITSTATUS(st));
  /* The vfork child shares the parent's memory until it execs. */
  static volatile int seen = 0;
  p = vfork();
  if (p == 0) {
    seen = 42;
    _exit(0);
  }
  waitpid(p, &st, 0);
  printf("vfork child wrote %d\n", seen);
  /* posix_spawn reports a failed exec as its result (through shared memory). */
  char* nargv[] = {"nosuch", NULL};
  rc = posix_spawn(&p, "/nonexistent/program", NULL, NULL, nargv, environ);
  printf("posix_spawn of a missing program: %d (ENOENT %d)\n", rc, ENOENT);
  if (rc == 0) waitpid(p, &st, 0);
  return 0;
}

static int pgroups(void) {
  pid_t me = getpid();
  printf("own group leader: %d\n", getpgrp() == me || getpgrp() > 0);
  pid_t c = fork();
  if (c == 0) {
    setpgid(0, 0);
    for (;;) pause();
  }
  setpgid(c, c);
  int st;
  printf("child group: %d\n", getpgid(c) == c);
  kill(-c, SIGTERM);
  waitpid(c, &st, 0);
  printf("group kill: %d\n", WTERMSIG(st));
  c = fork();
  if (c == 0) _exit(setsid() == getpid() ? 0 : 1);
  waitpid(c, &st, 0);
  printf("setsid in child: %d\n", WEXITSTATUS(st));
  return 0;
}

#include <sys/mman.h>
/* Process-shared futexes through MAP_SHARED memory, and a robust mutex whose
 * owner dies holding it. */
static int shared(void) {
  struct shm {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn;
    pthread_mutex_t robust;
  }* m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 1;
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(&m->mu, &ma);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  pthread_cond_init(&m->cv, &ca);
  pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&m->robust, &ma);
  pid_t c = fork();
  if (c == 0) {
    for (int i = 0; i < 200; ++i) {
      pthread_mutex_lock(&m->mu);
      while (m->turn != 1) pthread_cond_wait(&m->cv, &m->mu);
      m->turn = 0;
      pthread_cond_signal(&m->cv);
      pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_lock(&m->robust);
    _exit(0); /* dies holding it */
  }
  for (int i = 0; i < 200; ++i) {
    pthread_mutex_lock(&m->mu);
    m->turn = 1;
    pthread_cond_signal(&m->cv);
    while (m->turn != 0) pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
  }
  waitpid(c, NULL, 0);
  int rc = pthread_mutex_lock(&m->robust);
  printf("200 cross-process round trips; robust lock after owner death: %s\n",
         rc == EOWNERDEAD ? "EOWNERDEAD" : strerror(rc));
  return 0;
}

#include <sys/timerfd.h>
static _Atomic int timer_hits;
static _Atomic int timer_value_ok;
static void on_timer(int sig, siginfo_t* si, void* uc) {
  (void)sig;
  (void)uc;
  if (si->si_code == SI_TIMER && si->si_value.sival_int == 77) timer_value_ok = 1;
  ++timer_hits;
}
/* POSIX timers (timer_create) and timerfd. */
static int ptimers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_timer;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN, &sa, NULL);
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGRTMIN;
  sev.sigev_value.sival_int = 77;
  timer_t tm;
  if (timer_create(CLOCK_MONOTONIC, &sev, &tm) != 0) { perror("timer_create"); return 1; }
  struct itimerspec its = {{0, 5000000}, {0, 5000000}};
  timer_settime(tm, 0, &its, NULL);
  while (timer_hits < 3) pause();
  struct itimerspec cur;
  timer_gettime(tm, &cur);
  timer_delete(tm);
  printf("timer fired >= 3 times: %d, value delivered: %d, interval %ld ns\n", timer_hits >= 3, timer_value_ok,
         cur.it_interval.tv_nsec);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  struct itimerspec t2 = {{0, 0}, {0, 20000000}};
  timerfd_settime(tfd, 0, &t2, NULL);
  struct pollfd pf = {.fd = tfd, .events = POLLIN};
  int before = poll(&pf, 1, 0);
  uint64_t n = 0;
  ssize_t r = read(tfd, &n, sizeof n); /* blocks ~20 ms */
  printf("timerfd: ready before %d, read %zd, expirations %llu\n", before, r, (unsigned long long)n);
  return 0;
}

/* POSIX shared memory (a file in the /dev/shm tmpfs, mapped MAP_SHARED):
 * a child's stores, read() and pwrite() all see the same bytes. */
static int posixshm(void) {
  char name[64];
  snprintf(name, sizeof name, "/bulkhead-tasks-%d", (int)getpid());
  int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0 || ftruncate(fd, 8192) != 0) { perror("shm"); return 1; }
  char* p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  pid_t c = fork();
  if (c == 0) {
    strcpy(p + 4096, "from the child");
    _exit(0);
  }
  waitpid(c, NULL, 0);
  char buf[32] = {0};
  pread(fd, buf, sizeof buf - 1, 4096);
  printf("mapping: %s, read(): %s\n", p + 4096, buf);
  pwrite(fd, "WRITE", 5, 4096);
  printf("after pwrite, mapping: %.14s\n", p + 4096);
  shm_unlink(name);
  return 0;
}

/* Prints "label: ok" or "label: <strerror>" for a call that returns < 0 on
 * failure (errno read right after the call). */
#define SHOW_ERR(label, expr)                                                   \
  do {                                                                          \
    errno = 0;                                                                  \
    long r_ = (long)(expr);                                                     \
    int e_ = errno;                                                             \
    printf("%s: %s\n", label, r_ < 0 ? strerror(e_) : "ok");                    \
  } while (0)

/* Real-time signals queue (one instance per sigqueue, in order, lowest
 * number first); standard signals do not. */
static int rt_order[32], rt_value[32], rt_n;
static void rt_handler(int sig, siginfo_t* si, void* uc) {
  (void)uc;
  if (rt_n < 32) {
    rt_order[rt_n] = sig;
    rt_value[rt_n] = si->si_value.sival_int;
    rt_n++;
  }
}
static int rtsig(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = rt_handler;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGRTMIN + 2, &sa, NULL);
  sigaction(SIGRTMIN + 1, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN + 1);
  sigaddset(&set, SIGRTMIN + 2);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, &old);
  union sigval v;
  for (int i = 1; i <= 3; ++i) {
    v.sival_int = 20 + i;
    sigqueue(getpid(), SIGRTMIN + 2, v);
  }
  for (int i = 1; i <= 3; ++i) {
    v.sival_int = 10 + i;
    sigqueue(getpid(), SIGRTMIN + 1, v);
  }
  for (int i = 1; i <= 3; ++i) {
    v.sival_int = 30 + i;
    sigqueue(getpid(), SIGUSR1, v);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  printf("delivered %d:", rt_n);
  for (int i = 0; i < rt_n; ++i) printf(" %s+%d", rt_order[i] == SIGUSR1 ? "USR1" : "RTMIN", rt_order[i] == SIGUSR1 ? rt_value[i] : rt_order[i] - SIGRTMIN);
  printf("\nvalues:");
  for (int i = 0; i < rt_n; ++i) printf(" %d", rt_value[i]);
  printf("\n");
  /* sigtimedwait takes them one at a time, in order. */
  sigprocmask(SIG_BLOCK, &set, NULL);
  for (int i = 1; i <= 2; ++i) {
    v.sival_int = 40 + i;
    sigqueue(getpid(), SIGRTMIN + 1, v);
  }
  struct timespec zero = {0, 0};
  siginfo_t si;
  for (int i = 0; i < 3; ++i) {
    int s = sigtimedwait(&set, &si, &zero);
    printf("sigtimedwait: %d value %d\n", s < 0 ? -1 : s - SIGRTMIN, s < 0 ? 0 : si.si_value.sival_int);
  }
  return 0;
}

/* Memory semantics (issue 6's suite): boundaries of mmap/munmap/mprotect,
 * copy-on-write after fork, shared anonymous memory across fork, madvise
 * DONTNEED zeroing, mremap growth and moves, MAP_FIXED_NOREPLACE, faults on
 * protected pages seen through mincore-free probes (signals). */
static sigjmp_buf mm_jump;
static void mm_segv(int sig) { siglongjmp(mm_jump, sig); }
static int mm_probe(volatile char* p, int write) {
  if (sigsetjmp(mm_jump, 1)) return 0;
  if (write) *p = 1; else (void)*p;
  return 1;
}
static int mm(void) {
  const long pg = 4096;
  signal(SIGSEGV, mm_segv);
  signal(SIGBUS, mm_segv);
  char* a = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("fresh pages are zero: %d\n", a[0] == 0 && a[4 * pg - 1] == 0);
  SHOW_ERR("mmap length 0", mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0);
  SHOW_ERR("munmap unaligned", munmap(a + 1, pg));
  SHOW_ERR("mprotect unaligned", mprotect(a + 1, pg, PROT_READ));
  SHOW_ERR("munmap middle page", munmap(a + pg, pg));
  printf("around the hole: %d %d %d\n", mm_probe(a, 1), mm_probe(a + pg, 0), mm_probe(a + 2 * pg, 1));
  SHOW_ERR("mprotect over the hole", mprotect(a, 3 * pg, PROT_READ));
  SHOW_ERR("mprotect last page read-only", mprotect(a + 3 * pg, pg, PROT_READ));
  printf("read-only page: read %d write %d\n", mm_probe(a + 3 * pg, 0), mm_probe(a + 3 * pg, 1));
  SHOW_ERR("mprotect none", mprotect(a + 3 * pg, pg, PROT_NONE));
  printf("PROT_NONE page: read %d\n", mm_probe(a + 3 * pg, 0));
  SHOW_ERR("MAP_FIXED_NOREPLACE over a mapping",
        mmap(a, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED ? -1 : 0);
  SHOW_ERR("MAP_FIXED_NOREPLACE in the hole",
        mmap(a + pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED ? -1 : 0);
  /* Copy-on-write and shared memory across fork. */
  char* priv = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char* shared = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  strcpy(priv, "parent");
  strcpy(shared, "parent");
  pid_t c = fork();
  if (c == 0) {
    printf("child sees private %s shared %s\n", priv, shared);
    strcpy(priv, "child");
    strcpy(shared, "child");
    _exit(0);
  }
  waitpid(c, NULL, 0);
  printf("parent after the child: private %s shared %s\n", priv, shared);
  /* madvise. */
  memset(priv, 7, pg);
  SHOW_ERR("MADV_DONTNEED", madvise(priv, pg, MADV_DONTNEED));
  printf("private after DONTNEED reads zero: %d\n", priv[0] == 0 && priv[pg - 1] == 0);
  SHOW_ERR("MADV_DONTNEED shared", madvise(shared, pg, MADV_DONTNEED));
  printf("shared after DONTNEED keeps data: %s\n", shared);
  SHOW_ERR("MADV_HUGEPAGE", madvise(priv, pg, MADV_HUGEPAGE));
  SHOW_ERR("madvise bad advice", madvise(priv, pg, 12345));
  /* mremap. */
  char* r = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  strcpy(r + pg, "kept by mremap");
  char* g = mremap(r, 2 * pg, 64 * pg, MREMAP_MAYMOVE);
  printf("mremap grow: %s, data %s, new tail zero %d\n", g == MAP_FAILED ? strerror(errno) : "ok", g + pg,
         g[63 * pg] == 0);
  g[63 * pg] = 5;
  char* s2 = mremap(g, 64 * pg, pg, 0);
  printf("mremap shrink in place: %d, tail gone: %d\n", s2 == g, !mm_probe(g + 2 * pg, 0));
  SHOW_ERR("mremap grow without MAYMOVE over a neighbour", (mmap(g + pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
        mremap(g, pg, 4 * pg, 0) == MAP_FAILED ? -1 : 0));
  SHOW_ERR("mremap of nothing", mremap((void*)0x10000, pg, 2 * pg, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0);
  return 0;
}

/* Memory goes back: 64 MiB touched, then unmapped, a second apart (the test
 * follows the sandbox's memory in `bulkhead stats`; the marks in `dir` are
 * for a person watching). */
static int release(const char* dir) {
  char path[512];
  char* m = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(m, 7, 64 << 20);
  snprintf(path, sizeof path, "%s/touched", dir);
  close(open(path, O_CREAT | O_WRONLY, 0600));
  sleep(1);
  munmap(m, 64 << 20);
  snprintf(path, sizeof path, "%s/freed", dir);
  close(open(path, O_CREAT | O_WRONLY, 0600));
  sleep(2);
  return 0;
}

/* Copy-on-write after fork, from every side: the parent writes first, the
 * child writes, a read() into copy-on-write memory (the router's own
 * write), mprotect read-only and back, DONTNEED in the child, a grandchild.
 * Each process must see only its own writes. */
static int cow(void) {
  const size_t len = 6 << 20;  /* three 2 MiB blocks */
  char* m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  for (size_t i = 0; i < len; i += 4096) m[i] = 'p';
  int pipefd[2];
  pipe(pipefd);
  pid_t c = fork();
  if (c == 0) {
    char buf[8] = {0};
    read(pipefd[0], buf, 1);  /* wait until the parent wrote */
    printf("child before writing: %c %c %c\n", m[0], m[2 << 20], m[len - 4096]);
    m[2 << 20] = 'c';
    read(pipefd[0], m + (4 << 20), 5);  /* the router writes into copy-on-write memory */
    mprotect(m, 4096, PROT_READ);
    mprotect(m, 4096, PROT_READ | PROT_WRITE);
    m[1] = 'x';
    madvise(m + (4 << 20) + 8192, 4096, MADV_DONTNEED);
    pid_t g = fork();
    if (g == 0) {
      m[3] = 'g';
      printf("grandchild: %c %c %c %.5s\n", m[3], m[2 << 20], m[0], m + (4 << 20));
      _exit(0);
    }
    waitpid(g, NULL, 0);
    printf("child after: %c %c %.5s %d %c\n", m[0], m[2 << 20], m + (4 << 20), m[(4 << 20) + 8192], m[3] ? m[3] : '0');
    _exit(0);
  }
  m[0] = 'P';  /* the parent writes first */
  write(pipefd[1], "g", 1);
  write(pipefd[1], "hello", 5);
  waitpid(c, NULL, 0);
  printf("parent after: %c %c %c %c %d\n", m[0], m[1], m[2 << 20], m[4 << 20], m[(4 << 20) + 8192]);
  return 0;
}

/* System V shared memory: a private segment shared across fork, attach
 * counts, IPC_RMID with attachments, keys (IPC_CREAT, IPC_EXCL, ENOENT). The
 * key is made from the pid so that the native run does not meet another
 * run's segment in the host's namespace; everything is removed at the end. */
static int sysvshm(void) {
  int id = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
  if (id < 0) { perror("shmget"); return 1; }
  char* p = shmat(id, NULL, 0);
  if (p == (void*)-1) { perror("shmat"); return 1; }
  strcpy(p, "parent wrote");
  struct shmid_ds ds;
  shmctl(id, IPC_STAT, &ds);
  printf("size %zu, attached %lu, mode %o\n", (size_t)ds.shm_segsz, (unsigned long)ds.shm_nattch, ds.shm_perm.mode & 0777);
  pid_t c = fork();
  if (c == 0) {
    struct shmid_ds cds;
    shmctl(id, IPC_STAT, &cds);
    printf("child sees: %s, attached %lu\n", p, (unsigned long)cds.shm_nattch);
    strcpy(p + 5000, "child wrote");
    char* again = shmat(id, NULL, SHM_RDONLY);
    printf("second attach reads: %s\n", again + 5000);
    _exit(0);
  }
  waitpid(c, NULL, 0);
  shmctl(id, IPC_STAT, &ds);
  printf("after the child: %s, attached %lu\n", p + 5000, (unsigned long)ds.shm_nattch);
  SHOW_ERR("IPC_RMID while attached", shmctl(id, IPC_RMID, NULL));
  printf("still readable: %s\n", p);
  SHOW_ERR("shmdt", shmdt(p));
  SHOW_ERR("shmdt again", shmdt(p));
  SHOW_ERR("IPC_STAT after the last detach", shmctl(id, IPC_STAT, &ds));
  key_t key = (key_t)(0x5b000000 | (getpid() & 0xffffff));
  int k1 = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600);
  printf("keyed: %s\n", k1 < 0 ? strerror(errno) : "created");
  SHOW_ERR("same key, IPC_EXCL", shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600));
  printf("same key, found again: %d\n", shmget(key, 4096, 0600) == k1);
  SHOW_ERR("same key, larger", shmget(key, 8192, 0600));
  SHOW_ERR("IPC_RMID", shmctl(k1, IPC_RMID, NULL));
  SHOW_ERR("removed key", shmget(key, 4096, 0600));
  SHOW_ERR("size 0", shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600));
  SHOW_ERR("bad id", shmat(-1, NULL, 0) == (void*)-1 ? -1 : 0);
  int small = shmget(IPC_PRIVATE, 4096, 0600);
  SHOW_ERR("unaligned address", shmat(small, (void*)0x10000001, 0) == (void*)-1 ? -1 : 0);
  shmctl(small, IPC_RMID, NULL);
  return 0;
}

/* memfd_create: a nameless file, shared mappings across fork, seals. */
static int memfd(void) {
  int fd = memfd_create("bulkhead-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) { perror("memfd_create"); return 1; }
  printf("write: %zd\n", write(fd, "hello memfd", 11));
  char path[64], link[256] = {0};
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  printf("readlink: %zd %s\n", readlink(path, link, sizeof link - 1), link);
  struct stat st;
  fstat(fd, &st);
  printf("regular: %d size: %lld cloexec: %d\n", S_ISREG(st.st_mode), (long long)st.st_size,
         (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
  printf("ftruncate: %d\n", ftruncate(fd, 8192));
  char* m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) { perror("mmap"); return 1; }
  printf("mapped: %.11s\n", m);
  pid_t c = fork();
  if (c == 0) {
    strcpy(m + 4096, "written by the child");
    _exit(0);
  }
  waitpid(c, NULL, 0);
  char buf[32] = {0};
  pread(fd, buf, 20, 4096);
  printf("after fork: %s\n", buf);
  munmap(m, 8192);
#define SHOW(label, expr)                                                       \
  do {                                                                          \
    errno = 0;                                                                  \
    long r_ = (long)(expr);                                                     \
    int e_ = errno;                                                             \
    printf("%s: %ld %s\n", label, r_, r_ < 0 ? strerror(e_) : "ok");           \
  } while (0)
  SHOW("seals", fcntl(fd, F_GET_SEALS));
  SHOW("add grow|shrink", fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK));
  SHOW("grow", ftruncate(fd, 16384));
  SHOW("shrink", ftruncate(fd, 4096));
  SHOW("write past end", pwrite(fd, "x", 1, 8192));
  SHOW("write inside", pwrite(fd, "y", 1, 0));
  SHOW("add write|seal", fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL));
  SHOW("write sealed", pwrite(fd, "z", 1, 0));
  SHOW("shared writable map", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0);
  SHOW("read-only map", mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED ? -1 : 0);
  SHOW("add after seal", fcntl(fd, F_ADD_SEALS, F_SEAL_GROW));
  SHOW("seals now", fcntl(fd, F_GET_SEALS));
  int plain = memfd_create("plain", 0);
  SHOW("plain seals", fcntl(plain, F_GET_SEALS));
  SHOW("plain add", fcntl(plain, F_ADD_SEALS, F_SEAL_GROW));
  char longname[300];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  SHOW("long name", memfd_create(longname, 0));
  SHOW("bad flags", memfd_create("x", 0x100));
  SHOW("bad name pointer", memfd_create((const char*)8, 0));
#undef SHOW
  return 0;
}

/* Under a memory limit (bulkhead --memory-limit 64M): a private writable
 * mapping larger than the limit is refused; a child that touches far more
 * than the limit is killed (SIGKILL, the OOM killer's choice: it holds the
 * most); its parent, holding 8 MiB, lives on. */
static int memlimit(void) {
  void* big = mmap(NULL, 512 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("512M private mapping: %s\n", big == MAP_FAILED ? strerror(errno) : "mapped");
  char* mine = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mine == MAP_FAILED) return 1;
  memset(mine, 1, 8 << 20);
  pid_t c = fork();
  if (c == 0) {
    for (int i = 0; i < 400; ++i) {
      char* p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) _exit(3);
      memset(p, 2, 1 << 20);
      if (i % 16 == 0) usleep(2000);  /* page faults reach no router: give the check time */
    }
    _exit(0);
  }
  int st = 0;
  waitpid(c, &st, 0);
  if (WIFSIGNALED(st)) printf("child killed by signal %d\n", WTERMSIG(st));
  else printf("child exited %d\n", WEXITSTATUS(st));
  printf("parent alive, its memory intact: %d\n", mine[(8 << 20) - 1] == 1);
  return 0;
}

/* The clock calls glibc answers from the vDSO when the auxiliary vector
 * names one: ten thousand of each, and the clocks must move forward. */
static int vdso(void) {
  struct timespec a, b;
  struct timeval tv;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < 10000; ++i) {
    clock_gettime(CLOCK_MONOTONIC, &b);
    gettimeofday(&tv, NULL);
    (void)time(NULL);
  }
  const int forward = b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec);
  printf("clocks forward: %d, wall clock after 2020: %d\n", forward, tv.tv_sec > 1577836800);
  return 0;
}

/* ---- fastcalls: system call sites the trap platform patches (patch.h) ---- */
#include <asm/prctl.h>

/* A site of glibc's form, its own function: mov $39, %eax; syscall; ret.
 * fc_mid jumps onto its syscall instruction with eax already set, as a thread
 * preempted between the two instructions resumes. */
long fc_getpid(void);
long fc_mid(void);
__asm__(".text\n.globl fc_getpid\nfc_getpid:\n mov $39, %eax\n syscall\n ret\n"
        ".globl fc_mid\nfc_mid:\n mov $39, %eax\n jmp fc_getpid+5\n");

static volatile sig_atomic_t fc_alarms;
static void fc_on_alarm(int sig) {
  (void)sig;
  /* FP work in the handler: the interrupted code's registers must survive. */
  volatile double x = 1.0;
  for (int i = 0; i < 50; ++i) x = x * 1.0001 + 0.5;
  fc_alarms = fc_alarms + 1;
}

static void* fc_thread(void* arg) {
  long bad = 0;
  for (int i = 0; i < 20000; ++i) bad += fc_getpid() != getpid();
  *(long*)arg = bad;
  return NULL;
}

static int fastcalls(const char* self) {
  const unsigned char want[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3};
  long bad = 0;
  for (int i = 0; i < 1000; ++i) bad += fc_getpid() != getpid();
  printf("site: %ld wrong\n", bad);
  bad = 0;
  for (int i = 0; i < 100; ++i) bad += fc_mid() != getpid();
  printf("resumed between the instructions: %ld wrong\n", bad);

  /* FP registers across calls, with a timer signal whose handler uses FP. */
  struct sigaction sa = {0};
  sa.sa_handler = fc_on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, NULL);
  struct itimerval it = {{0, 1000}, {0, 1000}};
  setitimer(ITIMER_REAL, &it, NULL);
  register double a __asm__("xmm6") = 1.5;
  double acc = 0;
  for (long i = 0; i < 2000000 && fc_alarms < 20; ++i) {
    __asm__ volatile("" : "+x"(a));
    fc_getpid();
    __asm__ volatile("" : "+x"(a));
    acc += a;
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
  printf("signals during calls: %s, fp kept: %s\n", fc_alarms >= 20 ? "yes" : "no", a == 1.5 ? "yes" : "no");

  pthread_t th[4];
  long tbad[4];
  for (int i = 0; i < 4; ++i) pthread_create(&th[i], NULL, fc_thread, &tbad[i]);
  bad = 0;
  for (int i = 0; i < 4; ++i) {
    pthread_join(th[i], NULL);
    bad += tbad[i];
  }
  printf("threads: %ld wrong\n", bad);

  pid_t c = fork();
  if (c == 0) _exit(fc_getpid() == getpid() ? 7 : 1);
  int st = 0;
  waitpid(c, &st, 0);
  printf("forked child: %d\n", WEXITSTATUS(st));

  /* A fresh program sees its text as the file has it. */
  c = fork();
  if (c == 0) {
    execl(self, self, "fastcalls-text", (char*)NULL);
    _exit(127);
  }
  waitpid(c, &st, 0);
  printf("fresh text: %d\n", WEXITSTATUS(st));
  (void)want;

  /* Its own gs_base: the calls still work (the platform stops using %gs). */
  static char gsarea[64];
  long r = syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)gsarea);
  bad = 0;
  for (int i = 0; i < 1000; ++i) bad += fc_getpid() != getpid();
  unsigned long gs = 0;
  syscall(SYS_arch_prctl, ARCH_GET_GS, &gs);
  printf("own gs: set %ld, kept %s, %ld wrong\n", r, gs == (unsigned long)gsarea ? "yes" : "no", bad);
  return 0;
}

static int fastcalls_text(void) {
  const unsigned char want[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3};
  return memcmp((const void*)fc_getpid, want, sizeof want) == 0 ? 3 : 4;
}

/* ---- sleepers: many parked waiters (futex queues, deadlines, signals) ---- */
#include <linux/futex.h>

static pthread_mutex_t sl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sl_cv = PTHREAD_COND_INITIALIZER;
static int sl_go, sl_ready, sl_woke;
static void* sl_waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&sl_mu);
  sl_ready++;
  while (!sl_go) pthread_cond_wait(&sl_cv, &sl_mu);
  sl_woke++;
  pthread_mutex_unlock(&sl_mu);
  return NULL;
}
static void* sl_timed(void* arg) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += 20 * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&sl_mu);
  int r = pthread_cond_timedwait(&sl_cv, &sl_mu, &ts);
  pthread_mutex_unlock(&sl_mu);
  *(int*)arg = r;
  return NULL;
}
static _Atomic int sl_word;
static _Atomic int sl_word2;
static _Atomic int sl_entered, sl_done;
static void* sl_raw(void* arg) {
  sl_entered++;
  long r = syscall(SYS_futex, &sl_word, FUTEX_WAIT, 0, NULL, NULL, 0);
  *(long*)arg = r;
  sl_done++;
  return NULL;
}
static void sl_on_usr1(int sig) { (void)sig; }
static void* sl_sleeper(void* arg) {
  struct timespec ts = {30, 0};
  sl_entered++;
  int r = nanosleep(&ts, NULL);
  *(int*)arg = r == -1 ? errno : 0;
  sl_done++;
  return NULL;
}

static int sleepers(void) {
  enum { N = 300 };
  static pthread_t th[N];
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 64 << 10);
  for (int i = 0; i < N; ++i) pthread_create(&th[i], &at, sl_waiter, NULL);
  for (;;) {
    pthread_mutex_lock(&sl_mu);
    int r = sl_ready;
    pthread_mutex_unlock(&sl_mu);
    if (r == N) break;
    usleep(1000);
  }
  /* While they sleep: calls, and waits that time out. */
  long bad = 0;
  for (int i = 0; i < 5000; ++i) bad += getppid() < 0;
  int tr[4];
  pthread_t tt[4];
  for (int i = 0; i < 4; ++i) pthread_create(&tt[i], &at, sl_timed, &tr[i]);
  int timedout = 0;
  for (int i = 0; i < 4; ++i) {
    pthread_join(tt[i], NULL);
    timedout += tr[i] == ETIMEDOUT;
  }
  printf("calls among %d sleepers: %ld failed; timed waits timed out: %d of 4\n", N, bad, timedout);
  pthread_mutex_lock(&sl_mu);
  sl_go = 1;
  pthread_cond_broadcast(&sl_cv);
  pthread_mutex_unlock(&sl_mu);
  for (int i = 0; i < N; ++i) pthread_join(th[i], NULL);
  printf("woken by one broadcast: %d\n", sl_woke);

  /* Requeue: three raw waiters on one word; wake one, move two to another
   * word, then wake those there. */
  /* (Each waiter counts itself in just before its wait, and gets 200 ms to
   * block: timing, but far beyond what a slow build needs.) */
  long rr[3];
  pthread_t rt[3];
  sl_entered = sl_done = 0;
  for (int i = 0; i < 3; ++i) pthread_create(&rt[i], &at, sl_raw, &rr[i]);
  while (sl_entered < 3) usleep(1000);
  usleep(200000);
  long moved = syscall(SYS_futex, &sl_word, FUTEX_CMP_REQUEUE, 1, (void*)2L, &sl_word2, 0);
  while (sl_done < 1) usleep(1000);
  long on_old = syscall(SYS_futex, &sl_word, FUTEX_WAKE, 10, NULL, NULL, 0);
  long on_new = syscall(SYS_futex, &sl_word2, FUTEX_WAKE, 10, NULL, NULL, 0);
  for (int i = 0; i < 3; ++i) pthread_join(rt[i], NULL);
  printf("requeue: woke+moved %ld, then %ld on the old word, %ld on the new; results %ld %ld %ld\n", moved, on_old,
         on_new, rr[0], rr[1], rr[2]);

  /* A signal ends a long sleep (no SA_RESTART): EINTR. */
  struct sigaction sa = {0};
  sa.sa_handler = sl_on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  int se = -1;
  pthread_t st;
  sl_entered = sl_done = 0;
  pthread_create(&st, &at, sl_sleeper, &se);
  while (sl_entered < 1) usleep(1000);
  /* Until it ends: a signal that came before the sleep began ends nothing. */
  while (sl_done < 1) {
    pthread_kill(st, SIGUSR1);
    usleep(50000);
  }
  pthread_join(st, NULL);
  printf("sleep ended by a signal: %s\n", se == EINTR ? "EINTR" : "no");
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (!strcmp(argc > 1 ? argv[1] : "", "vdso")) return vdso();
  if (!strcmp(argc > 1 ? argv[1] : "", "memlimit")) return memlimit();
  if (!strcmp(argc > 1 ? argv[1] : "", "memfd")) return memfd();
  if (!strcmp(argc > 1 ? argv[1] : "", "sysvshm")) return sysvshm();
  if (!strcmp(argc > 1 ? argv[1] : "", "mm")) return mm();
  if (!strcmp(argc > 1 ? argv[1] : "", "rtsig")) return rtsig();
  if (!strcmp(argc > 1 ? argv[1] : "", "cow")) return cow();
  if (!strcmp(argc > 1 ? argv[1] : "", "fastcalls")) return fastcalls(argv[0]);
  if (!strcmp(argc > 1 ? argv[1] : "", "sleepers")) return sleepers();
  if (!strcmp(argc > 1 ? argv[1] : "", "fastcalls-text")) return fastcalls_text();
  if (!strcmp(argc > 1 ? argv[1] : "", "release") && argc > 2) return release(argv[2]);
  const char* m = argc > 1 ? argv[1] : "";
  if (!strcmp(m, "threads")) return threads();
  if (!strcmp(m, "tsignal")) return tsignal();
  if (!strcmp(m, "segv")) return segv();
  if (!strcmp(m, "fpu")) return fpu();
  if (!strcmp(m, "forks")) return forks();
  if (!strcmp(m, "pipes")) return pipes();
  if (!strcmp(m, "stops")) return stops();
  if (!strcmp(m, "timers")) return timers();
  if (!strcmp(m, "events")) return events();
  if (!strcmp(m, "spawn")) return spawn();
  if (!strcmp(m, "pgroups")) return pgroups();
  if (!strcmp(m, "shared")) return shared();
  if (!strcmp(m, "ptimers")) return ptimers();
  if (!strcmp(m, "posixshm")) return posixshm();
  if (!strcmp(m, "enosys")) {
    /* A call bulkhead does not serve, twice; then time to read the stats. */
    long a = syscall(SYS_io_uring_setup, 1, 0);
    int e = errno;
    syscall(SYS_io_uring_setup, 1, 0);
    printf("io_uring_setup %ld ENOSYS=%d\n", a, e == ENOSYS);
    sleep(argc > 2 ? atoi(argv[2]) : 0);
    return 0;
  }
  if (!strcmp(m, "crash")) {
    *(volatile int*)0 = 1; /* no handler: death by SIGSEGV, 139 from a shell */
    return 0;
  }
  fprintf(stderr, "usage: tasks MODE\n");
  return 2;
}
