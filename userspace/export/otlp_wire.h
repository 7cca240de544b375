// OTLP protobuf wire primitives shared by the span encoder (otlp_span_wire.cc) and the request
// assembly (otlp_proto.cc): UTF-8 repair, sizes, and a writer into an exactly sized buffer.
// Internal to zt_otlp.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "export/otlp_json.h"
#include "trace/span.h"

namespace zerotrace::exporter::otlp_wire {

using trace::Attribute;
using trace::AttributeValue;
using trace::Span;

// ---- UTF-8 repair (what AppendJsonString does to ill-formed input) ----

constexpr uint64_t kHighBits = 0x8080808080808080ull;

// Length of the valid UTF-8 prefix of s (all of s in the common case).
inline size_t ValidUtf8Prefix(std::string_view s) {
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

inline size_t Utf8Size(std::string_view s) {
  if (ValidUtf8Prefix(s) == s.size()) return s.size();
  size_t n = 0;
  RepairUtf8(s, [&n](std::string_view piece) { n += piece.size(); });
  return n;
}

inline void AssignUtf8(std::string_view s, std::string* out) {
  out->clear();
  RepairUtf8(s, [out](std::string_view piece) { out->append(piece.data(), piece.size()); });
}

// A list of strings (process.command_args), as an attribute value.
using StringList = const std::vector<std::string>*;
// An attribute value without owning its string.
using ValueRef = std::variant<std::string_view, int64_t, bool, double, StringList>;

inline ValueRef Ref(const AttributeValue& v) {
  return std::visit([](const auto& x) -> ValueRef { return ValueRef(x); }, v);
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
// ceil(bits / 7) as (bits * 9 + 64) / 64, exact for 1..64 bits: a multiply by 9 and a shift,
// where a division by 7 is a multiply, two shifts and a subtraction.
inline size_t VarintSize(uint64_t v) {
  return (static_cast<size_t>(std::bit_width(v | 1)) * 9 + 64) >> 6;
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
inline size_t ArrayValueSize(const std::vector<std::string>& items) {
  size_t n = 0;
  for (const std::string& item : items) n += LenField(LenField(Measure(item).size));
  return n;
}

inline MeasuredKeyValue MeasureKeyValue(std::string_view key, const ValueRef& value) {
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

inline MeasuredSpan MeasureSpan(const Span& s, std::vector<MeasuredKeyValue>* kvs) {
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

// One attribute's sizes from the size pass, which the write pass writes without computing them
// again: the KeyValue message and its AnyValue.
struct PlainKeyValueSizes {
  uint32_t key_value;
  uint32_t value;
};

// The Span message; as MeasureSpan when every string is valid UTF-8 (repair never empties one).
// kvs[i] gets attribute i's sizes (s.attributes.size() of them).
uint32_t PlainSpanSize(const Span& s, PlainKeyValueSizes* __restrict kvs);

// A span as ScopeSpans.spans, `size` and `kvs` from PlainSpanSize. Sets *valid to false if a
// string of the span needs UTF-8 repair: the bytes written are then not the span.
char* PutPlainSpan(char* __restrict p, const Span& s, uint32_t size,
                   const PlainKeyValueSizes* __restrict kvs, bool* valid);

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

}  // namespace zerotrace::exporter::otlp_wire
