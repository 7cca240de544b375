// Command-line options of the agent, and the standard OTEL_* variables it reads itself.
#pragma once

#include <zerotrace/events.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "conn/selectors.h"
#include "conn/service_name_map.h"
#include "export/otlp_config.h"

namespace zerotrace::agent {

struct Options {
  bool dump_events = false;
  double duration_s = 0;       // 0: until SIGINT/SIGTERM
  std::vector<uint32_t> pids;  // --pid / --include-pid: also filtered in the kernel
  uint32_t capture_bytes = ZT_DEFAULT_CAPTURE;
  uint32_t ringbuf_bytes = 8u << 20;
  double stats_interval_s = 60;
  bool verbose = false;
  std::string jsonl_path;               // --jsonl: OTLP/JSON lines
  bool console = false;                 // --console: also print spans when another exporter is set
  std::string console_format = "tree";  // --console-format: tree or spans
  bool infer_routes = true;             // --no-route-inference turns span names into "{METHOD}"
  bool tls = true;                      // --no-tls: no TLS library uprobes
  bool tls_per_function = false;        // --tls-per-function-probes: no multi-uprobe links
  bool sock_hooks = true;               // --no-socket-tracepoints: data at syscall exits
  bool head_caps = true;                // --no-head-caps: response bodies copied whole
  std::string otlp_endpoint;            // --otlp-endpoint: wins over OTEL_EXPORTER_OTLP_*ENDPOINT
  std::string otlp_protocol;            // --otlp-protocol: grpc, http/protobuf or http/json
  std::string metrics_addr;             // --metrics-addr: serve /metrics here; empty: off
  conn::ServiceNameMap service_name_map;        // --service-name-map rules, in the order given
  std::vector<std::string> service_name_rules;  // the same, as given (--print-config)
  conn::Selectors selectors;                    // --include-*, --exclude-* (include.pid = pids)
  std::string netns;         // --netns as given (a name under /run/netns, or a path); empty: all
  uint64_t netns_inode = 0;  // its inode (0: no --netns); the agent adds it to include.netns
  bool propagate_context = false;  // --propagate-context: traceparent into cross-node HTTP/1 calls
  std::string config_path;         // --config: YAML file; empty: none
  bool print_config = false;       // --print-config: print the effective one, exit
  // The config file's env: section (OTEL_* variables), which wins over the environment.
  std::vector<std::pair<std::string, std::string>> file_env;
  bool top = false;                         // --top (or `zerotrace top`): the live RED view
  double top_interval_s = 2;                // --top-interval
  size_t metrics_cardinality_limit = 2000;  // --metrics-cardinality-limit: series per instrument
};

// Parses argv, and the file named by --config (flags win over the file; the file's env:
// section wins over the environment). Returns an error for bad values (the agent exits 2):
// numbers out of range, a --pid of no running process, an empty --otlp-endpoint, an unknown
// key in the file (errors from the file start with its path). Sets *exit_now for
// --help/--version.
StatusOr<Options> ParseOptions(int argc, char** argv, bool* exit_now);

// OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2", values percent-encoded) as key/value pairs. As the
// specification asks, any malformed entry (no '=', an empty key, a bad %-escape) makes the
// whole variable an error; the caller reports it and uses none of it.
StatusOr<std::vector<std::pair<std::string, std::string>>> ParseResourceAttributes(
    std::string_view env);

// The standard OpenTelemetry variables the agent reads itself (OTEL_EXPORTER_OTLP_* are read
// by exporter::OtlpConfigFrom), per the specification's "Environment Variable Specification".
struct OtelEnv {
  // OTEL_TRACES_EXPORTER named otlp, console or none (a list; other names are warned about
  // and ignored). False when unset or naming nothing else: the agent's default applies.
  bool traces_exporter_set = false;
  bool otlp = false, console = false;  // what it named ("none": neither)
  bool sdk_disabled = false;           // OTEL_SDK_DISABLED=true (any case)
  std::vector<std::pair<std::string, std::string>> resource_attributes;
  std::vector<std::string> warnings;  // one line each, for stderr
};
OtelEnv ReadOtelEnv(const exporter::GetEnvFn& getenv);

// Which span exporters run. Flags are explicit and always win: --jsonl, --console,
// --otlp-endpoint and --otlp-protocol each turn theirs on. The variables select among the rest:
// - OTEL_TRACES_EXPORTER=otlp: OTLP (default endpoint when none is set); =console: the
//   console; =none: neither. Unset: OTLP when an endpoint variable is set, and the console
//   when nothing else exports.
// - OTEL_SDK_DISABLED=true: the variables turn no exporter on (as "none"); spans are still
//   made and counted, and --metrics-addr serves; the flags still export.
struct ExporterChoice {
  exporter::OtlpEnvSelection otlp = exporter::OtlpEnvSelection::kIfEndpointSet;
  bool console = false;          // runs beside the others
  bool console_if_alone = true;  // runs when no other exporter does
};
ExporterChoice ChooseExporters(const Options& options, const OtelEnv& env);

}  // namespace zerotrace::agent
