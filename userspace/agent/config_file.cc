// YAML configuration with yaml-cpp, fed to CLI11 as config items; the effective configuration.
#include "agent/config_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>

namespace zerotrace::agent {
namespace {

// The place of a node in the file, for messages: "line 3".
std::string Where(const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  return m.is_null() ? std::string() : " (line " + std::to_string(m.line + 1) + ")";
}

CLI::ConfigError KeyError(const std::string& key, const std::string& what, const YAML::Node& n) {
  return CLI::ConfigError(key + ": " + what + Where(n));
}

// A scalar or a list of scalars as CLI11 inputs.
std::vector<std::string> Inputs(const std::string& key, const YAML::Node& value) {
  if (value.IsNull()) throw KeyError(key, "no value (give one, or remove the key)", value);
  if (value.IsScalar()) return {value.Scalar()};
  if (value.IsMap()) throw KeyError(key, "a map where a value or a list belongs", value);
  std::vector<std::string> out;
  for (const YAML::Node& item : value) {
    if (!item.IsScalar()) throw KeyError(key, "a list may hold only plain values", item);
    out.push_back(item.Scalar());
  }
  return out;  // empty: the key sets nothing
}

// Map entries in file order; a key given twice is an error (yaml-cpp keeps either silently).
std::vector<std::pair<std::string, YAML::Node>> Entries(const std::string& where,
                                                        const YAML::Node& map) {
  std::vector<std::pair<std::string, YAML::Node>> out;
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) throw KeyError(where, "keys must be plain words", kv.first);
    const std::string key = (where.empty() ? "" : where + ".") + kv.first.Scalar();
    if (!seen.insert(kv.first.Scalar()).second) throw KeyError(key, "given twice", kv.first);
    out.emplace_back(key, kv.second);
  }
  return out;
}

bool Redacted(const std::string& name) { return name.find("HEADERS") != std::string::npos; }

std::string ForDisplay(const std::string& name, const std::string& value) {
  if (Redacted(name)) {  // keep the header names: they say what is configured
    std::string out;
    std::string_view rest = value;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      const size_t eq = item.find('=');
      if (!out.empty()) out += ',';
      out += std::string(item.substr(0, eq)) + (eq == std::string_view::npos ? "" : "=REDACTED");
    }
    return out;
  }
  if (name.find("ENDPOINT") != std::string::npos) return exporter::EndpointForLogs(value);
  return value;
}

template <typename T>
void List(YAML::Emitter& y, const char* key, const std::vector<T>& v) {
  y << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& x : v) y << x;
  y << YAML::EndSeq;
}

void Selectors(YAML::Emitter& y, const char* key, const conn::SelectorList& s) {
  y << YAML::Key << key << YAML::Value << YAML::BeginMap;
  List(y, "exe", s.exe);
  List(y, "comm", s.comm);
  List(y, "pid", s.pid);
  List(y, "port", s.port);
  List(y, "cgroup", s.cgroup);
  List(y, "netns", s.netns);
  y << YAML::EndMap;
}

}  // namespace

const std::vector<std::string>& AgentOtelVariables() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> v = {"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
                                  "OTEL_RESOURCE_ATTRIBUTES"};
    for (const char* signal : {"", "TRACES_"}) {
      for (const char* part : {"ENDPOINT", "PROTOCOL", "HEADERS", "COMPRESSION", "TIMEOUT",
                               "CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE", "INSECURE"}) {
        v.push_back(std::string("OTEL_EXPORTER_OTLP_") + signal + part);
      }
    }
    return v;
  }();
  return kNames;
}

std::vector<CLI::ConfigItem> YamlConfig::from_config(std::istream& input) const {
  env_.clear();
  YAML::Node root;
  try {
    root = YAML::Load(input);
  } catch (const YAML::Exception& e) {
    throw CLI::ConfigError("not valid YAML: line " + std::to_string(e.mark.line + 1) + ", column " +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  std::vector<CLI::ConfigItem> items;
  if (root.IsNull()) return items;  // an empty file (or only comments): nothing set
  if (!root.IsMap()) throw CLI::ConfigError("the file must be a map of keys to values");
  const auto known = [this](const std::string& name) {
    const CLI::Option* op = app_->get_option_no_throw("--" + name);
    return op != nullptr && op->get_configurable();
  };
  const auto add = [&items](const std::string& name, std::vector<std::string> inputs) {
    CLI::ConfigItem item;
    item.name = name;
    item.inputs = std::move(inputs);
    items.push_back(std::move(item));
  };
  for (const auto& [key, value] : Entries("", root)) {
    if (key == "include" || key == "exclude") {
      if (!value.IsMap()) throw KeyError(key, "must be a map of selector kinds", value);
      for (const auto& [sub, list] : Entries(key, value)) {
        const std::string name = key + "-" + sub.substr(key.size() + 1);
        if (!known(name)) {
          throw KeyError(sub, "unknown selector (exe, comm, pid, port, cgroup, netns)", list);
        }
        if (auto inputs = Inputs(sub, list); !inputs.empty()) add(name, std::move(inputs));
      }
    } else if (key == "env") {
      if (!value.IsMap()) throw KeyError(key, "must be a map of OTEL_* variables", value);
      const auto& names = AgentOtelVariables();
      for (const auto& [sub, v] : Entries(key, value)) {
        const std::string var = sub.substr(4);
        if (std::find(names.begin(), names.end(), var) == names.end()) {
          throw KeyError(sub, "not a variable zerotrace reads", v);
        }
        if (!v.IsScalar()) throw KeyError(sub, "must be a plain value", v);
        env_.emplace_back(var, v.Scalar());
      }
    } else if (key == "config" || key == "print-config" || key == "help" || key == "version") {
      throw KeyError(key, "not allowed in a configuration file", value);
    } else if (!known(key)) {
      throw KeyError(key, "unknown key (every flag of zerotrace --help is a key)", value);
    } else {
      if (auto inputs = Inputs(key, value); !inputs.empty()) add(key, std::move(inputs));
    }
  }
  return items;
}

exporter::GetEnvFn EnvWithFile(const Options& options) {
  return [&options](const char* name) -> const char* {
    for (const auto& [k, v] : options.file_env) {
      if (k == name) return v.c_str();
    }
    return std::getenv(name);
  };
}

std::string EffectiveConfigYaml(const Options& o, const exporter::GetEnvFn& getenv) {
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "dump-events" << YAML::Value << o.dump_events;
  y << YAML::Key << "duration" << YAML::Value << o.duration_s;
  y << YAML::Key << "capture-bytes" << YAML::Value << o.capture_bytes;
  y << YAML::Key << "ringbuf-bytes" << YAML::Value << o.ringbuf_bytes;
  y << YAML::Key << "stats-interval" << YAML::Value << o.stats_interval_s;
  y << YAML::Key << "verbose" << YAML::Value << o.verbose;
  y << YAML::Key << "jsonl" << YAML::Value << o.jsonl_path;
  y << YAML::Key << "otlp-endpoint" << YAML::Value << exporter::EndpointForLogs(o.otlp_endpoint);
  y << YAML::Key << "otlp-protocol" << YAML::Value << o.otlp_protocol;
  y << YAML::Key << "metrics-addr" << YAML::Value << o.metrics_addr;
  y << YAML::Key << "console" << YAML::Value << o.console;
  y << YAML::Key << "console-format" << YAML::Value << o.console_format;
  y << YAML::Key << "no-route-inference" << YAML::Value << !o.infer_routes;
  y << YAML::Key << "no-tls" << YAML::Value << !o.tls;
  y << YAML::Key << "tls-per-function-probes" << YAML::Value << o.tls_per_function;
  y << YAML::Key << "no-socket-tracepoints" << YAML::Value << !o.sock_hooks;
  y << YAML::Key << "no-head-caps" << YAML::Value << !o.head_caps;
  y << YAML::Key << "top" << YAML::Value << o.top;
  y << YAML::Key << "top-interval" << YAML::Value << o.top_interval_s;
  y << YAML::Key << "metrics-cardinality-limit" << YAML::Value << o.metrics_cardinality_limit;
  List(y, "service-name-map", o.service_name_rules);
  y << YAML::Key << "netns" << YAML::Value << o.netns;
  y << YAML::Key << "propagate-context" << YAML::Value << o.propagate_context;
  Selectors(y, "include", o.selectors.include);
  Selectors(y, "exclude", o.selectors.exclude);
  y << YAML::Key << "env" << YAML::Value << YAML::BeginMap;
  for (const std::string& name : AgentOtelVariables()) {
    const char* v = getenv(name.c_str());
    if (v == nullptr) continue;
    const bool from_file = std::any_of(o.file_env.begin(), o.file_env.end(),
                                       [&name](const auto& kv) { return kv.first == name; });
    y << YAML::Key << name << YAML::Value << ForDisplay(name, v)
      << YAML::Comment(from_file ? "from the file" : "from the environment");
  }
  y << YAML::EndMap;
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

}  // namespace zerotrace::agent
