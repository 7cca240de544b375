// Command-line options of the agent.
#pragma once

#include <zerotrace/events.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "conn/service_name_map.h"

namespace zerotrace::agent {

struct Options {
  bool dump_events = false;
  double duration_s = 0;  // 0: until SIGINT/SIGTERM
  std::vector<uint32_t> pids;
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
  std::string otlp_endpoint;            // --otlp-endpoint: wins over OTEL_EXPORTER_OTLP_*ENDPOINT
  std::string otlp_protocol;            // --otlp-protocol: grpc, http/protobuf or http/json
  std::string metrics_addr;             // --metrics-addr: serve /metrics here; empty: off
  conn::ServiceNameMap service_name_map;  // --service-name-map rules, in the order given
};

// OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2", values percent-encoded) as key/value pairs;
// malformed entries are skipped.
std::vector<std::pair<std::string, std::string>> ParseResourceAttributes(std::string_view env);

// Parses argv. Returns an error for bad values; sets *exit_now for --help/--version.
StatusOr<Options> ParseOptions(int argc, char** argv, bool* exit_now);

}  // namespace zerotrace::agent
