// The services' entry points, so that one executable can be any of them.
//
// Each service builds as its own binary (services/<name>/main.cc) and as a
// library the bulkhead binary links: the supervisor starts a service as
// `bulkhead --service <name> ...`, so all the sandbox's processes run one
// executable and share its text pages (and the libraries' relocated data is
// the same once per process either way). See docs/DESIGN.md, "One
// executable for every service".
#pragma once

#include <string_view>

namespace bulkhead::service {

int SyscallRouterMain(int argc, char** argv);
int FsGoferMain(int argc, char** argv);
int NetStackMain(int argc, char** argv);
int MemBrokerMain(int argc, char** argv);

// The entry point of the service called `name` (its ServiceName), or null.
using ServiceMain = int (*)(int, char**);
inline ServiceMain ServiceMainFor(std::string_view name) {
  if (name == "syscall-router") return &SyscallRouterMain;
  if (name == "fs-gofer") return &FsGoferMain;
  if (name == "net-stack") return &NetStackMain;
  if (name == "mem-broker") return &MemBrokerMain;
  return nullptr;
}

}  // namespace bulkhead::service
