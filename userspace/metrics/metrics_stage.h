// The metrics stage: RED histograms per service, the service graph, and per-service summaries
// for the top view, all built from the linker's finished spans. One writer (the consumer
// thread); any number of readers (/metrics, the OTLP metrics exporter, top) take snapshots.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/counters.h"
#include "metrics/metric_data.h"
#include "metrics/recent_traces.h"
#include "metrics/red_metrics.h"
#include "metrics/service_graph.h"
#include "metrics/shape_memo.h"
#include "trace/span.h"

namespace zerotrace::metrics {

class MetricsStage {
 public:
  struct Options {
    RedMetrics::Options red;
    ServiceGraph::Options graph;
    size_t max_services = 1000;  // services in the top view's summaries; past it, counted
    size_t recent_spans = 0;     // spans kept for the slowest recent traces (top); 0: none
    // The top view's latency sketches per service and per edge (Snapshot's services and
    // edges). Nothing else reads them: the agent keeps them only with --top.
    bool summaries = true;
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
  // Writer thread: the shape of a span (made, or found in the cache), null if it has none.
  std::shared_ptr<SpanShape> ShapeOf(int instrument, const trace::Span& span,
                                     std::string_view service);
  void Fill(SpanShape* shape, const trace::Span& span, std::string_view service);

  const Options options_;
  RedMetrics red_;
  ServiceGraph graph_;
  RecentTraces recent_;
  // Writer thread: the shapes of recent spans, by their key's hash (two ways a set). A span
  // whose shape is here finds its series, service summary and edges without a key.
  static constexpr int kShapeShift = 64 - 10;
  static constexpr size_t kShapeSlots = size_t{1} << (64 - kShapeShift);
  std::array<std::shared_ptr<SpanShape>, kShapeSlots> shapes_;
  // Writer thread: a span like a recent one (same resource, name, attribute names and key
  // values) finds its shape here before any of the above.
  ShapeMemo memo_;
  std::atomic<uint64_t> spans_recorded_{0}, spans_ignored_{0}, services_overflow_{0};
  mutable std::mutex mu_;  // guards what follows
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, ServiceSummary, Hash, std::equal_to<>> services_;
};

}  // namespace zerotrace::metrics
