// runc's command line for OCI bundles (issue 8, first part): create, start,
// run, state, kill, delete, list, spec, features. State lives under
// <--root>/containers/<id>/ and survives a crash of the CLI; the sandbox of
// a container is a supervisor process of its own (its pid is the
// container's pid for engines), which waits for `start` on a FIFO, runs the
// process, records its exit status and stops.
#pragma once

#include <string>
#include <vector>

#include "runtime/supervisor.h"

namespace bulkhead::runtime {

// Whether `verb` is one of the OCI commands.
bool IsOciCommand(const std::string& verb);
// Runs one; `base` carries the global flags (its sandbox_id is set here).
// Returns the process exit code.
int OciCommand(const std::string& verb, const std::vector<std::string>& args, SupervisorOptions base);

}  // namespace bulkhead::runtime
