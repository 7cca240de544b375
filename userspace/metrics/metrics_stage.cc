// MetricsStage: one span into its RED series, the service graph and its service's summary.
#include "metrics/metrics_stage.h"

#include <cstring>

#include "metrics/instruments.h"

namespace zerotrace::metrics {
namespace {

constexpr std::string_view kUnknownService = "unknown_service";

uint64_t IdOf(const trace::SpanId& id) {
  uint64_t v;
  std::memcpy(&v, id.bytes.data(), sizeof(v));
  return v;
}

// "host:port" of the server a client span called (server.address and server.port).
std::string_view PeerOf(const trace::Span& span, std::string* scratch) {
  scratch->clear();
  if (const auto* a = span.Find("server.address"); a && std::holds_alternative<std::string>(*a)) {
    scratch->append(std::get<std::string>(*a));
  }
  if (const auto* p = span.Find("server.port"); p && std::holds_alternative<int64_t>(*p)) {
    scratch->append(":").append(std::to_string(std::get<int64_t>(*p)));
  }
  if (scratch->empty()) scratch->assign("unknown");
  return *scratch;
}

}  // namespace

MetricsStage::MetricsStage(Options options)
    : options_(options),
      red_(options.red),
      graph_(
          [&options] {
            ServiceGraph::Options g = options.graph;
            g.sketches = options.summaries;
            return g;
          }(),
          &red_),
      recent_(options.recent_spans) {}

void MetricsStage::OnSpan(const trace::Span& span, uint64_t now_ns) {
  recent_.Add(span);
  const std::string_view service = span.resource && !span.resource->service_name.empty()
                                       ? std::string_view(span.resource->service_name)
                                       : kUnknownService;
  GraphSpan g;
  int instrument;
  std::shared_ptr<SpanShape> made;
  // A span like a recent one: no instrument search, no key, and its shape not copied.
  g.shape = memo_.Find(span, service, &instrument);
  if (g.shape == nullptr) {
    instrument = InstrumentOf(span);
    if (instrument < 0) {
      spans_ignored_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    made = ShapeOf(instrument, span, service);
    g.shape = &made;
  }
  SpanShape& shape = **g.shape;
  const double seconds =
      span.end_unix_ns > span.start_unix_ns ? (span.end_unix_ns - span.start_unix_ns) * 1e-9 : 0;
  const bool error = span.status == trace::StatusCode::kError;
  const bool client = Instruments()[static_cast<size_t>(instrument)].client;
  spans_recorded_.fetch_add(1, std::memory_order_relaxed);
  if (shape.summary != nullptr) {
    std::lock_guard lock(mu_);
    (client ? shape.summary->client : shape.summary->server).Record(seconds, error);
  } else if (options_.summaries) {
    services_overflow_.fetch_add(1, std::memory_order_relaxed);
  }
  g.span_id = IdOf(span.span_id);
  g.parent_span_id = IdOf(span.parent_span_id);
  g.seconds = seconds;
  g.error = error;
  if (client) {
    graph_.OnClient(g, now_ns);  // records the RED client series once paired or not
  } else {
    if (shape.series == nullptr) shape.series = red_.Resolve(shape.key, {});
    graph_.OnServer(g, now_ns);  // records the RED server series, under the lock it takes
  }
}

std::shared_ptr<SpanShape> MetricsStage::ShapeOf(int instrument, const trace::Span& span,
                                                 std::string_view service) {
  RedMetrics::Found found;
  if (!RedMetrics::Extract(instrument, span, &found) || service.size() > kMaxSeriesValueBytes) {
    // A value the key cuts: this span's service or peer may differ from another's with the
    // same key, so its shape is its own.
    auto shape = std::make_shared<SpanShape>();
    RedMetrics::KeyOf(instrument, span, service, found, &shape->key);
    Fill(shape.get(), span, service);
    return shape;
  }
  const uint64_t hash = RedMetrics::HashOf(instrument, span, service, found);
  // Two ways per set, the most recently used first. The product's top bits depend on every
  // bit of the hash.
  const size_t set = ((hash * 0x9e3779b97f4a7c15ULL) >> kShapeShift) & ~size_t{1};
  std::shared_ptr<SpanShape>& slot = shapes_[set];
  std::shared_ptr<SpanShape>& other = shapes_[set + 1];
  for (std::shared_ptr<SpanShape>* way : {&slot, &other}) {
    if (*way && (*way)->hash == hash &&
        RedMetrics::Matches(instrument, span, service, found, (*way)->key.bytes)) {
      if (way == &other) std::swap(slot, other);
      memo_.Remember(span, instrument, found, slot);
      return slot;
    }
  }
  if (slot) std::swap(slot, other);  // an empty way is used, else the least recently used
  if (!slot || slot.use_count() > 1) {
    slot = std::make_shared<SpanShape>();  // the old one lives on in the spans that wait
  } else {                                 // reused, with its strings' storage
    slot->summary = nullptr;
    slot->series = slot->peer_series = nullptr;
    slot->edge = slot->peer_edge = nullptr;
    slot->paired_service.clear();
    slot->peer.clear();
  }
  slot->hash = hash;
  RedMetrics::KeyOf(instrument, span, service, found, &slot->key);
  Fill(slot.get(), span, service);
  memo_.Remember(span, instrument, found, slot);
  return slot;
}

// A new shape's service, peer and service summary; its series are found when first recorded.
void MetricsStage::Fill(SpanShape* shape, const trace::Span& span, std::string_view service) {
  shape->service.assign(service);
  if (Instruments()[static_cast<size_t>(shape->key.instrument)].client) {
    PeerOf(span, &shape->peer);
  }
  if (!options_.summaries) return;
  std::lock_guard lock(mu_);
  auto it = services_.find(service);
  if (it == services_.end() && services_.size() < options_.max_services) {
    it = services_.emplace(std::string(service), ServiceSummary()).first;
    it->second.service.assign(service);
  }
  shape->summary = it != services_.end() ? &it->second : nullptr;
}

MetricsSnapshot MetricsStage::Snapshot() const {
  MetricsSnapshot s;
  s.time_unix_ns = WallNowNs();
  red_.AppendSnapshot(&s.resources);
  ResourceMetrics node;  // the service graph belongs to the node, not to one service
  graph_.AppendFamilies(&node.families);
  if (!node.families.empty()) s.resources.push_back(std::move(node));
  graph_.AppendSummaries(&s.edges);
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, summary] : services_) s.services.push_back(summary);
  }
  if (options_.recent_spans > 0) {
    constexpr uint64_t kSlowTraceWindowNs = 60'000'000'000;  // the last minute
    s.slow_traces = recent_.Slowest(5, kSlowTraceWindowNs);
  }
  s.stats = stats();
  return s;
}

MetricsStageStats MetricsStage::stats() const {
  MetricsStageStats st;
  st.spans_recorded = spans_recorded_.load(std::memory_order_relaxed);
  st.spans_ignored = spans_ignored_.load(std::memory_order_relaxed);
  st.services_overflow = services_overflow_.load(std::memory_order_relaxed);
  st.series = red_.series();
  st.series_overflow = red_.overflow();
  graph_.AddStats(&st);
  return st;
}

void MetricsStage::ReportCounters(CounterReport* r) const {
  const MetricsStageStats s = stats();
  r->Counter("metrics_spans", "zerotrace_metrics_spans_recorded_total",
             "spans measured by a RED instrument", s.spans_recorded);
  r->Counter(nullptr, "zerotrace_metrics_spans_ignored_total", "spans no RED instrument measures",
             s.spans_ignored);
  r->Gauge(nullptr, "zerotrace_metrics_series", "RED series (attribute sets) in use", s.series);
  r->Counter("metrics_series_overflow", "zerotrace_metrics_series_overflow_total",
             "recordings folded into an overflow series (otel.metric.overflow=true)",
             s.series_overflow);
  r->Gauge(nullptr, "zerotrace_metrics_graph_edges", "service-graph edges in use", s.edges);
  r->Counter(nullptr, "zerotrace_metrics_graph_paired_total",
             "requests between two services traced here", s.edges_paired);
  r->Counter(nullptr, "zerotrace_metrics_graph_to_peer_total",
             "client requests whose server is not traced here (edges to its address)",
             s.edges_to_peer);
  r->Counter("metrics_edge_overflow", "zerotrace_metrics_graph_edge_overflow_total",
             "edge recordings folded into the overflow edge", s.edge_overflow);
  r->Counter(nullptr, "zerotrace_metrics_graph_unpaired_servers_total",
             "server spans whose client span was not seen here", s.unpaired_servers);
  r->Counter(nullptr, "zerotrace_metrics_graph_pending_dropped_total",
             "spans resolved early because too many waited for their other side",
             s.pending_dropped);
  r->Counter(nullptr, "zerotrace_metrics_services_overflow_total",
             "spans of services past the top view's limit", s.services_overflow);
}

}  // namespace zerotrace::metrics
