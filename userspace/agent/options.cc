// Flag parsing with CLI11; every flag is documented in --help.
#include "agent/options.h"

#include <CLI/CLI.hpp>

namespace zerotrace::agent {

StatusOr<Options> ParseOptions(int argc, char** argv, bool* exit_now) {
  *exit_now = false;
  Options o;
  CLI::App app{
      "zerotrace: traces every TCP connection on this node with eBPF, no instrumentation.\n"
      "Run as root."};
  app.set_version_flag("--version", "zerotrace 0.1.0");
  app.add_flag("--dump-events", o.dump_events,
               "print every kernel event readably (time, pid/tid, comm, tuple, role, direction,"
               " stream position, sizes, first bytes)");
  app.add_option("--duration", o.duration_s, "exit cleanly after this many seconds")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--pid", o.pids, "trace only this process id (repeatable)");
  app.add_option("--capture-bytes", o.capture_bytes,
                 "payload bytes copied per syscall (default 16384, max 65536)")
      ->check(CLI::Range(0, ZT_MAX_CAPTURE));
  app.add_option("--ringbuf-bytes", o.ringbuf_bytes,
                 "kernel ring buffer size, a power of two (default 8 MiB)");
  app.add_option("--stats-interval", o.stats_interval_s,
                 "seconds between self-metric summary lines on stderr (0: off)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--verbose,-v", o.verbose, "log loader details");
  app.add_option("--jsonl", o.jsonl_path,
                 "append spans to PATH as OTLP/JSON lines (one ExportTraceServiceRequest per "
                 "line); the console output then stops unless --console is given");
  app.add_option("--otlp-endpoint", o.otlp_endpoint,
                 "export spans over OTLP to this collector URL (e.g. http://localhost:4318); "
                 "wins over OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  app.add_option("--otlp-protocol", o.otlp_protocol,
                 "grpc, http/protobuf (default) or http/json; wins over "
                 "OTEL_EXPORTER_OTLP_PROTOCOL");
  app.add_option("--metrics-addr", o.metrics_addr,
                 "serve the agent's self-metrics at http://HOST:PORT/metrics in the Prometheus "
                 "text format (e.g. 127.0.0.1:9464, [::1]:9464; port 0 picks a free one; "
                 "default: off)")
      ->type_name("HOST:PORT");
  app.add_flag("--console", o.console, "print spans on stdout even when another exporter is set");
  app.add_option("--console-format", o.console_format,
                 "tree (default: each trace as an indented tree once it is complete) or spans "
                 "(one line per span as it finishes)")
      ->check(CLI::IsMember({"tree", "spans"}));
  app.add_flag("!--no-route-inference", o.infer_routes,
               "name spans \"{METHOD}\" instead of \"{METHOD} {route template}\"");
  app.add_flag("!--no-tls", o.tls,
               "do not attach uprobes to TLS libraries (OpenSSL, GnuTLS): HTTPS stays opaque");
  app.add_flag("--tls-per-function-probes", o.tls_per_function,
               "attach one uprobe per TLS function, as on kernels before 6.6, instead of one "
               "multi-uprobe link per library file (slower to attach and detach)");
  std::vector<std::string> name_maps;
  app.add_option("--service-name-map", name_maps,
                 "name services yourself, ahead of every other source: comma-separated rules "
                 "exe:FILE=NAME (executable file name), port:N=NAME (connections served on "
                 "local port N), cgroup:/PATH=NAME (cgroup v2 path or below); the first "
                 "matching rule wins; repeatable")
      ->type_name("RULES")
      ->allow_extra_args(false);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    app.exit(e);
    *exit_now = true;
    return o;
  } catch (const CLI::ParseError& e) {
    return Status::Error(e.what() + std::string("; see --help"));
  }
  for (const std::string& rules : name_maps) {
    if (Status s = o.service_name_map.Add(rules); !s.ok()) return s;
  }
  return o;
}

namespace {

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const std::string hex(s.substr(i + 1, 2));
      char* end = nullptr;
      const long v = std::strtol(hex.c_str(), &end, 16);
      if (end == hex.c_str() + 2) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ParseResourceAttributes(std::string_view env) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!env.empty()) {
    const size_t comma = env.find(',');
    const std::string_view item = env.substr(0, comma);
    env = comma == std::string_view::npos ? std::string_view() : env.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = Trim(item.substr(0, eq));
    if (key.empty()) continue;
    out.emplace_back(PercentDecode(key), PercentDecode(Trim(item.substr(eq + 1))));
  }
  return out;
}

}  // namespace zerotrace::agent
