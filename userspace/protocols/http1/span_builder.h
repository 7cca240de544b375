// Turns one HTTP exchange seen by one process into an OpenTelemetry span (semantic
// conventions for HTTP), with privacy redaction applied before anything leaves the agent.
#pragma once

#include <memory>

#include "base/clock.h"
#include "conn/conn_table.h"
#include "protocols/http1/types.h"
#include "trace/span.h"

namespace zerotrace::protocols::http1 {

struct SpanOptions {
  bool infer_routes = true;  // name "GET /users/{id}" instead of "GET"
};

// Builds the span for `x` from `c`'s point of view: SERVER if c accepted, CLIENT if it
// connected. Its ids are left empty: the SpanLinker assigns them (trace, span, parent).
// `finished_ns` (monotonic) ends a span that got no response: when the close or timeout
// that ended the wait was seen.
trace::Span BuildSpan(const HttpExchange& x, const conn::Connection& c, uint8_t role,
                      const WallClock& clock, const SpanOptions& options,
                      std::shared_ptr<const trace::Resource> resource, uint64_t finished_ns);
// The same into *out, whose every field is overwritten: a span the export queue handed back
// (SpanLinker::TakeSpare) lends its strings and attribute vector, so a span costs no
// allocation once they are large enough.
void BuildSpanInto(const HttpExchange& x, const conn::Connection& c, uint8_t role,
                   const WallClock& clock, const SpanOptions& options,
                   std::shared_ptr<const trace::Resource> resource, uint64_t finished_ns,
                   trace::Span* out);

}  // namespace zerotrace::protocols::http1
