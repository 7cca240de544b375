// Reads the agent's OTLP/JSON lines file into flat spans, and checks spans against expectations.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zerotrace::e2e {

// OTLP SpanKind values.
inline constexpr int kServer = 2;
inline constexpr int kClient = 3;
// OTLP status codes.
inline constexpr int kStatusUnset = 0;
inline constexpr int kStatusError = 2;

// One span with its resource's identity, attributes keyed by name (values are OTLP AnyValue).
struct Span {
  int64_t pid = -1;
  std::string service_name;
  std::string trace_id, span_id, parent_span_id, name;
  int kind = 0;
  uint64_t start_ns = 0, end_ns = 0;
  int status_code = kStatusUnset;
  std::map<std::string, nlohmann::json, std::less<>> attributes;
  std::map<std::string, nlohmann::json, std::less<>> resource;  // its resource's attributes

  bool Has(std::string_view key) const { return attributes.find(key) != attributes.end(); }
  // The attribute as a string (stringValue) or integer (intValue, a string or a number in
  // OTLP/JSON); nullopt when absent or of another type.
  std::optional<std::string> Str(std::string_view key) const;
  std::optional<int64_t> Int(std::string_view key) const;
  // One line for failure messages: kind, name, pid, status and every attribute.
  std::string Describe() const;
};

// The spans appended to a JSON lines file, read incrementally (complete lines only).
class SpanLog {
 public:
  explicit SpanLog(std::string path) : path_(std::move(path)) {}

  // Reads what was appended since the last call. Returns an error message for a line that is
  // not an OTLP/JSON ExportTraceServiceRequest; nullopt when all is well.
  std::optional<std::string> Poll();
  const std::vector<Span>& spans() const { return spans_; }
  // Spans whose resource has this process.pid, ordered by (start, end).
  std::vector<Span> ForPid(int64_t pid) const;
  size_t CountForPid(int64_t pid) const;
  size_t lines() const { return lines_; }

 private:
  std::string path_;
  uint64_t offset_ = 0;
  size_t lines_ = 0;
  std::vector<Span> spans_;
};

// What an HTTP span must look like. Built from a request target; the rest defaults to the
// common case (HTTP/1.1 on 127.0.0.1, no request body, no error beyond what the status implies).
struct WantSpan {
  WantSpan(int kind, std::string method, std::string_view target, int status);

  int kind;
  std::string method;
  std::string path;
  std::string query;  // the redacted url.query ("a=REDACTED"); empty: url.query absent
  std::string name;   // "{METHOD} {route}", numeric segments templated to {id}
  int status;         // http.response.status_code; 0: the attribute is absent (no response)
  std::optional<int64_t> resp_body;  // http.response.body.size, checked when set
  int64_t req_body = 0;              // http.request.body.size (absent counts as 0)
  int server_port = 0;               // server.port; for CLIENT spans also network.peer.port
  int peer_port = 0;                 // SERVER spans: network.peer.port; 0: not checked
  std::string user_agent;            // user_agent.original; empty: not checked
  std::string version = "1.1";       // network.protocol.version
  std::string scheme = "http";       // url.scheme (and url.full's scheme): https inside TLS
  // Transport-level failure (reset, missing, truncated...): error.type present, any text.
  bool transport_error = false;
  std::string error_type;                  // with transport_error: the exact error.type; empty: any
  std::vector<std::string> service_names;  // resource service.name, any of; empty: not checked
};

// The differences between `span` and `want`, one message each (empty when it matches).
std::vector<std::string> CheckSpan(const Span& span, const WantSpan& want);
// Checks that `spans` (in order) are exactly `wants` (in order): same count, each matching.
std::vector<std::string> CheckSpans(const std::vector<Span>& spans,
                                    const std::vector<WantSpan>& wants);

// "GET /items/42" → "GET /items/{id}": the route template the agent is expected to infer.
std::string ExpectedSpanName(std::string_view method, std::string_view path);
// "a=1&b=2" → "a=REDACTED&b=REDACTED".
std::string RedactedQuery(std::string_view query);

}  // namespace zerotrace::e2e
