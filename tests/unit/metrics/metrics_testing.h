// Spans as the HTTP protocol makes them, for the metrics tests.
#pragma once

#include <cstring>
#include <memory>
#include <string>

#include "trace/span.h"

namespace zerotrace::metrics::testing {

inline std::shared_ptr<const trace::Resource> ResourceFor(const std::string& service) {
  auto r = std::make_shared<trace::Resource>();
  r->service_name = service;
  return r;
}

inline trace::SpanId IdFrom(uint64_t v) {
  trace::SpanId id;
  std::memcpy(id.bytes.data(), &v, sizeof(v));
  return id;
}

// An HTTP span of `service`: "GET /users/{id}", status `status`, lasting `ms`.
inline trace::Span HttpSpan(const std::string& service, trace::SpanKind kind, int64_t status,
                            double ms, uint64_t id, uint64_t parent = 0,
                            const std::string& route = "/users/{id}",
                            const std::string& host = "127.0.0.1", int64_t port = 8080) {
  trace::Span s;
  s.kind = kind;
  s.name = "GET " + route;
  s.span_id = IdFrom(id);
  s.parent_span_id = IdFrom(parent);
  s.start_unix_ns = 1'000'000'000'000;
  s.end_unix_ns = s.start_unix_ns + static_cast<uint64_t>(ms * 1e6);
  const bool error = status >= 500 || (kind == trace::SpanKind::kClient && status >= 400);
  s.attributes = {{"http.request.method", std::string("GET")},
                  {"url.path", std::string("/users/12345")},
                  {"url.scheme", std::string("http")},
                  {"server.address", host},
                  {"server.port", port},
                  {"http.response.status_code", status},
                  {"error.type", std::to_string(status)}};
  if (error) {
    s.status = trace::StatusCode::kError;
  } else {
    s.attributes.pop_back();
  }
  s.resource = ResourceFor(service);
  return s;
}

}  // namespace zerotrace::metrics::testing
