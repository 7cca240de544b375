// One span as its OTLP protobuf wire bytes (EncodeOtlpSpan: one pass, each nested length
// computed where it is written), and the plain span writer of AppendOtlpProto (sizes from
// string lengths first, then bytes); both check UTF-8 while copying.
#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "export/otlp_proto.h"
#include "export/otlp_wire.h"

namespace zerotrace::exporter {
namespace otlp_wire {
namespace {

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
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &v, 8);  // one store: GCC left the byte loop as eight (per span, two times)
  } else {
    for (int i = 0; i < 8; i++) p[i] = static_cast<char>(v >> (8 * i));  // little endian
  }
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

// A span attribute as Span.attributes, with the sizes PlainSpanSize found for it. Inlined (as
// the span writers below), so that *any stays in a register: passed to a call it lives on the
// stack, and its load and store per string stalled EncodeOtlpSpan 3x in some processes (4K
// aliasing with the bytes copied, by where the stack happened to start).
[[gnu::always_inline]] inline char* PutPlainKeyValue(char* __restrict p, const Attribute& a,
                                                     PlainKeyValueSizes sizes, uint64_t* any) {
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

// The Span fields before the attributes: ids, trace_state, name, kind and times.
[[gnu::always_inline]] inline char* PutSpanHead(char* __restrict p, const Span& s, uint64_t* any) {
  p = PutHeader(p, 1, 16);
  std::memcpy(p, s.trace_id.bytes.data(), 16);
  p = PutHeader(p + 16, 2, 8);
  std::memcpy(p, s.span_id.bytes.data(), 8);
  p += 8;
  if (!s.trace_state.empty()) p = PutString(p, 3, s.trace_state, any);
  if (s.parent_span_id.valid()) {
    p = PutHeader(p, 4, 8);
    std::memcpy(p, s.parent_span_id.bytes.data(), 8);
    p += 8;
  }
  if (!s.name.empty()) p = PutString(p, 5, s.name, any);
  if (s.kind != trace::SpanKind{0}) {
    *p++ = static_cast<char>(Tag(6, kVarint));
    p = PutVarint(p, static_cast<uint64_t>(s.kind));
  }
  if (s.start_unix_ns != 0) p = PutFixed64(p, 7, s.start_unix_ns);
  if (s.end_unix_ns != 0) p = PutFixed64(p, 8, s.end_unix_ns);
  return p;
}

// The Span fields after the attributes: the status.
[[gnu::always_inline]] inline char* PutSpanStatus(char* __restrict p, const Span& s,
                                                  uint64_t* any) {
  p = PutHeader(p, 15, PlainStatusSize(s));
  if (!s.status_message.empty()) p = PutString(p, 2, s.status_message, any);
  if (s.status != trace::StatusCode::kUnset) {
    *p++ = static_cast<char>(Tag(3, kVarint));
    p = PutVarint(p, static_cast<uint64_t>(s.status));
  }
  return p;
}

// ---- One pass (EncodeOtlpSpan): each length computed where it is written ----
// Only the Span message's own length needs every field first, and the encoding leaves it out
// (AppendOtlpProto writes it). Room is checked per field group against bounds on the framing.

// Most bytes PutSpanHead and PutSpanStatus write besides their strings: 2 ids (28), parent
// (10), three string headers (6 each), kind and status (11 each), times (9 each), status
// header (6).
constexpr size_t kSpanFraming = 128;
// Most bytes PutSpanStatus writes besides its message: two headers (6 each), the code (11).
constexpr size_t kStatusFraming = 24;
// Most bytes a KeyValue writes besides its key and string value: four headers (6 each), or an
// integer's tag and 10-byte varint.
constexpr size_t kKeyValueFraming = 32;
// Room beyond the previous encoding's size that a reused buffer gets up front: spans of one
// workload differ little, and what this does not cover is grown into.
constexpr size_t kRoomAhead = 128;
// A typical attribute's KeyValue (HTTP spans: ~35 bytes), for a buffer's first span.
constexpr size_t kTypicalKeyValue = 48;

// Slack a grown buffer gets past what it needs now.
constexpr size_t kGrowSlack = 64;

// Grows *out so that `need` bytes fit after p; returns p in the new buffer, *end its end.
// Exactly, not by std::string's doubling: an encoded span waits in the export queue, and its
// buffer's slack is resident memory (10k idle connections' spans, bounded_memory_e2e_test).
[[gnu::noinline]] char* Grow(std::string* out, char* p, size_t need, char** end) {
  const size_t at = static_cast<size_t>(p - out->data());
  std::string grown;
  grown.reserve(at + need + kGrowSlack);  // from the inline buffer: exactly this
  grown.append(out->data(), at);
  grown.resize(grown.capacity());
  out->swap(grown);
  *end = out->data() + out->size();
  return out->data() + at;
}

inline size_t StringValueSize(const AttributeValue& v) {
  const auto* s = std::get_if<std::string>(&v);
  return s == nullptr ? 0 : s->size();
}

}  // namespace

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

char* PutPlainSpan(char* __restrict p, const Span& s, uint32_t size,
                   const PlainKeyValueSizes* __restrict kvs, bool* valid) {
  uint64_t any = 0;
  p = PutSpanHead(PutHeader(p, 2, size), s, &any);
  for (const Attribute& a : s.attributes) p = PutPlainKeyValue(p, a, *kvs++, &any);
  p = PutSpanStatus(p, s, &any);
  if ((any & kHighBits) != 0 && !SpanStringsValid(s)) *valid = false;
  return p;
}

}  // namespace otlp_wire

using otlp_wire::LenField;
using otlp_wire::MeasuredKeyValue;
using otlp_wire::MeasuredSpan;
using otlp_wire::WireWriter;

void EncodeOtlpSpan(const trace::Span& span, std::string* out) {
  // A reused buffer keeps its previous span's bytes: growing it past them costs only the
  // zero fill of what is added, and never past its capacity (Grow does that exactly). A new
  // one gets room for typical attributes at once, and loses the slack at the end.
  const size_t head = otlp_wire::kSpanFraming + span.trace_state.size() + span.name.size() +
                      span.status_message.size();
  const bool fresh = out->empty();
  const size_t want = fresh ? head + span.attributes.size() * otlp_wire::kTypicalKeyValue
                            : std::max(out->size() + otlp_wire::kRoomAhead, head);
  if (want > out->capacity()) {
    std::string sized;
    sized.reserve(want);  // exactly (resize would double the capacity)
    out->swap(sized);
  }
  out->resize(std::max(std::min(want, out->capacity()), head));
  char* p = out->data();
  char* end = p + out->size();
  const size_t tail = otlp_wire::kStatusFraming + span.status_message.size();
  uint64_t any = 0;
  p = otlp_wire::PutSpanHead(p, span, &any);
  for (const trace::Attribute& a : span.attributes) {
    const size_t need =
        a.key.size() + otlp_wire::StringValueSize(a.value) + otlp_wire::kKeyValueFraming + tail;
    if (static_cast<size_t>(end - p) < need) p = otlp_wire::Grow(out, p, need, &end);
    const uint32_t value = otlp_wire::PlainValueSize(a.value);
    p = otlp_wire::PutPlainKeyValue(p, a, {otlp_wire::PlainKeyValueSize(a.key, value), value},
                                    &any);
  }
  p = otlp_wire::PutSpanStatus(p, span, &any);
  assert(p <= end && "room checks missed a field");
  out->resize(static_cast<size_t>(p - out->data()));
  if (fresh && out->capacity() > out->size() + otlp_wire::kGrowSlack) out->shrink_to_fit();
  if ((any & otlp_wire::kHighBits) == 0 || otlp_wire::SpanStringsValid(span)) return;
  // An ill-formed string: measured with the repair, and written so, without the span's own
  // tag and length (AppendOtlpProto writes them).
  thread_local std::vector<MeasuredKeyValue> kvs;
  kvs.clear();
  const MeasuredSpan measured = otlp_wire::MeasureSpan(span, &kvs);
  out->resize(LenField(measured.size));
  WireWriter w(out->data());
  w.Span(span, measured, kvs.data());
  assert(w.end() == out->data() + out->size() && "size pass and write pass disagree");
  out->erase(0, out->size() - measured.size);
}

}  // namespace zerotrace::exporter
