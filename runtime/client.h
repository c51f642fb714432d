// The CLI side of the supervisor's control socket (<root>/<id>/control.sock).
#pragma once

#include <functional>
#include <string>

#include "services/common/wire.h"
#include "schemas/control.capnp.h"

namespace bulkhead::runtime {

// Connects to sandbox `id` under `root`, sends a request built by `fill`, and
// receives the response into `out`. Throws std::runtime_error with a message
// for a person ("no sandbox named x under /run/bulkhead", ...).
void CallSupervisor(const std::string& root, const std::string& id,
                    const std::function<void(schema::control::CliRequest::Builder)>& fill,
                    wire::Received<schema::control::CliResponse>* out, int timeout_ms = 30000);

}  // namespace bulkhead::runtime
