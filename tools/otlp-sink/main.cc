// otlp-sink: an OTLP receiver (gRPC + HTTP, protobuf + JSON) that prints or records spans.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "http_server.h"
#include "metrics_receiver.h"
#include "otlp_grpc.h"
#include "otlp_http.h"
#include "sink.h"
#include "tls.h"

namespace zerotrace::otlp_sink {
namespace {

constexpr int kMaxGrpcMessageBytes = 64 * 1024 * 1024;
constexpr auto kShutdownGrace = std::chrono::seconds(2);

constexpr const char* kFooter = R"(Output (stdout, each line flushed):
  otlp-sink: grpc listening on HOST:PORT     once per listener at start (the real port);
  otlp-sink: http listening on HOST:PORT     with --tls-cert followed by (TLS) or (mTLS)
  <service.name> <KIND> "<name>" status=<UNSET|OK|ERROR> trace=<hex> span=<hex>
    parent=<hex|-> duration=<ms>ms [key=value]...   one line per accepted span, unless
                                               --jsonl or --quiet (string values JSON-quoted)
  otlp-sink: stopped requests=R accepted=A failed=F invalid=I cancelled=C spans=S
                                               at exit (SIGTERM/SIGINT), exit status 0
--jsonl PATH: one OTLP/JSON ExportTraceServiceRequest per accepted request and line (hex ids,
  integer enums, lowerCamelCase, 64-bit integers as strings), flushed before the answer.
--requests-log PATH: one JSON object per request, flushed before the answer:
  {"transport":"grpc|http","encoding":"protobuf|json","gzip":bool,"headers":{"x-...":"..."},
   "spans":N,"seq":N,"result":"ok|partial|failed|cancelled|invalid","status":S}
  status: the gRPC code (grpc) or HTTP status (http) answered; "rejected":N with partial;
  "error":"..." with invalid. Failed and cancelled requests' spans are not written.)";

struct HostPort {
  std::string host, port;
};

// "127.0.0.1:4317", "localhost:0", "[::1]:4318" -> host (without brackets) and port.
std::optional<HostPort> SplitHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) return std::nullopt;
  HostPort hp{address.substr(0, colon), address.substr(colon + 1)};
  if (hp.port.find_first_not_of("0123456789") != std::string::npos || hp.port.size() > 5 ||
      std::stoi(hp.port) > 65535) {
    return std::nullopt;
  }
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  return hp;
}

// The address as printed: the host as given, the port as bound.
std::string Printable(const std::string& address, int port) {
  return address.substr(0, address.rfind(':') + 1) + std::to_string(port);
}

void Announce(const char* transport, const std::string& address, int port,
              const TlsServerContext* tls) {
  const char* mode = tls == nullptr ? "" : tls->requires_client_cert() ? " (mTLS)" : " (TLS)";
  std::printf("otlp-sink: %s listening on %s%s\n", transport, Printable(address, port).c_str(),
              mode);
  std::fflush(stdout);
}

int Run(int argc, char** argv) {
  CLI::App app{
      "otlp-sink: receives OpenTelemetry traces over OTLP/gRPC and OTLP/HTTP (protobuf or JSON, "
      "gzip or not) and prints them, or records them as OTLP/JSON lines. Fault modes make it "
      "answer like a failing or slow collector. --tls-cert serves both listeners over TLS."};
  app.footer(kFooter);
  // A flag given again overrides the earlier value, so wrappers can append to a base command.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string grpc_address = "127.0.0.1:4317", http_address = "127.0.0.1:4318";
  std::string fail_status = "UNAVAILABLE";
  std::optional<int> fail_http_status;
  std::optional<int> retry_after_ms;
  int delay_ms = 0;
  SinkOptions options;
  TlsFiles tls_files;
  app.add_option("--grpc", grpc_address,
                 "OTLP/gRPC listen address HOST:PORT; port 0 picks a free port (printed); "
                 "\"off\" disables the listener")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  app.add_option("--http", http_address,
                 "OTLP/HTTP listen address HOST:PORT for POST /v1/traces; port 0 picks a free "
                 "port (printed); \"off\" disables the listener")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  app.add_option("--jsonl", options.jsonl_path,
                 "Write each accepted request as one OTLP/JSON line to PATH (truncated at start) "
                 "instead of readable lines on stdout")
      ->type_name("PATH");
  std::string metrics_jsonl;
  app.add_option("--metrics-jsonl", metrics_jsonl,
                 "Also receive OTLP metrics (MetricsService/Export, POST /v1/metrics) and write "
                 "each request as one OTLP/JSON ExportMetricsServiceRequest line to PATH "
                 "(truncated at start); metrics requests are always accepted")
      ->type_name("PATH");
  app.add_option("--requests-log", options.requests_log_path,
                 "Write one JSON object per request (transport, encoding, gzip, x-* headers, "
                 "spans, result, status) to PATH")
      ->type_name("PATH");
  app.add_flag("--quiet", options.quiet, "Write no spans (count only; for benchmarks)");
  app.add_flag("--count-only", options.count_only,
               "Implies --quiet; protobuf requests are not parsed: their spans are counted from "
               "the bytes, checking only their framing (for benchmarks, where the collector's "
               "CPU should not weigh on the measured processes)");
  app.add_option("--fail", options.fail_count,
                 "Answer the first N requests with a failure (--fail-status), then accept")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--fail-status", fail_status,
                 "gRPC status of failures, by name (UNAVAILABLE, INVALID_ARGUMENT, "
                 "RESOURCE_EXHAUSTED, ...) or number")
      ->type_name("CODE")
      ->capture_default_str();
  app.add_option("--fail-http-status", fail_http_status,
                 "HTTP status of failures; default: the HTTP equivalent of --fail-status "
                 "(UNAVAILABLE 503, INVALID_ARGUMENT 400, RESOURCE_EXHAUSTED 429, "
                 "DEADLINE_EXCEEDED 504, ...)")
      ->type_name("STATUS")
      ->check(CLI::Range(100, 599));
  app.add_option("--retry-after-ms", retry_after_ms,
                 "Retry hint on failures: a google.rpc.RetryInfo detail (gRPC) and Retry-After "
                 "in seconds, rounded up (HTTP)")
      ->type_name("MS")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--delay-ms", delay_ms, "Wait MS before answering each request (slow collector)")
      ->type_name("MS")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--partial-reject", options.partial_reject,
                 "Accept requests but answer partial_success with rejected_spans=N and an "
                 "error_message")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--tls-cert", tls_files.cert,
                 "Serve both listeners over TLS with this PEM certificate (chain); needs --tls-key")
      ->type_name("FILE");
  app.add_option("--tls-key", tls_files.key, "The PEM private key of --tls-cert")
      ->type_name("FILE");
  app.add_option("--tls-client-ca", tls_files.client_ca,
                 "Require client certificates issued by a CA in this PEM file (mTLS); needs "
                 "--tls-cert")
      ->type_name("FILE");
  CLI11_PARSE(app, argc, argv);

  const std::optional<int> grpc_code = ParseGrpcCode(fail_status);
  if (!grpc_code || *grpc_code == 0) {
    std::fprintf(stderr, "otlp-sink: --fail-status %s is not a gRPC error code name or number\n",
                 fail_status.c_str());
    return 2;
  }
  options.fail_grpc_code = *grpc_code;
  options.fail_http_status = fail_http_status.value_or(HttpStatusForGrpcCode(*grpc_code));
  if (retry_after_ms) options.retry_after = std::chrono::milliseconds(*retry_after_ms);
  options.delay = std::chrono::milliseconds(delay_ms);
  if (options.count_only) {
    if (!options.jsonl_path.empty()) {
      std::fprintf(stderr, "otlp-sink: --count-only writes no spans: drop --jsonl\n");
      return 2;
    }
    options.quiet = true;
  }
  const bool grpc_on = grpc_address != "off", http_on = http_address != "off";
  std::optional<HostPort> http_hp;
  if (grpc_on && !SplitHostPort(grpc_address)) {
    std::fprintf(stderr, "otlp-sink: --grpc %s is not HOST:PORT\n", grpc_address.c_str());
    return 2;
  }
  if (http_on && !(http_hp = SplitHostPort(http_address))) {
    std::fprintf(stderr, "otlp-sink: --http %s is not HOST:PORT\n", http_address.c_str());
    return 2;
  }

  if (tls_files.cert.empty() != tls_files.key.empty()) {
    std::fprintf(stderr, "otlp-sink: --tls-cert and --tls-key go together\n");
    return 2;
  }
  if (!tls_files.client_ca.empty() && tls_files.cert.empty()) {
    std::fprintf(stderr, "otlp-sink: --tls-client-ca needs --tls-cert and --tls-key\n");
    return 2;
  }
  std::unique_ptr<TlsServerContext> tls;
  if (!tls_files.cert.empty()) {
    auto loaded = TlsServerContext::Load(tls_files);
    if (auto* error = std::get_if<std::string>(&loaded)) {
      std::fprintf(stderr, "otlp-sink: %s\n", error->c_str());
      return 1;
    }
    tls = std::move(std::get<std::unique_ptr<TlsServerContext>>(loaded));
  }

  // Every thread started from here on inherits the mask; only sigwait below takes the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto opened = Sink::Open(std::move(options));
  if (auto* error = std::get_if<std::string>(&opened)) {
    std::fprintf(stderr, "otlp-sink: %s\n", error->c_str());
    return 1;
  }
  Sink& sink = *std::get<std::unique_ptr<Sink>>(opened);

  MetricsLog metrics_log(metrics_jsonl);
  if (!metrics_log.ok()) {
    std::fprintf(stderr, "otlp-sink: cannot write %s\n", metrics_jsonl.c_str());
    return 1;
  }
  MetricsGrpcService metrics_service(&metrics_log);
  OtlpGrpcService grpc_service(&sink);
  CountingGrpcService counting_service(&sink);
  std::unique_ptr<grpc::Server> grpc_server;
  if (grpc_on) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(
        grpc_address, tls ? tls->GrpcCredentials() : grpc::InsecureServerCredentials(), &port);
    if (sink.count_only()) {
      builder.RegisterService(&counting_service);
    } else {
      builder.RegisterService(&grpc_service);
    }
    builder.RegisterService(&metrics_service);
    builder.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
    // Without this a second sink could bind the same port and steal half the connections.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    grpc_server = builder.BuildAndStart();
    if (grpc_server == nullptr || port == 0) {
      std::fprintf(stderr, "otlp-sink: cannot listen for gRPC on %s\n", grpc_address.c_str());
      return 1;
    }
    Announce("grpc", grpc_address, port, tls.get());
  }
  std::unique_ptr<HttpServer> http_server;
  if (http_on) {
    auto listening = HttpServer::Listen(
        http_hp->host, http_hp->port,
        [&sink, &metrics_log](const HttpRequest& request,
                              const std::function<bool()>& client_gone) {
          if (request.target.substr(0, request.target.find('?')) == "/v1/metrics") {
            return HandleOtlpHttpMetrics(metrics_log, request);
          }
          return HandleOtlpHttp(sink, request, client_gone);
        },
        HttpServer::Limits(), tls.get());
    if (auto* error = std::get_if<std::string>(&listening)) {
      std::fprintf(stderr, "otlp-sink: %s\n", error->c_str());
      if (grpc_server) grpc_server->Shutdown();
      return 1;
    }
    http_server = std::move(std::get<std::unique_ptr<HttpServer>>(listening));
    http_server->Start();
    Announce("http", http_address, http_server->port(), tls.get());
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);

  sink.Stop();  // delayed requests answer now
  if (grpc_server) grpc_server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
  if (http_server) http_server->Stop();
  const SinkTotals t = sink.totals();
  std::printf(
      "otlp-sink: stopped requests=%llu accepted=%llu failed=%llu invalid=%llu cancelled=%llu "
      "spans=%llu\n",
      static_cast<unsigned long long>(t.requests), static_cast<unsigned long long>(t.accepted),
      static_cast<unsigned long long>(t.failed), static_cast<unsigned long long>(t.invalid),
      static_cast<unsigned long long>(t.cancelled), static_cast<unsigned long long>(t.spans));
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace zerotrace::otlp_sink

int main(int argc, char** argv) { return zerotrace::otlp_sink::Run(argc, argv); }
