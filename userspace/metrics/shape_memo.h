// The metrics stage's memo of recent span forms: a span like one seen before finds its shape
// with no instrument search, no key written, hashed or compared. Writer thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/instruments.h"
#include "metrics/red_metrics.h"
#include "metrics/service_graph.h"
#include "trace/span.h"

namespace zerotrace::metrics {

// Per resource, kind and span name, the shapes recent spans went to. A span matches a
// remembered form when its resource (the object), service, kind and name are the same, its
// attribute names are the same ones in the same order (so its instrument and which attributes
// make its key are too), and the values of those attributes are equal (doubles bit for bit).
// Everything the series key is made of is then equal, so the shape is the one the key would
// find. Spans whose key cuts a value (RedMetrics::Extract false) are never remembered.
class ShapeMemo {
 public:
  // Hot path: the shape of a span like a remembered one, and its instrument; null if none.
  // `service`: the span's service as the stage names it.
  const std::shared_ptr<SpanShape>* Find(const trace::Span& span, std::string_view service,
                                         int* instrument);
  // Remembers `span`'s form: its instrument, the attributes Extract found, and its shape
  // (whose service is the span's). Replaces the least recently used form of its set.
  void Remember(const trace::Span& span, int instrument, const RedMetrics::Found& found,
                std::shared_ptr<SpanShape> shape);

 private:
  struct Form {
    const trace::Resource* resource = nullptr;  // never dereferenced: the service is compared
    trace::SpanKind kind = trace::SpanKind::kInternal;
    int instrument = -1;
    size_t slots = 0;  // the instrument's keys
    std::string name;
    // The span's attribute names, in order. Names are string literals (trace::Attribute):
    // the same name at the same address is the same name; another address is a miss.
    std::vector<std::string_view> names;
    std::array<int16_t, kMaxInstrumentKeys> at{};  // each key's attribute index, -1: absent
    RedMetrics::ValuePositions pos{};              // each key's value in shape->key
    std::shared_ptr<SpanShape> shape;              // null: an empty way
  };
  static uint64_t TagOf(const trace::Span& span);
  static size_t SetOf(uint64_t tag) { return (tag >> kSetShift) * kWays; }
  static bool Same(const Form& f, const trace::Span& span, std::string_view service);

  static constexpr int kWays = 4;
  static constexpr int kSetShift = 64 - 7;
  static constexpr size_t kSets = size_t{1} << (64 - kSetShift);
  std::array<uint64_t, kWays * kSets> tags_{};  // each way's TagOf, 0: empty
  std::array<Form, kWays * kSets> forms_;
  std::array<uint8_t, kSets> next_{};  // per set: the way replaced next (first in, first out)
};

}  // namespace zerotrace::metrics
