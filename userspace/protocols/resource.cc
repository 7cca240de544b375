// ProcessInfo -> trace::Resource, and the redaction of command lines.
#include "protocols/resource.h"

#include "protocols/http_common/route.h"

namespace zerotrace::protocols {
namespace {

constexpr std::string_view kRedacted = "REDACTED";

bool IsSchemeChar(char c, bool first) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return first ? alpha : alpha || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

// "scheme://" at the start of s.
bool IsUrl(std::string_view s) {
  const size_t sep = s.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  for (size_t i = 0; i < sep; i++) {
    if (!IsSchemeChar(s[i], i == 0)) return false;
  }
  return true;
}

// A URL with its user info's secret and its query values redacted; other text as it is.
std::string RedactUrl(std::string_view url) {
  if (!IsUrl(url)) return std::string(url);
  const size_t auth_start = url.find("://") + 3;
  const size_t auth_end = url.find_first_of("/?#", auth_start);
  std::string_view authority = url.substr(auth_start, auth_end - auth_start);
  std::string out(url.substr(0, auth_start));
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    const size_t colon = userinfo.find(':');
    out += colon == std::string_view::npos ? kRedacted : userinfo.substr(0, colon + 1);
    if (colon != std::string_view::npos) out += kRedacted;
    authority.remove_prefix(at);  // keeps '@'
  }
  out += authority;
  if (auth_end == std::string_view::npos) return out;
  std::string_view rest = url.substr(auth_end);
  std::string_view fragment;
  if (const size_t hash = rest.find('#'); hash != std::string_view::npos) {
    fragment = rest.substr(hash);
    rest = rest.substr(0, hash);
  }
  const size_t q = rest.find('?');
  out += rest.substr(0, q);
  if (q != std::string_view::npos) out += "?" + http_common::RedactQuery(rest.substr(q + 1));
  out += fragment;
  return out;
}

// "--name" -> "name".
std::string_view FlagName(std::string_view arg) {
  while (!arg.empty() && arg.front() == '-') arg.remove_prefix(1);
  return arg;
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

// A bare argument that is safe to show: a path, a program file, or a small number (a port);
// also an IPv4 address and a Python module run with -m (below). Any other bare word may be a
// value (`redis-cli SET key VALUE`, `mysql -u USER`): hidden.
bool IsShownBareArg(std::string_view arg) {
  if (arg.find('/') != std::string_view::npos) return true;
  static constexpr std::string_view kProgramFiles[] = {".py", ".js", ".mjs", ".cjs", ".ts",
                                                       ".rb", ".pl", ".sh",  ".jar", ".php"};
  for (std::string_view ext : kProgramFiles) {
    if (arg.size() > ext.size() && arg.ends_with(ext)) return true;
  }
  if (arg.empty() || arg.size() > 5) return false;
  for (char c : arg) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// A dotted-quad IPv4 address ("127.0.0.1"): where a process binds or connects, shown in its
// spans' attributes anyway, never a credential.
bool IsIpv4Literal(std::string_view arg) {
  for (int part = 0; part < 4; part++) {
    const size_t dot = arg.find('.');
    if ((part < 3) != (dot != std::string_view::npos)) return false;  // exactly three dots
    const std::string_view digits = arg.substr(0, dot);
    if (digits.empty() || digits.size() > 3) return false;
    int value = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    if (value > 255) return false;
    if (dot != std::string_view::npos) arg.remove_prefix(dot + 1);
  }
  return true;
}

// `python3 -m http.server`: the module a Python interpreter runs is its program, as a script's
// path would be. Only a dotted identifier after -m of a program named python*.
bool IsPythonModule(const std::vector<std::string>& args, size_t i) {
  if (i < 2 || args[i - 1] != "-m") return false;
  const std::string_view program = args[0];
  const size_t slash = program.rfind('/');
  if (!program.substr(slash == std::string_view::npos ? 0 : slash + 1).starts_with("python")) {
    return false;
  }
  const std::string_view module = args[i];
  if (module.empty() || module.front() == '.' || module.back() == '.') return false;
  for (char c : module) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> RedactCommandArgs(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  out.reserve(args.size());
  bool redact_next = false;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& arg = args[i];
    if (redact_next && !arg.starts_with("-")) {
      out.emplace_back(kRedacted);
      redact_next = false;
      continue;
    }
    redact_next = false;
    const size_t eq = arg.find('=');
    const std::string_view name =
        eq == std::string::npos ? std::string_view() : std::string_view(arg).substr(0, eq);
    bool is_name = !name.empty() && !IsUrl(arg);
    for (char c : name) is_name = is_name && IsNameChar(c);
    if (is_name) {
      const std::string_view value = std::string_view(arg).substr(eq + 1);
      out.push_back(std::string(name) + "=" +
                    (http_common::IsSensitiveHeader(FlagName(name)) ? std::string(kRedacted)
                                                                    : RedactUrl(value)));
      continue;
    }
    if (arg.starts_with("--") && eq == std::string::npos &&
        http_common::IsSensitiveHeader(FlagName(arg))) {
      redact_next = true;
    }
    if (i > 0 && arg.size() > 2 && arg[0] == '-' && arg[1] != '-') {  // "-pSECRET": a value
      out.push_back(arg.substr(0, 2) + std::string(kRedacted));
      continue;
    }
    if (i > 0 && !arg.starts_with("-") && !IsUrl(arg) && !IsShownBareArg(arg) &&
        !IsIpv4Literal(arg) && !IsPythonModule(args, i)) {
      out.emplace_back(kRedacted);
      continue;
    }
    out.push_back(RedactUrl(arg));
  }
  return out;
}

std::shared_ptr<trace::Resource> MakeResource(const conn::ProcessInfo& info, uint16_t served_port,
                                              const std::string& host_name,
                                              const std::vector<trace::ResourceAttribute>& extra) {
  auto r = std::make_shared<trace::Resource>();
  r->service_name = info.ServiceNameFor(served_port);
  if (r->service_name.empty()) r->service_name = info.comm;
  r->service_instance_id = info.instance_id;
  r->pid = info.pid;
  r->executable_name = info.exe_name;
  r->executable_path = info.exe_path;
  r->command_args = RedactCommandArgs(info.args);
  r->runtime_name = info.runtime_name;
  r->container_id = info.container_id;
  r->container_name = info.container.container_name;
  r->k8s_pod_uid = info.cgroup.k8s_pod_uid;
  r->k8s_pod_name = info.container.k8s_pod_name;
  r->k8s_namespace_name = info.container.k8s_namespace;
  r->k8s_container_name = info.container.k8s_container_name;
  r->host_name = host_name;
  r->extra = extra;
  return r;
}

}  // namespace zerotrace::protocols
