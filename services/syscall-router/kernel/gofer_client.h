// The router's side of the fs-gofer protocol: typed calls over the router's
// data ring to the gofer. Results are Linux errnos for the application.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <span>
#include <string>

#include "services/common/channel_holder.h"

namespace bulkhead::router {

class GoferClient {
 public:
  explicit GoferClient(service::ChannelHolder* holder) : holder_(holder) {}

  // Each returns 0 (or a count) or -errno. -EIO when the gofer cannot be
  // reached within the deadline (it is being restarted, say).
  int Open(const std::string& path, uint32_t flags, uint32_t mode, uint64_t* handle, struct stat* st);
  long Pread(uint64_t handle, int64_t offset, std::span<uint8_t> out);
  int Fstat(uint64_t handle, struct stat* st);
  int Stat(const std::string& path, bool follow, struct stat* st);
  long Getdents(uint64_t handle, std::span<uint8_t> out);
  int Readlink(const std::string& path, std::string* target);
  int Close(uint64_t handle);

 private:
  service::ChannelHolder* holder_;
};

}  // namespace bulkhead::router
