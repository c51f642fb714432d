#include "runtime/oci_cli.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/oci.h"

namespace bulkhead::runtime {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

int Fail(const std::string& verb, const std::string& msg) {
  std::fprintf(stderr, "bulkhead %s: %s\n", verb.c_str(), msg.c_str());
  return 1;
}

std::string ContainerDir(const SupervisorOptions& o, const std::string& id) { return o.root_dir + "/containers/" + id; }

std::string ReadAll(const std::string& path, bool* ok = nullptr) {
  std::ifstream in(path);
  if (ok) *ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteAtomically(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << data;
    if (!out.flush()) return false;
  }
  return ::rename(tmp.c_str(), path.c_str()) == 0;
}

// The state a container's directory records, with its status worked out:
// stopped once an exit status is there or its supervisor is gone; running
// once started; created before.
bool LoadState(const SupervisorOptions& o, const std::string& id, OciState* s) {
  const std::string dir = ContainerDir(o, id);
  bool ok = false;
  const std::string text = ReadAll(dir + "/state.json", &ok);
  if (!ok) return false;
  try {
    json j = json::parse(text);
    s->id = id;
    s->bundle = j.at("bundle").get<std::string>();
    s->pid = j.at("pid").get<pid_t>();
    s->created_ns = j.value("created_ns", int64_t{0});
    s->annotations.clear();
    if (j.contains("annotations")) {
      for (auto it = j["annotations"].begin(); it != j["annotations"].end(); ++it) {
        s->annotations[it.key()] = it.value().get<std::string>();
      }
    }
  } catch (const std::exception&) {
    return false;
  }
  bool has_exit = false;
  const std::string exit_text = ReadAll(dir + "/exit", &has_exit);
  const bool alive = s->pid > 0 && ::kill(s->pid, 0) == 0 && !has_exit;
  if (has_exit) s->exit_code = std::atoi(exit_text.c_str());
  s->status = !alive ? "stopped" : fs::exists(dir + "/started") ? "running" : "created";
  return true;
}

// The spec of a created container, read again from its bundle (hooks of
// the later stages).
bool SpecOf(const OciState& s, OciSpec* spec) {
  bool ok = false;
  const std::string text = ReadAll(s.bundle + "/config.json", &ok);
  return ok && ParseOciSpec(text, s.bundle, spec).empty();
}

std::string StateWith(OciState s, const std::string& status) {
  s.status = status;
  return OciStateJson(s);
}

int SignalNumber(const std::string& name) {
  static const std::pair<const char*, int> kNames[] = {
      {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
      {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}, {"ALRM", SIGALRM}};
  std::string n = name;
  if (n.rfind("SIG", 0) == 0) n = n.substr(3);
  for (auto& [k, v] : kNames) {
    if (n == k) return v;
  }
  char* end = nullptr;
  long v = std::strtol(name.c_str(), &end, 10);
  return (!name.empty() && *end == 0 && v > 0 && v < 65) ? static_cast<int>(v) : -1;
}

// Parses "--flag value", "--flag=value" and bare flags; the rest are
// positional. Unknown flags are errors.
struct Args {
  std::map<std::string, std::string> values;
  std::vector<std::string> positional;
  std::string error;
};
Args ParseArgs(const std::vector<std::string>& in, const std::vector<std::string>& with_value,
               const std::vector<std::string>& bare) {
  Args a;
  for (size_t i = 0; i < in.size(); ++i) {
    std::string f = in[i];
    if (f.size() > 1 && f[0] == '-' && f != "-") {
      while (!f.empty() && f[0] == '-') f.erase(0, 1);
      std::string v;
      const size_t eq = f.find('=');
      if (eq != std::string::npos) {
        v = f.substr(eq + 1);
        f = f.substr(0, eq);
      }
      if (std::find(with_value.begin(), with_value.end(), f) != with_value.end()) {
        if (eq == std::string::npos) {
          if (i + 1 >= in.size()) {
            a.error = "--" + f + " needs a value";
            return a;
          }
          v = in[++i];
        }
        a.values[f] = v;
      } else if (std::find(bare.begin(), bare.end(), f) != bare.end()) {
        a.values[f] = "1";
      } else {
        a.error = "unknown flag --" + f;
        return a;
      }
    } else {
      a.positional.push_back(in[i]);
    }
  }
  return a;
}

// create (and the first half of run): validates the bundle, starts the
// sandbox's supervisor in a process of its own and returns once it is
// ready (or failed, leaving nothing behind). *daemon: its pid.
int Create(const std::string& verb, const Args& a, SupervisorOptions o, pid_t* daemon) {
  if (a.positional.size() != 1) return Fail(verb, "expected one container id");
  const std::string id = a.positional[0];
  if (!ValidContainerId(id)) return Fail(verb, "invalid container id \"" + id + "\"");
  std::string bundle = a.values.count("bundle") ? a.values.at("bundle") : ".";
  std::error_code ec;
  bundle = fs::absolute(bundle, ec).lexically_normal().string();
  if (bundle.size() > 1 && bundle.back() == '/') bundle.pop_back();
  bool ok = false;
  const std::string config = ReadAll(bundle + "/config.json", &ok);
  if (!ok) return Fail(verb, "bundle " + bundle + ": cannot read config.json");
  OciSpec spec;
  if (std::string err = ParseOciSpec(config, bundle, &spec); !err.empty()) return Fail(verb, err);
  struct stat st;
  if (::stat(spec.rootfs.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Fail(verb, "root.path: " + spec.rootfs + " is not a directory");
  if (spec.terminal && !a.values.count("console-socket")) return Fail(verb, "process.terminal needs --console-socket (not served yet)");
  const std::string dir = ContainerDir(o, id);
  fs::create_directories(o.root_dir + "/containers", ec);
  if (::mkdir(dir.c_str(), 0700) != 0) {
    return Fail(verb, errno == EEXIST ? "container \"" + id + "\" already exists" : "mkdir " + dir + ": " + std::strerror(errno));
  }
  auto cleanup = [&] { fs::remove_all(dir, ec); };
  if (::mkfifo((dir + "/start.fifo").c_str(), 0600) != 0) {
    cleanup();
    return Fail(verb, std::string("mkfifo: ") + std::strerror(errno));
  }
  o.sandbox_id = "oci-" + id;
  o.rootfs = spec.rootfs;
  o.rootfs_mode = spec.root_readonly ? RootMode::kReadOnly : RootMode::kWritable;
  o.volumes = spec.volumes;
  o.tmpfs = spec.tmpfs;
  o.hostname = spec.hostname;
  for (const auto& l : spec.rlimits) o.rlimits.push_back({l.resource, l.soft, l.hard});
  o.pass_stdio = true;
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    cleanup();
    return Fail(verb, std::string("pipe: ") + std::strerror(errno));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    cleanup();
    return Fail(verb, std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(ready[0]);
    ::setsid();
    int code = 125;
    try {
      Supervisor sup(o);
      sup.Start();
      // The start FIFO is opened before create returns (read-write: the
      // open never blocks, and the read waits for `start`'s byte), so that
      // `start` always finds its reader.
      int fifo = ::open((dir + "/start.fifo").c_str(), O_RDWR | O_CLOEXEC);
      const char ok_byte = 'k';
      if (fifo < 0 || ::write(ready[1], &ok_byte, 1) != 1) ::_exit(125);
      ::close(ready[1]);
      // Created: wait for `start`.
      char b;
      const bool go = fifo >= 0 && ::read(fifo, &b, 1) == 1;
      if (fifo >= 0) ::close(fifo);
      if (go) {
        WriteAtomically(dir + "/started", "1\n");
        AppResult r = sup.RunApp(spec.args, spec.env, spec.cwd);
        if (!r.error.empty()) std::fprintf(stderr, "bulkhead: %s\n", r.error.c_str());
        code = r.exit_code;
      }
      WriteAtomically(dir + "/exit", std::to_string(code) + "\n");
      sup.Stop();
    } catch (const std::exception& e) {
      const std::string msg = e.what();
      if (::write(ready[1], msg.data(), msg.size()) < 0) {
      }
      ::_exit(125);
    }
    ::_exit(code & 0xff);
  }
  ::close(ready[1]);
  std::string answer;
  char buf[512];
  ssize_t n;
  while ((n = ::read(ready[0], buf, sizeof buf)) > 0) answer.append(buf, static_cast<size_t>(n));
  ::close(ready[0]);
  if (answer != "k") {
    ::waitpid(pid, nullptr, 0);
    cleanup();
    return Fail(verb, answer.empty() ? "the sandbox did not start" : answer);
  }
  OciState s;
  timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  json j = {{"bundle", bundle}, {"pid", pid}, {"created_ns", int64_t{now.tv_sec} * 1000000000 + now.tv_nsec}};
  j["annotations"] = json::object();
  for (const auto& [k, v] : spec.annotations) j["annotations"][k] = v;
  if (!WriteAtomically(dir + "/state.json", j.dump())) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    cleanup();
    return Fail(verb, "cannot write the container's state");
  }
  // Hooks of creation, on the host, with the state ("creating") on stdin.
  // startContainer runs at start, also on the host (a deviation: the spec
  // runs it in the container; a sandbox has no host namespace to enter).
  OciState created;
  created.id = id;
  created.bundle = bundle;
  created.pid = pid;
  created.annotations = spec.annotations;
  for (const char* stage : {"prestart", "createRuntime", "createContainer"}) {
    auto it = spec.hooks.find(stage);
    if (it == spec.hooks.end()) continue;
    if (std::string err = RunHooks(it->second, stage, StateWith(created, "creating")); !err.empty()) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      cleanup();
      fs::remove_all(o.root_dir + "/" + o.sandbox_id, ec);
      return Fail(verb, err);
    }
  }
  if (a.values.count("pid-file") && !WriteAtomically(a.values.at("pid-file"), std::to_string(pid))) {
    return Fail(verb, "cannot write --pid-file " + a.values.at("pid-file"));
  }
  *daemon = pid;
  return 0;
}

int Start(const std::string& verb, const SupervisorOptions& o, const std::string& id) {
  OciState s;
  if (!LoadState(o, id, &s)) return Fail(verb, "container \"" + id + "\" does not exist");
  if (s.status != "created") return Fail(verb, "cannot start a container that is " + s.status);
  OciSpec spec;
  const bool have_spec = SpecOf(s, &spec);
  if (have_spec && spec.hooks.count("startContainer")) {
    if (std::string err = RunHooks(spec.hooks["startContainer"], "startContainer", StateWith(s, "created")); !err.empty()) {
      ::kill(s.pid, SIGKILL);
      return Fail(verb, err);
    }
  }
  const int fd = ::open((ContainerDir(o, id) + "/start.fifo").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Fail(verb, std::string("the container's sandbox is not waiting: ") + std::strerror(errno));
  const char b = 's';
  const bool ok = ::write(fd, &b, 1) == 1;
  ::close(fd);
  if (!ok) return Fail(verb, "could not signal the container's sandbox");
  // Running from the engine's point of view once the sandbox took it.
  for (int i = 0; i < 500 && !fs::exists(ContainerDir(o, id) + "/started") && ::kill(s.pid, 0) == 0; ++i) ::usleep(2000);
  if (have_spec && spec.hooks.count("poststart")) {
    // A failing poststart hook is reported; the container runs on (the spec's rule).
    if (std::string err = RunHooks(spec.hooks["poststart"], "poststart", StateWith(s, "running")); !err.empty()) {
      std::fprintf(stderr, "bulkhead %s: warning: %s\n", verb.c_str(), err.c_str());
    }
  }
  return 0;
}

}  // namespace

bool IsOciCommand(const std::string& verb) {
  for (const char* v : {"create", "start", "run", "state", "kill", "delete", "list", "spec", "features"}) {
    if (verb == v) return true;
  }
  return false;
}

int OciCommand(const std::string& verb, const std::vector<std::string>& args, SupervisorOptions o) {
  if (verb == "spec") {
    Args a = ParseArgs(args, {"bundle", "b"}, {"rootless"});
    if (!a.error.empty()) return Fail(verb, a.error);
    const std::string dir = a.values.count("bundle") ? a.values["bundle"] : a.values.count("b") ? a.values["b"] : ".";
    const std::string path = dir + "/config.json";
    if (fs::exists(path)) return Fail(verb, "File " + path + " exists. Remove it first");
    if (!WriteAtomically(path, DefaultOciSpec())) return Fail(verb, "cannot write " + path);
    return 0;
  }
  if (verb == "features") {
    json f = {{"ociVersionMin", "1.0.0"},
              {"ociVersionMax", "1.1.0"},
              {"hooks", json::array()},
              {"mountOptions", {"bind", "rbind", "ro", "rw", "size"}},
              {"linux", {{"namespaces", {"pid", "network", "mount", "ipc", "uts", "user", "cgroup"}}}},
              {"annotations", {{"org.bulkhead.sandbox", "application kernel (syscall-router, fs-gofer, net-stack, mem-broker)"}}}};
    std::printf("%s\n", f.dump(2).c_str());
    return 0;
  }
  if (verb == "create" || verb == "run") {
    Args a = ParseArgs(args, {"bundle", "b", "pid-file", "console-socket"}, {"no-pivot", "no-new-keyring", "detach", "d"});
    if (!a.error.empty()) return Fail(verb, a.error);
    if (a.values.count("b")) a.values["bundle"] = a.values["b"];
    pid_t daemon = 0;
    if (int rc = Create(verb, a, o, &daemon); rc != 0) return rc;
    if (verb == "create") return 0;
    if (int rc = Start(verb, o, a.positional[0]); rc != 0) return rc;
    if (a.values.count("detach") || a.values.count("d")) return 0;
    int st = 0;
    while (::waitpid(daemon, &st, 0) < 0 && errno == EINTR) {
    }
    // run in the foreground: the container is gone with it (poststop first).
    OciState s;
    OciSpec spec;
    if (LoadState(o, a.positional[0], &s) && SpecOf(s, &spec) && spec.hooks.count("poststop")) {
      if (std::string err = RunHooks(spec.hooks["poststop"], "poststop", StateWith(s, "stopped")); !err.empty()) {
        std::fprintf(stderr, "bulkhead %s: warning: %s\n", verb.c_str(), err.c_str());
      }
    }
    std::error_code ec;
    fs::remove_all(ContainerDir(o, a.positional[0]), ec);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  if (verb == "list") {
    Args a = ParseArgs(args, {"format", "f"}, {"quiet", "q"});
    if (!a.error.empty()) return Fail(verb, a.error);
    std::error_code ec;
    std::vector<OciState> all;
    for (const auto& e : fs::directory_iterator(o.root_dir + "/containers", ec)) {
      OciState s;
      if (LoadState(o, e.path().filename().string(), &s)) all.push_back(s);
    }
    const std::string format = a.values.count("format") ? a.values["format"] : a.values.count("f") ? a.values["f"] : "table";
    if (format == "json") {
      json j = json::array();
      for (const auto& s : all) j.push_back(json::parse(OciStateJson(s)));
      std::printf("%s\n", j.dump().c_str());
    } else if (a.values.count("quiet") || a.values.count("q")) {
      for (const auto& s : all) std::printf("%s\n", s.id.c_str());
    } else {
      std::printf("%-20s %-8s %-10s %s\n", "ID", "PID", "STATUS", "BUNDLE");
      for (const auto& s : all) std::printf("%-20s %-8d %-10s %s\n", s.id.c_str(), s.status == "stopped" ? 0 : s.pid, s.status.c_str(), s.bundle.c_str());
    }
    return 0;
  }
  // The rest name one container.
  Args a = ParseArgs(args, {}, {"force", "f", "all", "a"});
  if (!a.error.empty()) return Fail(verb, a.error);
  if (a.positional.empty()) return Fail(verb, "expected a container id");
  const std::string id = a.positional[0];
  if (!ValidContainerId(id)) return Fail(verb, "invalid container id \"" + id + "\"");
  if (verb == "start") return a.positional.size() == 1 ? Start(verb, o, id) : Fail(verb, "expected one container id");
  OciState s;
  if (!LoadState(o, id, &s)) return Fail(verb, "container \"" + id + "\" does not exist");
  if (verb == "state") {
    std::printf("%s\n", OciStateJson(s).c_str());
    return 0;
  }
  if (verb == "kill") {
    const int sig = SignalNumber(a.positional.size() > 1 ? a.positional[1] : "TERM");
    if (sig < 0) return Fail(verb, "unknown signal " + a.positional[1]);
    if (s.status == "stopped") return Fail(verb, "container \"" + id + "\" is not running");
    // Created: nothing runs yet; any signal that would end a process ends
    // the container (its supervisor waits on the start FIFO).
    const int send = s.status == "created" && sig != SIGCONT && sig != SIGWINCH ? SIGKILL : sig;
    if (::kill(s.pid, send) != 0) return Fail(verb, std::string("kill: ") + std::strerror(errno));
    return 0;
  }
  if (verb == "delete") {
    const bool force = a.values.count("force") || a.values.count("f");
    if (s.status != "stopped") {
      if (!force) return Fail(verb, "cannot delete container \"" + id + "\" that is " + s.status + " (use --force)");
      ::kill(s.pid, SIGKILL);
      for (int i = 0; i < 1000 && ::kill(s.pid, 0) == 0; ++i) ::usleep(2000);
    }
    OciSpec spec;
    if (SpecOf(s, &spec) && spec.hooks.count("poststop")) {
      if (std::string err = RunHooks(spec.hooks["poststop"], "poststop", StateWith(s, "stopped")); !err.empty()) {
        std::fprintf(stderr, "bulkhead %s: warning: %s\n", verb.c_str(), err.c_str());
      }
    }
    std::error_code ec;
    fs::remove_all(ContainerDir(o, id), ec);
    fs::remove_all(o.root_dir + "/oci-" + id, ec);  // the supervisor's, if it was killed
    return 0;
  }
  return Fail(verb, "unknown command");
}

}  // namespace bulkhead::runtime
