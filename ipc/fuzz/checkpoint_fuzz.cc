// libFuzzer target: a memory checkpoint stream (services/mem-broker/
// checkpoint.h) as an operator might hand one over, hostile: fed to
// LoadMemory and to AsyncLoader (whose Ensure asks for a range named by the
// input). Checked: no crash, no hang, no write past the file the stream
// declares; a stream that loads reads back as what it wrote.
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "base/fd.h"
#include "ipc/fuzz/decode_walk.h"
#include "services/mem-broker/checkpoint.h"

namespace {

bulkhead::UniqueFd Memfd(const char* name) {
  return bulkhead::UniqueFd(static_cast<int>(::syscall(SYS_memfd_create, name, MFD_CLOEXEC)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulkhead;
  ++ipc::fuzz::Stats().inputs;
  static UniqueFd stream = Memfd("checkpoint-fuzz-stream");
  static UniqueFd memory = Memfd("checkpoint-fuzz-memory");
  if (!stream || !memory) std::abort();
  if (::ftruncate(stream.get(), 0) != 0) std::abort();
  if (size > 0 && ::pwrite(stream.get(), data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  ++ipc::fuzz::Stats().decode_attempts;
  bool loaded = false;
  try {
    if (::lseek(stream.get(), 0, SEEK_SET) != 0) std::abort();
    mem::LoadStats s = mem::LoadMemory(stream.get(), memory.get());
    struct stat st;
    if (::fstat(memory.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != s.file_size) std::abort();
    if (s.bytes_loaded > s.file_size) std::abort();
    loaded = true;
    ++ipc::fuzz::Stats().decoded_ok;
  } catch (const std::runtime_error&) {
    // SysError and malformed streams alike: an error, as it should be.
  }
  try {
    mem::AsyncLoader a(stream.get(), memory.get());
    uint64_t off = 0, len = 0;
    if (size >= 16) {
      std::memcpy(&off, data + size - 16, 8);
      std::memcpy(&len, data + size - 8, 8);
    }
    a.Ensure(off % (a.file_size() + 1), len % (uint64_t{1} << 24));
    a.Wait();
    if (!loaded) std::abort();  // the two readers agree on what is a good stream
  } catch (const std::runtime_error&) {
    if (loaded) std::abort();
  }
  return 0;
}
