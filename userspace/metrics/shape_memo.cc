// ShapeMemo: a span's form compared field by field with the forms of recent spans.
#include "metrics/shape_memo.h"

#include <cstdint>
#include <cstring>
#include <utility>

namespace zerotrace::metrics {
namespace {

uint64_t Load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof(w));
  return w;
}

// Short strings (names, services, methods) compared without a call.
bool Equal(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  if (n >= 8 && n <= 16) {
    return Load8(p) == Load8(q) && Load8(p + n - 8) == Load8(q + n - 8);
  }
  return std::memcmp(p, q, n) == 0;
}

}  // namespace

// A hash of the resource, the kind and the name (its length and outer 8 bytes); never 0.
uint64_t ShapeMemo::TagOf(const trace::Span& span) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  const std::string& name = span.name;
  uint64_t h = reinterpret_cast<uintptr_t>(span.resource.get()) ^
               (static_cast<uint64_t>(span.kind) << 56) ^ name.size();
  if (name.size() >= 8) {
    h = (h ^ Load8(name.data())) * kMul;
    h = (h ^ Load8(name.data() + name.size() - 8)) * kMul;
  } else {
    for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * kMul;
    h *= kMul;
  }
  return (h * kMul) | 1;
}

bool ShapeMemo::Same(const Form& f, const trace::Span& span, std::string_view service) {
  const std::vector<trace::Attribute>& attrs = span.attributes;
  if (f.resource != span.resource.get() || f.kind != span.kind || f.names.size() != attrs.size() ||
      !Equal(f.name, span.name) || !Equal(f.shape->service, service)) {
    return false;
  }
  for (size_t i = 0; i < attrs.size(); i++) {
    if (attrs[i].key.data() != f.names[i].data() || attrs[i].key.size() != f.names[i].size()) {
      return false;
    }
  }
  for (size_t k = 0; k < f.slots; k++) {
    if (f.at[k] >= 0 && !RedMetrics::ValueAt(f.shape->key.bytes, f.pos[k],
                                             attrs[static_cast<size_t>(f.at[k])].value)) {
      return false;
    }
  }
  return true;
}

const std::shared_ptr<SpanShape>* ShapeMemo::Find(const trace::Span& span, std::string_view service,
                                                  int* instrument) {
  const uint64_t tag = TagOf(span);
  const size_t set = SetOf(tag);
  for (size_t way = set; way < set + kWays; way++) {
    if (tags_[way] == tag && Same(forms_[way], span, service)) {
      *instrument = forms_[way].instrument;
      return &forms_[way].shape;
    }
  }
  return nullptr;
}

void ShapeMemo::Remember(const trace::Span& span, int instrument, const RedMetrics::Found& found,
                         std::shared_ptr<SpanShape> shape) {
  const uint64_t tag = TagOf(span);
  const size_t set = SetOf(tag);
  uint8_t& next = next_[set / kWays];
  const size_t way = set + next;
  next = static_cast<uint8_t>((next + 1) % kWays);
  Form& f = forms_[way];
  tags_[way] = 0;  // an empty way until the form is whole
  f.shape = nullptr;
  if (span.attributes.size() > INT16_MAX) return;
  const InstrumentSpec& spec = Instruments()[static_cast<size_t>(instrument)];
  f.resource = span.resource.get();
  f.kind = span.kind;
  f.instrument = instrument;
  f.name.assign(span.name);
  f.names.clear();
  for (const trace::Attribute& a : span.attributes) f.names.push_back(a.key);
  f.slots = 0;
  while (f.slots < kMaxInstrumentKeys && !spec.keys[f.slots].empty()) {
    const size_t k = f.slots++;
    f.at[k] = -1;
    if (found[k] == nullptr) continue;
    for (size_t i = 0; i < span.attributes.size(); i++) {
      if (&span.attributes[i].value == found[k]) {
        f.at[k] = static_cast<int16_t>(i);
        break;
      }
    }
    if (f.at[k] < 0) return;  // not this span's attribute: nothing to remember
  }
  RedMetrics::PositionsOf(shape->key, &f.pos);
  f.shape = std::move(shape);
  tags_[way] = tag;
}

}  // namespace zerotrace::metrics
