// mem-broker: a bulkhead service process (see services/common/service.h).
// It holds the sandbox's memory file (the memfd all application memory lives
// in); allocation, accounting and limits move here with issue 6 — today the
// syscall-router allocates ranges of the same file.
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "base/fd.h"
#include "services/common/service.h"
#include "services/mem-broker/policy.h"

int main(int argc, char** argv) {
  bulkhead::UniqueFd memory_file;
  bulkhead::service::ServiceSpec spec{bulkhead::ServiceKind::MEM_BROKER, bulkhead::mem::MemBrokerPolicy()};
  spec.setup = [&](bulkhead::service::ServiceContext& ctx) {
    memory_file = std::move(ctx.memory_file);
    struct stat st {};
    if (memory_file && ::fstat(memory_file.get(), &st) == 0) {
      spdlog::debug("memory file: {} bytes", static_cast<unsigned long long>(st.st_size));
    }
  };
  return bulkhead::service::RunService(spec, argc, argv);
}
