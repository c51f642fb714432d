#include "services/syscall-router/platform/platform.h"

#include <linux/audit.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>

namespace bulkhead::router::platform {

Registers Registers::ForEntry(uint64_t ip, uint64_t sp) {
  Registers r;
  r.gp.rip = ip;
  r.gp.rsp = sp;
  r.gp.cs = kUserCs;
  r.gp.ss = kUserDs;
  r.gp.eflags = kInitialRflags;
  // ds, es, fs, gs selectors stay 0, as the kernel leaves them at execve.
  return r;
}

uint64_t Registers::syscall_arg(int i) const {
  switch (i) {
    case 0:
      return gp.rdi;
    case 1:
      return gp.rsi;
    case 2:
      return gp.rdx;
    case 3:
      return gp.r10;
    case 4:
      return gp.r8;
    case 5:
      return gp.r9;
    default:
      return 0;
  }
}

std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kSyscall:
      return "syscall";
    case EventKind::kFault:
      return "fault";
    case EventKind::kSignal:
      return "signal";
    case EventKind::kInterrupted:
      return "interrupted";
    case EventKind::kExited:
      return "exited";
  }
  return "?";
}

namespace {

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev != nullptr) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

std::string Hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    std::string s = "killed by " + SignalName(WTERMSIG(status));
    if (WCOREDUMP(status)) s += " (core dumped)";
    return s;
  }
  if (WIFSTOPPED(status)) {
    std::string s = "stopped by " + SignalName(WSTOPSIG(status) & 0x7f);
    if ((WSTOPSIG(status) & 0x80) != 0) s += "|0x80";
    if ((status >> 16) != 0) s += ", ptrace event " + std::to_string(status >> 16);
    return s;
  }
  if (WIFCONTINUED(status)) return "continued";
  return "wait status " + Hex(static_cast<unsigned>(status));
}

std::string DescribeEvent(const Event& event, const Registers* regs) {
  std::string s(EventKindName(event.kind));
  switch (event.kind) {
    case EventKind::kSyscall:
      if (regs != nullptr) s += " " + std::to_string(regs->syscall_nr());
      s += event.syscall_arch == AUDIT_ARCH_I386 ? " (i386)" : " (x86_64)";
      break;
    case EventKind::kFault:
      s += " " + SignalName(event.signo) + " code " + std::to_string(event.info.si_code) + " at " +
           Hex(event.fault_addr);
      break;
    case EventKind::kSignal:
      s += " " + SignalName(event.signo) + " code " + std::to_string(event.info.si_code) +
           " from pid " + std::to_string(event.info.si_pid);
      break;
    case EventKind::kInterrupted:
      break;
    case EventKind::kExited:
      s += ": " + DescribeWaitStatus(event.wait_status);
      break;
  }
  if (regs != nullptr && event.kind != EventKind::kExited) s += ", rip " + Hex(regs->ip());
  return s;
}

long AddressSpace::Mmap(uint64_t addr, uint64_t len, int prot, int flags, int fd, uint64_t offset) {
  return Syscall(SYS_mmap, {addr, len, static_cast<uint64_t>(prot), static_cast<uint64_t>(flags),
                            static_cast<uint64_t>(static_cast<int64_t>(fd)), offset});
}

long AddressSpace::Munmap(uint64_t addr, uint64_t len) {
  return Syscall(SYS_munmap, {addr, len, 0, 0, 0, 0});
}

long AddressSpace::Mprotect(uint64_t addr, uint64_t len, int prot) {
  return Syscall(SYS_mprotect, {addr, len, static_cast<uint64_t>(prot), 0, 0, 0});
}

bool AddressSpace::CopyIn(uint64_t addr, void* dst, size_t len) {
  if (len == 0) return true;
  return ReadMemory(addr, dst, len) == static_cast<ssize_t>(len);
}

bool AddressSpace::CopyOut(uint64_t addr, const void* src, size_t len) {
  if (len == 0) return true;
  return WriteMemory(addr, src, len) == static_cast<ssize_t>(len);
}

std::optional<std::string> AddressSpace::ReadCString(uint64_t addr, size_t max) {
  // Read page by page so that a string ending just before an unmapped page
  // is still found.
  constexpr uint64_t kPage = 4096;
  std::string out;
  while (out.size() < max + 1) {
    const uint64_t here = addr + out.size();
    size_t chunk = static_cast<size_t>(kPage - (here % kPage));
    chunk = std::min(chunk, max + 1 - out.size());
    char buf[kPage];
    ssize_t n = ReadMemory(here, buf, chunk);
    if (n <= 0) return std::nullopt;
    const void* nul = memchr(buf, '\0', static_cast<size_t>(n));
    if (nul != nullptr) {
      out.append(buf, static_cast<const char*>(nul) - buf);
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < chunk) return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace bulkhead::router::platform
