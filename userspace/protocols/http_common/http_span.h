// The HTTP half of a span (OpenTelemetry HTTP conventions), whatever the HTTP version: what
// HTTP/1.x and HTTP/2 both report, built from the fields each parses. Redaction is applied here.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "protocols/protocol.h"
#include "trace/span.h"

namespace zerotrace::protocols::http_common {

// One exchange's HTTP fields, as views into the protocol's own storage.
struct HttpSpanFields {
  std::string_view method;
  std::string_view target;  // request-target (HTTP/1.x) or :path (HTTP/2)
  // Host (HTTP/1.x) or :authority (HTTP/2); nullopt when absent. An absolute-form target's
  // authority wins over it.
  std::optional<std::string_view> host;
  std::string_view scheme;                     // url.scheme: "http" or "https"
  std::string_view version;                    // network.protocol.version: "1.1", "2"
  std::optional<std::string_view> user_agent;  // nullopt when absent
  // http.request.body.size; nullopt: unknown (not reported)
  std::optional<uint64_t> request_body_size;
  uint16_t status = 0;  // final response status; 0: no response
  std::optional<uint64_t> response_body_size;
  // Set: the request itself was faulty (HTTP/1 framing conflict), answered or not: an error
  // with this error.type (unless the status set one) and this message.
  std::string_view request_error_type;
  std::string_view request_error_message;
  // Set: the exchange failed (a transport error, a reset): the span is an error with this
  // error.type (unless the status or the request already set one) and this message.
  std::string_view error_type;
  std::string_view error_message;  // empty: the error type
};

struct HttpSpanOptions {
  bool infer_routes = true;  // name "GET /users/{id}" instead of "GET"
};

// Writes the span's name ("GET /users/{id}"; "HTTP /users/{id}" for a method the conventions
// do not name, reported as "_OTHER" with http.request.method_original), its HTTP attributes
// (path and query redacted, user info never kept; server.address and server.port from what
// the client asked for, when it said; url.full on the client side, client.address on the
// server side) and its status: 5xx is an error, and 4xx too on the client side. Overwrites
// every attribute already in span->attributes, reusing their storage.
void WriteHttpSpan(const HttpSpanFields& f, const SessionContext& ctx,
                   const HttpSpanOptions& options, trace::Span* span);

// "example.com:8080" -> {"example.com", 8080}; "[::1]:80" -> {"::1", 80}; no port -> 0.
std::pair<std::string_view, int64_t> SplitHostPort(std::string_view authority);

}  // namespace zerotrace::protocols::http_common
