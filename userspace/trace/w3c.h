// W3C Trace Context: parsing `traceparent` exactly by the specification's rules.
#pragma once

#include <optional>
#include <string_view>

#include "trace/span.h"

namespace zerotrace::trace {

struct TraceParent {
  TraceId trace_id;
  SpanId parent_id;
  uint8_t flags = 0;
};

// Parses "00-<32 hex>-<16 hex>-<2 hex>" (lowercase hex; all-zero ids and version ff are
// invalid; a future version may carry more fields after a '-'). nullopt when invalid.
std::optional<TraceParent> ParseTraceParent(std::string_view header);

}  // namespace zerotrace::trace
