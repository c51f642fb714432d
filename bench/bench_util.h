// What the contender benchmarks share: where the binaries are, running a
// contender's command, the memory of a process tree, medians.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace bulkhead::bench {

// The directory of the running binary (the benchmark's runfiles sit beside it).
std::string ExeDir();
// Runs `cmd` through sh, stdout into *out, stderr dropped: true if it exited 0.
bool Run(const std::string& cmd, std::string* out);
// Proportional set size (kB) of `root` and all its descendants.
long TreePssKb(pid_t root);
// Memory of a contender running an idle program: PSS of everything that
// `prefix /bin/sleep 4` started, 1.5 s after the start.
long IdlePssKb(const std::string& prefix);
double Median(std::vector<double> v);
// Parses `figure value` pairs (whitespace separated) and appends value *
// scale to (*into)[figure].
void ParseFigures(const std::string& out, double scale, std::map<std::string, std::vector<double>>* into);

}  // namespace bulkhead::bench
