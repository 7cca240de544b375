// Spans as an ExportTraceServiceRequest message and as its wire bytes, like otlp_json.cc.
#include "export/otlp_proto.h"

#include <bit>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "export/otlp_json.h"

#ifndef ZT_VERSION
#define ZT_VERSION "0.0.0"
#endif

namespace zerotrace::exporter {
namespace {

namespace collector = opentelemetry::proto::collector::trace::v1;
namespace common = opentelemetry::proto::common::v1;
namespace otlp = opentelemetry::proto::trace::v1;
using trace::Attribute;
using trace::AttributeValue;
using trace::Resource;
using trace::Span;

constexpr std::string_view kScopeName = "zerotrace";
constexpr std::string_view kScopeVersion = ZT_VERSION;

// ---- UTF-8 repair (what AppendJsonString does to ill-formed input) ----

constexpr uint64_t kHighBits = 0x8080808080808080ull;

// Length of the valid UTF-8 prefix of s (all of s in the common case).
size_t ValidUtf8Prefix(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  // All ASCII, the common case, in whole words: the last one overlaps its predecessor rather
  // than finishing byte by byte (attribute keys and values are mostly 5-30 bytes).
  if (n >= 8) {
    uint64_t w, any = 0;
    for (; i + 8 <= n; i += 8) {
      std::memcpy(&w, s.data() + i, 8);
      any |= w;
    }
    std::memcpy(&w, s.data() + n - 8, 8);
    if (((any | w) & kHighBits) == 0) return n;
    i = 0;
  } else {
    unsigned any = 0;  // a byte loop: memcpy of a variable length is a call
    for (size_t k = 0; k < n; k++) any |= static_cast<unsigned char>(s[k]);
    if (any < 0x80) return n;
  }
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if ((w & kHighBits) == 0) {  // 8 ASCII bytes
        i += 8;
        continue;
      }
    }
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      i++;
      continue;
    }
    const Utf8Step step = DecodeUtf8(s.substr(i));
    if (!step.valid) return i;
    i += step.length;
  }
  return n;
}

// Calls emit(bytes) for the pieces of s with each maximal ill-formed subpart as U+FFFD.
template <typename Emit>
void RepairUtf8(std::string_view s, Emit&& emit) {
  size_t i = ValidUtf8Prefix(s);
  emit(s.substr(0, i));
  while (i < s.size()) {
    const Utf8Step step = DecodeUtf8(s.substr(i));
    emit(step.valid ? s.substr(i, step.length) : std::string_view("\xEF\xBF\xBD"));
    i += step.length;
  }
}

size_t Utf8Size(std::string_view s) {
  if (ValidUtf8Prefix(s) == s.size()) return s.size();
  size_t n = 0;
  RepairUtf8(s, [&n](std::string_view piece) { n += piece.size(); });
  return n;
}

void AssignUtf8(std::string_view s, std::string* out) {
  out->clear();
  RepairUtf8(s, [out](std::string_view piece) { out->append(piece.data(), piece.size()); });
}

// ---- Resource attributes, shared by both encoders ----

// A list of strings (process.command_args), as an attribute value.
using StringList = const std::vector<std::string>*;
// An attribute value without owning its string.
using ValueRef = std::variant<std::string_view, int64_t, bool, double, StringList>;

ValueRef Ref(const AttributeValue& v) {
  return std::visit([](const auto& x) -> ValueRef { return ValueRef(x); }, v);
}

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

// ---- Wire bytes ----

// Field tags (field number << 3 | wire type); every field number used is below 16, so one byte.
enum : uint8_t {
  kVarint = 0,
  kFixed64 = 1,
  kLen = 2,
};
constexpr uint8_t Tag(int field, uint8_t type) { return static_cast<uint8_t>(field << 3 | type); }

// 7 bits per byte, without a loop: sizes are computed for every field of every span.
inline size_t VarintSize(uint64_t v) {
  return (static_cast<size_t>(std::bit_width(v | 1)) + 6) / 7;
}

// A length-delimited field holding n bytes.
inline size_t LenField(size_t n) { return 1 + VarintSize(n) + n; }

// A string measured once: its size after UTF-8 repair, and whether it needs the repair.
struct Measured {
  uint32_t size = 0;
  bool valid = true;
};

inline Measured Measure(std::string_view s) {
  if (ValidUtf8Prefix(s) == s.size()) return {static_cast<uint32_t>(s.size()), true};
  return {static_cast<uint32_t>(Utf8Size(s)), false};
}

// One KeyValue, measured in the size pass and written from these numbers in the write pass.
struct MeasuredKeyValue {
  Measured key;
  Measured string_value;  // string values only
  uint32_t value_size;    // the AnyValue message
  uint32_t size;          // the KeyValue message
};

// An ArrayValue of strings: each an AnyValue holding a string_value.
size_t ArrayValueSize(const std::vector<std::string>& items) {
  size_t n = 0;
  for (const std::string& item : items) n += LenField(LenField(Measure(item).size));
  return n;
}

MeasuredKeyValue MeasureKeyValue(std::string_view key, const ValueRef& value) {
  MeasuredKeyValue m;
  m.key = Measure(key);
  if (const auto* s = std::get_if<std::string_view>(&value)) {
    m.string_value = Measure(*s);
    m.value_size = static_cast<uint32_t>(LenField(m.string_value.size));  // oneof: even if empty
  } else if (std::holds_alternative<bool>(value)) {
    m.value_size = 2;
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    m.value_size = static_cast<uint32_t>(1 + VarintSize(static_cast<uint64_t>(*i)));
  } else if (const auto* list = std::get_if<StringList>(&value)) {
    m.value_size = static_cast<uint32_t>(LenField(ArrayValueSize(**list)));
  } else {
    m.value_size = 9;
  }
  m.size =
      static_cast<uint32_t>((m.key.size > 0 ? LenField(m.key.size) : 0) + LenField(m.value_size));
  return m;
}

// One span's measured strings and sizes; its attributes follow in the shared KeyValue array.
struct MeasuredSpan {
  Measured trace_state, name, status_message;
  uint32_t status_size;
  uint32_t size;
  uint32_t first_attribute;  // index into the KeyValue array
};

MeasuredSpan MeasureSpan(const Span& s, std::vector<MeasuredKeyValue>* kvs) {
  MeasuredSpan m;
  m.first_attribute = static_cast<uint32_t>(kvs->size());
  size_t n = LenField(16) + LenField(8);  // trace_id, span_id
  if (!s.trace_state.empty()) {
    m.trace_state = Measure(s.trace_state);
    n += LenField(m.trace_state.size);
  }
  if (s.parent_span_id.valid()) n += LenField(8);
  if (!s.name.empty()) {
    m.name = Measure(s.name);
    n += LenField(m.name.size);
  }
  if (s.kind != trace::SpanKind{0}) n += 1 + VarintSize(static_cast<uint64_t>(s.kind));
  if (s.start_unix_ns != 0) n += 9;
  if (s.end_unix_ns != 0) n += 9;
  for (const Attribute& a : s.attributes) {
    kvs->push_back(MeasureKeyValue(a.key, Ref(a.value)));
    n += LenField(kvs->back().size);
  }
  if (!s.status_message.empty()) m.status_message = Measure(s.status_message);
  m.status_size =
      static_cast<uint32_t>((m.status_message.size > 0 ? LenField(m.status_message.size) : 0) +
                            (s.status != trace::StatusCode::kUnset ? 2 : 0));
  m.size = static_cast<uint32_t>(n + LenField(m.status_size));
  return m;
}

// ---- Sizes from string lengths alone, as if every string were valid UTF-8 ----

// AttributeValue's alternatives by index: a switch, cheaper than std::visit per attribute.
enum : size_t { kStringIndex = 0, kIntIndex = 1, kBoolIndex = 2, kDoubleIndex = 3 };
static_assert(
    std::is_same_v<std::variant_alternative_t<kStringIndex, AttributeValue>, std::string>);
static_assert(std::is_same_v<std::variant_alternative_t<kIntIndex, AttributeValue>, int64_t>);
static_assert(std::is_same_v<std::variant_alternative_t<kBoolIndex, AttributeValue>, bool>);
static_assert(std::is_same_v<std::variant_alternative_t<kDoubleIndex, AttributeValue>, double>);

// The AnyValue message of a span attribute (a string one is set even if empty: a oneof).
inline uint32_t PlainValueSize(const AttributeValue& v) {
  switch (v.index()) {
    case kStringIndex:
      return static_cast<uint32_t>(LenField(std::get_if<std::string>(&v)->size()));
    case kIntIndex:
      return static_cast<uint32_t>(1 +
                                   VarintSize(static_cast<uint64_t>(*std::get_if<int64_t>(&v))));
    case kBoolIndex:
      return 2;
    default:
      return 9;
  }
}

inline uint32_t PlainKeyValueSize(std::string_view key, uint32_t value_size) {
  return static_cast<uint32_t>((key.empty() ? 0 : LenField(key.size())) + LenField(value_size));
}

inline uint32_t PlainStatusSize(const Span& s) {
  return static_cast<uint32_t>((s.status_message.empty() ? 0 : LenField(s.status_message.size())) +
                               (s.status != trace::StatusCode::kUnset ? 2 : 0));
}

// One attribute's sizes from the size pass, which the write pass writes without computing them
// again: the KeyValue message and its AnyValue.
struct PlainKeyValueSizes {
  uint32_t key_value;
  uint32_t value;
};

// The Span message; as MeasureSpan when every string is valid UTF-8 (repair never empties one).
// kvs[i] gets attribute i's sizes (s.attributes.size() of them).
uint32_t PlainSpanSize(const Span& s, PlainKeyValueSizes* __restrict kvs) {
  size_t n = LenField(16) + LenField(8);  // trace_id, span_id
  if (!s.trace_state.empty()) n += LenField(s.trace_state.size());
  if (s.parent_span_id.valid()) n += LenField(8);
  if (!s.name.empty()) n += LenField(s.name.size());
  if (s.kind != trace::SpanKind{0}) n += 1 + VarintSize(static_cast<uint64_t>(s.kind));
  if (s.start_unix_ns != 0) n += 9;
  if (s.end_unix_ns != 0) n += 9;
  for (const Attribute& a : s.attributes) {
    const uint32_t value = PlainValueSize(a.value);
    const uint32_t key_value = PlainKeyValueSize(a.key, value);
    *kvs++ = {key_value, value};
    n += LenField(key_value);
  }
  return static_cast<uint32_t>(n + LenField(PlainStatusSize(s)));
}

constexpr size_t ScopeSize() {
  return 1 + 1 + kScopeName.size() + (kScopeVersion.empty() ? 0 : 2 + kScopeVersion.size());
}

// ---- Plain writing: the spans of a batch whose strings are all valid UTF-8 ----
// Free functions on a __restrict cursor that they return: a char store may alias anything, and
// without it every byte written would reload the cursor and the span's fields from memory.

inline char* PutVarint(char* __restrict p, uint64_t v) {
  if (v < 0x80) {  // most lengths and values: one byte
    *p = static_cast<char>(v);
    return p + 1;
  }
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

inline char* PutHeader(char* __restrict p, int field, size_t len) {
  *p++ = static_cast<char>(Tag(field, kLen));
  return PutVarint(p, len);
}

inline char* PutFixed64(char* __restrict p, int field, uint64_t v) {
  *p++ = static_cast<char>(Tag(field, kFixed64));
  for (int i = 0; i < 8; i++) p[i] = static_cast<char>(v >> (8 * i));  // little endian
  return p + 8;
}

// Copies s whole, ORing its bytes into *any (a high bit set: not ASCII, check it as UTF-8).
// Words at a time, the last one overlapping: attribute strings are mostly 5-40 bytes.
inline char* PutBytes(char* __restrict p, std::string_view s, uint64_t* any) {
  const char* src = s.data();
  const size_t n = s.size();
  if (n >= 8) {
    uint64_t w, seen = 0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
      std::memcpy(&w, src + i, 8);
      std::memcpy(p + i, &w, 8);
      seen |= w;
    }
    std::memcpy(&w, src + n - 8, 8);
    std::memcpy(p + n - 8, &w, 8);
    *any |= seen | w;
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(p, &a, 4);
    std::memcpy(p + n - 4, &b, 4);
    *any |= a | b;
  } else {
    unsigned seen = 0;
    for (size_t k = 0; k < n; k++) {
      p[k] = src[k];
      seen |= static_cast<unsigned char>(src[k]);
    }
    *any |= seen;
  }
  return p + n;
}

inline char* PutString(char* __restrict p, int field, std::string_view s, uint64_t* any) {
  return PutBytes(PutHeader(p, field, s.size()), s, any);
}

// A span attribute as Span.attributes, with the sizes PlainSpanSize found for it.
inline char* PutPlainKeyValue(char* __restrict p, const Attribute& a, PlainKeyValueSizes sizes,
                              uint64_t* any) {
  p = PutHeader(p, 9, sizes.key_value);
  if (!a.key.empty()) p = PutString(p, 1, a.key, any);
  p = PutHeader(p, 2, sizes.value);
  switch (a.value.index()) {
    case kStringIndex:
      return PutString(p, 1, *std::get_if<std::string>(&a.value), any);
    case kIntIndex:
      *p++ = static_cast<char>(Tag(3, kVarint));
      return PutVarint(p, static_cast<uint64_t>(*std::get_if<int64_t>(&a.value)));
    case kBoolIndex:
      *p++ = static_cast<char>(Tag(2, kVarint));
      *p++ = *std::get_if<bool>(&a.value) ? 1 : 0;
      return p;
    default: {
      uint64_t bits;
      std::memcpy(&bits, std::get_if<double>(&a.value), 8);
      return PutFixed64(p, 4, bits);
    }
  }
}

// True if every string of s is valid UTF-8 (called only when one of them is not ASCII).
bool SpanStringsValid(const Span& s) {
  auto valid = [](std::string_view v) { return ValidUtf8Prefix(v) == v.size(); };
  if (!valid(s.trace_state) || !valid(s.name) || !valid(s.status_message)) return false;
  for (const Attribute& a : s.attributes) {
    if (!valid(a.key)) return false;
    if (const auto* v = std::get_if<std::string>(&a.value); v != nullptr && !valid(*v)) {
      return false;
    }
  }
  return true;
}

// A span as ScopeSpans.spans, `size` and `kvs` from PlainSpanSize. Sets *valid to false if a
// string of the span needs UTF-8 repair: the bytes written are then not the span.
char* PutPlainSpan(char* __restrict p, const Span& s, uint32_t size,
                   const PlainKeyValueSizes* __restrict kvs, bool* valid) {
  uint64_t any = 0;
  p = PutHeader(p, 2, size);
  p = PutHeader(p, 1, 16);
  std::memcpy(p, s.trace_id.bytes.data(), 16);
  p = PutHeader(p + 16, 2, 8);
  std::memcpy(p, s.span_id.bytes.data(), 8);
  p += 8;
  if (!s.trace_state.empty()) p = PutString(p, 3, s.trace_state, &any);
  if (s.parent_span_id.valid()) {
    p = PutHeader(p, 4, 8);
    std::memcpy(p, s.parent_span_id.bytes.data(), 8);
    p += 8;
  }
  if (!s.name.empty()) p = PutString(p, 5, s.name, &any);
  if (s.kind != trace::SpanKind{0}) {
    *p++ = static_cast<char>(Tag(6, kVarint));
    p = PutVarint(p, static_cast<uint64_t>(s.kind));
  }
  if (s.start_unix_ns != 0) p = PutFixed64(p, 7, s.start_unix_ns);
  if (s.end_unix_ns != 0) p = PutFixed64(p, 8, s.end_unix_ns);
  for (const Attribute& a : s.attributes) p = PutPlainKeyValue(p, a, *kvs++, &any);
  p = PutHeader(p, 15, PlainStatusSize(s));
  if (!s.status_message.empty()) p = PutString(p, 2, s.status_message, &any);
  if (s.status != trace::StatusCode::kUnset) {
    *p++ = static_cast<char>(Tag(3, kVarint));
    p = PutVarint(p, static_cast<uint64_t>(s.status));
  }
  if ((any & kHighBits) != 0 && !SpanStringsValid(s)) *valid = false;
  return p;
}

// Writes into a buffer sized exactly beforehand: no bound checks per byte.
class WireWriter {
 public:
  explicit WireWriter(char* p) : p_(p) {}
  char* end() const { return p_; }
  void set_end(char* p) { p_ = p; }

  void Byte(uint8_t b) { *p_++ = static_cast<char>(b); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      *p_++ = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<char>(v);
  }
  void Fixed64(uint64_t v) {  // little endian, as the wire format wants
    for (int i = 0; i < 8; i++) *p_++ = static_cast<char>(v >> (8 * i));
  }
  void Raw(const void* data, size_t n) {
    std::memcpy(p_, data, n);
    p_ += n;
  }
  void Header(int field, size_t len) {
    Byte(Tag(field, kLen));
    Varint(len);
  }
  void BytesField(int field, const uint8_t* data, size_t n) {
    Header(field, n);
    Raw(data, n);
  }
  void StringField(int field, std::string_view s, Measured m) {
    Header(field, m.size);
    if (m.valid) {
      Raw(s.data(), s.size());
    } else {
      RepairUtf8(s, [this](std::string_view piece) { Raw(piece.data(), piece.size()); });
    }
  }

  // A KeyValue as field `field` of its parent.
  void KeyValue(int field, std::string_view key, const ValueRef& value, const MeasuredKeyValue& m) {
    Header(field, m.size);
    if (m.key.size > 0) StringField(1, key, m.key);
    Header(2, m.value_size);
    std::visit(
        [this, &m](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string_view>) {
            StringField(1, v, m.string_value);
          } else if constexpr (std::is_same_v<T, bool>) {
            Byte(Tag(2, kVarint));
            Byte(v ? 1 : 0);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            Byte(Tag(3, kVarint));
            Varint(static_cast<uint64_t>(v));
          } else if constexpr (std::is_same_v<T, StringList>) {
            Header(5, ArrayValueSize(*v));  // AnyValue.array_value
            for (const std::string& item : *v) {
              const Measured measured = Measure(item);
              Header(1, LenField(measured.size));  // ArrayValue.values
              StringField(1, item, measured);      // AnyValue.string_value
            }
          } else {
            uint64_t bits;
            std::memcpy(&bits, &v, 8);
            Byte(Tag(4, kFixed64));
            Fixed64(bits);
          }
        },
        value);
  }

  void Span(const trace::Span& s, const MeasuredSpan& m, const MeasuredKeyValue* kvs) {
    Header(2, m.size);  // ScopeSpans.spans
    BytesField(1, s.trace_id.bytes.data(), 16);
    BytesField(2, s.span_id.bytes.data(), 8);
    if (!s.trace_state.empty()) StringField(3, s.trace_state, m.trace_state);
    if (s.parent_span_id.valid()) BytesField(4, s.parent_span_id.bytes.data(), 8);
    if (!s.name.empty()) StringField(5, s.name, m.name);
    if (s.kind != trace::SpanKind{0}) {
      Byte(Tag(6, kVarint));
      Varint(static_cast<uint64_t>(s.kind));
    }
    if (s.start_unix_ns != 0) {
      Byte(Tag(7, kFixed64));
      Fixed64(s.start_unix_ns);
    }
    if (s.end_unix_ns != 0) {
      Byte(Tag(8, kFixed64));
      Fixed64(s.end_unix_ns);
    }
    for (size_t i = 0; i < s.attributes.size(); i++) {
      const Attribute& a = s.attributes[i];
      KeyValue(9, a.key, Ref(a.value), kvs[m.first_attribute + i]);
    }
    Header(15, m.status_size);
    if (m.status_message.size > 0) StringField(2, s.status_message, m.status_message);
    if (s.status != trace::StatusCode::kUnset) {
      Byte(Tag(3, kVarint));
      Varint(static_cast<uint64_t>(s.status));
    }
  }

 private:
  char* p_;
};

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
    kvs_.clear();
  }
  // The size of span i's field in ScopeSpans; called in input order.
  size_t Measure(size_t i) {
    const size_t first = kvs_.size();
    first_kv_[i] = static_cast<uint32_t>(first);
    kvs_.resize(first + spans_[i].attributes.size());
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

// Spans encoded beforehand (EncodeOtlpSpan): their fields are copied as they are.
class EncodedSpans {
 public:
  explicit EncodedSpans(std::span<const EncodedSpan> spans) : spans_(spans) {}
  size_t Measure(size_t i) const { return spans_[i].bytes.size(); }
  void Write(WireWriter& w, size_t i) const {
    w.Raw(spans_[i].bytes.data(), spans_[i].bytes.size());
  }

 private:
  std::span<const EncodedSpan> spans_;
};

// Appends the request: pass 1 computes every size bottom up, pass 2 writes the bytes into a
// buffer of exactly the right size.
template <typename Items, typename SpanCoder>
void AppendRequest(const Items& spans, const std::vector<const Resource*>& resources,
                   const std::vector<uint32_t>& group, SpanCoder& coder, std::string* out) {
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
  const size_t start = out->size();
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
  AppendRequest(spans, resources, group, plain, out);
  if (plain.valid()) return;
  out->resize(start);
  RepairingSpans repairing(spans);
  AppendRequest(spans, resources, group, repairing, out);
}

void EncodeOtlpSpan(const Span& span, std::string* out) {
  thread_local std::vector<PlainKeyValueSizes> kv_sizes;  // the consumer thread's scratch
  if (kv_sizes.size() < span.attributes.size()) kv_sizes.resize(span.attributes.size());
  const uint32_t size = PlainSpanSize(span, kv_sizes.data());
  out->resize(LenField(size));  // the previous span's size, mostly: little or nothing to fill
  bool valid = true;
  [[maybe_unused]] char* end = PutPlainSpan(out->data(), span, size, kv_sizes.data(), &valid);
  assert(end == out->data() + out->size() && "size pass and write pass disagree");
  if (valid) return;
  // An ill-formed string: measured again with the repair, and written so.
  thread_local std::vector<MeasuredKeyValue> kvs;
  kvs.clear();
  const MeasuredSpan measured = MeasureSpan(span, &kvs);
  out->resize(LenField(measured.size));
  WireWriter w(out->data());
  w.Span(span, measured, kvs.data());
  assert(w.end() == out->data() + out->size() && "size pass and write pass disagree");
}

void AppendOtlpProto(std::span<const EncodedSpan> spans, std::string* out) {
  thread_local std::vector<const Resource*> resources;
  thread_local std::vector<uint32_t> group;
  resources.clear();
  GroupByResource(spans, &resources, &group);
  EncodedSpans encoded(spans);
  AppendRequest(spans, resources, group, encoded, out);
}

}  // namespace zerotrace::exporter
