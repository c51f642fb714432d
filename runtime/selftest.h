#pragma once

#include "runtime/supervisor.h"

namespace bulkhead::runtime {

// `bulkhead selftest`: starts one sandbox's supervisor and its four services,
// exchanges messages with each over its ring, kills one service and shows it
// restarted, prints per-service stats and the measured ring latency, then
// stops cleanly and checks nothing was left behind. Returns the exit code.
int RunSelftest(SupervisorOptions opts);

}  // namespace bulkhead::runtime
