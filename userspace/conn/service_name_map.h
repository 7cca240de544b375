// --service-name-map: the operator's own service names, by executable, port or cgroup.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace zerotrace::conn {

// Rules "KIND:MATCH=NAME", tried in the order given; the first that matches names the service,
// ahead of every other source (OTEL_SERVICE_NAME included):
//   exe:python3.11=orders          the executable's file name (or, unreadable, its task name)
//   port:8080=payments             connections the process serves on local port 8080
//   cgroup:/system.slice/app=app   the cgroup v2 path, or any path below it
class ServiceNameMap {
 public:
  enum class Kind : uint8_t { kExe, kPort, kCgroup };
  struct Rule {
    Kind kind;
    std::string match;  // exe name or cgroup path (without a trailing '/')
    uint16_t port = 0;
    std::string name;
  };

  // One or more comma-separated rules; errors name the rule and say what is wrong.
  Status Add(std::string_view rules);

  bool empty() const { return rules_.empty(); }
  bool has_port_rules() const { return has_port_rules_; }
  const std::vector<Rule>& rules() const { return rules_; }

  // The name for a process, by its exe name and cgroup path (port rules do not apply); nullptr
  // when no rule matches. `served_port`, when not 0, lets port rules apply too.
  const std::string* Find(std::string_view exe_name, std::string_view cgroup_path,
                          uint16_t served_port = 0) const;

 private:
  std::vector<Rule> rules_;
  bool has_port_rules_ = false;
};

}  // namespace zerotrace::conn
