// System calls inside a sandbox: native vs Debian's runsc (ptrace platform)
// vs bulkhead (ptrace platform), contenders interleaved in one run.
//   syscall_bench [--format=text|tsv] [--rounds N] [--iterations N]
// Needs root (runsc do). A contender that is missing is reported, not fatal.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

std::string ExeDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  buf[n] = 0;
  std::string s(buf);
  return s.substr(0, s.rfind('/'));
}

bool Run(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!p) return false;
  std::array<char, 4096> b;
  size_t n;
  out->clear();
  while ((n = fread(b.data(), 1, b.size(), p)) > 0) out->append(b.data(), n);
  int st = pclose(p);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// Proportional set size (kB) of `root` and all its descendants.
long TreePssKb(pid_t root) {
  std::map<pid_t, pid_t> parent;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      pid_t pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      std::ifstream st("/proc/" + std::string(e->d_name) + "/stat");
      std::string line;
      std::getline(st, line);
      size_t rp = line.rfind(')');
      if (rp == std::string::npos) continue;
      char state;
      int ppid = 0;
      if (std::sscanf(line.c_str() + rp + 1, " %c %d", &state, &ppid) == 2) parent[pid] = ppid;
    }
    closedir(d);
  }
  long total = 0;
  for (auto& [pid, pp] : parent) {
    pid_t p = pid;
    for (int depth = 0; depth < 64 && p > 1 && p != root; ++depth) p = parent.count(p) ? parent[p] : 0;
    if (p != root) continue;
    std::ifstream sm("/proc/" + std::to_string(pid) + "/smaps_rollup");
    std::string key;
    long kb;
    std::string unit;
    std::string line;
    while (std::getline(sm, line)) {
      if (line.rfind("Pss:", 0) == 0 && std::sscanf(line.c_str() + 4, "%ld", &kb) == 1) total += kb;
    }
  }
  return total;
}

// Memory of a contender running an idle program: PSS of everything it
// started, 1.5 s after start.
long IdlePssKb(const std::string& prefix) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::string cmd = prefix + "/bin/sleep 4";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  usleep(1500000);
  long kb = TreePssKb(pid);
  kill(-pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  return kb;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bool tsv = false;
  int rounds = 5, iterations = 2000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--format=tsv") tsv = true;
    else if (a == "--format=text") tsv = false;
    else if (a == "--rounds" && i + 1 < argc) rounds = std::max(1, std::atoi(argv[++i]));
    else if (a == "--iterations" && i + 1 < argc) iterations = std::max(1, std::atoi(argv[++i]));
    else if (a == "--help") {
      std::puts("usage: syscall_bench [--format=text|tsv] [--rounds N] [--iterations N]");
      return 0;
    } else {
      std::fprintf(stderr, "syscall_bench: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  const std::string dir = ExeDir();
  const std::string probe = dir + "/syscall_probe";
  const std::string bulkhead = dir + "/../runtime/bulkhead";
  struct Contender {
    std::string name, prefix;
  };
  std::vector<Contender> contenders = {{"native", ""},
                                       {"runsc-ptrace", "runsc --network=none do "},
                                       {"bulkhead-ptrace", bulkhead + " do -- "}};
  std::map<std::string, std::map<std::string, std::vector<double>>> results;  // contender -> figure -> samples
  std::map<std::string, bool> broken;
  for (int r = 0; r < rounds; ++r) {
    std::fprintf(stderr, "syscall_bench: round %d/%d\n", r + 1, rounds);
    for (auto& c : contenders) {
      if (broken[c.name]) continue;
      std::string out;
      if (!Run(c.prefix + probe + " " + std::to_string(iterations), &out)) {
        std::fprintf(stderr, "syscall_bench: %s failed; left out\n", c.name.c_str());
        broken[c.name] = true;
        continue;
      }
      char key[64];
      double v;
      const char* p = out.c_str();
      int used;
      while (std::sscanf(p, "%63s %lf%n", key, &v, &used) == 2) {
        results[c.name][key].push_back(v / 1000.0);  // µs
        p += used;
      }
      // Start-up: `/bin/true` from nothing to exit.
      auto t0 = std::chrono::steady_clock::now();
      Run(c.prefix + "/bin/true", &out);
      auto t1 = std::chrono::steady_clock::now();
      results[c.name]["startup_true"].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  }
  // Idle memory, once per contender (after the timed rounds).
  for (auto& c : contenders) {
    if (broken[c.name]) continue;
    long kb = IdlePssKb(c.prefix);
    if (kb > 0) results[c.name]["idle_pss_kb"].push_back(static_cast<double>(kb));
  }
  const char* figures[] = {"getpid", "open_close", "read_4k", "fork_wait", "pipe_pingpong", "startup_true"};
  if (tsv) {
    for (auto* f : figures)
      for (auto& c : contenders)
        if (!results[c.name][f].empty()) std::printf("%s\t%s\t%.3f\tus\n", f, c.name.c_str(), Median(results[c.name][f]));
    for (auto& c : contenders)
      if (!results[c.name]["idle_pss_kb"].empty())
        std::printf("idle_pss\t%s\t%.0f\tkB\n", c.name.c_str(), Median(results[c.name]["idle_pss_kb"]));
    return 0;
  }
  std::printf("%-14s %14s %14s %16s %14s\n", "benchmark", "native", "runsc-ptrace", "bulkhead-ptrace", "runsc/bulkhead");
  for (auto* f : figures) {
    double n = Median(results["native"][f]), r = Median(results["runsc-ptrace"][f]), b = Median(results["bulkhead-ptrace"][f]);
    std::printf("%-14s %11.3f us %11.3f us %13.3f us %13.2fx\n", f, n, r, b, b > 0 ? r / b : 0.0);
  }
  {
    double n = Median(results["native"]["idle_pss_kb"]), r = Median(results["runsc-ptrace"]["idle_pss_kb"]),
           b = Median(results["bulkhead-ptrace"]["idle_pss_kb"]);
    std::printf("%-14s %11.0f kB %11.0f kB %13.0f kB %13.2fx\n", "idle_pss", n, r, b, b > 0 ? r / b : 0.0);
    std::printf("extra memory of an idle sandbox (PSS, all its processes, minus native): runsc %.1f MB, bulkhead %.1f MB\n",
                (r - n) / 1024, (b - n) / 1024);
  }
  std::printf("(medians of %d rounds of %d calls; fork_wait is per fork+exit+wait (a tenth as many); startup is one /bin/true per round)\n",
              rounds, iterations);
  return 0;
}
