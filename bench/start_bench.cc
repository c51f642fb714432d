// Start-up of a container (issue 8): `run` of /bin/true from a prepared OCI
// bundle (a static busybox root), median of N runs, in one run with runc,
// Debian's runsc and bulkhead. Target: bulkhead at most 1.5x runc's and
// below runsc's.
//
//   start_bench [--runs N] [--contenders runc,runsc,bulkhead] [--format=tsv]
//
// A contender whose binary is missing is reported as NA. The bundle and
// every contender's state live in a fresh temporary directory, removed after.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"

namespace {

namespace fs = std::filesystem;
using bulkhead::bench::ExeDir;
using bulkhead::bench::Median;

int Usage(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "start_bench: %s\n", why.c_str());
  std::fprintf(stderr, "usage: start_bench [--runs N] [--contenders runc,runsc,bulkhead] [--format=tsv]\n");
  return 2;
}

// One shell command's wall time in ms, or -1 if it failed.
double TimeMs(const std::string& cmd) {
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = std::system(cmd.c_str());
  const auto t1 = std::chrono::steady_clock::now();
  if (rc != 0) return -1;
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

bool Which(const std::string& name, std::string* path) {
  for (const char* dir : {"/usr/sbin", "/usr/bin", "/usr/local/bin", "/sbin", "/bin"}) {
    const std::string p = std::string(dir) + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) {
      *path = p;
      return true;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 20;
  bool tsv = false;
  std::vector<std::string> contenders = {"runc", "runsc", "bulkhead"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return Usage(""), 0;
    if (a == "--format=tsv") tsv = true;
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--contenders" && i + 1 < argc) {
      contenders.clear();
      std::stringstream ss(argv[++i]);
      for (std::string c; std::getline(ss, c, ',');) {
        if (c != "runc" && c != "runsc" && c != "bulkhead") return Usage("unknown contender " + c);
        contenders.push_back(c);
      }
    } else {
      return Usage("unknown flag " + a);
    }
  }
  if (runs < 1 || runs > 1000) return Usage("--runs wants 1 to 1000");
  if (::access("/bin/busybox", X_OK) != 0) return Usage("needs /bin/busybox (Debian's busybox-static)");

  char tmpl[] = "/tmp/start-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) return Usage("mkdtemp failed");
  const std::string base = tmpl;
  const std::string bundle = base + "/bundle";
  fs::create_directories(bundle + "/rootfs/bin");
  fs::copy_file("/bin/busybox", bundle + "/rootfs/bin/busybox");
  fs::create_symlink("busybox", bundle + "/rootfs/bin/true");
  ::chmod(base.c_str(), 0755);
  const std::string bulkhead = ExeDir() + "/../runtime/bulkhead";
  // One config.json for all: bulkhead's default spec, running /bin/true.
  if (std::system((bulkhead + " spec --bundle " + bundle + " >/dev/null").c_str()) != 0) return Usage("bulkhead spec failed");
  {
    std::ifstream in(bundle + "/config.json");
    std::string cfg((std::istreambuf_iterator<char>(in)), {});
    const size_t at = cfg.find("\"sh\"");
    cfg.replace(at, 4, "\"/bin/true\"");
    std::ofstream(bundle + "/config.json") << cfg;
  }

  std::map<std::string, double> median;
  for (const auto& c : contenders) {
    std::string bin;
    std::string cmd;
    if (c == "bulkhead") {
      bin = bulkhead;
      cmd = bin + " --root " + base + "/bh run --bundle " + bundle + " ";
    } else if (Which(c, &bin)) {
      cmd = bin + " --root " + base + "/" + c + (c == "runsc" ? " --network=none" : "") + " run --bundle " + bundle + " ";
    } else {
      median[c] = -1;
      continue;
    }
    std::vector<double> t;
    TimeMs(cmd + "warm-" + c + " >/dev/null 2>&1");  // page cache, first-use costs
    for (int i = 0; i < runs; ++i) {
      const double ms = TimeMs(cmd + c + "-" + std::to_string(i) + " >/dev/null");
      if (ms < 0) {
        t.clear();
        break;
      }
      t.push_back(ms);
    }
    median[c] = t.empty() ? -1 : Median(t);
  }
  std::error_code ec;
  fs::remove_all(base, ec);

  for (const auto& c : contenders) {
    if (tsv) {
      if (median[c] < 0) std::printf("run_true\t%s\tNA\tms\tnot installed or failed\n", c.c_str());
      else std::printf("run_true\t%s\t%.2f\tms\n", c.c_str(), median[c]);
    } else {
      std::printf("%-10s run of /bin/true: %s\n", c.c_str(), median[c] < 0 ? "NA" : (std::to_string(median[c]) + " ms").c_str());
    }
  }
  auto have = [&](const char* c) { return median.count(c) && median[c] > 0; };
  if (have("bulkhead") && have("runc")) {
    std::printf(tsv ? "bulkhead/runc\tratio\t%.2f\tx\n" : "bulkhead/runc %.2fx (target <= 1.5x)\n", median["bulkhead"] / median["runc"]);
  }
  if (have("bulkhead") && have("runsc")) {
    std::printf(tsv ? "bulkhead/runsc\tratio\t%.2f\tx\n" : "bulkhead/runsc %.2fx (target < 1x)\n", median["bulkhead"] / median["runsc"]);
  }
  return 0;
}
