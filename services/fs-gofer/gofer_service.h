// Glue between the gofer protocol (schemas/gofer.capnp) and FileServer.
#pragma once

#include <memory>

#include "ipc/channel.h"
#include "schemas/gofer.capnp.h"
#include "services/fs-gofer/file_server.h"

namespace bulkhead::gofer {

// Answers one file request from the router on `ch`. Data read from files goes
// in the response's bulk area.
void HandleFileRequest(FileServer& fs, ipc::Channel& ch, uint64_t id, schema::gofer::Request::Reader r);

}  // namespace bulkhead::gofer
