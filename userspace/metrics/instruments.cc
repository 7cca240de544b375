// The instrument table: HTTP now; RPC (gRPC) and database client spans are measured as soon as
// their protocols make spans with rpc.system or db.system.name.
#include "metrics/instruments.h"

namespace zerotrace::metrics {
namespace {

bool Has(const trace::Span& span, std::string_view key) {
  for (const trace::Attribute& a : span.attributes) {
    if (SameKey(a.key, key)) return true;
  }
  return false;
}

bool HttpServer(const trace::Span& s) {
  return s.kind == trace::SpanKind::kServer && Has(s, "http.request.method");
}
bool HttpClient(const trace::Span& s) {
  return s.kind == trace::SpanKind::kClient && Has(s, "http.request.method");
}
bool RpcServer(const trace::Span& s) {
  return s.kind == trace::SpanKind::kServer && Has(s, "rpc.system");
}
bool RpcClient(const trace::Span& s) {
  return s.kind == trace::SpanKind::kClient && Has(s, "rpc.system");
}
bool DbClient(const trace::Span& s) {
  return s.kind == trace::SpanKind::kClient && (Has(s, "db.system.name") || Has(s, "db.system"));
}

// RPC and database rows come first: a gRPC span also carries HTTP/2 attributes.
const InstrumentSpec kInstruments[] = {
    {"rpc.server.call.duration",
     "Duration of inbound remote procedure calls.",
     kDurationBounds,
     false,
     RpcServer,
     {"rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code", "error.type"}},
    {"rpc.client.call.duration",
     "Duration of outbound remote procedure calls.",
     kDurationBounds,
     true,
     RpcClient,
     {"rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code", "server.address",
      "server.port", "error.type"}},
    {"db.client.operation.duration",
     "Duration of database client operations.",
     kDbDurationBounds,
     true,
     DbClient,
     {"db.system.name", "db.namespace", "db.operation.name", "db.collection.name",
      "db.response.status_code", "server.address", "server.port", "error.type"}},
    {"http.server.request.duration",
     "Duration of HTTP server requests.",
     kDurationBounds,
     false,
     HttpServer,
     {"http.request.method", kRouteKey, "http.response.status_code", "url.scheme", "error.type"}},
    {"http.client.request.duration",
     "Duration of HTTP client requests.",
     kDurationBounds,
     true,
     HttpClient,
     {"http.request.method", "server.address", "server.port", "http.response.status_code",
      "url.scheme", "error.type"}},
};
static_assert(std::size(kInstruments) <= kMaxInstruments);

}  // namespace

std::span<const InstrumentSpec> Instruments() { return kInstruments; }

int InstrumentOf(const trace::Span& span) {
  if (span.kind == trace::SpanKind::kInternal) return -1;
  for (size_t i = 0; i < std::size(kInstruments); i++) {
    if (kInstruments[i].measures(span)) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace zerotrace::metrics
