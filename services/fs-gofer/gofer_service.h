// Glue between the gofer protocol (schemas/gofer.capnp) and FileServer.
#pragma once

#include <memory>
#include <span>

#include "ipc/channel.h"
#include "schemas/gofer.capnp.h"
#include "services/fs-gofer/file_server.h"

namespace bulkhead::gofer {

// Answers one file request from the router on `ch`. Data read from files goes
// in the response's bulk area.
// `bulk`: the request's bulk bytes (data to write, an xattr value).
void HandleFileRequest(FileServer& fs, ipc::Channel& ch, uint64_t id, schema::gofer::Request::Reader r,
                       std::span<const uint8_t> bulk);

}  // namespace bulkhead::gofer
