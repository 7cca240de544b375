// Spans as an ExportTraceServiceRequest message and as the request's wire bytes, like
// otlp_json.cc; one span's bytes are otlp_span_wire.cc's.
#include "export/otlp_proto.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "export/otlp_json.h"
#include "export/otlp_wire.h"

#ifndef ZT_VERSION
#define ZT_VERSION "0.0.0"
#endif

namespace zerotrace::exporter {
namespace {

namespace collector = opentelemetry::proto::collector::trace::v1;
namespace common = opentelemetry::proto::common::v1;
namespace otlp = opentelemetry::proto::trace::v1;
using otlp_wire::AssignUtf8;
using otlp_wire::LenField;
using otlp_wire::MeasuredKeyValue;
using otlp_wire::MeasuredSpan;
using otlp_wire::MeasureKeyValue;
using otlp_wire::MeasureSpan;
using otlp_wire::PlainKeyValueSizes;
using otlp_wire::PlainSpanSize;
using otlp_wire::PutPlainSpan;
using otlp_wire::Ref;
using otlp_wire::StringList;
using otlp_wire::ValueRef;
using otlp_wire::WireWriter;
using trace::Attribute;
using trace::AttributeValue;
using trace::Resource;
using trace::Span;

constexpr std::string_view kScopeName = "zerotrace";
constexpr std::string_view kScopeVersion = ZT_VERSION;

// ---- Resource attributes, shared by both encoders ----

// Calls f(key, ValueRef) for each resource attribute, in otlp_json.cc's order and with its
// de-duplication: what the agent knows about the process wins over extras.
template <typename F>
void ForEachResourceAttribute(const Resource* r, F&& f) {
  static const Resource kEmpty;
  if (r == nullptr) r = &kEmpty;
  if (!r->service_name.empty()) {
    f("service.name", ValueRef(std::string_view(r->service_name)));
  } else {
    std::string fallback = "unknown_service";  // the resource semantic conventions' default
    if (!r->executable_name.empty()) fallback += ":" + r->executable_name;
    f("service.name", ValueRef(std::string_view(fallback)));
  }
  if (r->pid != 0) f("process.pid", ValueRef(int64_t{r->pid}));
  if (!r->executable_name.empty()) {
    f("process.executable.name", ValueRef(std::string_view(r->executable_name)));
  }
  if (!r->executable_path.empty()) {
    f("process.executable.path", ValueRef(std::string_view(r->executable_path)));
  }
  if (!r->host_name.empty()) f("host.name", ValueRef(std::string_view(r->host_name)));
  f("os.type", ValueRef(std::string_view("linux")));
  if (!r->container_id.empty()) f("container.id", ValueRef(std::string_view(r->container_id)));
  // Identity found for the process (service_identity.h), when there is some.
  const std::pair<std::string_view, const std::string*> identity[] = {
      {"service.instance.id", &r->service_instance_id},
      {"process.runtime.name", &r->runtime_name},
      {"container.name", &r->container_name},
      {"k8s.pod.uid", &r->k8s_pod_uid},
      {"k8s.pod.name", &r->k8s_pod_name},
      {"k8s.namespace.name", &r->k8s_namespace_name},
      {"k8s.container.name", &r->k8s_container_name},
  };
  for (const auto& [key, value] : identity) {
    if (!value->empty()) f(key, ValueRef(std::string_view(*value)));
  }
  if (!r->command_args.empty()) f("process.command_args", ValueRef(&r->command_args));
  static constexpr std::string_view kOwnKeys[] = {"service.name",
                                                  "process.pid",
                                                  "process.executable.name",
                                                  "process.executable.path",
                                                  "host.name",
                                                  "os.type",
                                                  "container.id",
                                                  "service.instance.id",
                                                  "process.runtime.name",
                                                  "container.name",
                                                  "k8s.pod.uid",
                                                  "k8s.pod.name",
                                                  "k8s.namespace.name",
                                                  "k8s.container.name",
                                                  "process.command_args"};
  for (size_t i = 0; i < r->extra.size(); i++) {
    const trace::ResourceAttribute& a = r->extra[i];
    bool duplicate = false;
    for (std::string_view own : kOwnKeys) duplicate = duplicate || a.key == own;
    for (size_t j = 0; j < i && !duplicate; j++) duplicate = r->extra[j].key == a.key;
    if (!duplicate) f(std::string_view(a.key), Ref(a.value));
  }
}

// Spans grouped by resource in order of first appearance: group[i] of span i, and the groups'
// representative resources. Consecutive spans of one process are the common case.
template <typename Items>
void GroupByResource(const Items& spans, std::vector<const Resource*>* resources,
                     std::vector<uint32_t>* group) {
  group->resize(spans.size());
  uint32_t last = 0;
  for (size_t i = 0; i < spans.size(); i++) {
    const Resource* r = spans[i].resource.get();
    if (resources->empty() || (*resources)[last] != r) {
      uint32_t g = 0;
      while (g < resources->size() && !trace::SameResource((*resources)[g], r)) g++;
      if (g == resources->size()) resources->push_back(r);
      last = g;
    }
    (*group)[i] = last;
  }
}

// ---- The message ----

void SetAnyValue(const ValueRef& value, common::AnyValue* out) {
  std::visit(
      [out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          AssignUtf8(v, out->mutable_string_value());
        } else if constexpr (std::is_same_v<T, bool>) {
          out->set_bool_value(v);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          out->set_int_value(v);
        } else if constexpr (std::is_same_v<T, StringList>) {
          auto* values = out->mutable_array_value()->mutable_values();
          for (const std::string& item : *v)
            AssignUtf8(item, values->Add()->mutable_string_value());
        } else {
          static_assert(std::is_same_v<T, double>);
          out->set_double_value(v);
        }
      },
      value);
}

void AddKeyValue(std::string_view key, const ValueRef& value,
                 google::protobuf::RepeatedPtrField<common::KeyValue>* list) {
  common::KeyValue* kv = list->Add();
  AssignUtf8(key, kv->mutable_key());
  SetAnyValue(value, kv->mutable_value());
}

void SetBytes(const uint8_t* data, size_t n, std::string* out) {
  out->assign(reinterpret_cast<const char*>(data), n);
}

void SetSpan(const Span& s, otlp::Span* out) {
  SetBytes(s.trace_id.bytes.data(), s.trace_id.bytes.size(), out->mutable_trace_id());
  SetBytes(s.span_id.bytes.data(), s.span_id.bytes.size(), out->mutable_span_id());
  if (!s.trace_state.empty()) AssignUtf8(s.trace_state, out->mutable_trace_state());
  if (s.parent_span_id.valid()) {
    SetBytes(s.parent_span_id.bytes.data(), s.parent_span_id.bytes.size(),
             out->mutable_parent_span_id());
  }
  AssignUtf8(s.name, out->mutable_name());
  out->set_kind(static_cast<otlp::Span::SpanKind>(s.kind));
  out->set_start_time_unix_nano(s.start_unix_ns);
  out->set_end_time_unix_nano(s.end_unix_ns);
  auto* attrs = out->mutable_attributes();
  attrs->Reserve(static_cast<int>(s.attributes.size()));
  for (const Attribute& a : s.attributes) AddKeyValue(a.key, Ref(a.value), attrs);
  // Like the JSON encoder, every span carries a status, empty when unset.
  otlp::Status* status = out->mutable_status();
  status->set_code(static_cast<otlp::Status::StatusCode>(s.status));
  if (!s.status_message.empty()) AssignUtf8(s.status_message, status->mutable_message());
}

constexpr size_t ScopeSize() {
  return 1 + 1 + kScopeName.size() + (kScopeVersion.empty() ? 0 : 2 + kScopeVersion.size());
}

}  // namespace

void ToOtlpProto(const std::vector<Span>& spans, collector::ExportTraceServiceRequest* out) {
  out->Clear();
  std::vector<const Resource*> resources;
  std::vector<uint32_t> group;
  GroupByResource(spans, &resources, &group);
  std::vector<otlp::ScopeSpans*> scopes;
  for (const Resource* r : resources) {
    otlp::ResourceSpans* rs = out->add_resource_spans();
    auto* attrs = rs->mutable_resource()->mutable_attributes();
    ForEachResourceAttribute(
        r, [attrs](std::string_view key, const ValueRef& v) { AddKeyValue(key, v, attrs); });
    otlp::ScopeSpans* scope = rs->add_scope_spans();
    scope->mutable_scope()->set_name(std::string(kScopeName));
    scope->mutable_scope()->set_version(std::string(kScopeVersion));
    scopes.push_back(scope);
  }
  for (size_t i = 0; i < spans.size(); i++) SetSpan(spans[i], scopes[group[i]]->add_spans());
}

namespace {

// The spans of a request, measured in pass 1 (Measure, in input order) and written in pass 2
// (Write, grouped by resource). PlainSpans takes string sizes from their lengths and checks
// UTF-8 while copying; RepairingSpans validates every string first and repairs what needs it.
class PlainSpans {
 public:
  explicit PlainSpans(const std::vector<Span>& spans) : spans_(spans) {
    sizes_.resize(spans.size());
    first_kv_.resize(spans.size());
  }
  // The size of span i's field in ScopeSpans; called in input order.
  size_t Measure(size_t i) {
    const size_t first = kvs_used_;
    first_kv_[i] = static_cast<uint32_t>(first);
    kvs_used_ += spans_[i].attributes.size();
    // Grown, never shrunk nor cleared: PlainSpanSize writes every slot it is given.
    if (kvs_.size() < kvs_used_) kvs_.resize(std::max(kvs_used_, 2 * kvs_.size()));
    return LenField(sizes_[i] = PlainSpanSize(spans_[i], kvs_.data() + first));
  }
  void Write(WireWriter& w, size_t i) {
    w.set_end(PutPlainSpan(w.end(), spans_[i], sizes_[i], kvs_.data() + first_kv_[i], &valid_));
  }
  // False if a string was ill-formed: the bytes written are then not the request.
  bool valid() const { return valid_; }

 private:
  const std::vector<Span>& spans_;
  bool valid_ = true;
  size_t kvs_used_ = 0;  // kvs_[0, kvs_used_) are this request's
  // Scratch of the export thread: each span's size and where its attributes' sizes start.
  static thread_local std::vector<uint32_t> sizes_, first_kv_;
  static thread_local std::vector<PlainKeyValueSizes> kvs_;
};
thread_local std::vector<uint32_t> PlainSpans::sizes_;
thread_local std::vector<uint32_t> PlainSpans::first_kv_;
thread_local std::vector<PlainKeyValueSizes> PlainSpans::kvs_;

class RepairingSpans {
 public:
  explicit RepairingSpans(const std::vector<Span>& spans) : spans_(spans) {
    kvs_.clear();
    measured_.resize(spans.size());
  }
  size_t Measure(size_t i) {
    measured_[i] = MeasureSpan(spans_[i], &kvs_);
    return LenField(measured_[i].size);
  }
  void Write(WireWriter& w, size_t i) { w.Span(spans_[i], measured_[i], kvs_.data()); }

 private:
  const std::vector<Span>& spans_;
  static thread_local std::vector<MeasuredKeyValue> kvs_;
  static thread_local std::vector<MeasuredSpan> measured_;
};
thread_local std::vector<MeasuredKeyValue> RepairingSpans::kvs_;
thread_local std::vector<MeasuredSpan> RepairingSpans::measured_;

// Spans encoded beforehand (EncodeOtlpSpan): each Span message is copied as it is, after its
// tag and length.
class EncodedSpans {
 public:
  explicit EncodedSpans(std::span<const EncodedSpan> spans) : spans_(spans) {}
  size_t Measure(size_t i) const { return LenField(spans_[i].bytes.size()); }
  void Write(WireWriter& w, size_t i) const {
    w.Header(2, spans_[i].bytes.size());  // ScopeSpans.spans
    w.Raw(spans_[i].bytes.data(), spans_[i].bytes.size());
  }

 private:
  std::span<const EncodedSpan> spans_;
};

// Writes the request from out[start] on, and cuts *out there: pass 1 computes every size bottom
// up, pass 2 writes the bytes into a buffer of exactly the right size. Bytes of *out past
// `start` are overwritten, so only what *out grows by is zero-filled first.
template <typename Items, typename SpanCoder>
void WriteRequest(const Items& spans, const std::vector<const Resource*>& resources,
                  const std::vector<uint32_t>& group, SpanCoder& coder, size_t start,
                  std::string* out) {
  // Scratch reused across calls on this thread (the export thread): no allocation per batch.
  thread_local std::vector<MeasuredKeyValue> resource_kvs;
  thread_local std::vector<uint32_t> order;
  resource_kvs.clear();
  std::vector<size_t> spans_bytes(resources.size(), 0);  // the spans fields of each ScopeSpans
  for (size_t i = 0; i < spans.size(); i++) spans_bytes[group[i]] += coder.Measure(i);
  std::vector<size_t> resource_size(resources.size(), 0), scope_spans_size(resources.size()),
      resource_spans_size(resources.size());
  size_t total = 0;
  for (size_t g = 0; g < resources.size(); g++) {
    ForEachResourceAttribute(resources[g], [&](std::string_view key, const ValueRef& v) {
      resource_kvs.push_back(MeasureKeyValue(key, v));
      resource_size[g] += LenField(resource_kvs.back().size);
    });
    scope_spans_size[g] = LenField(ScopeSize()) + spans_bytes[g];
    resource_spans_size[g] = LenField(resource_size[g]) + LenField(scope_spans_size[g]);
    total += LenField(resource_spans_size[g]);
  }
  // Spans of each group in input order.
  order.resize(spans.size());
  {
    std::vector<uint32_t> next(resources.size() + 1, 0);
    for (uint32_t g : group) next[g + 1]++;
    for (size_t g = 0; g < resources.size(); g++) next[g + 1] += next[g];
    for (uint32_t i = 0; i < spans.size(); i++) order[next[group[i]]++] = i;
  }
  out->resize(start + total);
  WireWriter w(out->data() + start);
  size_t k = 0, resource_kv = 0;
  for (size_t g = 0; g < resources.size(); g++) {
    w.Header(1, resource_spans_size[g]);  // ExportTraceServiceRequest.resource_spans
    w.Header(1, resource_size[g]);        // ResourceSpans.resource
    ForEachResourceAttribute(resources[g], [&](std::string_view key, const ValueRef& v) {
      w.KeyValue(1, key, v, resource_kvs[resource_kv++]);  // Resource.attributes
    });
    w.Header(2, scope_spans_size[g]);  // ResourceSpans.scope_spans
    w.Header(1, ScopeSize());          // ScopeSpans.scope
    w.Header(1, kScopeName.size());
    w.Raw(kScopeName.data(), kScopeName.size());
    if (!kScopeVersion.empty()) {
      w.Header(2, kScopeVersion.size());
      w.Raw(kScopeVersion.data(), kScopeVersion.size());
    }
    for (; k < spans.size() && group[order[k]] == g; k++) coder.Write(w, order[k]);
  }
  assert(w.end() == out->data() + start + total && "size pass and write pass disagree");
}

}  // namespace

void AppendOtlpProto(const std::vector<Span>& spans, std::string* out) {
  thread_local std::vector<const Resource*> resources;
  thread_local std::vector<uint32_t> group;
  resources.clear();
  GroupByResource(spans, &resources, &group);
  // Strings are almost always valid UTF-8: one read of each, while it is copied. A batch with an
  // ill-formed one is encoded again, validating first and repairing.
  const size_t start = out->size();
  PlainSpans plain(spans);
  WriteRequest(spans, resources, group, plain, start, out);
  if (plain.valid()) return;
  RepairingSpans repairing(spans);
  WriteRequest(spans, resources, group, repairing, start, out);
}

namespace {

void WriteEncodedRequest(std::span<const EncodedSpan> spans, size_t start, std::string* out) {
  thread_local std::vector<const Resource*> resources;
  thread_local std::vector<uint32_t> group;
  resources.clear();
  GroupByResource(spans, &resources, &group);
  EncodedSpans encoded(spans);
  WriteRequest(spans, resources, group, encoded, start, out);
}

}  // namespace

void AppendOtlpProto(std::span<const EncodedSpan> spans, std::string* out) {
  WriteEncodedRequest(spans, out->size(), out);
}

void AssignOtlpProto(std::span<const EncodedSpan> spans, std::string* out) {
  WriteEncodedRequest(spans, 0, out);
}

}  // namespace zerotrace::exporter
