// RED histograms per service: request durations by the instruments of instruments.h, with a
// bounded number of series per instrument.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "metrics/instruments.h"
#include "metrics/metric_data.h"
#include "trace/span.h"

namespace zerotrace::metrics {

// Longest attribute value kept in a series (longer ones are cut): a Host header or an inferred
// route may be long, and every series holds its values twice (key and attributes).
inline constexpr size_t kMaxSeriesValueBytes = 256;

// A span's series, encoded: the instrument, the service and its attribute values in the
// instrument's order. Client series get peer.service appended when they are recorded.
struct SeriesKey {
  std::string bytes;
  int instrument = -1;
};

class RedMetrics {
 public:
  // One attribute set of one instrument; its data is guarded by the store's lock.
  struct Series {
    uint64_t id;
    int instrument;
    bool overflow;  // the service's overflow series: every recording into it is counted
    std::string service;
    Attributes attributes;
    uint64_t start_unix_ns;
    HistogramData data;  // guarded by mu_
  };
  // The span attribute carrying each of an instrument's keys, or nullptr.
  using Found = std::array<const trace::AttributeValue*, kMaxInstrumentKeys>;
  struct Options {
    // Distinct attribute sets per instrument (all services together); past it, a service's
    // further sets fold into its overflow series (otel.metric.overflow=true), counted.
    size_t max_series_per_instrument = 2000;
  };
  explicit RedMetrics(Options options) : options_(options) {}
  RedMetrics() : RedMetrics(Options()) {}

  // Hot path: `span`'s series key into *key (its storage reused).
  static void KeyOf(int instrument, const trace::Span& span, std::string_view service,
                    SeriesKey* key);
  // Hot path, the same in steps, so that a cache can find a span's series without writing its
  // key: the attributes that make the key (false: a value is cut in the key, so spans that
  // differ may share one key), a hash of the key it would write, whether that key is `key`,
  // and the key itself.
  static bool Extract(int instrument, const trace::Span& span, Found* found);
  static uint64_t HashOf(int instrument, const trace::Span& span, std::string_view service,
                         const Found& found);
  static bool Matches(int instrument, const trace::Span& span, std::string_view service,
                      const Found& found, std::string_view key);
  static void KeyOf(int instrument, const trace::Span& span, std::string_view service,
                    const Found& found, SeriesKey* key);
  // Where in `key` (written by KeyOf) each of its instrument's attribute values starts, so
  // that a span's value can be compared with the key's one by one (ValueAt). Hot path.
  using ValuePositions = std::array<uint16_t, kMaxInstrumentKeys>;
  static void PositionsOf(const SeriesKey& key, ValuePositions* at);
  static bool ValueAt(std::string_view key, size_t pos, const trace::AttributeValue& value);
  // Hot path, one writer thread: one duration. `peer_service` (client instruments; may be
  // empty) becomes peer.service.
  void Record(const SeriesKey& key, std::string_view peer_service, double seconds);
  // The same in two steps: the series (created, or the service's overflow series, if new),
  // then durations into it. A series lives as long as this object.
  Series* Resolve(const SeriesKey& key, std::string_view peer_service);
  void RecordTo(Series* series, double seconds);
  // RecordTo with mutex() already held: a caller that updates its own data under the same lock
  // (the service graph's edges) takes one lock per request, not two.
  void RecordToLocked(Series* series, double seconds);
  // The lock guarding the series' data; a store that shares it must not call Resolve, RecordTo
  // or AppendSnapshot while holding it.
  std::mutex& mutex() const { return mu_; }

  // Any thread: every series, grouped by service, appended to *out.
  void AppendSnapshot(std::vector<ResourceMetrics>* out) const;
  uint64_t series() const { return series_count_.load(std::memory_order_relaxed); }
  uint64_t overflow() const { return overflow_.load(std::memory_order_relaxed); }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  Series* Create(std::string_view full_key, const SeriesKey& key, std::string_view peer_service);

  const Options options_;
  std::string scratch_;       // the full key (with peer.service), reused; writer thread only
  std::string overflow_key_;  // under mu_, reused
  mutable std::mutex mu_;
  std::unordered_map<std::string, Series*, Hash, std::equal_to<>> index_;
  std::vector<std::unique_ptr<Series>> series_;
  std::array<size_t, kMaxInstruments> per_instrument_{};
  std::atomic<uint64_t> series_count_{0}, overflow_{0};
};

// Wall-clock now in ns since the epoch.
uint64_t WallNowNs();

}  // namespace zerotrace::metrics
