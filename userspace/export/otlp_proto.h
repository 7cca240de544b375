// OTLP protobuf encoding of spans: the ExportTraceServiceRequest the gRPC and HTTP exporters send.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "export/exporter.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "trace/span.h"

namespace zerotrace::exporter {

// Replaces *out's contents with the spans, carrying field for field what ToOtlpJson writes: one
// ResourceSpans per distinct Resource in order of first appearance, the same resource
// attributes, scope "zerotrace" with the version, ids as raw bytes (no parent for a root),
// kind/status codes, int/bool/double/string attributes. Strings are repaired to valid UTF-8
// exactly as the JSON encoder repairs them (protobuf strings must be UTF-8, or collectors refuse
// the whole request). Reusing one *out across batches reuses its sub-messages and string
// capacity, so steady state allocates little.
void ToOtlpProto(const std::vector<trace::Span>& spans,
                 opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest* out);

// Hot path of the OTLP exporters: the wire bytes of that same request, appended to *out,
// byte for byte what ToOtlpProto(spans).SerializeAsString() gives, written directly (two passes:
// exact sizes, then bytes into one pre-sized buffer) and several times faster.
void AppendOtlpProto(const std::vector<trace::Span>& spans, std::string* out);

// One span as its Span message (strings repaired to UTF-8), replacing *out's contents (its
// capacity is reused): the very bytes AppendOtlpProto writes for the span after the
// ScopeSpans.spans tag and length. Written in one pass, without measuring the span first. A
// SpanEncoder, run on the ring-buffer consumer's thread.
void EncodeOtlpSpan(const trace::Span& span, std::string* out);

// The request of spans encoded by EncodeOtlpSpan, appended to *out: grouped by resource as
// AppendOtlpProto groups them, and byte for byte what it gives for the original spans.
void AppendOtlpProto(std::span<const EncodedSpan> spans, std::string* out);
// The same request replacing *out's contents: *out's bytes are overwritten where they are, not
// cleared and zero-filled first (the exporters' request buffer is ~1 MB per batch).
void AssignOtlpProto(std::span<const EncodedSpan> spans, std::string* out);

}  // namespace zerotrace::exporter
