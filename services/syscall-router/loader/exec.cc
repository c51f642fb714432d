#include "services/syscall-router/loader/exec.h"

#include <cerrno>
#include <utility>

namespace bulkhead::loader {

ExecPlanner::ExecPlanner(ExecRequest req) : req_(std::move(req)) {
  current_path_ = req_.filename;
  image_.argv = req_.argv;
  RequestOpen(req_.filename, FileRole::kExecutable);
}

void ExecPlanner::Fail(LoadError e) {
  error_ = std::move(e);
  step_ = Step::kFailed;
  phase_ = Phase::kEnd;
}

void ExecPlanner::RequestOpen(std::string path, FileRole role) {
  step_ = Step::kOpen;
  open_path_ = std::move(path);
  open_role_ = role;
  // getname(""): an empty path is ENOENT before any lookup.
  if (open_path_.empty()) Fail(ENOENT, role == FileRole::kExecutable ? "empty path" : "empty PT_INTERP path");
}

void ExecPlanner::RequestRead(uint64_t offset, uint64_t length) {
  step_ = Step::kRead;
  read_offset_ = offset;
  read_length_ = length;
}

void ExecPlanner::OpenFailed(int err) {
  if (step_ != Step::kOpen) return;
  Fail(err > 0 ? err : EIO, "open " + open_path_ + " failed");
}

void ExecPlanner::ReadFailed(int err) {
  if (step_ != Step::kRead) return;
  Fail(err > 0 ? err : EIO, "read of " + open_path_ + " failed");
}

void ExecPlanner::Opened(uint64_t file_size) {
  if (step_ != Step::kOpen) return;
  file_.emplace(file_size);
  if (phase_ == Phase::kOpenFile) {
    if (rewrites_ == 0) {
      // do_execveat_common(): the argument limits, once the file is open.
      auto budget = ArgStringBudget(req_.stack_rlimit, req_.argv.size(), req_.envp.size());
      if (!budget) return Fail(budget.error());
      budget_ = *budget;
      const std::vector<std::string> argv = req_.argv.empty() ? std::vector<std::string>{""} : req_.argv;
      auto used = CheckArgStrings(argv, req_.envp, req_.filename, budget_);
      if (!used) return Fail(used.error());
    } else if (rewrites_ > kMaxInterpreterRewrites) {
      return Fail(ELOOP, "more than " + std::to_string(kMaxInterpreterRewrites) + " #! interpreters in a chain");
    }
    phase_ = Phase::kReadHead;
    if (file_size == 0) return OnHead();
    return RequestRead(0, std::min(file_size, kHeadBytes));
  }
  if (phase_ == Phase::kOpenInterp) {
    phase_ = Phase::kParseInterp;
    return ContinueParse();
  }
}

void ExecPlanner::ReadDone(std::span<const uint8_t> bytes) {
  if (step_ != Step::kRead) return;
  if (bytes.size() > read_length_) bytes = bytes.first(read_length_);
  if (bytes.size() < read_length_) {
    // Only the first page may come back short (the file shrank since open).
    if (read_offset_ != 0) return Fail(EIO, "short read of " + open_path_);
    file_.emplace(bytes.size());
  }
  file_->Add(read_offset_, bytes);
  if (phase_ == Phase::kReadHead) return OnHead();
  ContinueParse();
}

void ExecPlanner::OnHead() {
  auto head = file_->Get(0, std::min<uint64_t>(file_->size(), kHeadBytes));
  const std::span<const uint8_t> h = head ? *head : std::span<const uint8_t>();
  if (IsScript(h)) {
    auto line = ParseScriptLine(h);
    if (!line) return Fail(line.error().err, current_path_ + ": " + line.error().message);
    image_.scripts.push_back(current_path_);
    image_.argv = ScriptArgv(*line, current_path_, image_.argv);
    // The interpreter, its argument and the script path are charged against
    // the execve's string budget (copy_string_kernel()).
    auto used = CheckArgStrings(image_.argv, req_.envp, req_.filename, budget_);
    if (!used) return Fail(used.error());
    current_path_ = line->interp;
    ++rewrites_;
    phase_ = Phase::kOpenFile;
    return RequestOpen(line->interp, FileRole::kExecutable);
  }
  if (HasElfMagic(h)) {
    image_.exe_path = current_path_;
    phase_ = Phase::kParseExe;
    return ContinueParse();
  }
  Fail(ENOEXEC, current_path_ + ": neither ELF nor #! script");
}

void ExecPlanner::ContinueParse() {
  const ElfRole role = phase_ == Phase::kParseExe ? ElfRole::kExecutable : ElfRole::kInterpreter;
  ParseOutcome out = ParseElf(*file_, role);
  if (auto* need = std::get_if<NeedBytes>(&out)) return RequestRead(need->offset, need->length);
  if (auto* err = std::get_if<LoadError>(&out)) {
    LoadError e = std::move(*err);
    e.message = (role == ElfRole::kExecutable ? image_.exe_path : open_path_) + ": " + e.message;
    return Fail(std::move(e));
  }
  ElfImage& img = std::get<ElfImage>(out);
  if (role == ElfRole::kExecutable) {
    image_.exe = std::move(img);
    if (image_.exe.has_interp) {
      phase_ = Phase::kOpenInterp;
      return RequestOpen(image_.exe.interp, FileRole::kInterpreter);
    }
  } else {
    image_.interp = std::move(img);
  }
  Finish();
}

void ExecPlanner::Finish() {
  file_.reset();
  image_.layout = DefaultLayout(req_.stack_rlimit, req_.aslr);
  const ElfImage* interp = image_.interp ? &*image_.interp : nullptr;
  auto params = DefaultLoadParams(image_.exe, interp, image_.layout, req_.aslr);
  if (!params) return Fail(params.error());
  params->mmap_min_addr = req_.mmap_min_addr;
  image_.params = *params;
  auto plan = PlanLoad(image_.exe, interp, image_.params);
  if (!plan) return Fail(plan.error());
  image_.plan = std::move(*plan);

  StackInput in;
  in.stack_top = image_.layout.stack_top;
  in.stack_rlimit = req_.stack_rlimit;
  in.argv = image_.argv;
  in.envp = req_.envp;
  in.execfn = req_.filename;
  in.random = req_.random;
  in.sp_rnd = req_.aslr.enabled ? req_.aslr.sp_align : 0;
  in.budget = budget_;
  in.SetFromPlan(image_.plan);
  in.aux = req_.aux;
  auto stack = BuildStack(in);
  if (!stack) return Fail(stack.error());
  image_.stack = std::move(*stack);
  step_ = Step::kDone;
  phase_ = Phase::kEnd;
}

Result<ExecImage> PlanExec(ExecRequest req, ExecFiles& files) {
  ExecPlanner p(std::move(req));
  // Each step opens a file or reads a header, program headers or PT_INTERP:
  // a few per file, at most kMaxInterpreterRewrites + 2 files.
  for (int steps = 0; steps < 64; ++steps) {
    switch (p.step()) {
      case ExecPlanner::Step::kDone:
        return p.TakeImage();
      case ExecPlanner::Step::kFailed:
        return p.error();
      case ExecPlanner::Step::kOpen: {
        const int64_t size = files.Open(p.open_path(), p.open_role());
        if (size < 0) {
          p.OpenFailed(static_cast<int>(-size));
        } else {
          p.Opened(static_cast<uint64_t>(size));
        }
        break;
      }
      case ExecPlanner::Step::kRead: {
        std::vector<uint8_t> buf(p.read_length());
        const int64_t n = files.Read(p.open_role(), p.read_offset(), buf);
        if (n < 0) {
          p.ReadFailed(static_cast<int>(-n));
        } else {
          buf.resize(std::min<uint64_t>(static_cast<uint64_t>(n), buf.size()));
          p.ReadDone(buf);
        }
        break;
      }
    }
  }
  return Error(EIO, "exec planning did not converge");
}

}  // namespace bulkhead::loader
