// Helpers for tests that run the real bulkhead processes.
#pragma once

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/supervisor.h"

namespace bulkhead::integration {

// Live processes of sandbox `id` (see runtime::SandboxProcesses).
inline std::vector<pid_t> ProcessesOf(const std::string& id) { return runtime::SandboxProcesses(id); }

// Number of open descriptors of process `pid` on a bulkhead memfd segment.
inline int BulkheadMemfds(pid_t pid) {
  int n = 0;
  {
    std::string fddir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* f = opendir(fddir.c_str());
    if (!f) return 0;
    while (dirent* fe = readdir(f)) {
      char buf[256];
      ssize_t len = readlink((fddir + "/" + fe->d_name).c_str(), buf, sizeof(buf) - 1);
      if (len <= 0) continue;
      buf[len] = 0;
      if (std::string(buf).find("memfd:bulkhead-") == 0) ++n;
    }
    closedir(f);
  }
  return n;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline std::string TestDir(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(t ? t : "/tmp") + "/" + name;
  std::string cmd = "rm -rf '" + dir + "' && mkdir -p '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) return "/tmp";
  return dir;
}

// Path of a binary in the test's runfiles.
inline std::string Runfile(const std::string& rel) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/bulkhead/" + rel;
}

// A shell command's standard output (stderr dropped) and exit code (128 + N
// for a death by signal N, as a shell reports it).
struct Result {
  int code = -1;
  std::string out;
  std::string err;  // standard error, for failure messages
};

inline Result Sh(const std::string& cmd) {
  Result r;
  char errfile[] = "/tmp/bulkhead-sh-err-XXXXXX";
  int efd = mkstemp(errfile);
  if (efd < 0) return r;
  close(efd);
  FILE* p = popen(("{ " + cmd + " ; } 2>" + errfile).c_str(), "r");
  if (!p) {
    unlink(errfile);
    return r;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.err = ReadFile(errfile);
  unlink(errfile);
  return r;
}

}  // namespace bulkhead::integration
