#include "bench/bench_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>

namespace bulkhead::bench {

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

std::string Cell(double v, const char* fmt, const char* unit) {
  char b[64];
  if (v <= 0) return "-";
  std::snprintf(b, sizeof(b), fmt, v);
  return std::string(b) + unit;
}

void ParseFigures(const std::string& out, double scale, std::map<std::string, std::vector<double>>* into) {
  char key[64];
  double v;
  const char* p = out.c_str();
  int used;
  while (std::sscanf(p, "%63s %lf%n", key, &v, &used) == 2) {
    (*into)[key].push_back(v * scale);
    p += used;
  }
}

void RunProbeRounds(const char* bench, const std::vector<Contender>& contenders, int rounds,
                    const std::string& probe, Results* results, std::map<std::string, bool>* broken,
                    const std::function<void(const Contender&)>& after) {
  for (int r = 0; r < rounds; ++r) {
    std::fprintf(stderr, "%s: round %d/%d\n", bench, r + 1, rounds);
    for (const Contender& c : contenders) {
      if ((*broken)[c.name]) continue;
      std::string out;
      if (!Run(c.prefix + probe, &out)) {
        std::fprintf(stderr, "%s: %s failed; left out\n", bench, c.name.c_str());
        (*broken)[c.name] = true;
        continue;
      }
      ParseFigures(out, 1.0 / 1000.0, &(*results)[c.name]);  // ns -> µs
      if (after) after(c);
    }
  }
}

}  // namespace bulkhead::bench
