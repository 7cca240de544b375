// Service identity from cgroup paths, runtime state, command lines and environments.
#include "conn/service_identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <nlohmann/json.hpp>

namespace zerotrace::conn {
namespace {

constexpr size_t kContainerIdLen = 64;
constexpr size_t kPodUidLen = 36;  // 8-4-4-4-12
// A runtime's config file is a few KB; more is not what we look for.
constexpr size_t kMaxStateFileBytes = 1 << 20;

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// Position of the first run of exactly 64 lower-case hex characters; npos if none.
size_t ContainerIdAt(std::string_view component) {
  size_t i = 0;
  while (i < component.size()) {
    if (!IsLowerHex(component[i])) {
      ++i;
      continue;
    }
    size_t run = i;
    while (run < component.size() && IsLowerHex(component[run])) ++run;
    if (run - i == kContainerIdLen) return i;
    i = run;
  }
  return std::string_view::npos;
}

// The runtime a container's cgroup component names, by the prefix before its id.
std::string RuntimeOf(std::string_view component, std::string_view parent) {
  if (component.starts_with("docker-") || parent == "docker") return "docker";
  if (component.starts_with("cri-containerd-")) return "containerd";
  if (component.starts_with("crio-")) return "cri-o";
  if (component.starts_with("libpod-")) return "podman";
  return "";
}

// "pod<uid>" (cgroupfs) or "kubepods-<class>-pod<uid with _>.slice" (systemd driver).
std::string PodUidIn(std::string_view component) {
  const size_t pod = component.rfind("pod");
  if (pod == std::string_view::npos) return "";
  std::string_view uid = component.substr(pod + 3);
  if (uid.ends_with(".slice")) uid.remove_suffix(6);
  if (uid.size() != kPodUidLen) return "";
  std::string out(uid);
  for (size_t i = 0; i < out.size(); i++) {
    if (out[i] == '_') out[i] = '-';
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? out[i] != '-' : !IsLowerHex(out[i])) return "";
  }
  return out;
}

// Splits "a/b/c" into components, innermost last.
std::vector<std::string_view> Components(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    if (slash != 0) out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// Fills what one cgroup path says into *id (fields already set are kept).
void ReadPath(std::string_view path, CgroupIdentity* id) {
  const std::vector<std::string_view> parts = Components(path);
  bool kubepods = false;
  for (std::string_view p : parts) kubepods = kubepods || p.starts_with("kubepods");
  // Innermost first: nested cgroups (init.scope) sit below the container's.
  for (size_t k = parts.size(); k-- > 0;) {
    const std::string_view c = parts[k];
    if (id->container_id.empty()) {
      if (const size_t at = ContainerIdAt(c); at != std::string_view::npos) {
        id->container_id = std::string(c.substr(at, kContainerIdLen));
        id->container_runtime = RuntimeOf(c, k > 0 ? parts[k - 1] : std::string_view());
      }
    }
    if (kubepods && id->k8s_pod_uid.empty()) id->k8s_pod_uid = PodUidIn(c);
  }
  if (!id->systemd_unit.empty() || !id->container_id.empty()) return;
  for (size_t k = parts.size(); k-- > 0;) {
    std::string_view c = parts[k];
    if (!c.ends_with(".service")) continue;
    c.remove_suffix(8);
    if (c.starts_with("user@") || c.empty()) break;  // the user manager, not a service
    id->systemd_unit = std::string(c);
    break;
  }
}

bool ReadSmallFile(const std::string& path, std::string* out) {
  out->clear();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  while (out->size() < kMaxStateFileBytes) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return !out->empty();
}

std::string StringAt(const nlohmann::json& doc, std::initializer_list<const char*> path) {
  const nlohmann::json* at = &doc;
  for (const char* key : path) {
    if (!at->is_object()) return "";
    const auto it = at->find(key);
    if (it == at->end()) return "";
    at = &*it;
  }
  return at->is_string() ? at->get<std::string>() : "";
}

// Reads the OCI config.json of a CRI container: the pod and container names it was made with.
bool ReadCriAnnotations(const std::string& path, const char* container_key, const char* pod_key,
                        const char* namespace_key, ContainerNames* out) {
  std::string text;
  if (!ReadSmallFile(path, &text)) return false;
  const auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return false;
  out->k8s_container_name = StringAt(doc, {"annotations", container_key});
  out->k8s_pod_name = StringAt(doc, {"annotations", pod_key});
  out->k8s_namespace = StringAt(doc, {"annotations", namespace_key});
  out->service = out->k8s_container_name;
  return !out->k8s_container_name.empty();
}

// Value of `key` in an OTEL_RESOURCE_ATTRIBUTES value ("k=v,k2=v2", percent-encoded).
std::string ResourceAttribute(std::string_view attrs, std::string_view key) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  while (!attrs.empty()) {
    const size_t comma = attrs.find(',');
    const std::string_view item = attrs.substr(0, comma);
    attrs = comma == std::string_view::npos ? std::string_view() : attrs.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || trim(item.substr(0, eq)) != key) continue;
    const std::string_view v = trim(item.substr(eq + 1));
    std::string out;
    for (size_t i = 0; i < v.size(); i++) {
      unsigned value = 0;
      if (v[i] == '%' && i + 2 < v.size() &&
          std::from_chars(v.data() + i + 1, v.data() + i + 3, value, 16).ptr == v.data() + i + 3) {
        out += static_cast<char>(value);
        i += 2;
      } else {
        out += v[i];
      }
    }
    return out;
  }
  return "";
}

std::string_view Basename(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// The directory holding `path`'s file, by name ("/srv/orders/__main__.py" -> "orders").
std::string_view ParentName(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return "";
  return Basename(path.substr(0, slash));
}

std::string_view StripSuffix(std::string_view s, std::initializer_list<std::string_view> suffixes) {
  for (std::string_view suffix : suffixes) {
    if (s.size() > suffix.size() && s.ends_with(suffix))
      return s.substr(0, s.size() - suffix.size());
  }
  return s;
}

// "python3.11", "python3", "python" (digits and dots after the stem).
bool IsVersioned(std::string_view exe, std::string_view stem) {
  if (!exe.starts_with(stem)) return false;
  for (char c : exe.substr(stem.size())) {
    if ((c < '0' || c > '9') && c != '.') return false;
  }
  return true;
}

bool In(std::string_view arg, std::initializer_list<std::string_view> set) {
  for (std::string_view s : set) {
    if (arg == s) return true;
  }
  return false;
}

// The index of the first argument after the interpreter's own options, skipping an option's
// separate value when it takes one; `stop` options end the scan (their index is returned).
size_t FirstOperand(const std::vector<std::string>& args,
                    std::initializer_list<std::string_view> with_value,
                    std::initializer_list<std::string_view> stop) {
  size_t i = 1;
  while (i < args.size()) {
    const std::string_view a = args[i];
    if (a == "--") return i + 1;
    if (a.empty() || a[0] != '-' || a == "-") return i;
    if (In(a, stop)) return i;
    i += In(a, with_value) ? 2 : 1;
  }
  return i;
}

EntryPoint Python(const std::vector<std::string>& args, std::string runtime) {
  EntryPoint e{"", std::move(runtime)};
  // Short options that take a value, alone or joined ("-Xdev"): -W, -X, -c, -m.
  size_t i = 1;
  while (i < args.size()) {
    const std::string_view a = args[i];
    if (a == "--") {
      i++;
      break;
    }
    if (a.empty() || a[0] != '-' || a == "-") break;
    if (a.starts_with("--")) {  // --check-hash-based-pycs takes a value; others do not
      i += a == "--check-hash-based-pycs" ? 2 : 1;
      continue;
    }
    // A cluster of short flags; -c, -m, -W, -X take the rest or the next argument.
    size_t k = 1;
    for (; k < a.size(); k++) {
      const char f = a[k];
      if (f == 'c') return e;  // inline code: no entry point
      if (f == 'm') {
        const std::string_view module = k + 1 < a.size()      ? a.substr(k + 1)
                                        : i + 1 < args.size() ? std::string_view(args[i + 1])
                                                              : std::string_view();
        // "-m pkg.__main__" is pkg; "-m gunicorn" is the tool the module is.
        e.service = std::string(StripSuffix(module, {".__main__"}));
        return e;
      }
      if (f == 'W' || f == 'X') break;
    }
    i += k < a.size() && k + 1 == a.size() ? 2 : 1;
  }
  if (i >= args.size() || args[i] == "-") return e;  // "-": the program comes from stdin
  const std::string_view script = args[i];
  std::string_view name = StripSuffix(Basename(script), {".py", ".pyc", ".pyz"});
  if (name == "__main__") name = ParentName(script);
  e.service = std::string(name);
  return e;
}

EntryPoint Node(const std::vector<std::string>& args) {
  EntryPoint e{"", "nodejs"};
  const size_t i = FirstOperand(
      args,
      {"-r", "--require", "--import", "--loader", "--experimental-loader", "--conditions", "-C",
       "--inspect-port", "--title", "--env-file", "--input-type"},
      {"-e", "--eval", "-p", "--print", "-i", "--interactive"});
  if (i >= args.size() || args[i].starts_with("-")) return e;
  const std::string_view script = args[i];
  std::string_view name = StripSuffix(Basename(script), {".js", ".mjs", ".cjs", ".ts"});
  if (name == "index") name = ParentName(script);
  e.service = std::string(name);
  return e;
}

// "orders-1.4.2" -> "orders": a jar named with its version names the same service.
std::string_view WithoutVersion(std::string_view jar) {
  for (size_t i = 0; i + 1 < jar.size(); i++) {
    if (jar[i] == '-' && jar[i + 1] >= '0' && jar[i + 1] <= '9' && i > 0) return jar.substr(0, i);
  }
  return jar;
}

EntryPoint Java(const std::vector<std::string>& args) {
  EntryPoint e{"", "java"};
  for (size_t i = 1; i < args.size(); i++) {
    const std::string_view a = args[i];
    if (a == "-jar" && i + 1 < args.size()) {
      e.service = std::string(WithoutVersion(StripSuffix(Basename(args[i + 1]), {".jar"})));
      return e;
    }
    if ((a == "-m" || a == "--module") && i + 1 < args.size()) {  // module/main.Class
      const std::string_view m = args[i + 1];
      e.service = std::string(m.substr(0, m.find('/')));
      return e;
    }
    if (In(a, {"-cp", "-classpath", "--class-path", "-p", "--module-path", "--add-modules",
               "--add-opens", "--add-exports", "--add-reads"})) {
      i++;
      continue;
    }
    if (a.starts_with("-")) continue;
    const size_t dot = a.rfind('.');  // the main class: its simple name
    e.service = std::string(dot == std::string_view::npos ? a : a.substr(dot + 1));
    return e;
  }
  return e;
}

EntryPoint Script(const std::vector<std::string>& args, std::string runtime,
                  std::initializer_list<std::string_view> with_value,
                  std::initializer_list<std::string_view> stop,
                  std::initializer_list<std::string_view> suffixes) {
  EntryPoint e{"", std::move(runtime)};
  const size_t i = FirstOperand(args, with_value, stop);
  if (i >= args.size() || args[i].starts_with("-")) return e;
  e.service = std::string(StripSuffix(Basename(args[i]), suffixes));
  return e;
}

}  // namespace

const char* ServiceNameSourceName(ServiceNameSource source) {
  switch (source) {
    case ServiceNameSource::kNameMap:
      return "name-map";
    case ServiceNameSource::kEnvironment:
      return "environment";
    case ServiceNameSource::kContainer:
      return "container";
    case ServiceNameSource::kSystemdUnit:
      return "systemd-unit";
    case ServiceNameSource::kEntryPoint:
      return "entry-point";
    case ServiceNameSource::kExecutable:
      return "executable";
    case ServiceNameSource::kComm:
      return "comm";
  }
  return "?";
}

CgroupIdentity ParseCgroup(std::string_view cgroup) {
  CgroupIdentity id;
  std::vector<std::string_view> v1_paths;
  while (!cgroup.empty()) {
    const size_t eol = cgroup.find('\n');
    const std::string_view line = cgroup.substr(0, eol);
    cgroup.remove_prefix(eol == std::string_view::npos ? cgroup.size() : eol + 1);
    // hierarchy-id:controllers:path
    const size_t first = line.find(':');
    const size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const std::string_view path = line.substr(second + 1);
    if (line.substr(0, second) == "0:") {
      id.path = std::string(path);
    } else {
      v1_paths.push_back(path);
    }
  }
  // The unified hierarchy first; v1 hierarchies (name=systemd among them) fill in the rest.
  ReadPath(id.path, &id);
  for (std::string_view p : v1_paths) ReadPath(p, &id);
  return id;
}

ContainerNames ReadContainerNames(const std::string& root, const CgroupIdentity& cgroup) {
  ContainerNames out;
  const std::string& id = cgroup.container_id;
  if (id.empty()) return out;
  std::string text;
  if (cgroup.container_runtime == "docker" || cgroup.container_runtime.empty()) {
    if (ReadSmallFile(root + "/var/lib/docker/containers/" + id + "/config.v2.json", &text)) {
      const auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (doc.is_object()) {
        std::string name = StringAt(doc, {"Name"});
        if (name.starts_with("/")) name.erase(0, 1);
        out.container_name = name;
        const std::string compose =
            StringAt(doc, {"Config", "Labels", "com.docker.compose.service"});
        out.service = compose.empty() ? name : compose;
        if (!out.service.empty()) return out;
      }
    }
  }
  if (ReadCriAnnotations(
          root + "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + id + "/config.json",
          "io.kubernetes.cri.container-name", "io.kubernetes.cri.sandbox-name",
          "io.kubernetes.cri.sandbox-namespace", &out)) {
    return out;
  }
  if (ReadCriAnnotations(
          root + "/run/containers/storage/overlay-containers/" + id + "/userdata/config.json",
          "io.kubernetes.container.name", "io.kubernetes.pod.name", "io.kubernetes.pod.namespace",
          &out)) {
    return out;
  }
  return ContainerNames{};
}

EntryPoint InterpreterEntryPoint(std::string_view exe, const std::vector<std::string>& args) {
  if (IsVersioned(exe, "python")) return Python(args, "cpython");
  if (IsVersioned(exe, "pypy")) return Python(args, "pypy");
  if (exe == "node" || exe == "nodejs") return Node(args);
  if (exe == "java") return Java(args);
  if (IsVersioned(exe, "ruby")) {
    return Script(args, "ruby", {"-I", "-r", "-C", "-E", "--encoding"}, {"-e"}, {".rb"});
  }
  if (IsVersioned(exe, "php")) {
    return Script(args, "php", {"-c", "-d", "-z", "-S", "-t"}, {"-r", "-a"}, {".php"});
  }
  return {};
}

EnvIdentity IdentityFromEnviron(std::string_view environ) {
  constexpr std::string_view kService = "OTEL_SERVICE_NAME=";
  constexpr std::string_view kAttrs = "OTEL_RESOURCE_ATTRIBUTES=";
  EnvIdentity out;
  std::string_view attrs;
  while (!environ.empty()) {
    const size_t nul = environ.find('\0');
    const std::string_view entry = environ.substr(0, nul);
    if (entry.starts_with(kService)) out.service_name = std::string(entry.substr(kService.size()));
    if (entry.starts_with(kAttrs)) attrs = entry.substr(kAttrs.size());
    if (nul == std::string_view::npos) break;
    environ.remove_prefix(nul + 1);
  }
  if (out.service_name.empty()) out.service_name = ResourceAttribute(attrs, "service.name");
  out.instance_id = ResourceAttribute(attrs, "service.instance.id");
  return out;
}

std::vector<std::string> SplitCmdline(std::string_view cmdline) {
  std::vector<std::string> out;
  while (!cmdline.empty() && out.size() < kMaxArgs) {
    const size_t nul = cmdline.find('\0');
    out.emplace_back(cmdline.substr(0, std::min(nul, kMaxArgBytes)));
    if (nul == std::string_view::npos) break;
    cmdline.remove_prefix(nul + 1);
  }
  return out;
}

std::string InstanceId(std::string_view boot_id, uint32_t pid, uint64_t start_ticks) {
  // FNV-1a 64 over the inputs, twice with different offsets: 128 bits, stable across agents.
  auto fnv = [&](uint64_t h) {
    auto mix = [&h](const void* data, size_t n) {
      const auto* p = static_cast<const unsigned char*>(data);
      for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    };
    mix(boot_id.data(), boot_id.size());
    mix(&pid, sizeof(pid));
    mix(&start_ticks, sizeof(start_ticks));
    return h;
  };
  std::array<uint8_t, 16> b{};
  const uint64_t hi = fnv(0xcbf29ce484222325ULL), lo = fnv(0x84222325cbf29ce4ULL);
  for (int i = 0; i < 8; i++) {
    b[i] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    b[8 + i] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x80);  // version 8
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // variant 10
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 15];
  }
  return out;
}

uint64_t StartTicksFromStat(std::string_view stat) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return 0;
  std::string_view rest = stat.substr(close + 1);
  // After comm: field 3 (state) onwards; starttime is field 22, the 20th of these.
  for (int field = 3; field < 22; field++) {
    const size_t space = rest.find_first_not_of(' ');
    if (space == std::string_view::npos) return 0;
    rest.remove_prefix(space);
    const size_t end = rest.find(' ');
    if (end == std::string_view::npos) return 0;
    rest.remove_prefix(end);
  }
  const size_t start = rest.find_first_not_of(' ');
  if (start == std::string_view::npos) return 0;
  rest.remove_prefix(start);
  uint64_t ticks = 0;
  std::from_chars(rest.data(), rest.data() + rest.size(), ticks);
  return ticks;
}

}  // namespace zerotrace::conn
