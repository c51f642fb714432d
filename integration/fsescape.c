/* Runs inside `bulkhead do` (fs_test.cc): every way a program might
 * write outside its root, or into a read-only volume, and the answer Linux
 * gives when the sandbox confines it. The test prepares:
 *   /abs    -> OUTSIDE/secret (an absolute host path)
 *   /rel    -> ../outside/secret
 *   /dirup  -> ../outside
 *   /ro     a read-only volume holding "keep"
 *   /rw     a writable volume holding "f"
 * and afterwards checks the host side. Prints one line per check that went
 * wrong ("FAIL name: got X, want Y") and "checks N failed M".
 *   fsescape OUTSIDE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

static int checks, failed;

/* rc: a call's result (-1 with errno). want: 0 for success, else an errno. */
static void expect(const char* name, long rc, int want) {
  int got = rc < 0 ? errno : 0;
  ++checks;
  if (got != want) {
    ++failed;
    printf("FAIL %s: got %s, want %s\n", name, got ? strerror(got) : "success", want ? strerror(want) : "success");
  }
}
/* Either errno is Linux's answer here (the order of checks differs between
 * calls), never success. */
static void refused(const char* name, long rc, int a, int b) {
  int got = rc < 0 ? errno : 0;
  ++checks;
  if (rc >= 0 || (got != a && got != b)) {
    ++failed;
    printf("FAIL %s: got %s, want %s or %s\n", name, rc >= 0 ? "success" : strerror(got), strerror(a), strerror(b));
  }
}
static long opened(long fd) {
  if (fd >= 0) close((int)fd);
  return fd;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* outside = argv[1];
  char p[4096];

  /* Symlinks out of the root resolve inside it: their targets do not exist. */
  expect("write via absolute symlink", opened(open("/abs", O_WRONLY | O_TRUNC)), ENOENT);
  expect("create via relative symlink", opened(open("/rel", O_WRONLY | O_CREAT, 0644)), ENOENT);
  expect("mkdir via dir symlink", mkdir("/dirup/x", 0755), ENOENT);
  snprintf(p, sizeof p, "/../../../..%s/secret", outside);
  expect("write via .. past /", opened(open(p, O_WRONLY | O_TRUNC)), ENOENT);
  expect("symlink to outside", symlink(p, "/s2"), 0);
  expect("write via new symlink", opened(open("/s2", O_WRONLY | O_APPEND)), ENOENT);
  expect("hard link following an outward symlink", linkat(AT_FDCWD, "/abs", AT_FDCWD, "/hl", AT_SYMLINK_FOLLOW), ENOENT);
  expect("hard link of the symlink itself", link("/abs", "/hl2"), 0);
  expect("write via hard-linked symlink", opened(open("/hl2", O_WRONLY)), ENOENT);
  expect("chmod via outward symlink", chmod("/abs", 0777), ENOENT);
  expect("truncate via outward symlink", truncate("/abs", 0), ENOENT);
  expect("utimes via outward symlink", utimes("/abs", NULL), ENOENT);
  expect("setxattr via outward symlink", setxattr("/abs", "user.x", "1", 1, 0), ENOENT);
  expect("rename to .. past /", rename("/etc/hostname", "/../../../moved"), 0);
  expect("renamed file is inside", access("/moved", F_OK), 0);
  snprintf(p, sizeof p, "/proc/self/root%s/secret", outside);
  expect("write via /proc/self/root", opened(open(p, O_WRONLY | O_TRUNC)), ENOENT);
  int dfd = open("/etc", O_PATH | O_DIRECTORY);
  expect("open /etc O_PATH", dfd, 0);
  snprintf(p, sizeof p, "/proc/self/fd/%d/../../..%s/secret", dfd, outside);
  refused("write via /proc/self/fd/N/..", opened(open(p, O_WRONLY | O_TRUNC)), ENOENT, ENOTDIR);
  snprintf(p, sizeof p, "../../..%s/secret", outside);
  expect("openat from a dirfd, .. past /", opened(openat(dfd, p, O_WRONLY | O_TRUNC)), ENOENT);
  expect("chdir /", chdir("/"), 0);
  expect("chdir .. at /", chdir(".."), 0);
  char cwd[64];
  expect("getcwd is /", getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") == 0 ? 0 : -1, 0);

  /* Renames and links across mounts. */
  expect("rename volume -> root", rename("/rw/f", "/from-volume"), EXDEV);
  expect("rename root -> volume", rename("/moved", "/rw/from-root"), EXDEV);
  expect("link root -> volume", link("/moved", "/rw/linked"), EXDEV);
  refused("rename root -> ro volume", rename("/moved", "/ro/x"), EXDEV, EROFS);

  /* A read-only volume, through every call that writes. */
  expect("ro: open O_WRONLY", opened(open("/ro/keep", O_WRONLY)), EROFS);
  expect("ro: open O_RDWR", opened(open("/ro/keep", O_RDWR)), EROFS);
  expect("ro: open O_CREAT", opened(open("/ro/new", O_WRONLY | O_CREAT, 0644)), EROFS);
  expect("ro: open O_TRUNC", opened(open("/ro/keep", O_RDONLY | O_TRUNC)), EROFS);
  expect("ro: creat", opened(creat("/ro/new2", 0644)), EROFS);
  expect("ro: O_TMPFILE", opened(open("/ro", O_TMPFILE | O_WRONLY, 0600)), EROFS);
  expect("ro: truncate", truncate("/ro/keep", 0), EROFS);
  expect("ro: mkdir", mkdir("/ro/d", 0755), EROFS);
  expect("ro: mknod fifo", mknod("/ro/fifo", S_IFIFO | 0644, 0), EROFS);
  expect("ro: unlink", unlink("/ro/keep"), EROFS);
  expect("ro: rmdir", rmdir("/ro/sub"), EROFS);
  expect("ro: rename inside", rename("/ro/keep", "/ro/keep2"), EROFS);
  expect("ro: link inside", link("/ro/keep", "/ro/keep3"), EROFS);
  expect("ro: symlink", symlink("keep", "/ro/sl"), EROFS);
  expect("ro: chmod", chmod("/ro/keep", 0600), EROFS);
  expect("ro: chown", chown("/ro/keep", 0, 0), EROFS);
  expect("ro: utimes", utimes("/ro/keep", NULL), EROFS);
  expect("ro: setxattr", setxattr("/ro/keep", "user.x", "1", 1, 0), EROFS);
  expect("ro: removexattr", removexattr("/ro/keep", "user.x"), EROFS);
  int fd = open("/ro/keep", O_RDONLY);
  expect("ro: open O_RDONLY", fd, 0);
  expect("ro: fchmod", fchmod(fd, 0600), EROFS);
  expect("ro: fchown", fchown(fd, 0, 0), EROFS);
  expect("ro: futimens", futimens(fd, NULL), EROFS);
  expect("ro: fsetxattr", fsetxattr(fd, "user.x", "1", 1, 0), EROFS);
  expect("ro: ftruncate (read-only fd)", ftruncate(fd, 0), EINVAL);
  expect("ro: write (read-only fd)", write(fd, "x", 1), EBADF);
  void* m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  expect("ro: mmap shared writable", m == MAP_FAILED ? -1 : 0, EACCES);
  close(fd);
  expect("ro: still reads", access("/ro/keep", R_OK), 0);
  expect("rw: volume writes", opened(open("/rw/written", O_WRONLY | O_CREAT, 0644)), 0);
  printf("checks %d failed %d\n", checks, failed);
  return failed ? 1 : 0;
}
