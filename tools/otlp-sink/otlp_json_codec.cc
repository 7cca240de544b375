// OTLP/JSON codec: nlohmann rewrites the id fields, protobuf's json_util maps the rest.
#include "otlp_json_codec.h"

#include <google/protobuf/util/json_util.h>

#include <array>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <utility>

namespace zerotrace::otlp_sink {
namespace {

using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonPrintOptions;
using OrderedJson = nlohmann::ordered_json;
namespace trace_pb = opentelemetry::proto::trace::v1;

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kBase64Digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16 |
                       static_cast<uint8_t>(bytes[i + 1]) << 8 | static_cast<uint8_t>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kBase64Digits[(v >> shift) & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    out += kBase64Digits[(v >> 18) & 63];
    out += kBase64Digits[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16 | static_cast<uint8_t>(bytes[i + 1])
                                                                  << 8;
    out += kBase64Digits[(v >> 18) & 63];
    out += kBase64Digits[(v >> 12) & 63];
    out += kBase64Digits[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// Returns the value under the first of `names` that obj has (OTLP/JSON allows either spelling).
template <typename Json>
Json* Field(Json& obj, std::initializer_list<const char*> names) {
  if (!obj.is_object()) return nullptr;
  for (const char* name : names) {
    auto it = obj.find(name);
    if (it != obj.end()) return &*it;
  }
  return nullptr;
}

// Rewrites the hex id fields of one object (a span or a link) to base64, in place.
bool HexIdsToBase64(nlohmann::json& obj,
                    std::initializer_list<std::pair<const char*, const char*>> ids,
                    std::string* error) {
  for (const auto& [camel, snake] : ids) {
    nlohmann::json* v = Field(obj, {camel, snake});
    if (v == nullptr || v->is_null()) continue;
    std::string bytes;
    if (!v->is_string() || !FromHex(v->get_ref<const std::string&>(), &bytes)) {
      *error = std::string(camel) + " is not a hex string: " + v->dump();
      return false;
    }
    *v = Base64(bytes);
  }
  return true;
}

// Calls fn(span_json) for each span object under resourceSpans[].scopeSpans[].spans[].
template <typename Json, typename Fn>
bool ForEachSpan(Json& request, Fn&& fn) {
  Json* resource_spans = Field(request, {"resourceSpans", "resource_spans"});
  if (resource_spans == nullptr || !resource_spans->is_array()) return true;
  for (auto& rs : *resource_spans) {
    Json* scope_spans = Field(rs, {"scopeSpans", "scope_spans"});
    if (scope_spans == nullptr || !scope_spans->is_array()) continue;
    for (auto& ss : *scope_spans) {
      Json* spans = Field(ss, {"spans"});
      if (spans == nullptr || !spans->is_array()) continue;
      for (auto& span : *spans) {
        if (!fn(span)) return false;
      }
    }
  }
  return true;
}

// Sets the JSON id field `name` to the hex of `bytes`, if protobuf printed it (non-empty).
void SetHexId(OrderedJson& obj, const char* name, const std::string& bytes) {
  auto it = obj.find(name);
  if (it != obj.end()) *it = ToHex(bytes);
}

// Compact JSON; bytes that are not UTF-8 become U+FFFD instead of throwing.
template <typename Json>
std::string Dump(const Json& doc) {
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

std::string ToHex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    out += kHexDigits[static_cast<uint8_t>(c) >> 4];
    out += kHexDigits[static_cast<uint8_t>(c) & 15];
  }
  return out;
}

bool FromHex(std::string_view hex, std::string* bytes) {
  if (hex.size() % 2 != 0) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  bytes->clear();
  bytes->reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    *bytes += static_cast<char>(hi << 4 | lo);
  }
  return true;
}

std::variant<ExportRequest, DecodeError> DecodeOtlpJson(std::string_view body) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return DecodeError{"body is not valid JSON"};
  if (!doc.is_object()) return DecodeError{"body is not a JSON object"};
  std::string error;
  const bool ids_ok = ForEachSpan(doc, [&](nlohmann::json& span) {
    if (!HexIdsToBase64(
            span,
            {{"traceId", "trace_id"}, {"spanId", "span_id"}, {"parentSpanId", "parent_span_id"}},
            &error)) {
      return false;
    }
    nlohmann::json* links = Field(span, {"links"});
    if (links == nullptr || !links->is_array()) return true;
    for (auto& link : *links) {
      if (!HexIdsToBase64(link, {{"traceId", "trace_id"}, {"spanId", "span_id"}}, &error)) {
        return false;
      }
    }
    return true;
  });
  if (!ids_ok) return DecodeError{error};

  ExportRequest request;
  JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(Dump(doc), &request, options);
  if (!status.ok()) {
    return DecodeError{"not an OTLP/JSON ExportTraceServiceRequest: " +
                       std::string(status.message())};
  }
  return request;
}

std::string EncodeOtlpJson(const ExportRequest& request) {
  JsonPrintOptions options;
  options.always_print_enums_as_ints = true;
  std::string text;
  // Printing a message we hold cannot fail (only a broken descriptor pool could make it).
  (void)google::protobuf::util::MessageToJsonString(request, &text, options);
  OrderedJson doc = OrderedJson::parse(text);
  // protobuf printed the ids as base64; walk the message beside its JSON to write them as hex.
  int rs_index = 0;
  auto resource_spans = doc.find("resourceSpans");
  if (resource_spans == doc.end()) return Dump(doc);
  for (const auto& rs : request.resource_spans()) {
    OrderedJson& rs_json = (*resource_spans)[rs_index++];
    auto scope_spans = rs_json.find("scopeSpans");
    if (scope_spans == rs_json.end()) continue;
    int ss_index = 0;
    for (const auto& ss : rs.scope_spans()) {
      OrderedJson& ss_json = (*scope_spans)[ss_index++];
      auto spans = ss_json.find("spans");
      if (spans == ss_json.end()) continue;
      int span_index = 0;
      for (const trace_pb::Span& span : ss.spans()) {
        OrderedJson& span_json = (*spans)[span_index++];
        SetHexId(span_json, "traceId", span.trace_id());
        SetHexId(span_json, "spanId", span.span_id());
        SetHexId(span_json, "parentSpanId", span.parent_span_id());
        auto links = span_json.find("links");
        if (links == span_json.end()) continue;
        int link_index = 0;
        for (const auto& link : span.links()) {
          OrderedJson& link_json = (*links)[link_index++];
          SetHexId(link_json, "traceId", link.trace_id());
          SetHexId(link_json, "spanId", link.span_id());
        }
      }
    }
  }
  return Dump(doc);
}

std::string EncodeOtlpJsonResponse(const ExportResponse& response) {
  JsonPrintOptions options;
  options.always_print_enums_as_ints = true;
  std::string text;
  (void)google::protobuf::util::MessageToJsonString(response, &text, options);
  return text;
}

}  // namespace zerotrace::otlp_sink
