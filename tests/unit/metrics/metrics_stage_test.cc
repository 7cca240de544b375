// MetricsStage: RED series per the conventions, overflow folding, and service-graph pairing.
#include "metrics/metrics_stage.h"

#include <gtest/gtest.h>

#include <cmath>

#include "metrics/instruments.h"
#include "metrics_testing.h"

namespace zerotrace::metrics {
namespace {

using testing::HttpSpan;
using trace::SpanKind;

constexpr uint64_t kSecond = 1'000'000'000;

const ResourceMetrics* ResourceOf(const MetricsSnapshot& s, const std::string& service) {
  for (const auto& r : s.resources) {
    if (r.service_name == service) return &r;
  }
  return nullptr;
}

const MetricFamily* FamilyOf(const MetricsSnapshot& s, const std::string& service,
                             const std::string& name) {
  const ResourceMetrics* r = ResourceOf(s, service);
  if (r == nullptr) return nullptr;
  for (const auto& f : r->families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const trace::AttributeValue* AttrOf(const Point& p, const std::string& key) {
  for (const auto& a : p.attributes) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

std::string StringAttr(const Point& p, const std::string& key) {
  const auto* v = AttrOf(p, key);
  return v && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : "<none>";
}

TEST(MetricsStageTest, ServerSpansBecomeOneSeriesWithTheConventionsAttributesAndBuckets) {
  MetricsStage stage;
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 3, 1), 0);    // <= 0.005
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 30, 2), 0);   // (0.025, 0.05]
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 200, 3), 0);  // (0.1, 0.25]
  const MetricsSnapshot s = stage.Snapshot();
  const MetricFamily* f = FamilyOf(s, "orders", "http.server.request.duration");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->unit, "s");
  EXPECT_EQ(f->bounds, std::vector<double>(kDurationBounds.begin(), kDurationBounds.end()));
  ASSERT_EQ(f->points.size(), 1u);
  const Point& p = f->points[0];
  EXPECT_EQ(p.histogram.count, 3u);
  EXPECT_NEAR(p.histogram.sum, 0.233, 1e-9);
  EXPECT_EQ(p.histogram.buckets[0], 1u);
  EXPECT_EQ(p.histogram.buckets[3], 1u);
  EXPECT_EQ(p.histogram.buckets[6], 1u);
  EXPECT_EQ(StringAttr(p, "http.request.method"), "GET");
  EXPECT_EQ(StringAttr(p, "http.route"), "/users/{id}");
  EXPECT_EQ(StringAttr(p, "url.scheme"), "http");
  ASSERT_NE(AttrOf(p, "http.response.status_code"), nullptr);
  EXPECT_EQ(std::get<int64_t>(*AttrOf(p, "http.response.status_code")), 200);
  EXPECT_EQ(AttrOf(p, "url.path"), nullptr);  // never a raw path
  EXPECT_EQ(AttrOf(p, "error.type"), nullptr);
  EXPECT_EQ(stage.stats().spans_recorded, 3u);
}

TEST(MetricsStageTest, ErrorsAreSeriesOfTheirOwnWithErrorType) {
  MetricsStage stage;
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 3, 1), 0);
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 503, 3, 2), 0);
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 503, 3, 3), 0);
  const MetricsSnapshot snap = stage.Snapshot();
  const MetricFamily* f = FamilyOf(snap, "orders", "http.server.request.duration");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->points.size(), 2u);
  const Point& err = StringAttr(f->points[0], "error.type") == "503" ? f->points[0] : f->points[1];
  EXPECT_EQ(err.histogram.count, 2u);
}

TEST(MetricsStageTest, WithoutARouteTemplateThereIsNoRouteAttribute) {
  MetricsStage stage;
  trace::Span span = HttpSpan("orders", SpanKind::kServer, 200, 3, 1);
  span.name = "GET";  // --no-route-inference
  stage.OnSpan(span, 0);
  const MetricsSnapshot snap = stage.Snapshot();
  const MetricFamily* f = FamilyOf(snap, "orders", "http.server.request.duration");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(AttrOf(f->points[0], "http.route"), nullptr);
}

TEST(MetricsStageTest, SeriesPastTheLimitFoldIntoTheOverflowSeriesAndAreCounted) {
  MetricsStage::Options o;
  o.red.max_series_per_instrument = 2;
  MetricsStage stage(o);
  for (int i = 0; i < 5; i++) {
    stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 3, i + 1, 0, "/r" + std::to_string(i)),
                 0);
  }
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 3, 9, 0, "/r0"), 0);  // existing
  const MetricsSnapshot s = stage.Snapshot();
  const MetricFamily* f = FamilyOf(s, "orders", "http.server.request.duration");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->points.size(), 3u);
  uint64_t total = 0;
  for (const Point& p : f->points) total += p.histogram.count;
  EXPECT_EQ(total, 6u);  // nothing lost
  const Point& overflow = f->points[2];
  ASSERT_EQ(overflow.attributes.size(), 1u);
  EXPECT_EQ(overflow.attributes[0].key, kOverflowAttribute);
  EXPECT_EQ(std::get<bool>(overflow.attributes[0].value), true);
  EXPECT_EQ(overflow.histogram.count, 3u);
  EXPECT_EQ(s.stats.series_overflow, 3u);
}

TEST(MetricsStageTest, SpansNoInstrumentMeasuresAreCountedNotRecorded) {
  MetricsStage stage;
  trace::Span internal = HttpSpan("orders", SpanKind::kInternal, 200, 3, 1);
  trace::Span other;  // a client span of a protocol without an instrument
  other.kind = SpanKind::kClient;
  stage.OnSpan(internal, 0);
  stage.OnSpan(other, 0);
  EXPECT_EQ(stage.stats().spans_ignored, 2u);
  EXPECT_TRUE(stage.Snapshot().resources.empty());
}

// The seam other protocols plug into: spans with rpc.system or db.system.name.
TEST(MetricsStageTest, RpcAndDatabaseSpansGoToTheirInstruments) {
  MetricsStage stage;
  trace::Span rpc;
  rpc.kind = SpanKind::kServer;
  rpc.end_unix_ns = 2'000'000;
  rpc.attributes = {{"rpc.system", std::string("grpc")},
                    {"rpc.service", std::string("shop.Cart")},
                    {"rpc.method", std::string("Add")},
                    {"rpc.grpc.status_code", int64_t{0}}};
  rpc.resource = testing::ResourceFor("cart");
  trace::Span db;
  db.kind = SpanKind::kClient;
  db.end_unix_ns = 2'000'000;
  db.attributes = {{"db.system", std::string("postgresql")},
                   {"db.operation.name", std::string("SELECT")},
                   {"server.address", std::string("db")},
                   {"server.port", int64_t{5432}}};
  db.resource = testing::ResourceFor("cart");
  stage.OnSpan(rpc, 0);
  stage.OnSpan(db, 0);
  stage.Flush();
  const MetricsSnapshot s = stage.Snapshot();
  const MetricFamily* r = FamilyOf(s, "cart", "rpc.server.call.duration");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(StringAttr(r->points[0], "rpc.method"), "Add");
  const MetricFamily* d = FamilyOf(s, "cart", "db.client.operation.duration");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->bounds.size(), kDbDurationBounds.size());
  EXPECT_EQ(StringAttr(d->points[0], "db.system.name"), "postgresql");  // the current name
}

const Point* EdgePoint(const MetricsSnapshot& s, const std::string& family,
                       const std::string& client, const std::string& server) {
  const MetricFamily* f = FamilyOf(s, "", family);
  if (f == nullptr) return nullptr;
  for (const Point& p : f->points) {
    if (StringAttr(p, "client") == client && StringAttr(p, "server") == server) return &p;
  }
  return nullptr;
}

// Table: the order in which the two sides of a request arrive does not matter.
TEST(MetricsStageTest, LinkedClientAndServerSpansMakeOneEdgeInEitherOrder) {
  for (bool server_first : {false, true}) {
    SCOPED_TRACE(server_first ? "server first" : "client first");
    MetricsStage stage;
    const trace::Span client = HttpSpan("web", SpanKind::kClient, 500, 40, 7);
    const trace::Span server = HttpSpan("orders", SpanKind::kServer, 500, 30, 8, /*parent=*/7);
    if (server_first) stage.OnSpan(server, 0);
    stage.OnSpan(client, 0);
    if (!server_first) stage.OnSpan(server, 0);
    const MetricsSnapshot s = stage.Snapshot();
    const Point* total = EdgePoint(s, "traces_service_graph_request_total", "web", "orders");
    ASSERT_NE(total, nullptr);
    EXPECT_EQ(total->value, 1u);
    EXPECT_EQ(AttrOf(*total, "connection_type"), nullptr);
    const Point* failed =
        EdgePoint(s, "traces_service_graph_request_failed_total", "web", "orders");
    ASSERT_NE(failed, nullptr);
    EXPECT_EQ(failed->value, 1u);
    const Point* ss = EdgePoint(s, "traces_service_graph_request_server_seconds", "web", "orders");
    ASSERT_NE(ss, nullptr);
    EXPECT_NEAR(ss->histogram.sum, 0.030, 1e-9);
    const Point* cs = EdgePoint(s, "traces_service_graph_request_client_seconds", "web", "orders");
    ASSERT_NE(cs, nullptr);
    EXPECT_NEAR(cs->histogram.sum, 0.040, 1e-9);
    // The client's RED series names its peer service.
    const MetricFamily* red = FamilyOf(s, "web", "http.client.request.duration");
    ASSERT_NE(red, nullptr);
    ASSERT_EQ(red->points.size(), 1u);
    EXPECT_EQ(StringAttr(red->points[0], "peer.service"), "orders");
    EXPECT_EQ(s.stats.edges_paired, 1u);
  }
}

TEST(MetricsStageTest, AClientWhoseServerIsNotTracedHereIsAnEdgeToThePeerAddress) {
  MetricsStage stage;
  stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 10, 7, 0, "/x", "10.0.0.9", 5432), 0);
  const MetricsSnapshot before = stage.Snapshot();
  EXPECT_EQ(FamilyOf(before, "web", "http.client.request.duration"), nullptr);
  stage.Tick(4 * kSecond);  // still waiting for its server
  EXPECT_EQ(stage.Snapshot().stats.edges_to_peer, 0u);
  stage.Tick(6 * kSecond);
  const MetricsSnapshot s = stage.Snapshot();
  const Point* total = EdgePoint(s, "traces_service_graph_request_total", "web", "10.0.0.9:5432");
  ASSERT_NE(total, nullptr);
  EXPECT_EQ(total->value, 1u);
  EXPECT_EQ(StringAttr(*total, "connection_type"), "virtual_node");
  EXPECT_EQ(EdgePoint(s, "traces_service_graph_request_server_seconds", "web", "10.0.0.9:5432"),
            nullptr);
  const MetricFamily* red = FamilyOf(s, "web", "http.client.request.duration");
  ASSERT_NE(red, nullptr);
  EXPECT_EQ(AttrOf(red->points[0], "peer.service"), nullptr);
  EXPECT_EQ(s.stats.edges_to_peer, 1u);
}

TEST(MetricsStageTest, ServerSpansWithoutTheirClientAreCountedAsUnpaired) {
  MetricsStage stage;
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 10, 8, /*parent=*/0), 0);
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 10, 9, /*parent=*/77), 0);
  stage.Tick(6 * kSecond);
  EXPECT_EQ(stage.stats().unpaired_servers, 2u);
  EXPECT_EQ(stage.stats().edges, 0u);
}

uint64_t PeerRequests(const MetricsSnapshot& s, const std::string& peer) {
  const Point* p = EdgePoint(s, "traces_service_graph_request_total", "web", peer);
  return p == nullptr ? 0 : p->value;
}

TEST(MetricsStageTest, PastMaxPendingTheOldestWaitingClientIsResolvedToItsPeerAndCounted) {
  MetricsStage::Options o;
  o.graph.max_pending = 2;
  MetricsStage stage(o);
  const auto client = [](uint64_t id) {
    return HttpSpan("web", SpanKind::kClient, 200, 10, id, 0, "/x", "10.0.0." + std::to_string(id),
                    80);
  };
  stage.OnSpan(client(1), 0);
  stage.OnSpan(client(2), 1);
  stage.OnSpan(client(3), 2);  // 1 is the oldest: resolved early, to its peer
  MetricsSnapshot s = stage.Snapshot();
  EXPECT_EQ(s.stats.pending_dropped, 1u);
  EXPECT_EQ(PeerRequests(s, "10.0.0.1:80"), 1u);
  EXPECT_EQ(PeerRequests(s, "10.0.0.2:80"), 0u);
  // 2 pairs; the next oldest still waiting is 3 (2's deadline frees no room and is passed over).
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 5, 102, /*parent=*/2), 3);
  stage.OnSpan(client(4), 4);
  stage.OnSpan(client(5), 5);
  s = stage.Snapshot();
  EXPECT_EQ(s.stats.edges_paired, 1u);
  EXPECT_EQ(s.stats.pending_dropped, 2u);
  EXPECT_EQ(PeerRequests(s, "10.0.0.3:80"), 1u);
  EXPECT_EQ(PeerRequests(s, "10.0.0.4:80"), 0u);
  // 1's server comes too late to pair: it waits, and is unpaired at its deadline.
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 5, 101, /*parent=*/1), 6);
  stage.Tick(6 + 5 * kSecond);
  s = stage.Snapshot();
  EXPECT_EQ(s.stats.edges_paired, 1u);
  EXPECT_EQ(s.stats.unpaired_servers, 1u);
  EXPECT_EQ(s.stats.edges_to_peer, 4u);  // 1, 3, then 4 and 5 at their deadlines
}

TEST(MetricsStageTest, WaitingSpansExpireInArrivalOrderEachAtItsOwnDeadline) {
  MetricsStage stage;
  for (uint64_t id = 1; id <= 3; id++) {
    stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 10, id, 0, "/x", "10.0.0.9", 80),
                 id * kSecond);
    stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 5, 100 + id, /*parent=*/50 + id),
                 id * kSecond);
  }
  for (uint64_t id = 1; id <= 3; id++) {
    stage.Tick((id + 5) * kSecond - 1);  // just before the id'th deadline
    EXPECT_EQ(stage.Snapshot().stats.edges_to_peer, id - 1);
    EXPECT_EQ(stage.stats().unpaired_servers, id - 1);
    stage.Tick((id + 5) * kSecond);
    EXPECT_EQ(stage.Snapshot().stats.edges_to_peer, id);
    EXPECT_EQ(stage.stats().unpaired_servers, id);
  }
  // A server whose client comes after all is still paired while it waits.
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 5, 200, /*parent=*/60), 10 * kSecond);
  stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 10, 60), 11 * kSecond);
  stage.Tick(20 * kSecond);
  EXPECT_EQ(stage.Snapshot().stats.edges_paired, 1u);
  EXPECT_EQ(stage.stats().unpaired_servers, 3u);
}

TEST(MetricsStageTest, EdgesPastTheLimitFoldIntoTheOverflowEdge) {
  MetricsStage::Options o;
  o.graph.max_edges = 1;
  MetricsStage stage(o);
  for (uint64_t i = 1; i <= 3; i++) {
    stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 10, i), 0);
    stage.OnSpan(HttpSpan("svc" + std::to_string(i), SpanKind::kServer, 200, 5, 100 + i, i), 0);
  }
  const MetricsSnapshot s = stage.Snapshot();
  EXPECT_EQ(s.stats.edge_overflow, 2u);
  const MetricFamily* f = FamilyOf(s, "", "traces_service_graph_request_total");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->points.size(), 2u);
  uint64_t overflowed = 0;
  for (const Point& p : f->points) {
    if (AttrOf(p, kOverflowAttribute) != nullptr) overflowed = p.value;
  }
  EXPECT_EQ(overflowed, 2u);
}

TEST(MetricsStageTest, ServiceSummariesFeedTheTopViewsPercentiles) {
  MetricsStage stage;
  for (int i = 1; i <= 100; i++) {
    stage.OnSpan(HttpSpan("orders", SpanKind::kServer, i <= 5 ? 500 : 200, i, i), 0);
  }
  const MetricsSnapshot s = stage.Snapshot();
  ASSERT_EQ(s.services.size(), 1u);
  const LatencySketch& k = s.services[0].server;
  EXPECT_EQ(k.count, 100u);
  EXPECT_EQ(k.errors, 5u);
  const LatencySketch none;
  // Within the sketch's ~10% of the true 50 ms, 95 ms, 99 ms.
  EXPECT_NEAR(k.QuantileSince(none, 0.50), 0.050, 0.006);
  EXPECT_NEAR(k.QuantileSince(none, 0.95), 0.095, 0.010);
  EXPECT_NEAR(k.QuantileSince(none, 0.99), 0.099, 0.010);
  EXPECT_TRUE(std::isnan(k.QuantileSince(k, 0.5)));  // nothing since
}

}  // namespace
}  // namespace zerotrace::metrics

namespace zerotrace::metrics {
namespace {

trace::Span InTrace(trace::Span s, uint8_t trace) {
  s.trace_id.bytes[0] = trace;
  return s;
}

// The top view's slowest recent traces: the longest first, each a tree of its spans; a stage
// without recent_spans keeps none, and the ring forgets the oldest spans.
TEST(RecentTracesTest, SlowestTracesComeFirstAsTrees) {
  MetricsStage::Options o;
  o.recent_spans = 16;
  MetricsStage stage(o);
  // Trace 1: web (client, 40 ms) -> orders (server, 30 ms) -> db call (client, 20 ms).
  stage.OnSpan(InTrace(HttpSpan("orders", SpanKind::kClient, 200, 20, 3, /*parent=*/2), 1), 0);
  stage.OnSpan(InTrace(HttpSpan("orders", SpanKind::kServer, 200, 30, 2, /*parent=*/1), 1), 0);
  stage.OnSpan(InTrace(HttpSpan("web", SpanKind::kClient, 503, 40, 1), 1), 0);
  // Trace 2: one 5 ms span.
  stage.OnSpan(InTrace(HttpSpan("web", SpanKind::kClient, 200, 5, 9), 2), 0);
  const MetricsSnapshot s = stage.Snapshot();
  ASSERT_EQ(s.slow_traces.size(), 2u);
  const SlowTrace& slow = s.slow_traces[0];
  EXPECT_NEAR(slow.seconds, 0.040, 1e-9);
  EXPECT_EQ(slow.root_service, "web");
  EXPECT_TRUE(slow.error);
  ASSERT_EQ(slow.spans.size(), 3u);
  EXPECT_EQ(slow.spans[0].service, "web");
  EXPECT_EQ(slow.spans[0].depth, 0);
  EXPECT_EQ(slow.spans[1].kind, SpanKind::kServer);
  EXPECT_EQ(slow.spans[1].depth, 1);
  EXPECT_EQ(slow.spans[2].depth, 2);
  EXPECT_NEAR(s.slow_traces[1].seconds, 0.005, 1e-9);

  RecentTraces ring(2);  // keeps the last two spans only
  for (uint8_t t = 1; t <= 3; t++)
    ring.Add(InTrace(HttpSpan("a", SpanKind::kServer, 200, t, t), t));
  const auto kept = ring.Slowest(5, ~uint64_t{0});
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_NEAR(kept[0].seconds, 0.003, 1e-9);
  EXPECT_NEAR(kept[1].seconds, 0.002, 1e-9);

  MetricsStage plain;
  plain.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 5, 9), 0);
  EXPECT_TRUE(plain.Snapshot().slow_traces.empty());
}

}  // namespace
}  // namespace zerotrace::metrics
