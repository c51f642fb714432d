#include "runtime/client.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "base/error.h"
#include "runtime/supervisor.h"

namespace bulkhead::runtime {

void CallSupervisor(const std::string& root, const std::string& id,
                    const std::function<void(schema::control::CliRequest::Builder)>& fill,
                    wire::Received<schema::control::CliResponse>* out, int timeout_ms) {
  if (!ValidSandboxId(id)) throw std::runtime_error("invalid sandbox id '" + id + "'");
  const std::string dir_path = root + "/" + id;
  const std::string path = dir_path + "/control.sock";
  UniqueFd dir(::open(dir_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    if (errno == ENOENT) throw std::runtime_error("no running sandbox named '" + id + "' under " + root);
    throw SysError(errno, "open", dir_path);
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/control.sock", dir.get());
  UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s) throw SysError(errno, "socket");
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) {
      throw std::runtime_error("no running sandbox named '" + id + "' under " + root);
    }
    throw SysError(errno, "connect", path);
  }
  capnp::MallocMessageBuilder mb;
  fill(mb.initRoot<schema::control::CliRequest>());
  int rc = wire::SendMessage(s.get(), mb);
  if (rc < 0) throw SysError(-rc, "sendmsg", path);
  rc = wire::ReceiveMessage(s.get(), out);
  if (rc == -EAGAIN) throw std::runtime_error("sandbox '" + id + "' did not answer within " + std::to_string(timeout_ms) + " ms");
  if (rc < 0) throw SysError(-rc, "recvmsg", path);
  if (out->root().isError()) {
    throw std::runtime_error(out->root().getError().getMessage().cStr());
  }
}

}  // namespace bulkhead::runtime
