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

// A span's series, encoded: the instrument, the service and its attribute values in the
// instrument's order. Client series get peer.service appended when they are recorded.
struct SeriesKey {
  std::string bytes;
  int instrument = -1;
};

class RedMetrics {
 public:
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
  // Hot path, one writer thread: one duration. `peer_service` (client instruments; may be
  // empty) becomes peer.service.
  void Record(const SeriesKey& key, std::string_view peer_service, double seconds);

  // Any thread: every series, grouped by service, appended to *out.
  void AppendSnapshot(std::vector<ResourceMetrics>* out) const;
  uint64_t series() const { return series_count_.load(std::memory_order_relaxed); }
  uint64_t overflow() const { return overflow_.load(std::memory_order_relaxed); }

 private:
  struct Series {
    uint64_t id;
    int instrument;
    std::string service;
    Attributes attributes;
    uint64_t start_unix_ns;
    HistogramData data;  // guarded by mu_
  };
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
