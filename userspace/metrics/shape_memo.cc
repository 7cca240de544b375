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

}  // namespace

// The set's index: the resource, the kind and the name (its length and outer 8 bytes).
uint64_t ShapeMemo::SetOf(const trace::Span& span) {
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
  return ((h * kMul) >> kSetShift) * kWays;
}

bool ShapeMemo::Same(const Form& f, const trace::Span& span, std::string_view service) {
  const std::vector<trace::Attribute>& attrs = span.attributes;
  if (f.resource != span.resource.get() || f.kind != span.kind || f.names.size() != attrs.size() ||
      f.name != span.name || f.shape->service != service) {
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
  const uint64_t set = SetOf(span);
  for (uint64_t way = set; way < set + kWays; way++) {
    Form& f = forms_[way];
    if (f.shape && Same(f, span, service)) {
      *instrument = f.instrument;
      return &f.shape;
    }
  }
  return nullptr;
}

void ShapeMemo::Remember(const trace::Span& span, int instrument, const RedMetrics::Found& found,
                         std::shared_ptr<SpanShape> shape) {
  const uint64_t set = SetOf(span);
  uint8_t& next = next_[set / kWays];
  Form& f = forms_[set + next];
  next = static_cast<uint8_t>((next + 1) % kWays);
  f.shape = nullptr;  // an empty way until it is whole
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
}

}  // namespace zerotrace::metrics
