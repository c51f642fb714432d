// Processes, threads, signals, pipes and terminals under `bulkhead do`:
// every case runs natively and in the sandbox, and the two must agree on
// output and exit code.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>
#include <fstream>
#include <iterator>
#include <map>
#include <fstream>
#include <iterator>
#include <string>

#include "integration/util.h"

namespace bulkhead::integration {
namespace {

std::string Bulkhead() { return Runfile("runtime/bulkhead") + " --root " + TestDir("tasks-state") + " do -- "; }

// The sandbox starts in / (bulkhead do's default --cwd); so does the native run.
void ExpectSame(const std::string& cmd) {
  Result n = Sh("cd / && " + cmd);
  Result s = Sh(Bulkhead() + cmd);
  EXPECT_EQ(s.out, n.out) << cmd << "\n" << s.err;
  EXPECT_EQ(s.code, n.code) << cmd << "\n" << s.err;
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class Tasks : public ::testing::TestWithParam<const char*> {};

TEST_P(Tasks, SameAsNative) { ExpectSame(Runfile("integration/tasks") + " " + GetParam()); }

INSTANTIATE_TEST_SUITE_P(Modes, Tasks,
                         ::testing::Values("threads", "tsignal", "segv", "fpu", "forks", "pipes", "stops",
                                           "timers", "events", "spawn", "pgroups", "shared", "ptimers", "posixshm",
                                           "memfd", "sysvshm", "mm", "rtsig", "cow", "fastcalls", "sleepers"),
                         [](const auto& info) { return std::string(info.param); });

TEST(Shells, BusyboxShPipesLoopsSubshellsAndAThousandForks) {
  ExpectSame("/bin/busybox sh -c " + Quote(
      "echo start; x=$(echo sub | /bin/busybox tr a-z A-Z); echo $x; "
      "(cd /usr && echo in $(pwd)); echo back $(pwd); "
      "i=0; while [ $i -lt 1000 ]; do /bin/busybox true; i=$((i+1)); done; echo forks $i; "
      "/bin/busybox seq 1 200 | /bin/busybox sort -rn | /bin/busybox head -3; "
      "{ echo a; echo b; } | /bin/busybox wc -l; exit 3"));
}

TEST(Shells, DebianProgramsAgreeWithNative) {
  ExpectSame("/bin/sh -c " + Quote("for i in 1 2 3; do echo $i; done | tr '\\n' ,; echo; exit 5"));
  ExpectSame("/bin/bash -c " + Quote("a=(x y z); echo ${#a[@]} ${a[1]}; (exit 4); echo $?; "
                                      "trap 'echo got USR1' USR1; kill -USR1 $$; echo after"));
  // /dev, /proc, /sys and /tmp are the sandbox's own: their entries differ, and
  // the host's /proc link count sets the width of that column.
  // (Not -a: "." is the overlay's merged root, whose size and link count
  // are its private layer's, as in any overlay-rooted container.)
  ExpectSame("/bin/sh -c " + Quote("ls -l / | grep -v -e ' dev$' -e ' proc$' -e ' sys$' -e ' tmp$' | tr -s ' '"));
  ExpectSame("/bin/cat /etc/os-release");
  ExpectSame("/bin/sh -c " + Quote("tr ' ' '\\n' < /etc/os-release | sort | uniq -c | sort -rn | head -5"));
  ExpectSame("/usr/bin/sha256sum /etc/os-release");
  ExpectSame("/bin/sh -c " + Quote("find /usr/include | wc -l"));
  ExpectSame("/usr/bin/python3 -c " + Quote(
      "import threading, json, subprocess\n"
      "out = []\n"
      "ts = [threading.Thread(target=lambda i=i: out.append(i * i)) for i in range(8)]\n"
      "[t.start() for t in ts]; [t.join() for t in ts]\n"
      "print(sorted(out), json.dumps({'a': [1, 2]}))\n"
      "print(subprocess.run(['sh', '-c', 'echo sub; exit 3'], capture_output=True, text=True))\n"));
  ExpectSame("/usr/bin/python3 -c " + Quote(
      "import multiprocessing as mp\n"
      "with mp.Pool(2) as p: print(p.map(abs, [-1, -2, -3]))\n"
      "q = mp.Queue(); pr = mp.Process(target=q.put, args=('via queue',)); pr.start()\n"
      "print(q.get()); pr.join(); print('exit', pr.exitcode)\n"));
  ExpectSame("/usr/bin/perl -e " + Quote("print \"perl \", 6 * 7, \"\\n\"; my $p = fork(); exit 5 if !$p; "
                                          "waitpid($p, 0); print $? >> 8, \"\\n\"; exit 2"));
}

// /tmp is a writable tmpfs of the sandbox's own (the root stays read-only):
// the same file operations give the same results as natively, in a fresh
// directory under /tmp.
TEST(Shells, TmpIsWritable) {
  ExpectSame("/bin/bash -c " + Quote(
      "d=$(mktemp -d) && cd $d && mkdir -p a/b && echo hi > a/b/f && mv a/b/f a/g && "
      "ln -s g a/l && cat a/l && readlink a/l && ln a/g a/h && stat -c %h a/h && ls a | tr '\\n' ' ' && echo && "
      "printf '%s\\n' one two >> a/g && wc -l < a/g && truncate -s 2 a/g && od -c a/g | head -1 && "
      "cat <<EOF\nheredoc $((6*7))\nEOF\n"
      "rm -r a && rmdir a 2>/dev/null; ls -A; cd / && rmdir $d && echo done"));
  ExpectSame("/usr/bin/python3 -c " + Quote(
      "import tempfile, os, shutil\n"
      "d = tempfile.mkdtemp()\n"
      "with open(os.path.join(d, 'x'), 'w') as f: f.write('data' * 1000)\n"
      "print(os.path.getsize(os.path.join(d, 'x')), sorted(os.listdir(d)))\n"
      "os.rename(os.path.join(d, 'x'), os.path.join(d, 'y')); print(sorted(os.listdir(d)))\n"
      "shutil.rmtree(d); print(os.path.exists(d))\n"));
  // FIFOs: a writer and a reader meet; O_RDWR needs no partner.
  ExpectSame("/bin/bash -c " + Quote(
      "d=$(mktemp -d); mkfifo $d/f; ls -l $d/f | cut -c1; (echo through the fifo > $d/f) & "
      "sleep 0.2; timeout 5 cat $d/f; wait; exec 3<>$d/f; echo rw >&3; read -t 1 x <&3; echo $x; rm -r $d"));
  // A script and a copied program run from /tmp.
  ExpectSame("/bin/bash -c " + Quote(
      "d=$(mktemp -d) && printf '#!/bin/sh\\necho script $1\\n' > $d/s.sh && chmod +x $d/s.sh && $d/s.sh arg && "
      "cp /bin/echo $d/e && $d/e copied && rm -r $d"));
  // Writes to the root land in the sandbox's own layer: seen inside, never
  // on the host. With --rootfs-mode readonly they are refused.
  const std::string name = "/etc/bulkhead-test-" + std::to_string(getpid());
  Result r = Sh(Bulkhead() + "/bin/sh -c 'echo x > " + name + "; echo $?; cat " + name + "; mkdir /newdir-" +
                std::to_string(getpid()) + "; echo $?'");
  EXPECT_EQ(r.out, "0\nx\n0\n") << r.err;
  EXPECT_NE(access(name.c_str(), F_OK), 0);
  EXPECT_NE(access(("/newdir-" + std::to_string(getpid())).c_str(), F_OK), 0);
  r = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("ro-state") +
         " do --rootfs-mode readonly -- /bin/sh -c 'echo x > /etc/bulkhead-test; echo $?; mkdir /newdir; echo $?'");
  EXPECT_EQ(r.out, "2\n1\n") << r.err;
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
}

TEST(Shells, SignalDeathExitsWith128PlusN) {
  ExpectSame("/bin/sh -c " + Quote("sh -c 'kill -TERM $$'"));
  ExpectSame("/bin/busybox sh -c " + Quote("/bin/busybox sh -c 'kill -KILL $$'; echo $?"));
  // The sandbox's process 1 itself, by a fault: 128 + SIGSEGV.
  ExpectSame(Runfile("integration/tasks") + " crash");
  Result r = Sh(Bulkhead() + Runfile("integration/tasks") + " crash");
  EXPECT_EQ(r.code, 128 + SIGSEGV);
}

// The sandbox's stdout is a pipe whose reader leaves early: the writer in
// the sandbox dies of SIGPIPE (141, as natively) and the router lives on.
TEST(Shells, ClosedStdoutPipeGivesSigpipe) {
  const std::string bh = Bulkhead();
  Result native = Sh("/bin/bash -c " + Quote("/bin/cat /usr/bin/python3 | head -c 4 >/dev/null; echo ${PIPESTATUS[0]}"));
  Result r = Sh("/bin/bash -c " + Quote(bh + "/bin/cat /usr/bin/python3 | head -c 4 >/dev/null; echo ${PIPESTATUS[0]}"));
  EXPECT_EQ(r.out, native.out) << r.err;
  EXPECT_EQ(r.out, "141\n") << r.err;
  EXPECT_EQ(r.err.find("syscall-router died"), std::string::npos) << r.err;
  // Input from a pipe reaches the sandbox's stdin.
  r = Sh("printf 'b\\na\\n' | " + bh + "/usr/bin/sort");
  EXPECT_EQ(r.out, "a\nb\n") << r.err;
}

// As in any pid namespace, process 1 only gets the signals it handles: a
// shell that is the sandbox's init survives its own `kill -TERM $$`.
TEST(Shells, InitIgnoresSignalsWithoutAHandler) {
  Result r = Sh(Bulkhead() + "/bin/sh -c 'kill -TERM $$; kill -KILL $$; echo survived'");
  EXPECT_EQ(r.out, "survived\n");
  EXPECT_EQ(r.code, 0);
  r = Sh(Bulkhead() + "/bin/sh -c 'trap \"echo handled; exit 3\" TERM; kill -TERM $$; sleep 1'");
  EXPECT_EQ(r.out, "handled\n");
  EXPECT_EQ(r.code, 3);
}

// Starts `bulkhead <args...>` in the background with stdout and stderr on
// /dev/null; returns its pid (the sandbox is then "do-<pid>").
pid_t StartQuietly(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 1);
    dup2(devnull, 2);
    const std::string bh = Runfile("runtime/bulkhead");
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>("bulkhead"));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bh.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

// Unimplemented calls answer ENOSYS and are counted per number where an
// operator looks: `bulkhead stats` of the running sandbox.
TEST(Stats, UnimplementedCallsAreCountedInBulkheadStats) {
  const std::string root = TestDir("stats-root");
  const std::string bh = Runfile("runtime/bulkhead");
  const pid_t pid = StartQuietly({"--root", root, "do", "--", Runfile("integration/tasks"), "enosys", "3"});
  ASSERT_GT(pid, 0);
  const std::string id = "do-" + std::to_string(pid);
  Result r;
  for (int i = 0; i < 40; ++i) {
    usleep(100000);
    r = Sh(bh + " --root " + root + " stats " + id);
    if (r.out.find("io_uring_setup") != std::string::npos) break;
  }
  EXPECT_NE(r.out.find("unimplemented (answered ENOSYS): io_uring_setup x2"), std::string::npos) << r.out << r.err;
  Result j = Sh(bh + " --root " + root + " stats --json " + id);
  EXPECT_NE(j.out.find("\"io_uring_setup\":2"), std::string::npos) << j.out << j.err;
  // The sandbox's memory, by kind, from the router (issue 6: accounting).
  const size_t mem = j.out.find("\"memory\":{\"used\":");
  ASSERT_NE(mem, std::string::npos) << j.out;
  EXPECT_GT(std::atoll(j.out.c_str() + mem + std::strlen("\"memory\":{\"used\":")), 0) << j.out;
  EXPECT_NE(r.out.find("sandbox memory "), std::string::npos) << r.out;
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

// A reader of the sandbox's stdout that stops reading stops only the task
// that writes there: the router serves the others (here: sleep and a write
// to stderr) while that write waits.
TEST(Shells, AStalledStdoutReaderStopsOnlyItsWriter) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const std::string err_path = TestDir("stall") + "/stderr";
  const std::string bh = Runfile("runtime/bulkhead");
  const std::string root = TestDir("stall-root");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    int errfd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(errfd, 2);
    close(out[0]);
    execl(bh.c_str(), "bulkhead", "--root", root.c_str(), "do", "--", "/bin/sh", "-c",
          "( dd if=/dev/zero bs=1M count=8 2>/dev/null ) & sleep 0.3; echo alive >&2; kill $!",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string err;
  for (int i = 0; i < 100 && err.find("alive") == std::string::npos; ++i) {
    usleep(100000);
    std::ifstream f(err_path);
    err.assign(std::istreambuf_iterator<char>(f), {});
  }
  EXPECT_NE(err.find("alive"), std::string::npos) << "the sandbox stopped with its stdout reader: " << err;
  close(out[0]);  // the writer now gets EPIPE / SIGPIPE, if still there
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st)) << st;
}

// Freed memory goes back (issue 6, release): 64 MiB touched then unmapped
// shows in `bulkhead stats` as the sandbox's memory rising by 64 MiB and
// falling back (the memory file's pages are punched out at once).
TEST(Memory, UnmappedMemoryGoesBack) {
  const std::string root = TestDir("release-root");
  const std::string bh = Runfile("runtime/bulkhead");
  const pid_t pid = StartQuietly({"--root", root, "do", "--", Runfile("integration/tasks"), "release", "/tmp"});
  ASSERT_GT(pid, 0);
  const std::string id = "do-" + std::to_string(pid);
  auto used = [&]() -> long long {
    Result j = Sh(bh + " --root " + root + " stats --json " + id);
    const size_t at = j.out.find("\"memory\":{\"used\":");
    return at == std::string::npos ? -1 : std::atoll(j.out.c_str() + at + std::strlen("\"memory\":{\"used\":"));
  };
  long long peak = 0, after = -1;
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(8)) {
    const long long u = used();
    if (u < 0 && peak > 0) break;  // the sandbox is gone
    if (u > peak) peak = u;
    if (peak > (64ll << 20) && u >= 0 && u < peak - (48ll << 20)) {
      after = u;
      break;
    }
    usleep(50000);
  }
  EXPECT_GT(peak, 64ll << 20) << "the 64 MiB never showed";
  EXPECT_GE(after, 0) << "the sandbox's memory never fell back from " << peak;
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

// A sandbox memory limit (issue 6, first part): the limit is what
// /proc/meminfo shows, a private mapping larger than it is ENOMEM, and the
// process holding the most memory is killed when the sandbox goes over it,
// not its parent and not a bulkhead service.
TEST(Memory, LimitRefusesHugeMappingsAndKillsTheBiggestProcess) {
  const std::string bh = Runfile("runtime/bulkhead") + " --root " + TestDir("memlimit-state") + " --memory-limit 64M";
  Result r = Sh(bh + " do --stats -- " + Runfile("integration/tasks") + " memlimit");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("; 1 processes killed for the memory limit"), std::string::npos) << r.err;
  EXPECT_EQ(r.out,
            "512M private mapping: Cannot allocate memory\n"
            "child killed by signal 9\n"
            "parent alive, its memory intact: 1\n")
      << r.err;
  EXPECT_NE(r.err.find("memory limit 64 MiB exceeded"), std::string::npos) << r.err;
  Result m = Sh(bh + " do -- /bin/sh -c 'head -1 /proc/meminfo'");
  EXPECT_EQ(m.out, "MemTotal:          65536 kB\n") << m.err;
  // tmpfs data is Shmem (and counts against the limit); dd gets full
  // blocks from /dev/zero, as natively.
  Result s = Sh(bh + " do -- /bin/sh -c 'dd if=/dev/zero of=/dev/shm/f bs=1M count=8 2>&1 | head -1; "
                     "grep -E \"^(Shmem|MemFree):\" /proc/meminfo'");
  ASSERT_EQ(s.code, 0) << s.out << s.err;
  EXPECT_EQ(s.out.substr(0, s.out.find('\n')), "8+0 records in") << s.out;
  const size_t sh = s.out.find("Shmem:");
  ASSERT_NE(sh, std::string::npos) << s.out;
  EXPECT_GE(std::atol(s.out.c_str() + sh + 6), 8192) << s.out;
  const size_t fr = s.out.find("MemFree:");
  ASSERT_NE(fr, std::string::npos) << s.out;
  EXPECT_LE(std::atol(s.out.c_str() + fr + 8), 65536 - 8192) << s.out;
  // Without a limit the same mapping is fine, as natively.
  Result n = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("memlimit-state") + " do -- " +
                Runfile("integration/tasks") + " memlimit");
  EXPECT_EQ(n.out.substr(0, n.out.find('\n')), "512M private mapping: mapped") << n.err;
  Result bad = Sh(Runfile("runtime/bulkhead") + " --memory-limit lots do -- /bin/true");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--memory-limit wants a size"), std::string::npos) << bad.err;
}

// The trap platform keeps the host vDSO in its stubs and passes
// AT_SYSINFO_EHDR: 30 000 clock calls cost no system call. On ptrace every
// one is a served system call.
TEST(Clocks, VdsoClockCallsNeverTrapOnTheTrapPlatform) {
  const char* platform = std::getenv("BULKHEAD_PLATFORM");
  const bool trap = platform == nullptr || std::string(platform) != "ptrace";
  Result r = Sh(Runfile("runtime/bulkhead") + " --root " + TestDir("vdso-state") + " do --stats -- " +
                Runfile("integration/tasks") + " vdso");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "clocks forward: 1, wall clock after 2020: 1\n");
  const size_t at = r.err.find(" system calls served");
  ASSERT_NE(at, std::string::npos) << r.err;
  const size_t from = r.err.rfind(' ', at - 1);
  const long served = std::atol(r.err.substr(from + 1, at - from - 1).c_str());
  EXPECT_NE(r.err.find(trap ? "on the trap platform" : "on the ptrace platform"), std::string::npos) << r.err;
  if (trap) {
    EXPECT_LT(served, 1000) << r.err;
  } else {
    EXPECT_GE(served, 30000) << r.err;
  }
}

// --router-cpu N pins the router's kernel thread (the one serving the
// application's calls) to CPU N; the application still runs.
TEST(Stats, RouterCpuPinsTheKernelThread) {
  const std::string root = TestDir("pin-root");
  const std::string bh = Runfile("runtime/bulkhead");
  const pid_t pid = StartQuietly({"--root", root, "--router-cpu", "0", "do", "--", "/bin/sleep", "2"});
  ASSERT_GT(pid, 0);
  const std::string id = "do-" + std::to_string(pid);
  int router = -1;
  bool pinned = false;
  std::string seen;
  for (int i = 0; i < 30 && !pinned; ++i) {
    usleep(100000);
    Result j = Sh(bh + " --root " + root + " stats --json " + id);
    const size_t at = j.out.find("\"service\":\"syscall-router\",\"pid\":");
    if (at == std::string::npos) continue;
    router = std::atoi(j.out.c_str() + at + std::strlen("\"service\":\"syscall-router\",\"pid\":"));
    DIR* d = opendir(("/proc/" + std::to_string(router) + "/task").c_str());
    if (d == nullptr) continue;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream st("/proc/" + std::to_string(router) + "/task/" + e->d_name + "/status");
      std::string line;
      while (std::getline(st, line)) {
        if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
        seen += line + "; ";
        if (line.substr(line.find_last_of(" \t") + 1) == "0") pinned = true;
      }
    }
    closedir(d);
  }
  EXPECT_GT(router, 0);
  EXPECT_TRUE(pinned) << seen;
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

// Application memory lives in the sandbox's memory file: one memfd, held by
// the mem-broker and mapped by the syscall-router (and the stubs).
TEST(Memory, RouterAndBrokerShareTheSandboxMemoryFile) {
  const std::string root = TestDir("memfile-root");
  const std::string bh = Runfile("runtime/bulkhead");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl(bh.c_str(), "bulkhead", "--root", root.c_str(), "do", "--", "/bin/sleep", "2", static_cast<char*>(nullptr));
    _exit(127);
  }
  const std::string id = "do-" + std::to_string(pid);
  std::map<std::string, ino_t> inode;  // service -> inode of its memory file
  for (int i = 0; i < 40 && inode.size() < 2; ++i) {
    usleep(50000);
    for (pid_t p : ProcessesOf(id)) {
      const std::string cmd = ReadFile("/proc/" + std::to_string(p) + "/cmdline");
      const std::string who = cmd.find("mem-broker") != std::string::npos        ? "mem-broker"
                              : cmd.find("syscall-router") != std::string::npos ? "syscall-router"
                                                                                : "";
      if (who.empty()) continue;
      const std::string fddir = "/proc/" + std::to_string(p) + "/fd";
      DIR* d = opendir(fddir.c_str());
      if (!d) continue;
      while (dirent* e = readdir(d)) {
        char link[256];
        ssize_t n = readlink((fddir + "/" + e->d_name).c_str(), link, sizeof link - 1);
        if (n <= 0) continue;
        link[n] = 0;
        struct stat st;
        if (std::string(link).rfind("/memfd:bulkhead.memory", 0) == 0 &&
            stat((fddir + "/" + e->d_name).c_str(), &st) == 0) {
          inode[who] = st.st_ino;
        }
      }
      closedir(d);
    }
  }
  ASSERT_EQ(inode.size(), 2u) << "memory file not found in both services";
  EXPECT_EQ(inode["mem-broker"], inode["syscall-router"]);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

// The fs-gofer is killed (SIGKILL) while a program has a file open and half
// read: the supervisor restarts it, the router re-opens the handle on the new
// gofer, and the program reads on without an error and with the same bytes.
TEST(CrashSurvival, FileReadsGoOnAcrossAGoferKill) {
  const std::string script =
      "import hashlib, os, sys, time\n"
      "path = sys.executable if os.path.getsize(sys.executable) > 1 << 20 else '/usr/bin/perl'\n"
      "f = open(path, 'rb', buffering=0)\n"
      "h = hashlib.sha256()\n"
      "size = os.fstat(f.fileno()).st_size\n"
      "h.update(f.read(size // 2))\n"
      "print('half', flush=True)\n"
      "time.sleep(1.5)\n"
      "while True:\n"
      "    b = f.read(65536)\n"
      "    if not b: break\n"
      "    h.update(b)\n"
      "print(h.hexdigest(), os.fstat(f.fileno()).st_size == size, len(open('/etc/os-release').read()) > 0)\n";
  Result native = Sh("/usr/bin/python3 -c " + Quote(script));
  ASSERT_EQ(native.code, 0) << native.err;
  const std::string root = TestDir("crash-root");
  const std::string bh = Runfile("runtime/bulkhead");
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  const std::string err_path = TestDir("crash-stderr") + "/stderr";
  if (pid == 0) {
    dup2(out[1], 1);
    int errfd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(errfd, 2);
    execl(bh.c_str(), "bulkhead", "--root", root.c_str(), "do", "--", "/usr/bin/python3", "-c", script.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string got;
  char buf[256];
  while (got.find("half\n") == std::string::npos) {
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  auto stderr_text = [&] {
    std::ifstream f(err_path);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  ASSERT_NE(got.find("half\n"), std::string::npos) << got << "\nstderr: " << stderr_text();
  Result k = Sh(bh + " --root " + root + " kill-service do-" + std::to_string(pid) + " fs-gofer");
  EXPECT_EQ(k.code, 0) << k.out << k.err;
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << got << "\nstderr: " << stderr_text();
  EXPECT_EQ(got, native.out);
}

// The mem-broker is killed 20 times while a program makes, fills, checks and
// unmaps mappings of up to 8 MiB (the router asks the broker for chunks and
// gives them back all the while). Each replacement reloads the ledger from
// the memory file and answers the router's re-sent request as its
// predecessor would have: the program sees no error and every mapping keeps
// its own contents (a chunk handed out twice would mix two of them).
TEST(CrashSurvival, MemoryChurnsOnAcrossTwentyBrokerKills) {
  const std::string root = TestDir("memchaos-root");
  const std::string bh = Runfile("runtime/bulkhead");
  const std::string log_dir = TestDir("memchaos-logs");
  // The stop file is reached through a volume: the root is an overlay
  // whose lower layer (the host root) may be cached as it was at the start.
  const std::string stop_dir = TestDir("memchaos-stop");
  const std::string stop_file = stop_dir + "/stop";
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    // Quick restarts: twenty kills would otherwise take a minute of backoff
    // and reach the crash-loop guard.
    execl(bh.c_str(), "bulkhead", "--root", root.c_str(), "--debug", "--debug-log-dir", log_dir.c_str(),
          "--restart-backoff-max", "20", "--max-restarts", "100", "do", "-v", (stop_dir + ":/stop").c_str(), "--",
          Runfile("integration/memchurn").c_str(), "120", "/stop/stop", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  const std::string sandbox = "do-" + std::to_string(pid);
  int kills = 0;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // A kill while the broker is being replaced finds no process: try again.
  for (int tries = 0; kills < 20 && tries < 100; ++tries) {
    Result k = Sh(bh + " --root " + root + " kill-service " + sandbox + " mem-broker");
    if (k.code == 0) ++kills;
    std::this_thread::sleep_for(std::chrono::milliseconds(k.code == 0 ? 350 : 50));
  }
  // Some more churn after the last replacement, then the program stops.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  { std::ofstream(stop_file) << "stop\n"; }
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EQ(kills, 20);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << got;
  EXPECT_EQ(got.rfind("ok ", 0), 0u) << got;
  // Every replacement found the ledger its predecessor left.
  std::ifstream f(log_dir + "/mem-broker.log");
  const std::string log((std::istreambuf_iterator<char>(f)), {});
  size_t reloads = 0;
  for (size_t p = log.find("ledger reloaded"); p != std::string::npos; p = log.find("ledger reloaded", p + 1)) ++reloads;
  EXPECT_EQ(reloads, 20u) << log.substr(0, 4000);
  EXPECT_EQ(log.find("inconsistent"), std::string::npos);
}

// The fs-gofer is killed 20 times while a program writes 10,000 files (each
// to a temporary name, then renamed over its final name), keeps rewriting
// them and appends a record per change to a log opened O_APPEND. The router
// re-opens every live handle on each replacement and re-sends the call in
// flight, checking its effect (an append carries the size it expects; a
// rename that finds its source gone is done): the program sees no error,
// every file has its last contents, and the log holds each record once, in
// order. The files live in the sandbox's own writable layer, which the
// supervisor holds across the gofer's deaths.
TEST(CrashSurvival, FilesSurviveTwentyGoferKills) {
  const std::string root = TestDir("fschaos-root");
  const std::string bh = Runfile("runtime/bulkhead");
  const std::string stop_dir = TestDir("fschaos-stop");
  const std::string work = "/var/tmp/bulkhead-fschaos-" + std::to_string(getpid());
  ASSERT_EQ(mkdir(work.c_str(), 0755), 0);
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    execl(bh.c_str(), "bulkhead", "--root", root.c_str(), "--restart-backoff-max", "20", "--max-restarts", "100", "do",
          "-v", (stop_dir + ":/stop").c_str(), "--", Runfile("integration/fschurn").c_str(), work.c_str(), "10000",
          "/stop/stop", "120", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  const std::string sandbox = "do-" + std::to_string(pid);
  int kills = 0;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int tries = 0; kills < 20 && tries < 200; ++tries) {
    Result k = Sh(bh + " --root " + root + " kill-service " + sandbox + " fs-gofer");
    if (k.code == 0) ++kills;
    std::this_thread::sleep_for(std::chrono::milliseconds(k.code == 0 ? 250 : 50));
  }
  { std::ofstream(stop_dir + "/stop") << "stop\n"; }
  std::string got;
  char buf[256];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EQ(kills, 20);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << got;
  EXPECT_EQ(got.rfind("ok files=10000 ", 0), 0u) << got;
  std::printf("[ measure  ] %s", got.c_str());
  // The writes went to the sandbox's own layer, never to the host directory.
  DIR* d = opendir(work.c_str());
  ASSERT_NE(d, nullptr);
  int entries = 0;
  while (dirent* e = readdir(d)) entries += e->d_name[0] != '.';
  closedir(d);
  EXPECT_EQ(entries, 0);
  rmdir(work.c_str());
}

// Every argument is hostile: random arguments at every system call number
// for a bounded time, from processes that are killed and replaced as they
// hang or crash. The router survives (bulkhead do would exit 125 and report
// its death) and the sandbox still forks, pipes and execs afterwards.
TEST(Hostile, RandomSystemCallsLeaveTheSandboxUsable) {
  Result r = Sh(Bulkhead() + Runfile("integration/sysfuzz") + " 4000");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("usable after"), std::string::npos) << r.out;
  std::printf("[ measure  ] %s", r.out.c_str());
}

// A program on a pseudo-terminal: what it printed, and its exit status.
class Pty {
 public:
  explicit Pty(const std::string& cmd) {
    pid_ = forkpty(&master_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      // exec: no shell of the test's own stays in the terminal's foreground
      // group (it would get the ^C too, and end with SIGINT).
      const std::string line = "exec " + cmd;
      execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Pty() {
    if (pid_ > 0 && status_ < 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) close(master_);
  }
  bool ok() const { return pid_ > 0; }
  void Pump(int ms) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{master_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char buf[4096];
      ssize_t n = read(master_, buf, sizeof buf);
      if (n <= 0) return;
      out_.append(buf, static_cast<size_t>(n));
    }
  }
  void Send(const std::string& s, int settle_ms = 500) {
    if (write(master_, s.data(), s.size()) != static_cast<ssize_t>(s.size())) return;
    Pump(settle_ms);
  }
  int Wait() {
    Pump(500);
    int st = 0;
    if (waitpid(pid_, &st, 0) != pid_) return -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }
  const std::string& out() const { return out_; }

 private:
  int master_ = -1;
  pid_t pid_ = -1;
  int status_ = -1;
  std::string out_;
};

// An interactive shell on a terminal: the pty is the sandbox's stdio; line
// editing, job control (a background job listed and killed) and the exit
// status all work.
TEST(Terminal, InteractiveShellUnderAPty) {
  Pty t(Bulkhead() + "/bin/busybox sh -i");
  ASSERT_TRUE(t.ok());
  t.Pump(1500);
  t.Send("echo hi-$((6*7))\n");
  t.Send("sleep 30 &\n");
  t.Send("jobs\n");
  t.Send("kill %1\n");
  t.Send("echo tty-$(tty >/dev/null && echo yes)\n");
  t.Send("exit 7\n");
  EXPECT_EQ(t.Wait(), 7) << t.out();
  EXPECT_NE(t.out().find("hi-42"), std::string::npos) << t.out();
  EXPECT_NE(t.out().find("Running"), std::string::npos) << t.out();
  EXPECT_NE(t.out().find("sleep 30"), std::string::npos) << t.out();
  EXPECT_NE(t.out().find("tty-yes"), std::string::npos) << t.out();
}

// ^C and ^Z reach the foreground job inside the sandbox (the terminal's
// signals are forwarded to the sandbox's foreground process group): bash
// sees its job interrupted (130) and stopped, and lives on.
TEST(Terminal, CtrlCAndCtrlZReachTheForegroundJob) {
  Pty t(Bulkhead() + "/bin/bash --norc -i");
  ASSERT_TRUE(t.ok());
  t.Pump(1500);
  t.Send("sleep 30\n", 700);
  t.Send("\x03", 700);
  t.Send("echo after-int-$?\n");
  t.Send("sleep 31\n", 700);
  t.Send("\x1a", 700);
  t.Send("jobs\n");
  t.Send("kill %1\n");
  t.Send("exit 4\n");
  EXPECT_EQ(t.Wait(), 4) << t.out();
  EXPECT_NE(t.out().find("after-int-130"), std::string::npos) << t.out();
  EXPECT_NE(t.out().find("Stopped"), std::string::npos) << t.out();
}

// A plain command as the sandbox's init has no SIGINT handler: ^C still ends
// it (130), as a user at the terminal expects.
TEST(Terminal, CtrlCEndsAPlainCommand) {
  Pty t(Bulkhead() + "/bin/sleep 30");
  ASSERT_TRUE(t.ok());
  t.Pump(1000);
  auto t0 = std::chrono::steady_clock::now();
  t.Send("\x03", 0);
  EXPECT_EQ(t.Wait(), 130) << t.out();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

}  // namespace
}  // namespace bulkhead::integration
