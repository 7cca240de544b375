// OTLP/JSON writer: hand-written for speed (no DOM per span); tests check it against nlohmann.
#include "export/otlp_json.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <variant>

#ifndef ZT_VERSION
#define ZT_VERSION "0.0.0"
#endif

namespace zerotrace::exporter {
namespace {

using trace::Attribute;
using trace::AttributeValue;
using trace::Resource;
using trace::Span;

constexpr char kHexDigits[] = "0123456789abcdef";

// Bytes that can be copied into a JSON string as they are: printable ASCII except '"' and '\\'.
constexpr std::array<bool, 256> kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; c++) t[c] = c != '"' && c != '\\';
  return t;
}();

// Most bytes WriteJsonString can produce for n input bytes: quotes, then \u00XX per byte.
constexpr size_t JsonStringBound(size_t n) { return 6 * n + 2; }

// True when none of 8 bytes needs attention: no control, '"', '\\' or non-ASCII byte. The
// classic bit tricks give exact yes/no answers per word (positions may blur; unused here).
inline bool AllPlain8(uint64_t w) {
  constexpr uint64_t k01 = 0x0101010101010101ull, k80 = 0x8080808080808080ull;
  const uint64_t below_space = (w - k01 * 0x20) & ~w & k80;
  const uint64_t q = w ^ (k01 * '"'), quote = (q - k01) & ~q & k80;
  const uint64_t b = w ^ (k01 * '\\'), backslash = (b - k01) & ~b & k80;
  return ((w & k80) | below_space | quote | backslash) == 0;
}

// Writes s as a quoted JSON string at p, which has room for JsonStringBound(s.size()) bytes;
// returns the end.
char* WriteJsonString(std::string_view s, char* p) {
  *p++ = '"';
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {  // fast path: 8 plain bytes at a time
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (AllPlain8(w)) {
        std::memcpy(p, &w, 8);
        p += 8;
        i += 8;
        continue;
      }
    }
    const size_t chunk_end = std::min(i + 8, n);
    while (i < chunk_end) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (kPlain[c]) {
        *p++ = static_cast<char>(c);
        i++;
        continue;
      }
      if (c >= 0x80) {
        const Utf8Step step = DecodeUtf8(s.substr(i));
        if (step.valid) {
          std::memcpy(p, s.data() + i, step.length);
          p += step.length;
        } else {
          std::memcpy(p, "\xEF\xBF\xBD", 3);  // U+FFFD
          p += 3;
        }
        i += step.length;
        continue;
      }
      *p++ = '\\';
      switch (c) {
        case '"':
        case '\\':
          *p++ = static_cast<char>(c);
          break;
        case '\b':
          *p++ = 'b';
          break;
        case '\f':
          *p++ = 'f';
          break;
        case '\n':
          *p++ = 'n';
          break;
        case '\r':
          *p++ = 'r';
          break;
        case '\t':
          *p++ = 't';
          break;
        default:
          std::memcpy(p, "u00", 3);
          p[3] = kHexDigits[c >> 4];
          p[4] = kHexDigits[c & 15];
          p += 5;
      }
      i++;
    }
  }
  *p++ = '"';
  return p;
}

// Appends to a std::string through a raw cursor: each writer asks for its worst case once, so
// the per-byte path has no capacity checks. The string is trimmed to what was written at the end.
class Sink {
 public:
  explicit Sink(std::string* out) : out_(out), pos_(out->size()) {}
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;
  ~Sink() { out_->resize(pos_); }

  // A cursor with room for n bytes; hand the end of what was written to Advance().
  char* Room(size_t n) {
    if (out_->size() - pos_ < n) [[unlikely]]
      Grow(n);
    return out_->data() + pos_;
  }
  void Advance(char* end) { pos_ = static_cast<size_t>(end - out_->data()); }

  template <size_t N>
  void Put(const char (&literal)[N]) {
    std::memcpy(Room(N - 1), literal, N - 1);
    pos_ += N - 1;
  }
  void Put(std::string_view v) {
    std::memcpy(Room(v.size()), v.data(), v.size());
    pos_ += v.size();
  }
  void Put(char c) {
    *Room(1) = c;
    pos_++;
  }
  void String(std::string_view s) { Advance(WriteJsonString(s, Room(JsonStringBound(s.size())))); }
  template <typename Int>
  void Decimal(Int v) {
    char* p = Room(24);
    Advance(std::to_chars(p, p + 24, v).ptr);
  }
  // proto3 JSON: 64-bit integers are strings.
  template <typename Int>
  void QuotedDecimal(Int v) {
    char* p = Room(26);
    *p++ = '"';
    p = std::to_chars(p, p + 24, v).ptr;
    *p++ = '"';
    Advance(p);
  }
  template <size_t N>
  void QuotedHex(const std::array<uint8_t, N>& bytes) {
    char* p = Room(2 * N + 2);
    *p++ = '"';
    for (uint8_t b : bytes) {
      *p++ = kHexDigits[b >> 4];
      *p++ = kHexDigits[b & 15];
    }
    *p++ = '"';
    Advance(p);
  }
  void Double(double v) {
    // proto3 JSON spells the non-finite doubles as strings; JSON numbers cannot hold them.
    if (std::isnan(v)) {
      Put("\"NaN\"");
    } else if (std::isinf(v)) {
      Put(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    } else {
      char* p = Room(32);
      Advance(std::to_chars(p, p + 32, v).ptr);  // shortest round-trip form
    }
  }

 private:
  // Grows by a fixed step: resize() zero-fills, so geometric steps would fill twice the output
  // (std::string's capacity still grows geometrically underneath).
  void Grow(size_t n) { out_->resize(std::max(pos_ + n, out_->size() + 16384)); }

  std::string* out_;
  size_t pos_;  // bytes written; out_->size() may be larger until the destructor trims it
};

void PutAnyValue(const AttributeValue& value, Sink& out) {
  std::visit(
      [&out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          out.Put("{\"stringValue\":");
          out.String(v);
        } else if constexpr (std::is_same_v<T, bool>) {
          out.Put(v ? "{\"boolValue\":true" : "{\"boolValue\":false");
        } else if constexpr (std::is_same_v<T, int64_t>) {
          out.Put("{\"intValue\":");
          out.QuotedDecimal(v);
        } else {
          static_assert(std::is_same_v<T, double>);
          out.Put("{\"doubleValue\":");
          out.Double(v);
        }
        out.Put('}');
      },
      value);
}

// One KeyValue, with a leading comma unless it is the first of its list.
void PutKeyValue(std::string_view key, const AttributeValue& value, bool* first, Sink& out) {
  out.Put(*first ? "{\"key\":" : ",{\"key\":");
  *first = false;
  out.String(key);
  out.Put(",\"value\":");
  PutAnyValue(value, out);
  out.Put('}');
}

void PutStringKeyValue(std::string_view key, std::string_view value, bool* first, Sink& out) {
  out.Put(*first ? "{\"key\":" : ",{\"key\":");
  *first = false;
  out.String(key);
  out.Put(",\"value\":{\"stringValue\":");
  out.String(value);
  out.Put("}}");
}

void PutResource(const Resource* r, Sink& out) {
  static const Resource kEmpty;
  if (r == nullptr) r = &kEmpty;
  out.Put("{\"attributes\":[");
  bool first = true;
  if (!r->service_name.empty()) {
    PutStringKeyValue("service.name", r->service_name, &first, out);
  } else {
    // The resource semantic conventions' default when a service has no name.
    std::string fallback = "unknown_service";
    if (!r->executable_name.empty()) fallback += ":" + r->executable_name;
    PutStringKeyValue("service.name", fallback, &first, out);
  }
  if (r->pid != 0) PutKeyValue("process.pid", int64_t{r->pid}, &first, out);
  if (!r->executable_name.empty()) {
    PutStringKeyValue("process.executable.name", r->executable_name, &first, out);
  }
  if (!r->executable_path.empty()) {
    PutStringKeyValue("process.executable.path", r->executable_path, &first, out);
  }
  if (!r->host_name.empty()) PutStringKeyValue("host.name", r->host_name, &first, out);
  PutStringKeyValue("os.type", "linux", &first, out);
  if (!r->container_id.empty()) PutStringKeyValue("container.id", r->container_id, &first, out);
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
    if (!value->empty()) PutStringKeyValue(key, *value, &first, out);
  }
  if (!r->command_args.empty()) {
    out.Put(",{\"key\":\"process.command_args\",\"value\":{\"arrayValue\":{\"values\":[");
    for (size_t i = 0; i < r->command_args.size(); i++) {
      out.Put(i == 0 ? "{\"stringValue\":" : ",{\"stringValue\":");
      out.String(r->command_args[i]);
      out.Put('}');
    }
    out.Put("]}}}");
  }
  // OTLP requires unique keys: what the agent knows about the process wins over extras.
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
    if (!duplicate) PutKeyValue(a.key, a.value, &first, out);
  }
  out.Put("]}");
}

void PutSpan(const Span& s, Sink& out) {
  out.Put("{\"traceId\":");
  out.QuotedHex(s.trace_id.bytes);
  out.Put(",\"spanId\":");
  out.QuotedHex(s.span_id.bytes);
  if (!s.trace_state.empty()) {
    out.Put(",\"traceState\":");
    out.String(s.trace_state);
  }
  if (s.parent_span_id.valid()) {
    out.Put(",\"parentSpanId\":");
    out.QuotedHex(s.parent_span_id.bytes);
  }
  out.Put(",\"name\":");
  out.String(s.name);
  out.Put(",\"kind\":");
  out.Decimal(static_cast<int>(s.kind));
  out.Put(",\"startTimeUnixNano\":");
  out.QuotedDecimal(s.start_unix_ns);
  out.Put(",\"endTimeUnixNano\":");
  out.QuotedDecimal(s.end_unix_ns);
  out.Put(",\"attributes\":[");
  bool first = true;
  for (const Attribute& a : s.attributes) PutKeyValue(a.key, a.value, &first, out);
  out.Put("],\"status\":{");
  if (s.status != trace::StatusCode::kUnset) {
    out.Put("\"code\":");
    out.Decimal(static_cast<int>(s.status));
  }
  if (!s.status_message.empty()) {
    if (s.status != trace::StatusCode::kUnset) out.Put(',');
    out.Put("\"message\":");
    out.String(s.status_message);
  }
  out.Put("}}");
}

}  // namespace

Utf8Step DecodeUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const uint32_t b0 = p[0];
  if (b0 < 0x80) return {b0, 1, true};
  // Unicode Table 3-7 (well-formed byte sequences): the second byte's range depends on the first.
  uint32_t need, cp;
  uint32_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return {0xFFFD, 1, false};
  }
  for (uint32_t i = 1; i <= need; i++) {
    if (i >= s.size() || p[i] < lo || p[i] > hi) return {0xFFFD, i, false};
    cp = (cp << 6) | (p[i] & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  return {cp, need + 1, true};
}

void AppendJsonString(std::string_view s, std::string* out) {
  Sink sink(out);
  sink.String(s);
}

void AppendOtlpJson(const std::vector<Span>& spans, std::string* out) {
  // Group spans by resource, in order of first appearance; consecutive spans of one process are
  // the common case, so the last match is tried first.
  std::vector<const Resource*> resources;
  std::vector<uint32_t> group_of(spans.size());
  uint32_t last = 0;
  for (size_t i = 0; i < spans.size(); i++) {
    const Resource* r = spans[i].resource.get();
    if (!resources.empty() && resources[last] == r) {
      group_of[i] = last;
      continue;
    }
    uint32_t g = 0;
    while (g < resources.size() && !trace::SameResource(resources[g], r)) g++;
    if (g == resources.size()) resources.push_back(r);
    group_of[i] = last = g;
  }
  // Counting sort: spans of each group, in input order.
  std::vector<uint32_t> start(resources.size() + 1, 0);
  for (uint32_t g : group_of) start[g + 1]++;
  for (size_t g = 0; g < resources.size(); g++) start[g + 1] += start[g];
  std::vector<uint32_t> order(spans.size());
  {
    std::vector<uint32_t> next(start.begin(), start.end() - 1);
    for (size_t i = 0; i < spans.size(); i++) order[next[group_of[i]]++] = i;
  }

  Sink sink(out);
  sink.Put("{\"resourceSpans\":[");
  for (size_t g = 0; g < resources.size(); g++) {
    sink.Put(g == 0 ? "{\"resource\":" : ",{\"resource\":");
    PutResource(resources[g], sink);
    sink.Put(",\"scopeSpans\":[{\"scope\":{\"name\":\"zerotrace\",\"version\":\"" ZT_VERSION
             "\"},\"spans\":[");
    for (uint32_t k = start[g]; k < start[g + 1]; k++) {
      if (k > start[g]) sink.Put(',');
      PutSpan(spans[order[k]], sink);
    }
    sink.Put("]}]}");
  }
  sink.Put("]}");
}

std::string ToOtlpJson(const std::vector<Span>& spans) {
  std::string out;
  out.reserve(64 + spans.size() * 1024);
  AppendOtlpJson(spans, &out);
  return out;
}

}  // namespace zerotrace::exporter
