// Parsing and matching of --service-name-map rules.
#include "conn/service_name_map.h"

#include <charconv>

namespace zerotrace::conn {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// `path` is `prefix` or lies below it.
bool UnderPath(std::string_view path, std::string_view prefix) {
  if (!path.starts_with(prefix)) return false;
  return path.size() == prefix.size() || prefix == "/" || path[prefix.size()] == '/';
}

}  // namespace

Status ServiceNameMap::Add(std::string_view rules) {
  std::vector<Rule> parsed;
  bool ports = false;
  while (!rules.empty()) {
    const size_t comma = rules.find(',');
    const std::string_view item = Trim(rules.substr(0, comma));
    rules = comma == std::string_view::npos ? std::string_view() : rules.substr(comma + 1);
    if (item.empty()) continue;
    auto bad = [&](const char* why) {
      return Status::Error("--service-name-map: '" + std::string(item) + "': " + why +
                           " (expected exe:NAME=SERVICE, port:N=SERVICE or cgroup:PATH=SERVICE)");
    };
    const size_t colon = item.find(':');
    const size_t eq = item.rfind('=');
    if (colon == std::string_view::npos || eq == std::string_view::npos || eq < colon) {
      return bad("not KIND:MATCH=SERVICE");
    }
    const std::string_view kind = item.substr(0, colon);
    const std::string_view match = Trim(item.substr(colon + 1, eq - colon - 1));
    const std::string_view name = Trim(item.substr(eq + 1));
    if (match.empty()) return bad("nothing to match");
    if (name.empty()) return bad("the service name is empty");
    Rule rule{Kind::kExe, std::string(match), 0, std::string(name)};
    if (kind == "exe") {
      if (match.find('/') != std::string_view::npos)
        return bad("exe takes a file name, not a path");
    } else if (kind == "port") {
      unsigned port = 0;
      const auto [ptr, ec] = std::from_chars(match.data(), match.data() + match.size(), port);
      if (ec != std::errc() || ptr != match.data() + match.size() || port == 0 || port > 65535) {
        return bad("the port must be a number from 1 to 65535");
      }
      rule.kind = Kind::kPort;
      rule.port = static_cast<uint16_t>(port);
      ports = true;
    } else if (kind == "cgroup") {
      if (match.front() != '/') return bad("a cgroup path starts with '/'");
      rule.kind = Kind::kCgroup;
      while (rule.match.size() > 1 && rule.match.back() == '/') rule.match.pop_back();
    } else {
      return bad("the kind must be exe, port or cgroup");
    }
    parsed.push_back(std::move(rule));
  }
  for (Rule& r : parsed) rules_.push_back(std::move(r));
  has_port_rules_ = has_port_rules_ || ports;
  return Status::Ok();
}

const std::string* ServiceNameMap::Find(std::string_view exe_name, std::string_view cgroup_path,
                                        uint16_t served_port) const {
  for (const Rule& r : rules_) {
    switch (r.kind) {
      case Kind::kExe:
        if (!exe_name.empty() && exe_name == r.match) return &r.name;
        break;
      case Kind::kPort:
        if (served_port != 0 && served_port == r.port) return &r.name;
        break;
      case Kind::kCgroup:
        if (!cgroup_path.empty() && UnderPath(cgroup_path, r.match)) return &r.name;
        break;
    }
  }
  return nullptr;
}

}  // namespace zerotrace::conn
