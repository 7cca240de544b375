// The metrics stage: RED histograms per service, the service graph, and per-service summaries
// for the top view, all built from the linker's finished spans. One writer (the consumer
// thread); any number of readers (/metrics, the OTLP metrics exporter, top) take snapshots.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/counters.h"
#include "metrics/metric_data.h"
#include "metrics/red_metrics.h"
#include "metrics/service_graph.h"
#include "trace/span.h"

namespace zerotrace::metrics {

class MetricsStage {
 public:
  struct Options {
    RedMetrics::Options red;
    ServiceGraph::Options graph;
    size_t max_services = 1000;  // services in the top view's summaries; past it, counted
  };
  explicit MetricsStage(Options options);
  MetricsStage() : MetricsStage(Options()) {}

  // Hot path, writer thread: one finished, linked span. `now_ns`: monotonic now.
  void OnSpan(const trace::Span& span, uint64_t now_ns);
  // Writer thread: requests whose other side did not come in time are resolved.
  void Tick(uint64_t now_ns) { graph_.Expire(now_ns); }
  // Writer thread, at stop: every request still waiting is resolved.
  void Flush() { graph_.Expire(0, /*all=*/true); }

  // Any thread: everything, cumulative since the start.
  MetricsSnapshot Snapshot() const;
  MetricsStageStats stats() const;
  // Any thread: metrics_spans_recorded, metrics_series_overflow, ...
  void ReportCounters(CounterReport* report) const;

 private:
  const Options options_;
  RedMetrics red_;
  ServiceGraph graph_;
  SeriesKey key_;          // writer thread, reused
  std::string peer_;       // writer thread, reused
  mutable std::mutex mu_;  // guards what follows
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, ServiceSummary, Hash, std::equal_to<>> services_;
  uint64_t spans_recorded_ = 0, spans_ignored_ = 0, services_overflow_ = 0;
};

}  // namespace zerotrace::metrics
