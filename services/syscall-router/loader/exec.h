// execve(2) as a pure decision: from the path, argv and envp to everything
// the router needs to replace the image (the mappings, the stack bytes, the
// first registers), or the errno execve returns. The planner never does
// I/O: it says which file to open and which bytes to read, the router does
// it (through the fs-gofer, without blocking a thread) and answers. PlanExec()
// drives it with synchronous callbacks.
//
// Order of checks, as Linux's do_execveat_common() / bprm_execve():
//   open the file (its errno: ENOENT, EACCES, ...)          [router]
//   argument limits (E2BIG)
//   read the first page; "#!" -> parse, rewrite argv (E2BIG), open the
//     interpreter (ENOENT ...), at most kMaxInterpreterRewrites (ELOOP)
//   ELF -> parse (ENOEXEC, EINVAL ...); PT_INTERP -> open it (ENOENT ...),
//     parse it (ELIBBAD, EINVAL, ENOMEM, EIO)
//   neither -> ENOEXEC
//   plan the mappings (EINVAL, ENOMEM, EPERM) and the stack (E2BIG, EFAULT)
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "services/syscall-router/loader/elf.h"
#include "services/syscall-router/loader/load_plan.h"
#include "services/syscall-router/loader/result.h"
#include "services/syscall-router/loader/script.h"
#include "services/syscall-router/loader/stack.h"

namespace bulkhead::loader {

struct ExecRequest {
  std::string filename;  // the path given to execve: AT_EXECFN, and argv's script path
  std::vector<std::string> argv;
  std::vector<std::string> envp;
  uint64_t stack_rlimit = 8 << 20;  // RLIMIT_STACK soft limit
  Aslr aslr;                        // enabled=false: no randomization (ADDR_NO_RANDOMIZE)
  std::array<uint8_t, 16> random{};  // AT_RANDOM
  AuxvValues aux;
  uint64_t mmap_min_addr = kDefaultMmapMinAddr;
};

enum class FileRole { kExecutable, kInterpreter };

struct ExecImage {
  std::vector<std::string> argv;     // after #! rewrites
  std::vector<std::string> scripts;  // the #! files passed through, as opened (outermost first)
  std::string exe_path;              // the path of the ELF executable finally loaded
  ElfImage exe;
  std::optional<ElfImage> interp;    // PT_INTERP's file
  Layout layout;
  LoadParams params;
  LoadPlan plan;
  StackImage stack;
  // The first instruction runs with %rip = plan.entry, %rsp = stack.rsp,
  // every other general register 0, %rflags = 0x200 (IF), fs/gs base 0
  // (ELF_PLAT_INIT, start_thread()). The stack VMA is
  // [stack.vma_start, stack.top) with PROT_READ|PROT_WRITE, plus PROT_EXEC
  // when plan.executable_stack.
};

class ExecPlanner {
 public:
  explicit ExecPlanner(ExecRequest req);

  enum class Step { kOpen, kRead, kDone, kFailed };
  Step step() const { return step_; }

  // kOpen: open open_path() for execution (path resolution, permissions,
  // noexec, ETXTBSY are the router's). kExecutable replaces the previous
  // executable file (a #! script). Answer Opened(size) or OpenFailed(errno).
  const std::string& open_path() const { return open_path_; }
  FileRole open_role() const { return open_role_; }
  void Opened(uint64_t file_size);
  void OpenFailed(int err);

  // kRead: read [read_offset(), + read_length()) of the file last opened.
  // Answer ReadDone(bytes) (short only at end of file) or ReadFailed(errno).
  uint64_t read_offset() const { return read_offset_; }
  uint64_t read_length() const { return read_length_; }
  void ReadDone(std::span<const uint8_t> bytes);
  void ReadFailed(int err);

  const ExecImage& image() const { return image_; }  // kDone
  ExecImage TakeImage() { return std::move(image_); }
  const LoadError& error() const { return error_; }  // kFailed

 private:
  enum class Phase { kOpenFile, kReadHead, kParseExe, kOpenInterp, kParseInterp, kEnd };

  void Fail(LoadError e);
  void Fail(int err, std::string msg) { Fail(Error(err, std::move(msg))); }
  void RequestOpen(std::string path, FileRole role);
  void RequestRead(uint64_t offset, uint64_t length);
  void OnHead();
  void ContinueParse();
  void Finish();

  ExecRequest req_;
  ArgBudget budget_{};
  Step step_ = Step::kOpen;
  Phase phase_ = Phase::kOpenFile;
  std::string open_path_;
  FileRole open_role_ = FileRole::kExecutable;
  uint64_t read_offset_ = 0, read_length_ = 0;

  std::string current_path_;  // the file being handled (script path for argv)
  int rewrites_ = 0;
  std::optional<FileBytes> file_;
  ExecImage image_;
  LoadError error_;
};

// The synchronous router-side of the planner.
class ExecFiles {
 public:
  virtual ~ExecFiles() = default;
  // Opens `path` for execution; returns its size, or -errno.
  virtual int64_t Open(const std::string& path, FileRole role) = 0;
  // Reads from the file last opened in `role`; returns bytes read, or -errno.
  virtual int64_t Read(FileRole role, uint64_t offset, std::span<uint8_t> out) = 0;
};

Result<ExecImage> PlanExec(ExecRequest req, ExecFiles& files);

}  // namespace bulkhead::loader
