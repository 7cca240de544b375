// Readable span lines for a terminal: what an engineer checks first, then every attribute.
#include "span_printer.h"

#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace zerotrace::otlp_sink {
namespace {

namespace common_pb = opentelemetry::proto::common::v1;
namespace trace_pb = opentelemetry::proto::trace::v1;

const char* KindName(int kind) {
  static constexpr const char* kNames[] = {"UNSPECIFIED", "INTERNAL", "SERVER",
                                           "CLIENT",      "PRODUCER", "CONSUMER"};
  return kind >= 0 && kind < 6 ? kNames[kind] : "UNKNOWN_KIND";
}

const char* StatusName(int code) {
  static constexpr const char* kNames[] = {"UNSET", "OK", "ERROR"};
  return code >= 0 && code < 3 ? kNames[code] : "UNKNOWN_STATUS";
}

void AppendQuoted(const std::string& s, std::string* out) {
  *out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AppendValue(const common_pb::AnyValue& v, std::string* out) {
  switch (v.value_case()) {
    case common_pb::AnyValue::kStringValue:
      AppendQuoted(v.string_value(), out);
      break;
    case common_pb::AnyValue::kBoolValue:
      *out += v.bool_value() ? "true" : "false";
      break;
    case common_pb::AnyValue::kIntValue:
      *out += std::to_string(v.int_value());
      break;
    case common_pb::AnyValue::kDoubleValue: {
      char buf[32];
      const auto r = std::to_chars(buf, buf + sizeof(buf), v.double_value());
      out->append(buf, r.ptr);
      break;
    }
    case common_pb::AnyValue::kBytesValue:
      *out += "0x" + ToHex(v.bytes_value());
      break;
    case common_pb::AnyValue::kArrayValue: {
      *out += '[';
      const auto& values = v.array_value().values();
      for (int i = 0; i < values.size(); i++) {
        if (i > 0) *out += ',';
        AppendValue(values[i], out);
      }
      *out += ']';
      break;
    }
    case common_pb::AnyValue::kKvlistValue: {
      *out += '{';
      const auto& values = v.kvlist_value().values();
      for (int i = 0; i < values.size(); i++) {
        if (i > 0) *out += ',';
        *out += values[i].key() + '=';
        AppendValue(values[i].value(), out);
      }
      *out += '}';
      break;
    }
    case common_pb::AnyValue::VALUE_NOT_SET:
      *out += "(empty)";
      break;
  }
}

std::string ServiceName(const opentelemetry::proto::resource::v1::Resource& resource) {
  for (const auto& kv : resource.attributes()) {
    if (kv.key() == "service.name" && kv.value().has_string_value()) {
      return kv.value().string_value();
    }
  }
  return "-";
}

void AppendSpan(const std::string& service, const trace_pb::Span& span, std::string* out) {
  *out += service;
  *out += ' ';
  *out += KindName(span.kind());
  *out += ' ';
  AppendQuoted(span.name(), out);
  *out += " status=";
  *out += StatusName(span.status().code());
  *out += " trace=" + ToHex(span.trace_id());
  *out += " span=" + ToHex(span.span_id());
  *out += " parent=" + (span.parent_span_id().empty() ? "-" : ToHex(span.parent_span_id()));
  // Signed: a span whose end precedes its start shows as negative rather than huge.
  const int64_t ns = static_cast<int64_t>(span.end_time_unix_nano() - span.start_time_unix_nano());
  const uint64_t abs_ns = ns < 0 ? -static_cast<uint64_t>(ns) : static_cast<uint64_t>(ns);
  char duration[48];
  std::snprintf(duration, sizeof(duration), " duration=%s%" PRIu64 ".%06" PRIu64 "ms",
                ns < 0 ? "-" : "", abs_ns / 1000000, abs_ns % 1000000);
  *out += duration;
  for (const auto& kv : span.attributes()) {
    *out += ' ';
    *out += kv.key();
    *out += '=';
    AppendValue(kv.value(), out);
  }
  *out += '\n';
}

}  // namespace

void AppendReadableSpans(const ExportRequest& request, std::string* out) {
  for (const auto& rs : request.resource_spans()) {
    const std::string service = ServiceName(rs.resource());
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& span : ss.spans()) AppendSpan(service, span, out);
    }
  }
}

}  // namespace zerotrace::otlp_sink
