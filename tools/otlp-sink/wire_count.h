// Counting the spans of an ExportTraceServiceRequest from its protobuf bytes, without building
// messages: what --count-only answers with, for benchmarks whose collector's CPU should not
// weigh on what they measure.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace zerotrace::otlp_sink {

// Spans in an encoded ExportTraceServiceRequest (resource_spans = 1, scope_spans = 2,
// spans = 2); nullopt if the framing of the request or of a ResourceSpans or ScopeSpans in it
// is not valid protobuf (a bad varint, a length past the end, a group or an unknown wire
// type). Span contents are skipped unchecked.
std::optional<int64_t> CountSpansInWire(std::string_view bytes);

}  // namespace zerotrace::otlp_sink
