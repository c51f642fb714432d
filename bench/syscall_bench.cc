// System calls inside a sandbox: native vs Debian's runsc (ptrace platform)
// vs bulkhead (ptrace platform), contenders interleaved in one run.
//   syscall_bench [--format=text|tsv] [--rounds N] [--iterations N]
// Needs root (runsc do). A contender that is missing is reported, not fatal.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
  const char* figures[] = {"getpid", "open_close", "read_4k", "startup_true"};
  if (tsv) {
    for (auto* f : figures)
      for (auto& c : contenders)
        if (!results[c.name][f].empty()) std::printf("%s\t%s\t%.3f\tus\n", f, c.name.c_str(), Median(results[c.name][f]));
    return 0;
  }
  std::printf("%-14s %14s %14s %16s %14s\n", "benchmark", "native", "runsc-ptrace", "bulkhead-ptrace", "runsc/bulkhead");
  for (auto* f : figures) {
    double n = Median(results["native"][f]), r = Median(results["runsc-ptrace"][f]), b = Median(results["bulkhead-ptrace"][f]);
    std::printf("%-14s %11.3f us %11.3f us %13.3f us %13.2fx\n", f, n, r, b, b > 0 ? r / b : 0.0);
  }
  std::printf("(medians of %d rounds of %d calls; startup is one /bin/true per round)\n", rounds, iterations);
  return 0;
}
