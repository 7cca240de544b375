// OTLP exporter configuration from the standard OTEL_EXPORTER_OTLP_* variables and the flags.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace zerotrace::exporter {

struct OtlpConfig {
  enum class Protocol { kGrpc, kHttpProtobuf, kHttpJson };

  // kHttp*: the full URL requests are POSTed to (".../v1/traces").
  // kGrpc: an http:// or https:// URL, or a gRPC target "host:port" (TLS unless `insecure`).
  std::string endpoint;
  Protocol protocol = Protocol::kHttpProtobuf;
  // Sent with every request (gRPC metadata keys lowercased, as gRPC requires).
  std::vector<std::pair<std::string, std::string>> headers;
  bool gzip = false;
  std::chrono::milliseconds timeout{10000};  // per export request
  std::string certificate;                   // PEM file of CAs to trust; empty: system roots
  std::string client_key;                    // PEM files for mTLS; both or neither
  std::string client_certificate;
  // True when the connection is plaintext: an http:// endpoint, or a scheme-less gRPC target
  // with OTEL_EXPORTER_OTLP_INSECURE=true.
  bool insecure = false;
};

const char* ProtocolName(OtlpConfig::Protocol protocol);  // "grpc", "http/protobuf", "http/json"

// Reads an environment variable; nullptr when unset. Injected so tests need no real environment.
using GetEnvFn = std::function<const char*(const char*)>;

// Whether the environment may turn OTLP export on; OTEL_TRACES_EXPORTER and OTEL_SDK_DISABLED
// decide (agent::ChooseExporters). The flags always can.
enum class OtlpEnvSelection {
  kIfEndpointSet,  // the default: OTLP when an OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set
  kOn,             // OTLP, at the specification's default endpoint when none is set
  kOff,            // only the flags turn OTLP on; the other variables still configure it
};

// The OTLP exporter configuration per the OpenTelemetry specification ("OTLP Exporter
// Configuration"), or nullopt when no endpoint is set anywhere (then there is no OTLP export).
// - Every OTEL_EXPORTER_OTLP_X has a signal-specific OTEL_EXPORTER_OTLP_TRACES_X that wins over
//   it. An empty variable counts as unset.
// - Endpoint: for HTTP, OTEL_EXPORTER_OTLP_ENDPOINT is a base URL that gets "v1/traces"
//   appended to its path; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is (an empty path
//   becomes "/"). For gRPC both are used as given; http:// means plaintext, https:// TLS, and a
//   scheme-less "host:port" is TLS unless OTEL_EXPORTER_OTLP_(TRACES_)INSECURE is "true".
// - flag_endpoint (--otlp-endpoint), when non-empty, wins over both variables and is a base URL
//   like OTEL_EXPORTER_OTLP_ENDPOINT, except that a path already ending in "/v1/traces" is kept.
// - `selection` says whether the endpoint variables count (kOff: they do not), and whether OTLP
//   is wanted without any endpoint (kOn, as --otlp-protocol alone): then the specification's
//   default, http://localhost:4318 (4317 for gRPC).
// - Protocol: flag_protocol, else _PROTOCOL, else "http/protobuf" (the specification's default):
//   "grpc", "http/protobuf" or "http/json".
// - _HEADERS: "k1=v1,k2=v2", values percent-decoded, whitespace around keys and values trimmed.
// - _COMPRESSION: "gzip" or "none" (default). _TIMEOUT: milliseconds, default 10000.
// - _CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE: PEM files, for TLS endpoints only: checked
//   to be readable, to hold certificates, and the client key to be the client certificate's.
// Errors name the variable or flag and the bad value, for a start-up error and a non-zero exit.
// - signal kMetrics reads OTEL_EXPORTER_OTLP_METRICS_* instead of _TRACES_*, and the HTTP path
//   is "v1/metrics" (a --otlp-endpoint ending in "/v1/traces" has that part replaced).
enum class OtlpSignal { kTraces, kMetrics };
StatusOr<std::optional<OtlpConfig>> OtlpConfigFrom(
    const GetEnvFn& getenv, const std::string& flag_endpoint, const std::string& flag_protocol,
    OtlpEnvSelection selection = OtlpEnvSelection::kIfEndpointSet,
    OtlpSignal signal = OtlpSignal::kTraces);

// An endpoint URL split into its parts (scheme lowercased; IPv6 hosts keep their brackets).
struct EndpointUrl {
  std::string scheme;  // "http" or "https"; empty for a scheme-less gRPC target
  std::string host;
  uint16_t port = 0;  // 0: not given
  std::string path;   // from the first '/', including query; may be empty
};
// Accepts "http[s]://host[:port][/path]" and, when allow_no_scheme, "host:port".
StatusOr<EndpointUrl> ParseEndpointUrl(std::string_view url, bool allow_no_scheme);

// The endpoint as logs and error messages show it: credentials ("user:password@") and the
// query (tokens are often passed there) replaced by REDACTED, e.g.
// "https://REDACTED@collector:4318/v1/traces?REDACTED". Works on URLs that do not parse, too.
std::string EndpointForLogs(std::string_view url);

// The gRPC target for an endpoint: "host:port", the port defaulting to 443 (https or no
// scheme) or 80 (http).
std::string GrpcTarget(const EndpointUrl& url);

}  // namespace zerotrace::exporter
