// mem-broker: a bulkhead service process (see services/common/service.h).
// It owns the allocation of the sandbox's memory file: which 2 MiB chunks the
// syscall-router may use (ledger.h, whose state lives in chunk 0 of the file
// so that a restarted broker carries on), and it gives released chunks'
// pages back to the host. The router sub-allocates pages inside its chunks.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <cstring>
#include <memory>

#include "base/error.h"
#include "base/fd.h"
#include "base/mapping.h"
#include "schemas/mem.capnp.h"
#include "services/common/mains.h"
#include "services/common/service.h"
#include "services/mem-broker/ledger.h"
#include "services/mem-broker/policy.h"
#include "services/mem-broker/serve.h"

namespace mem_proto = bulkhead::schema::mem;

int bulkhead::service::MemBrokerMain(int argc, char** argv) {
  bulkhead::UniqueFd memory_file;
  bulkhead::Mapping ledger_map;
  std::unique_ptr<bulkhead::mem::Ledger> ledger;
  bulkhead::service::ServiceSpec spec{bulkhead::ServiceKind::MEM_BROKER, bulkhead::mem::MemBrokerPolicy()};
  spec.setup = [&](bulkhead::service::ServiceContext& ctx) {
    memory_file = std::move(ctx.memory_file);
    if (!memory_file) return;  // no memory file: every request is refused
    struct stat st {};
    bulkhead::CheckSys(::fstat(memory_file.get(), &st), "fstat", "the memory file");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size < 2 * bulkhead::mem::kChunk) {
      spdlog::error("memory file of {} bytes: too small for the ledger and one chunk", size);
      return;
    }
    void* p = ::mmap(nullptr, bulkhead::mem::kLedgerBytes, PROT_READ | PROT_WRITE, MAP_SHARED, memory_file.get(), 0);
    if (p == MAP_FAILED) throw bulkhead::SysError(errno, "mmap", "the ledger (chunk 0 of the memory file)");
    ledger_map = bulkhead::Mapping(p, bulkhead::mem::kLedgerBytes);
    std::string note;
    ledger = std::make_unique<bulkhead::mem::Ledger>(static_cast<uint8_t*>(p), size, &note);
    std::string kinds;
    for (bulkhead::mem::ChunkKind k : bulkhead::mem::kAllKinds) {
      kinds += std::string(kinds.empty() ? "" : ", ") + std::to_string(ledger->granted(k)) + " " +
               bulkhead::mem::KindName(k);
    }
    spdlog::info("memory file: {} MiB, {} chunks; ledger {}; {} chunks held by the router ({})", size >> 20,
                 ledger->chunks(), note, ledger->granted(), kinds);
  };
  spec.mem_handler = [&](bulkhead::ipc::Channel& ch, uint64_t id, mem_proto::Request::Reader r) {
    auto error = [&](int e, const char* what) {
      ch.Send<mem_proto::Response>(id, [&](mem_proto::Response::Builder b) {
        auto x = b.initError();
        x.setErrno(e);
        x.setMessage(what);
      });
    };
    if (!ledger) return error(ENODEV, "the broker has no memory file");
    const bulkhead::mem::Answer a = bulkhead::mem::Serve(*ledger, r);
    if (a.err != 0) return error(a.err, a.what);
    if (a.punch) {
      // Released chunks: their pages go back to the host (they read as zeros
      // when granted again).
      const off_t off = static_cast<off_t>(uint64_t{a.first} * bulkhead::mem::kChunk);
      const off_t len = static_cast<off_t>(uint64_t{a.count} * bulkhead::mem::kChunk);
      if (::fallocate(memory_file.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) != 0) {
        spdlog::warn("fallocate(PUNCH_HOLE) of chunks {}+{}: {}", a.first, a.count, std::strerror(errno));
      }
    }
    ch.Send<mem_proto::Response>(id, [&](mem_proto::Response::Builder b) {
      if (!a.granted) return b.setDone();
      auto c = b.initGranted();
      c.setFirst(a.first);
      c.setCount(a.count);
    });
  };
  return bulkhead::service::RunService(spec, argc, argv);
}
