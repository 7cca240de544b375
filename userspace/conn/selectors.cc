// Selector matching: process kinds first, then ports.
#include "conn/selectors.h"

#include <fnmatch.h>
#include <zerotrace/events.h>

#include <algorithm>

namespace zerotrace::conn {
namespace {

enum class Match { kYes, kNo, kUnknown };

template <typename T>
bool Contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Whether some entry of each non-empty process kind in `list` matches. With `all` every
// non-empty kind must match (include); without, any one match is enough (exclude).
Match ProcessMatches(const SelectorList& list, const ProcessInfo& p, uint64_t netns, bool all) {
  bool unknown = false, any = false, none = false;  // some kind: unknown, yes, certain no
  const auto kind = [&](bool used, Match m) {
    if (!used) return;
    unknown = unknown || m == Match::kUnknown;
    any = any || m == Match::kYes;
    none = none || m == Match::kNo;
  };
  kind(!list.pid.empty(), Contains(list.pid, p.pid) ? Match::kYes : Match::kNo);
  if (!list.comm.empty()) {
    bool m = false;
    for (const auto& c : list.comm) m = m || p.comm == std::string_view(c).substr(0, 15);
    kind(true, m ? Match::kYes : Match::kNo);
  }
  if (!list.exe.empty()) {
    bool m = false;
    for (const auto& g : list.exe)
      m = m || (!p.exe_path.empty() && Selectors::ExeMatches(g, p.exe_path));
    kind(true, m ? Match::kYes : p.exe_path.empty() ? Match::kUnknown : Match::kNo);
  }
  if (!list.cgroup.empty()) {
    bool m = false;
    for (const auto& c : list.cgroup) m = m || Selectors::CgroupBelow(p.cgroup.path, c);
    kind(true, m ? Match::kYes : p.cgroup.path.empty() ? Match::kUnknown : Match::kNo);
  }
  if (!list.netns.empty()) {
    kind(true, netns == 0                    ? Match::kUnknown
               : Contains(list.netns, netns) ? Match::kYes
                                             : Match::kNo);
  }
  if (all) return none ? Match::kNo : unknown ? Match::kUnknown : Match::kYes;
  return any ? Match::kYes : unknown ? Match::kUnknown : Match::kNo;
}

bool PortMatches(const std::vector<uint16_t>& ports, const Tuple& t, uint8_t role) {
  if (Contains(ports, t.remote_port) && role != ZT_ROLE_SERVER) return true;
  if (Contains(ports, t.local_port) && role != ZT_ROLE_CLIENT) return true;
  // A server's peer port is the client's ephemeral one; a client's local port likewise.
  return false;
}

}  // namespace

bool Selectors::CgroupBelow(std::string_view path, std::string_view prefix) {
  while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
  if (path.empty() || prefix.empty()) return false;
  if (prefix == "/") return path.front() == '/';
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

bool Selectors::ExeMatches(const std::string& pattern, const std::string& exe_path) {
  if (pattern.find('/') == std::string::npos) {
    const size_t slash = exe_path.rfind('/');
    const std::string name = slash == std::string::npos ? exe_path : exe_path.substr(slash + 1);
    return fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
  }
  return fnmatch(pattern.c_str(), exe_path.c_str(), 0) == 0;
}

Selectors::Verdict Selectors::ForProcess(const ProcessInfo& p, uint64_t netns) const {
  if (netns == 0) netns = p.netns;
  const Match out =
      exclude.has_process_kinds() ? ProcessMatches(exclude, p, netns, /*all=*/false) : Match::kNo;
  const Match in =
      include.has_process_kinds() ? ProcessMatches(include, p, netns, /*all=*/true) : Match::kYes;
  if (out == Match::kYes || in == Match::kNo) return Verdict::kSkip;
  if (out == Match::kUnknown || in == Match::kUnknown) return Verdict::kUndecided;
  return Verdict::kTrace;
}

Selectors::Verdict Selectors::ForConnection(const ProcessInfo& p, const Tuple& t,
                                            uint8_t role) const {
  const Verdict v = ForProcess(p, t.netns);
  if (v != Verdict::kTrace) return v;
  if (!exclude.port.empty() && PortMatches(exclude.port, t, role)) return Verdict::kSkip;
  if (!include.port.empty() && !PortMatches(include.port, t, role)) return Verdict::kSkip;
  return Verdict::kTrace;
}

}  // namespace zerotrace::conn
