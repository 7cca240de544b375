// Which processes and connections are traced: include and exclude lists (--include-*,
// --exclude-*, or include:/exclude: in the config file).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conn/process_info.h"
#include "conn/tuple.h"

namespace zerotrace::conn {

// One list of each kind. Within a kind any entry may match (or); see Selectors for the rest.
struct SelectorList {
  std::vector<std::string> exe;     // fnmatch globs on the executable path ('*' crosses '/');
                                    // a pattern without '/' is matched against the file name
  std::vector<std::string> comm;    // process names (/proc/PID/comm, 15 characters)
  std::vector<uint32_t> pid;        // process ids (tgids)
  std::vector<uint16_t> port;       // a server connection's listening port, or the peer's port
  std::vector<std::string> cgroup;  // cgroup v2 path prefixes, whole components only
  std::vector<uint64_t> netns;      // network namespace inodes

  bool empty() const {
    return exe.empty() && comm.empty() && pid.empty() && port.empty() && cgroup.empty() &&
           netns.empty();
  }
  // Kinds decided from the process alone (all but port).
  bool has_process_kinds() const {
    return !exe.empty() || !comm.empty() || !pid.empty() || !cgroup.empty() || !netns.empty();
  }
};

// A connection is traced when
//   - for every kind the include list names, one of its entries matches (kinds are and-ed:
//     include cgroup /kubepods and port 8080 is "port 8080 of pods"), and
//   - no entry of any kind in the exclude list matches (exclude wins).
// Empty lists select everything.
class Selectors {
 public:
  enum class Verdict { kTrace, kSkip, kUndecided };

  SelectorList include, exclude;

  bool empty() const { return include.empty() && exclude.empty(); }

  // The part that depends on the process only (pid, exe, comm, cgroup, netns). kUndecided when
  // a kind in use needs what /proc could not tell (partial info: exe, cgroup or netns
  // unknown); the caller drops what it cannot decide (precision first) and counts it.
  Verdict ForProcess(const ProcessInfo& p, uint64_t netns) const;
  // The whole decision for one connection: the process's verdict, then the port lists.
  Verdict ForConnection(const ProcessInfo& p, const Tuple& t, uint8_t role) const;

  // Whether `path` is `prefix` or below it, by whole components ("/a/b" is below "/a", not
  // below "/a/bc"). Exposed for tests.
  static bool CgroupBelow(std::string_view path, std::string_view prefix);
  static bool ExeMatches(const std::string& pattern, const std::string& exe_path);
};

}  // namespace zerotrace::conn
