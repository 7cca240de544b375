// What the metrics stage hands to its readers (Prometheus, OTLP, top): RED histograms and
// service-graph edges as protocol-neutral metric families, grouped by service.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "trace/span.h"

namespace zerotrace::metrics {

// Bucket i counts values in (bounds[i-1], bounds[i]]; the last bucket is unbounded above.
inline constexpr size_t kMaxBuckets = 16;  // bounds + 1, for every bounds list in use

// One histogram's state: per-bucket counts (not cumulative), as OTLP's bucket_counts.
struct HistogramData {
  uint64_t count = 0;
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  std::array<uint64_t, kMaxBuckets> buckets{};

  // Hot path.
  void Record(double value, std::span<const double> bounds) {
    size_t i = 0;
    while (i < bounds.size() && value > bounds[i]) i++;
    buckets[i]++;
    count++;
    sum += value;
    if (value < min) min = value;
    if (value > max) max = value;
  }
};

using Attributes = std::vector<trace::ResourceAttribute>;

// The attribute that marks a series holding what the cardinality limit folded away.
inline constexpr char kOverflowAttribute[] = "otel.metric.overflow";

// One series: a histogram (histogram families) or a monotonic count (counter families).
struct Point {
  uint64_t id = 0;  // stable for the agent's life: readers diff snapshots by it (delta)
  Attributes attributes;
  uint64_t start_unix_ns = 0;  // when the series began (cumulative start)
  HistogramData histogram;
  uint64_t value = 0;
};

// One metric: its OpenTelemetry name, description and unit, and its points.
struct MetricFamily {
  enum class Kind { kHistogram, kCounter };
  std::string name, description, unit;
  Kind kind = Kind::kHistogram;
  std::vector<double> bounds;  // histograms
  std::vector<Point> points;
};

// The metrics of one service (RED), or of the node (the service graph: service_name empty).
struct ResourceMetrics {
  std::string service_name;
  std::vector<MetricFamily> families;
};

// Self-metrics of the metrics stage; every cap that folds or drops data is counted.
struct MetricsStageStats {
  uint64_t spans_recorded = 0;     // spans measured by a RED instrument
  uint64_t spans_ignored = 0;      // spans of no instrument (not HTTP, RPC or database)
  uint64_t series = 0;             // RED series (attribute sets) in use
  uint64_t series_overflow = 0;    // recordings folded into an overflow series
  uint64_t edges = 0;              // service-graph edges in use
  uint64_t edges_paired = 0;       // requests between two services traced here
  uint64_t edges_to_peer = 0;      // client requests whose server is not traced here
  uint64_t edge_overflow = 0;      // edge recordings folded into the overflow edge
  uint64_t unpaired_servers = 0;   // server spans whose client span was not seen here
  uint64_t pending_dropped = 0;    // spans given up because too many waited for their peer
  uint64_t services_overflow = 0;  // spans of services past the top view's limit
};

// The top view's figures for one service or edge: counts and a fine latency sketch.
struct LatencySketch {
  // Log-spaced buckets: bucket i holds values in [kBase * 2^((i-1)/4), kBase * 2^(i/4)),
  // bucket 0 everything below kBase; 1 µs .. ~18 min with ~19% relative width.
  static constexpr double kBase = 1e-6;
  static constexpr size_t kBuckets = 121;
  uint64_t count = 0, errors = 0;
  double sum = 0;
  std::array<uint32_t, kBuckets> buckets{};
  // Hot path.
  void Record(double seconds, bool error);
  // The q-quantile (0..1) of the values recorded between `earlier` and this; NaN when none.
  double QuantileSince(const LatencySketch& earlier, double q) const;
};

struct ServiceSummary {
  std::string service;
  LatencySketch server;  // requests it served
  LatencySketch client;  // requests it made
};

struct EdgeSummary {
  std::string client, server;
  bool peer = false;  // the server is a peer address, not a traced service
  LatencySketch client_side;
};

struct MetricsSnapshot {
  uint64_t time_unix_ns = 0;
  std::vector<ResourceMetrics> resources;
  std::vector<ServiceSummary> services;
  std::vector<EdgeSummary> edges;
  MetricsStageStats stats;
};

}  // namespace zerotrace::metrics
