// OTLP/JSON <-> ExportTraceServiceRequest: protobuf's JSON mapping plus OTLP's hex trace/span ids.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace zerotrace::otlp_sink {

using ExportRequest = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using ExportResponse = opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;

// What a decode failed on, for a 400 answer a sender can act on.
struct DecodeError {
  std::string message;
};

// Parses an OTLP/JSON body. Accepts what the OTLP specification asks receivers to accept:
// lowerCamelCase or original field names, enums as integers or names, 64-bit integers as
// strings or numbers, unknown fields (ignored); traceId/spanId/parentSpanId (also in links) are
// hex, not protobuf JSON's base64.
std::variant<ExportRequest, DecodeError> DecodeOtlpJson(std::string_view body);

// One line of OTLP/JSON (no newline): lowerCamelCase, enums as integers, 64-bit integers as
// strings, hex trace/span ids, default values omitted, fields in field-number order.
std::string EncodeOtlpJson(const ExportRequest& request);

// A response in OTLP/JSON ("{}" when empty).
std::string EncodeOtlpJsonResponse(const ExportResponse& response);

// Lowercase hex of raw bytes (ids).
std::string ToHex(std::string_view bytes);
// Hex (either case) to raw bytes; false for an odd length or a non-hex character.
bool FromHex(std::string_view hex, std::string* bytes);

}  // namespace zerotrace::otlp_sink
