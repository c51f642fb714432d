// File operations inside a sandbox, contenders interleaved in one run:
// native; Debian's runsc (`runsc --network=none do`, its default ptrace
// platform); bulkhead (`bulkhead --platform trap do`). The probe
// (fs_probe.c) runs inside each and measures itself in two places: a tmpfs
// of the sandbox's own, and the root file system (a fresh directory under
// /var/tmp every round; natively ext4 or whatever the host has, inside the
// sandboxes the image root with a writable upper layer).
//   fs_bench [--format=text|tsv] [--rounds N] [--iterations N]
//            [--contenders native,runsc,bulkhead] [--only CONTENDER]
// TSV lines are `location.figure<TAB>contender<TAB>median<TAB>unit`; ratio
// lines use `A/B` as the contender and `x` as the unit; a figure the probe
// could not measure in a contender is `...<TAB>NA<TAB>unit<TAB>why`;
// `other_work<TAB>contender<TAB>cores<TAB>cores` is how busy the machine was
// with other work while that contender's probe ran (median of rounds). runsc
// needs root; a contender that fails is reported and left out, never fatal.
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"

using namespace bulkhead::bench;

namespace {

struct Figure {
  const char* key;
  const char* unit;
  const char* what;
};

const Figure kFigures[] = {
    {"open_close", "us", "open(O_RDONLY)+close of a 4 KiB file by absolute path"},
    {"stat", "us", "stat() of that file by absolute path"},
    {"read_4k", "us", "pread() of 4 KiB at offset 0 of that file, already read once"},
    {"seq_read_1m", "us", "a cached 1 MiB file read from offset 0 to EOF in 64 KiB read()s: per MiB"},
    {"seq_write_1m", "us", "open(O_CREAT|O_TRUNC), 1 MiB in 64 KiB write()s, close: per MiB (no fsync)"},
    {"create_unlink", "us", "open(O_CREAT|O_EXCL) of a new file, close, unlink"},
    {"getdents_1000", "us", "open(O_DIRECTORY) of a directory of 1000 files, getdents64 to the end, close"},
};
const char* const kLocations[] = {"tmpfs", "root"};

struct Place {
  std::string name, prefix, tmpfs;  // tmpfs: a tmpfs directory as the contender sees it
};

int Usage(FILE* to, int rc) {
  std::fputs(
      "usage: fs_bench [--format=text|tsv] [--rounds N] [--iterations N]\n"
      "                [--contenders native,runsc,bulkhead] [--only CONTENDER]\n"
      "File operations natively, under runsc and under bulkhead, on a tmpfs of\n"
      "the sandbox and on its root file system, in one run; medians of N rounds,\n"
      "ratios, and the targets of issue 5.\n",
      to);
  return rc;
}

double Seconds(const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; }

// How busy the machine was with work other than ours while a probe ran (as
// ring_bench's LoadMonitor): /proc/stat's busy time of all CPUs minus the
// CPU time of this process and its reaped children, in cores.
class LoadMonitor {
 public:
  LoadMonitor() { Sample(&busy0_, &ours0_, &wall0_); }
  double OtherCores() const {
    double busy, ours, wall;
    Sample(&busy, &ours, &wall);
    return std::max(0.0, (busy - busy0_) - (ours - ours0_)) / std::max(wall - wall0_, 1e-9);
  }

 private:
  static void Sample(double* busy, double* ours, double* wall) {
    *busy = 0;
    if (FILE* f = std::fopen("/proc/stat", "r")) {
      unsigned long long v[8] = {};
      if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                      &v[6], &v[7]) == 8)
        *busy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6]) / static_cast<double>(sysconf(_SC_CLK_TCK));
      std::fclose(f);
    }
    rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    *ours = Seconds(self.ru_utime) + Seconds(self.ru_stime) + Seconds(kids.ru_utime) + Seconds(kids.ru_stime);
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *wall = static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
  }
  double busy0_, ours0_, wall0_;
};

bool IsNumber(const std::string& s, double* v) {
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return !s.empty() && end && *end == 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool tsv = false;
  int rounds = 5, iterations = 2000;
  std::string wanted = "native,runsc,bulkhead";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto number = [&](int* into) {
      if (i + 1 >= argc || (*into = std::atoi(argv[++i])) <= 0) {
        std::fprintf(stderr, "fs_bench: %s needs a positive number\n", a.c_str());
        return false;
      }
      return true;
    };
    if (a == "--format=tsv") {
      tsv = true;
    } else if (a == "--format=text") {
      tsv = false;
    } else if (a == "--rounds") {
      if (!number(&rounds)) return 2;
    } else if (a == "--iterations") {
      if (!number(&iterations)) return 2;
    } else if ((a == "--contenders" || a == "--only") && i + 1 < argc) {
      wanted = argv[++i];
    } else if (a == "--help" || a == "-h") {
      return Usage(stdout, 0);
    } else {
      std::fprintf(stderr, "fs_bench: unknown flag %s\n", a.c_str());
      return Usage(stderr, 2);
    }
  }
  const std::string dir = ExeDir();
  const std::string probe = dir + "/fs_probe";
  const std::string bulkhead = dir + "/../runtime/bulkhead";
  const std::string kNative = "native", kRunsc = "runsc", kBulkhead = "bulkhead";
  // tmpfs: natively /dev/shm; Debian's `runsc do` has its root overlay at
  // /tmp (statfs: overlayfs), so its tmpfs is /dev/shm too (on its /dev
  // tmpfs); bulkhead's /tmp is the router's tmpfs.
  std::vector<Place> places;
  for (const Place& c : std::vector<Place>{{kNative, "", "/dev/shm"},
                                            {kRunsc, "runsc --network=none do ", "/dev/shm"},
                                            {kBulkhead, bulkhead + " --platform trap do -- ", "/tmp"}}) {
    if (("," + wanted + ",").find("," + c.name + ",") != std::string::npos) places.push_back(c);
  }
  if (places.empty()) {
    std::fprintf(stderr, "fs_bench: no known contender in '%s' (native, runsc, bulkhead)\n", wanted.c_str());
    return 2;
  }

  // Rounds, contenders interleaved (as RunProbeRounds, but the probe's NA
  // lines and statfs notes are kept, and each contender gets its own tmpfs).
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  Results results;  // contender -> figure -> µs
  std::map<std::string, std::map<std::string, std::string>> na;  // contender -> figure -> why
  std::map<std::string, std::set<std::string>> fstypes;          // contender -> "# ..." lines
  std::map<std::string, bool> broken;
  for (int r = 0; r < rounds; ++r) {
    std::fprintf(stderr, "fs_bench: round %d/%d\n", r + 1, rounds);
    for (const Place& c : places) {
      if (broken[c.name]) continue;
      std::string out;
      LoadMonitor load;
      const bool ok = Run(c.prefix + probe + " " + std::to_string(iterations) + " tmpfs=" + c.tmpfs + " root=/var/tmp",
                          &out);
      // A contender's daemons come back to us (subreaper): reap them, so that
      // their CPU time counts as ours.
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      results[c.name]["other_work"].push_back(load.OtherCores());
      std::istringstream lines(out);
      std::string line;
      while (std::getline(lines, line)) {
        if (line.rfind("# ", 0) == 0) {
          fstypes[c.name].insert(line.substr(2));
          continue;
        }
        std::istringstream words(line);
        std::string key, value, why;
        words >> key >> value;
        std::getline(words, why);
        double v;
        if (IsNumber(value, &v)) {
          results[c.name][key].push_back(v / 1000.0);  // ns -> µs
        } else if (value == "NA") {
          na[c.name][key] = why.empty() ? "" : why.substr(why.find_first_not_of(' '));
        }
      }
      if (!ok) {
        std::fprintf(stderr, "fs_bench: %s failed; left out\n", c.name.c_str());
        broken[c.name] = true;
      }
    }
  }

  auto med = [&](const std::string& c, const std::string& f) { return Median(results[c][f]); };
  struct Ratio {
    std::string num, den;
  };
  const std::vector<Ratio> ratios = {{kBulkhead, kNative}, {kBulkhead, kRunsc}};
  auto ratio = [&](const Ratio& q, const std::string& f) {
    double a = med(q.num, f), b = med(q.den, f);
    return a > 0 && b > 0 ? a / b : 0.0;
  };
  auto why = [&](const std::string& c, const std::string& f) -> std::string {
    if (!results[c][f].empty()) return "";
    if (na[c].count(f)) return na[c][f];
    return broken[c] ? "the probe failed" : "";
  };
  if (tsv) {
    for (const char* loc : kLocations) {
      for (const Figure& f : kFigures) {
        const std::string key = std::string(loc) + "." + f.key;
        for (auto& c : places) {
          if (!results[c.name][key].empty())
            std::printf("%s\t%s\t%.3f\t%s\n", key.c_str(), c.name.c_str(), med(c.name, key), f.unit);
          else if (std::string w = why(c.name, key); !w.empty())
            std::printf("%s\t%s\tNA\t%s\t%s\n", key.c_str(), c.name.c_str(), f.unit, w.c_str());
        }
        for (auto& q : ratios)
          if (double x = ratio(q, key); x > 0) std::printf("%s\t%s/%s\t%.3f\tx\n", key.c_str(), q.num.c_str(), q.den.c_str(), x);
      }
    }
    for (auto& c : places)
      if (!results[c.name]["other_work"].empty())
        std::printf("other_work\t%s\t%.2f\tcores\n", c.name.c_str(), med(c.name, "other_work"));
    return 0;
  }
  std::printf("%-24s", "benchmark");
  for (auto& c : places) std::printf(" %14s", c.name.c_str());
  for (auto& q : ratios) std::printf(" %16s", (q.num + "/" + q.den).c_str());
  std::printf("\n");
  for (const char* loc : kLocations) {
    for (const Figure& f : kFigures) {
      const std::string key = std::string(loc) + "." + f.key;
      std::printf("%-24s", key.c_str());
      for (auto& c : places)
        std::printf(" %14s", results[c.name][key].empty() && !why(c.name, key).empty()
                                 ? "NA"
                                 : Cell(med(c.name, key), "%.3f", " us").c_str());
      for (auto& q : ratios) std::printf(" %16s", Cell(ratio(q, key), "%.2f", "x").c_str());
      std::printf("\n");
    }
  }
  std::printf("\n");
  for (const Figure& f : kFigures) std::printf("  %-16s %s\n", f.key, f.what);
  std::printf("  tmpfs.*          in a tmpfs of the contender's own: native /dev/shm, runsc /dev/shm, bulkhead /tmp\n");
  std::printf("  root.*           in a fresh directory under /var/tmp: the root file system\n");
  std::printf("(medians of %d rounds, %d iterations of open_close, stat and read_4k, a tenth as many of create_unlink, "
              "a twentieth of the 1 MiB and getdents figures, each cut at 200 ms)\n",
              rounds, iterations);
  std::printf("\n1 MiB figures as throughput (MB/s, 10^6 bytes):\n");
  for (const char* loc : kLocations) {
    for (const char* f : {"seq_read_1m", "seq_write_1m"}) {
      const std::string key = std::string(loc) + "." + f;
      std::printf("  %-24s", key.c_str());
      for (auto& c : places) {
        const double us = med(c.name, key);
        std::printf(" %s %s", c.name.c_str(), us > 0 ? Cell(1048576.0 / us, "%.0f", " MB/s").c_str() : "-");
      }
      std::printf("\n");
    }
  }
  bool any_na = false;
  for (auto& c : places)
    for (auto& [key, w] : na[c.name]) {
      if (!any_na) std::printf("\nnot measured (NA):\n");
      any_na = true;
      std::printf("  %-24s %-9s %s\n", key.c_str(), c.name.c_str(), w.c_str());
    }
  std::printf("\nother work on the machine while each contender's probe ran (cores; median, max of rounds):\n ");
  for (auto& c : places) {
    auto& w = results[c.name]["other_work"];
    if (!w.empty()) std::printf(" %s %.2f, %.2f;", c.name.c_str(), Median(w), *std::max_element(w.begin(), w.end()));
  }
  std::printf("\n");
  std::printf("\nfile systems (statfs f_type of each parent):\n");
  for (auto& c : places)
    for (auto& t : fstypes[c.name]) std::printf("  %-9s %s\n", c.name.c_str(), t.c_str());
  // Targets (issue 5), reported, never asserted.
  auto verdict = [](bool known, bool met) { return !known ? "UNKNOWN" : met ? "MET" : "NOT MET"; };
  std::printf("\ntargets (issue 5):\n");
  for (const char* loc : kLocations) {
    for (const Figure& f : kFigures) {
      const std::string key = std::string(loc) + "." + f.key;
      const double b = med(kBulkhead, key), r = med(kRunsc, key);
      std::printf("  %-24s bulkhead <= runsc: %11.3f vs %11.3f us  %s\n", key.c_str(), b, r,
                  verdict(b > 0 && r > 0, b <= r));
    }
  }
  const double bo = med(kBulkhead, "root.open_close"), no = med(kNative, "root.open_close");
  std::printf("  root.open_close within 10x native: %.3f vs %.3f us = %.2fx  %s\n", bo, no, no > 0 ? bo / no : 0.0,
              verdict(bo > 0 && no > 0, bo <= 10 * no));
  return 0;
}
