// The HTTP half of an exchange's span (OpenTelemetry HTTP conventions), with privacy
// redaction applied before anything leaves the agent.
#pragma once

#include <cstdint>

#include "protocols/http1/types.h"
#include "protocols/http_common/http_span.h"
#include "protocols/protocol.h"

namespace zerotrace::protocols::http1 {

struct SpanOptions {
  bool infer_routes = true;  // name "GET /users/{id}" instead of "GET"
};

// Fills `done` for `x` as seen by the side `ctx` names: the span's name, its HTTP attributes
// (server.address and server.port from what the client asked for, when it said), its status,
// and the exchange's monotonic times. `finished_ns` ends an exchange that got no response: when
// the close or timeout that ended the wait was seen. Every field of done->span that BuildSpan
// sets is overwritten, reusing its storage (a span handed back by the export queue).
// Hot path: `fields` is the caller's, reused from span to span (every field is assigned), so
// that no 216-byte struct is zero-filled per span.
void BuildExchange(const HttpExchange& x, const SessionContext& ctx, const SpanOptions& options,
                   uint64_t finished_ns, ExchangeDone* done, http_common::HttpSpanFields* fields);
inline void BuildExchange(const HttpExchange& x, const SessionContext& ctx,
                          const SpanOptions& options, uint64_t finished_ns, ExchangeDone* done) {
  http_common::HttpSpanFields fields;
  BuildExchange(x, ctx, options, finished_ns, done, &fields);
}

}  // namespace zerotrace::protocols::http1
