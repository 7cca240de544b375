// The span model every exporter consumes: OpenTelemetry fields, wall-clock times, resource.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace zerotrace::trace {

struct TraceId {
  std::array<uint8_t, 16> bytes{};
  // Not all zero (W3C). Inline, on words: asked per span by the linker and the encoder.
  bool valid() const {
    uint64_t a, b;
    std::memcpy(&a, bytes.data(), 8);
    std::memcpy(&b, bytes.data() + 8, 8);
    return (a | b) != 0;
  }
  std::string Hex() const;
  bool operator==(const TraceId&) const = default;
};

struct SpanId {
  std::array<uint8_t, 8> bytes{};
  bool valid() const {  // not all zero (W3C); inline, as TraceId's
    uint64_t a;
    std::memcpy(&a, bytes.data(), 8);
    return a != 0;
  }
  std::string Hex() const;
  bool operator==(const SpanId&) const = default;
};

// Random W3C ids (never all zero); fast, seeded once per process from the kernel.
TraceId NewTraceId();
SpanId NewSpanId();

// OTLP's SpanKind numbering.
enum class SpanKind : int { kInternal = 1, kServer = 2, kClient = 3 };
// OTLP's Status.code numbering.
enum class StatusCode : int { kUnset = 0, kOk = 1, kError = 2 };

using AttributeValue = std::variant<std::string, int64_t, bool, double>;
// A span attribute. Its key is not copied: it must outlive the span, as a string literal (the
// semantic conventions' names) does. Most keys are longer than std::string's inline buffer, so
// owning them cost a heap allocation per attribute per span.
struct Attribute {
  std::string_view key;
  AttributeValue value;
};
// A resource attribute: built once per process, so its key may come from configuration.
struct ResourceAttribute {
  std::string key;
  AttributeValue value;
};

// One traced process: shared by all its spans. Empty fields are not exported.
struct Resource {
  std::string service_name;
  std::string service_instance_id;  // service.instance.id
  uint32_t pid = 0;
  std::string executable_name;
  std::string executable_path;
  std::vector<std::string> command_args;  // process.command_args, redacted
  std::string runtime_name;               // process.runtime.name
  std::string container_id;               // empty when not in a container
  std::string container_name;             // container.name
  std::string k8s_pod_uid;
  std::string k8s_pod_name;
  std::string k8s_namespace_name;
  std::string k8s_container_name;
  std::string host_name;
  std::vector<ResourceAttribute> extra;  // e.g. OTEL_RESOURCE_ATTRIBUTES of the agent
};

// Equal content (not just the same pointer): exporters group such spans into one resource.
bool SameResource(const Resource* a, const Resource* b);

struct Span {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  // all zero: a root span
  std::string trace_state;
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  uint64_t start_unix_ns = 0;
  uint64_t end_unix_ns = 0;
  std::vector<Attribute> attributes;
  StatusCode status = StatusCode::kUnset;
  std::string status_message;
  std::shared_ptr<const Resource> resource;

  // The attribute named key, or nullptr.
  const AttributeValue* Find(std::string_view key) const;
};

}  // namespace zerotrace::trace
