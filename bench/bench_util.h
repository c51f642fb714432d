// What the contender benchmarks share: where the binaries are, running a
// contender's command, the memory of a process tree, medians.
#pragma once

#include <sys/types.h>

#include <functional>
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
// A table cell: v printed with fmt and unit, or "-" for a figure a
// contender does not have (left out, or not measured).
std::string Cell(double v, const char* fmt, const char* unit);
// A contender: its name and the command prefix that runs a program in it.
struct Contender {
  std::string name, prefix;
};
using Results = std::map<std::string, std::map<std::string, std::vector<double>>>;  // contender -> figure -> samples

// `rounds` interleaved rounds of `prefix + probe` in every contender: the
// probe's `figure nanoseconds` lines go into (*results)[contender] in µs; a
// contender whose probe fails is left out from then on (named in *broken).
// after(contender) runs after each probe run (more figures of a round).
void RunProbeRounds(const char* bench, const std::vector<Contender>& contenders, int rounds,
                    const std::string& probe, Results* results, std::map<std::string, bool>* broken,
                    const std::function<void(const Contender&)>& after = {});

// Parses `figure value` pairs (whitespace separated) and appends value *
// scale to (*into)[figure].
void ParseFigures(const std::string& out, double scale, std::map<std::string, std::vector<double>>* into);

}  // namespace bulkhead::bench
