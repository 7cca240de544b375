// Flag parsing with CLI11 (every flag is documented in --help), and the OTEL_* variables.
#include "agent/options.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "agent/config_file.h"
#include "base/text.h"

namespace zerotrace::agent {
namespace {

// A year is longer than any sensible --duration or --stats-interval, and far from overflow.
constexpr double kMaxSeconds = 366.0 * 24 * 3600;
constexpr uint32_t kMaxRingbufBytes = 1u << 30;

// Seconds as a plain number in [0, kMaxSeconds]; the message says what is wrong in words
// (CLI11's own range check printed DBL_MAX with 300 digits).
CLI::Validator Seconds() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const char* begin = text.c_str();
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(begin, &end);
        if (end == begin || *end != '\0' || errno == ERANGE || !std::isfinite(v)) {
          return "'" + text + "' is not a number of seconds (e.g. 30 or 0.5)";
        }
        if (v < 0 || v > kMaxSeconds) {
          return "'" + text + "' is out of range: from 0 to 31622400 seconds (a year)";
        }
        return "";
      },
      "SECONDS");
}

CLI::Validator RingbufBytes() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const long page = sysconf(_SC_PAGESIZE);
        char* end = nullptr;
        errno = 0;
        const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
        const bool number = end != text.c_str() && *end == '\0' && errno == 0 &&
                            text.find('-') == std::string::npos;
        if (!number || v < static_cast<unsigned long long>(page) || v > kMaxRingbufBytes ||
            (v & (v - 1)) != 0) {
          return "'" + text + "' must be a power of two from " + std::to_string(page) +
                 " (the page size) to " + std::to_string(kMaxRingbufBytes) + " (1 GiB)";
        }
        return "";
      },
      "BYTES");
}

// Percent-decoding; nullopt for a '%' not followed by two hex digits.
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// A network namespace as an inode number: "4026531840", "net:[4026531840]" (what
// readlink /proc/PID/ns/net shows), or a path to one (/proc/PID/ns/net, /run/netns/NAME).
std::optional<uint64_t> NetnsInode(std::string text) {
  if (text.rfind("net:[", 0) == 0 && text.back() == ']') text = text.substr(5, text.size() - 6);
  if (!text.empty() && text.front() == '/') {
    struct stat st {};
    if (stat(text.c_str(), &st) != 0) return std::nullopt;
    return static_cast<uint64_t>(st.st_ino);
  }
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v == 0 || text.front() == '-') {
    return std::nullopt;
  }
  return v;
}

// --netns: a name `ip netns add` made (/run/netns/NAME) or a path to a namespace file; the
// inode of a network namespace, or an error a user can act on.
StatusOr<uint64_t> NamedNetnsInode(const std::string& text) {
  const std::string path = text.find('/') == std::string::npos ? "/run/netns/" + text : text;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::Error("--netns " + text + ": cannot open " + path + ": " + std::strerror(errno) +
                         " (ip netns list shows the names)");
  }
  struct stat st {};
  const int type = ioctl(fd, NS_GET_NSTYPE);
  const bool ok = fstat(fd, &st) == 0 && type == CLONE_NEWNET;
  close(fd);
  if (!ok) return Status::Error("--netns " + text + ": " + path + " is not a network namespace");
  return static_cast<uint64_t>(st.st_ino);
}

// The raw values of one selector list as given (netns still text, resolved after parsing).
struct SelectorFlags {
  std::vector<std::string> netns;
};

void AddSelectorFlags(CLI::App& app, const char* which, conn::SelectorList* list,
                      std::vector<uint32_t>* pids, SelectorFlags* raw) {
  const std::string w = which;
  const std::string verb = w == "include" ? "trace only" : "do not trace";
  const auto name = [&w](const char* kind) { return "--" + w + "-" + kind; };
  app.add_option(name("exe"), list->exe,
                 verb +
                     " processes whose executable path matches this glob ('*' also matches "
                     "'/'; a pattern without '/' matches the file name)")
      ->delimiter(',')
      ->type_name("GLOB");
  app.add_option(name("comm"), list->comm, verb + " processes of this name (/proc/PID/comm)")
      ->delimiter(',')
      ->type_name("NAME");
  app.add_option(w == "include" ? "--pid," + name("pid") : name("pid"),
                 w == "include" ? *pids : list->pid,
                 verb + " this process id (it must be running; the kernel filters it)")
      ->delimiter(',')
      ->type_name("PID");
  app.add_option(name("port"), list->port,
                 verb + " connections a process serves on this port, or makes to a peer on it")
      ->delimiter(',')
      ->check(CLI::Range(1, 65535))
      ->type_name("PORT");
  app.add_option(name("cgroup"), list->cgroup,
                 verb +
                     " processes in this cgroup v2 path or below it (a container's or a "
                     "systemd unit's: /system.slice/nginx.service)")
      ->delimiter(',')
      ->check(CLI::Validator(
          [](std::string& t) -> std::string {
            return !t.empty() && t.front() == '/' ? "" : "'" + t + "' must start with '/'";
          },
          "PATH"))
      ->type_name("PATH");
  app.add_option(name("netns"), raw->netns,
                 verb +
                     " connections in this network namespace (an inode number, or a path "
                     "such as /run/netns/NAME or /proc/PID/ns/net)")
      ->delimiter(',')
      ->type_name("NETNS");
}

StatusOr<Options> ParseArgs(std::vector<std::string> args, bool* exit_now) {
  *exit_now = false;
  Options o;
  CLI::App app{
      "zerotrace: traces every TCP connection on this node with eBPF, no instrumentation.\n"
      "Run as root."};
  app.set_version_flag("--version", "zerotrace 0.1.0");
  app.add_flag("--dump-events", o.dump_events,
               "print every kernel event readably (time, pid/tid, comm, tuple, role, direction,"
               " stream position, sizes, first bytes; query values and credential headers"
               " redacted)");
  app.add_option("--duration", o.duration_s, "exit cleanly after this many seconds")
      ->check(Seconds());
  app.add_option("--capture-bytes", o.capture_bytes,
                 "payload bytes copied per syscall (default 16384, max 65536)")
      ->check(CLI::Range(0, ZT_MAX_CAPTURE));
  app.add_option("--ringbuf-bytes", o.ringbuf_bytes,
                 "kernel ring buffer size, a power of two (default 8 MiB)")
      ->check(RingbufBytes());
  app.add_option("--stats-interval", o.stats_interval_s,
                 "seconds between self-metric summary lines on stderr (0: off)")
      ->check(Seconds());
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
  app.add_flag("!--no-socket-tracepoints", o.sock_hooks,
               "take receives and sends at every read/write syscall's exit, as on kernels "
               "before 6.3, instead of the socket layer's tracepoints (dearer: every file read "
               "and write of the node then runs a program; for comparisons)");
  app.add_flag("!--no-head-caps", o.head_caps,
               "copy HTTP/1 response bodies whole: by default, once a connection's response "
               "heads have shown a steady size, the kernel copies only that much of each "
               "syscall that carries its responses (a client's receives, a server's sends) and "
               "the bodies past it are skipped by length (for comparisons)");
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
  app.add_option("--netns", o.netns,
                 "trace only processes in this network namespace: a name (as `ip netns add` "
                 "makes them, under /run/netns) or a path (/proc/PID/ns/net); filtered in the "
                 "kernel, so two agents with different --netns split one machine (default: "
                 "every namespace)")
      ->type_name("NAME|PATH");
  app.add_flag("--propagate-context", o.propagate_context,
               "continue traces across nodes: insert a W3C traceparent into HTTP/1 requests "
               "that leave for another host from a thread serving one request (changes the "
               "bytes on the wire; see docs/CONTEXT_PROPAGATION.md)");
  SelectorFlags include_raw, exclude_raw;
  AddSelectorFlags(app, "include", &o.selectors.include, &o.pids, &include_raw);
  AddSelectorFlags(app, "exclude", &o.selectors.exclude, nullptr, &exclude_raw);
  app.set_config("--config", "",
                 "read settings from this YAML file: each flag's name without '--' is a key "
                 "(include:/exclude: hold the selectors, env: OTEL_* variables); flags win "
                 "over the file, the file over the environment")
      ->type_name("PATH")
      ->check(CLI::ExistingFile);
  auto yaml = std::make_shared<YamlConfig>(&app);
  app.config_formatter(yaml);
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_flag("--print-config", o.print_config,
               "print the effective configuration as YAML (secrets redacted) and exit");
  app.add_flag("--top", o.top,
               "show a live view of request rate, error % and p50/p95/p99 per service and per "
               "edge instead of printing spans (also: zerotrace top); on a terminal q quits and "
               "s changes the sort, on a pipe one plain-text frame per interval");
  app.add_option("--top-interval", o.top_interval_s, "seconds between top frames (default 2)")
      ->check(Seconds());
  app.add_option("--metrics-cardinality-limit", o.metrics_cardinality_limit,
                 "attribute sets per metric (default 2000); past it a service's further sets "
                 "fold into one series with otel.metric.overflow=true")
      ->check(CLI::Range(1, 1000000));
  try {
    std::reverse(args.begin(), args.end());
    args.pop_back();  // the program name
    app.parse(args);
  } catch (const CLI::Success& e) {
    app.exit(e);
    *exit_now = true;
    return o;
  } catch (const CLI::ParseError& e) {
    return Status::Error(e.what() + std::string("; see --help"));
  }
  if (o.top && o.console) {
    return Status::Error("--top and --console both write to stdout; give one of them");
  }
  if (o.top && o.top_interval_s < 0.1) {
    return Status::Error("--top-interval: at least 0.1 seconds");
  }
  if (app.get_option("--otlp-endpoint")->count() > 0 && Trim(o.otlp_endpoint).empty()) {
    return Status::Error(
        "--otlp-endpoint: empty; give a collector URL (e.g. http://localhost:4318), or leave "
        "the flag out");
  }
  for (const uint32_t pid : o.pids) {
    // Signal 0 only checks: ESRCH means no such process (EPERM: it exists, not ours).
    if (pid == 0 || pid > INT32_MAX || (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) {
      return Status::Error("--pid " + std::to_string(pid) + ": no such process");
    }
  }
  for (const std::string& rules : name_maps) {
    if (Status s = o.service_name_map.Add(rules); !s.ok()) return s;
  }
  o.service_name_rules = name_maps;
  for (auto [raw, list, which] : {std::tuple{&include_raw, &o.selectors.include, "include"},
                                  std::tuple{&exclude_raw, &o.selectors.exclude, "exclude"}}) {
    for (const std::string& text : raw->netns) {
      const auto inode = NetnsInode(text);
      if (!inode) {
        return Status::Error(std::string("--") + which + "-netns " + text +
                             ": not a network namespace (an inode number, net:[N], or a path "
                             "such as /run/netns/NAME)");
      }
      list->netns.push_back(*inode);
    }
  }
  o.selectors.include.pid = o.pids;
  if (!o.netns.empty()) {  // empty (as --print-config shows no --netns): every namespace
    auto inode = NamedNetnsInode(o.netns);
    if (!inode.ok()) return inode.status();
    o.netns_inode = inode.value();
  }
  if (app.get_config_ptr()->count() > 0) {
    o.config_path = app.get_config_ptr()->as<std::string>();
    o.file_env = yaml->env();
  }
  return o;
}

}  // namespace

StatusOr<Options> ParseOptions(int argc, char** argv, bool* exit_now) {
  std::vector<std::string> args(argv, argv + argc);
  // The file alone first, so that its errors name it (and are not mistaken for a flag's).
  for (size_t i = 1; i < args.size(); i++) {
    std::string path;
    if (args[i] == "--config" && i + 1 < args.size()) path = args[i + 1];
    if (args[i].rfind("--config=", 0) == 0) path = args[i].substr(9);
    if (path.empty()) continue;
    bool ignored = false;
    auto alone = ParseArgs({args[0], "--config", path}, &ignored);
    if (!alone.ok()) {
      std::string m = alone.status().message();
      const std::string tail = "; see --help";
      if (m.size() > tail.size() && m.compare(m.size() - tail.size(), tail.size(), tail) == 0) {
        m.resize(m.size() - tail.size());
      }
      // Keys as the file spells them: --include-port is include.port, --capture-bytes
      // capture-bytes.
      for (const char* which : {"include", "exclude"}) {
        const std::string flag = std::string("--") + which + "-";
        for (size_t at; (at = m.find(flag)) != std::string::npos;) {
          m.replace(at, flag.size(), std::string(which) + ".");
        }
      }
      if (m.rfind("--", 0) == 0) m.erase(0, 2);
      for (size_t at; (at = m.find(" --")) != std::string::npos;) m.erase(at + 1, 2);
      return Status::Error(path + ": " + m);
    }
  }
  return ParseArgs(std::move(args), exit_now);
}

StatusOr<std::vector<std::pair<std::string, std::string>>> ParseResourceAttributes(
    std::string_view env) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int entry = 1; !env.empty(); entry++) {
    const size_t comma = env.find(',');
    const std::string_view item = Trim(env.substr(0, comma));
    env = comma == std::string_view::npos ? std::string_view() : env.substr(comma + 1);
    if (item.empty()) continue;  // "a=1," and "a=1,,b=2": nothing there to be wrong
    const std::string where = "entry " + std::to_string(entry);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) return Status::Error(where + " is not key=value");
    const auto key = PercentDecode(Trim(item.substr(0, eq)));
    const auto value = PercentDecode(Trim(item.substr(eq + 1)));
    if (!key || !value) {
      return Status::Error(where + " has a '%' not followed by two hex digits");
    }
    if (key->empty()) return Status::Error(where + " has an empty key");
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

OtelEnv ReadOtelEnv(const exporter::GetEnvFn& getenv) {
  OtelEnv env;
  const auto get = [&getenv](const char* name) -> std::string_view {
    const char* v = getenv(name);
    return v == nullptr ? std::string_view() : Trim(v);
  };
  // Boolean per the specification: only "true" (any case) is true; other values warn.
  const std::string disabled = Lower(get("OTEL_SDK_DISABLED"));
  env.sdk_disabled = disabled == "true";
  if (!disabled.empty() && disabled != "true" && disabled != "false") {
    env.warnings.push_back("OTEL_SDK_DISABLED='" + std::string(get("OTEL_SDK_DISABLED")) +
                           "' is neither true nor false; taken as false");
  }

  std::string_view list = get("OTEL_TRACES_EXPORTER");
  bool none = false, other = false;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string name = Lower(Trim(list.substr(0, comma)));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (name.empty()) continue;
    if (name == "otlp") {
      env.otlp = true;
    } else if (name == "console") {
      env.console = true;
    } else if (name == "none") {
      none = true;
    } else {
      other = true;
      env.warnings.push_back("OTEL_TRACES_EXPORTER: '" + name +
                             "' is not an exporter zerotrace has (otlp, console, none); ignored");
    }
  }
  env.traces_exporter_set = none || env.otlp || env.console;
  if (none && (env.otlp || env.console)) {
    env.warnings.push_back(
        "OTEL_TRACES_EXPORTER names none together with other exporters; none wins");
  }
  if (none) env.otlp = env.console = false;
  if (other && !env.traces_exporter_set) {
    env.warnings.push_back(
        "OTEL_TRACES_EXPORTER names nothing zerotrace has: using the default "
        "(OTLP when an endpoint is set, else the console)");
  }

  if (env.sdk_disabled) {
    env.warnings.push_back(
        "OTEL_SDK_DISABLED=true: the OTEL_* variables turn no span exporter on; spans are made "
        "and counted, and only --jsonl, --console, --otlp-endpoint or --otlp-protocol export "
        "them");
  } else if (env.traces_exporter_set && !env.otlp &&
             (!get("OTEL_EXPORTER_OTLP_ENDPOINT").empty() ||
              !get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").empty())) {
    env.warnings.push_back(
        "an OTLP endpoint variable is set but OTEL_TRACES_EXPORTER does not name otlp: no OTLP "
        "export");
  }

  if (const std::string_view attrs = get("OTEL_RESOURCE_ATTRIBUTES"); !attrs.empty()) {
    auto parsed = ParseResourceAttributes(attrs);
    if (parsed.ok()) {
      env.resource_attributes = std::move(parsed.value());
    } else {
      env.warnings.push_back("OTEL_RESOURCE_ATTRIBUTES: " + parsed.status().message() +
                             "; the whole variable is ignored");
    }
  }
  return env;
}

ExporterChoice ChooseExporters(const Options& options, const OtelEnv& env) {
  ExporterChoice c;
  using Selection = exporter::OtlpEnvSelection;
  if (env.sdk_disabled) {
    c.otlp = Selection::kOff;
    c.console = options.console;
    c.console_if_alone = false;
  } else if (env.traces_exporter_set) {
    c.otlp = env.otlp ? Selection::kOn : Selection::kOff;
    c.console = options.console || env.console;
    c.console_if_alone = false;
  } else {
    c.otlp = Selection::kIfEndpointSet;
    c.console = options.console;
    c.console_if_alone = true;
  }
  return c;
}

}  // namespace zerotrace::agent
