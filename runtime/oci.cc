#include "runtime/oci.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace bulkhead::runtime {
namespace {

using json = nlohmann::json;

bool StringArray(const json& j, std::vector<std::string>* out) {
  if (!j.is_array()) return false;
  out->clear();
  for (const auto& v : j) {
    if (!v.is_string()) return false;
    const std::string s = v.get<std::string>();
    if (s.find('\0') != std::string::npos) return false;
    out->push_back(s);
  }
  return true;
}

std::string Normalize(const std::string& p) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t next = p.find('/', pos);
    if (next == std::string::npos) next = p.size();
    std::string part = p.substr(pos, next - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    pos = next + 1;
  }
  std::string out;
  for (auto& s : parts) out += "/" + s;
  return out.empty() ? "/" : out;
}

const std::map<std::string, int>& RlimitNames() {
  static const std::map<std::string, int> m = {
      {"RLIMIT_AS", RLIMIT_AS},         {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},     {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},   {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  };
  return m;
}

// Mount types the router synthesizes itself: accepted, not mounted.
bool RouterOwned(const std::string& type, const std::string& dest) {
  static const char* kTypes[] = {"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"};
  if (std::find(std::begin(kTypes), std::end(kTypes), type) != std::end(kTypes)) return true;
  return dest == "/dev" || dest == "/dev/shm" || dest == "/proc" || dest == "/sys" || dest.rfind("/dev/", 0) == 0 ||
         dest.rfind("/proc/", 0) == 0 || dest.rfind("/sys/", 0) == 0;
}

}  // namespace

bool ValidContainerId(const std::string& id) {
  if (id.empty() || id.size() > 1024 || !std::isalnum(static_cast<unsigned char>(id[0]))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '+' || c == '-';
  });
}

std::string ParseOciSpec(const std::string& text, const std::string& bundle, OciSpec* out) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    return std::string("config.json: invalid JSON: ") + e.what();
  }
  if (!j.is_object()) return "config.json: must be a JSON object";
  *out = OciSpec{};
  if (!j.contains("ociVersion") || !j["ociVersion"].is_string()) return "ociVersion: must be a string";
  out->oci_version = j["ociVersion"].get<std::string>();
  if (out->oci_version.rfind("1.", 0) != 0) return "ociVersion: " + out->oci_version + " is not a 1.x version";

  // process
  if (!j.contains("process") || !j["process"].is_object()) return "process: must be an object";
  const json& p = j["process"];
  if (!p.contains("args") || !StringArray(p["args"], &out->args) || out->args.empty() || out->args[0].empty()) {
    return "process.args: must be a non-empty array of strings";
  }
  if (p.contains("env")) {
    if (!StringArray(p["env"], &out->env)) return "process.env: must be an array of strings";
    for (const auto& e : out->env) {
      if (e.find('=') == std::string::npos || e[0] == '=') return "process.env: \"" + e + "\" is not KEY=VALUE";
    }
  }
  if (!p.contains("cwd") || !p["cwd"].is_string()) return "process.cwd: must be a string";
  out->cwd = p["cwd"].get<std::string>();
  if (out->cwd.empty() || out->cwd[0] != '/') return "process.cwd: must be an absolute path";
  out->cwd = Normalize(out->cwd);
  if (p.contains("terminal")) {
    if (!p["terminal"].is_boolean()) return "process.terminal: must be a boolean";
    out->terminal = p["terminal"].get<bool>();
  }
  if (p.contains("user")) {
    const json& u = p["user"];
    if (!u.is_object()) return "process.user: must be an object";
    for (const char* k : {"uid", "gid"}) {
      if (!u.contains(k)) return std::string("process.user.") + k + ": missing";
      if (!u[k].is_number_unsigned() || u[k].get<uint64_t>() > 0xfffffffeull) {
        return std::string("process.user.") + k + ": must be a number from 0 to 4294967294";
      }
    }
    out->uid = u["uid"].get<uint32_t>();
    out->gid = u["gid"].get<uint32_t>();
  }
  if (p.contains("rlimits")) {
    if (!p["rlimits"].is_array()) return "process.rlimits: must be an array";
    for (const auto& r : p["rlimits"]) {
      if (!r.is_object() || !r.contains("type") || !r["type"].is_string()) return "process.rlimits[].type: must be a string";
      OciRlimit l;
      l.type = r["type"].get<std::string>();
      if (!RlimitNames().count(l.type)) return "process.rlimits[].type: unknown limit " + l.type;
      for (const char* k : {"soft", "hard"}) {
        if (!r.contains(k) || !r[k].is_number_unsigned()) return "process.rlimits[" + l.type + "]." + k + ": must be a number";
      }
      l.resource = RlimitNames().at(l.type);
      l.soft = r["soft"].get<uint64_t>();
      l.hard = r["hard"].get<uint64_t>();
      if (l.soft > l.hard) return "process.rlimits[" + l.type + "]: soft above hard";
      out->rlimits.push_back(l);
    }
  }
  if (p.contains("noNewPrivileges")) {
    if (!p["noNewPrivileges"].is_boolean()) return "process.noNewPrivileges: must be a boolean";
    out->no_new_privileges = p["noNewPrivileges"].get<bool>();
  }

  // root
  if (!j.contains("root") || !j["root"].is_object()) return "root: must be an object";
  const json& r = j["root"];
  if (!r.contains("path") || !r["path"].is_string() || r["path"].get<std::string>().empty()) {
    return "root.path: must be a non-empty string";
  }
  const std::string rp = r["path"].get<std::string>();
  if (rp.find('\0') != std::string::npos) return "root.path: contains NUL";
  out->rootfs = rp[0] == '/' ? Normalize(rp) : Normalize(bundle + "/" + rp);
  if (r.contains("readonly")) {
    if (!r["readonly"].is_boolean()) return "root.readonly: must be a boolean";
    out->root_readonly = r["readonly"].get<bool>();
  }
  if (j.contains("hostname")) {
    if (!j["hostname"].is_string()) return "hostname: must be a string";
    out->hostname = j["hostname"].get<std::string>();
    if (out->hostname.size() > 64) return "hostname: longer than 64 bytes";
  }

  // mounts
  if (j.contains("mounts")) {
    if (!j["mounts"].is_array()) return "mounts: must be an array";
    for (const auto& m : j["mounts"]) {
      if (!m.is_object() || !m.contains("destination") || !m["destination"].is_string()) {
        return "mounts[].destination: must be a string";
      }
      const std::string dest = m["destination"].get<std::string>();
      if (dest.empty() || dest[0] != '/') return "mounts[" + dest + "].destination: must be an absolute path";
      const std::string norm = Normalize(dest);
      std::string type = m.contains("type") && m["type"].is_string() ? m["type"].get<std::string>() : "";
      std::vector<std::string> options;
      if (m.contains("options") && !StringArray(m["options"], &options)) return "mounts[" + dest + "].options: must be an array of strings";
      const bool bind = type == "bind" || std::find(options.begin(), options.end(), "bind") != options.end() ||
                        std::find(options.begin(), options.end(), "rbind") != options.end();
      const bool ro = std::find(options.begin(), options.end(), "ro") != options.end();
      if (bind) {
        if (!m.contains("source") || !m["source"].is_string()) return "mounts[" + dest + "].source: must be a string";
        std::string src = m["source"].get<std::string>();
        if (src.empty()) return "mounts[" + dest + "].source: empty";
        if (src[0] != '/') src = bundle + "/" + src;
        if (RouterOwned(type, norm)) {
          out->ignored_mounts.push_back(norm);
          continue;
        }
        out->volumes.push_back(Volume{Normalize(src), norm, ro});
      } else if (type == "tmpfs") {
        if (RouterOwned(type, norm)) {
          out->ignored_mounts.push_back(norm);
          continue;
        }
        TmpfsSpec t;
        std::string spec = norm;
        for (const auto& o : options) {
          if (o.rfind("size=", 0) == 0) spec += ":" + o.substr(5);
        }
        if (std::string err = ParseTmpfs(spec, &t); !err.empty()) return "mounts[" + dest + "]: " + err;
        out->tmpfs.push_back(t);
      } else if (RouterOwned(type, norm)) {
        out->ignored_mounts.push_back(norm);
      } else {
        return "mounts[" + dest + "].type: " + (type.empty() ? std::string("missing") : type) +
               " is not served (bind, tmpfs, proc, sysfs, devpts, mqueue, cgroup)";
      }
    }
  }

  // linux.namespaces: which types are known; a network path is kept.
  if (j.contains("linux")) {
    const json& l = j["linux"];
    if (!l.is_object()) return "linux: must be an object";
    if (l.contains("namespaces")) {
      if (!l["namespaces"].is_array()) return "linux.namespaces: must be an array";
      static const char* kKnown[] = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"};
      for (const auto& n : l["namespaces"]) {
        if (!n.is_object() || !n.contains("type") || !n["type"].is_string()) return "linux.namespaces[].type: must be a string";
        const std::string t = n["type"].get<std::string>();
        if (std::find(std::begin(kKnown), std::end(kKnown), t) == std::end(kKnown)) {
          return "linux.namespaces[].type: unknown namespace type " + t;
        }
        if (t == "network" && n.contains("path")) {
          if (!n["path"].is_string()) return "linux.namespaces[network].path: must be a string";
          out->network_namespace = n["path"].get<std::string>();
        }
      }
    }
  }
  if (j.contains("hooks")) {
    const json& h = j["hooks"];
    if (!h.is_object()) return "hooks: must be an object";
    for (auto it = h.begin(); it != h.end(); ++it) {
      const std::string stage = it.key();
      static const char* kStages[] = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"};
      if (std::find(std::begin(kStages), std::end(kStages), stage) == std::end(kStages)) return "hooks." + stage + ": unknown hook stage";
      if (!it.value().is_array()) return "hooks." + stage + ": must be an array";
      int i = 0;
      for (const auto& e : it.value()) {
        const std::string field = "hooks." + stage + "[" + std::to_string(i++) + "]";
        if (!e.is_object() || !e.contains("path") || !e["path"].is_string()) return field + ".path: must be a string";
        OciHook hook;
        hook.path = e["path"].get<std::string>();
        if (hook.path.empty() || hook.path[0] != '/') return field + ".path: must be an absolute path";
        if (e.contains("args") && !StringArray(e["args"], &hook.args)) return field + ".args: must be an array of strings";
        if (e.contains("env") && !StringArray(e["env"], &hook.env)) return field + ".env: must be an array of strings";
        if (e.contains("timeout")) {
          if (!e["timeout"].is_number_integer() || e["timeout"].get<int64_t>() <= 0 || e["timeout"].get<int64_t>() > kHookMaxSeconds) {
            return field + ".timeout: must be a number of seconds from 1 to " + std::to_string(kHookMaxSeconds);
          }
          hook.timeout_s = e["timeout"].get<int>();
        }
        out->hooks[stage].push_back(hook);
      }
    }
  }
  if (j.contains("annotations")) {
    if (!j["annotations"].is_object()) return "annotations: must be an object";
    for (auto it = j["annotations"].begin(); it != j["annotations"].end(); ++it) {
      if (!it.value().is_string()) return "annotations." + it.key() + ": must be a string";
      out->annotations[it.key()] = it.value().get<std::string>();
    }
  }
  return "";
}

std::string RunHooks(const std::vector<OciHook>& hooks, const std::string& stage, const std::string& state_json) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    const OciHook& h = hooks[i];
    const std::string name = "hook " + stage + "[" + std::to_string(i) + "] " + h.path;
    int in[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return name + ": pipe: " + std::strerror(errno);
    std::vector<std::string> argv = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
    std::vector<char*> av, ev;
    for (auto& a : argv) av.push_back(a.data());
    av.push_back(nullptr);
    std::vector<std::string> env = h.env;
    for (auto& e : env) ev.push_back(e.data());
    ev.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(in[0]);
      ::close(in[1]);
      return name + ": fork: " + std::strerror(errno);
    }
    if (pid == 0) {
      ::dup2(in[0], 0);
      ::setpgid(0, 0);
      ::execve(h.path.c_str(), av.data(), ev.data());
      ::_exit(127);
    }
    ::close(in[0]);
    // The state on stdin; a hook that does not read it gets EPIPE, not us.
    ::signal(SIGPIPE, SIG_IGN);
    if (::write(in[1], state_json.data(), state_json.size()) < 0) {
    }
    ::close(in[1]);
    const int limit = h.timeout_s > 0 ? h.timeout_s : kHookMaxSeconds;
    int status = 0;
    bool done = false;
    for (int waited_ms = 0; waited_ms < limit * 1000; waited_ms += 5) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        done = true;
        break;
      }
      ::usleep(5000);
    }
    if (!done) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return name + ": timed out after " + std::to_string(limit) + " s";
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return name + ": could not be run";
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return name + ": " + (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                              : "killed by signal " + std::to_string(WTERMSIG(status)));
    }
  }
  return "";
}

std::string DefaultOciSpec() {
  json j = {
      {"ociVersion", "1.1.0"},
      {"process",
       {{"terminal", false},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", {"sh"}},
        {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"},
        {"noNewPrivileges", true},
        {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}}}},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "bulkhead"},
      {"mounts",
       {{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
        {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
        {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"}, {"options", {"nosuid", "noexec", "nodev", "ro"}}}}},
      {"linux", {{"namespaces", {{{"type", "pid"}}, {{"type", "network"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}}}}}},
  };
  return j.dump(2) + "\n";
}

std::string OciStateJson(const OciState& s) {
  json j = {{"ociVersion", "1.1.0"}, {"id", s.id}, {"status", s.status}, {"bundle", s.bundle}};
  if (s.status != "stopped") j["pid"] = s.pid;
  else j["pid"] = 0;
  json a = json::object();
  for (const auto& [k, v] : s.annotations) a[k] = v;
  j["annotations"] = a;
  return j.dump(2);
}

}  // namespace bulkhead::runtime
