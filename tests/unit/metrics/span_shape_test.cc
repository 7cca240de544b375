// MetricsStage's cache of span shapes: spans after the first of their shape find their series,
// edges and summaries without a key, and must land exactly where the first one did: overflow
// counted per recording, a client's peer.service per request, values past the key's cut kept
// apart, shapes evicted while their spans wait.
#include <gtest/gtest.h>

#include <string>

#include "metrics/instruments.h"
#include "metrics/metrics_stage.h"
#include "metrics_testing.h"

namespace zerotrace::metrics {
namespace {

using testing::HttpSpan;
using trace::SpanKind;

constexpr uint64_t kSecond = 1'000'000'000;

const MetricFamily* FamilyOf(const MetricsSnapshot& s, const std::string& service,
                             const std::string& name) {
  for (const auto& r : s.resources) {
    if (r.service_name != service) continue;
    for (const auto& f : r.families) {
      if (f.name == name) return &f;
    }
  }
  return nullptr;
}

std::string StringAttr(const Point& p, std::string_view key) {
  for (const auto& a : p.attributes) {
    if (a.key == key && std::holds_alternative<std::string>(a.value)) {
      return std::get<std::string>(a.value);
    }
  }
  return "<none>";
}

// The value of the edge counter client -> server, or 0.
uint64_t EdgeRequests(const MetricsSnapshot& s, const std::string& client,
                      const std::string& server) {
  const MetricFamily* f = FamilyOf(s, "", "traces_service_graph_request_total");
  if (f == nullptr) return 0;
  for (const Point& p : f->points) {
    if (StringAttr(p, "client") == client && StringAttr(p, "server") == server) return p.value;
  }
  return 0;
}

// The count of the client series of `service` whose peer.service is `peer`, or 0.
uint64_t ClientCount(const MetricsSnapshot& s, const std::string& service,
                     const std::string& peer) {
  const MetricFamily* f = FamilyOf(s, service, "http.client.request.duration");
  if (f == nullptr) return 0;
  uint64_t n = 0;
  for (const Point& p : f->points) {
    if (StringAttr(p, std::string(kPeerServiceKey)) == peer) n += p.histogram.count;
  }
  return n;
}

TEST(SpanShapeTest, RepeatedSpansPastTheSeriesLimitAreEachCountedAsOverflow) {
  MetricsStage::Options o;
  o.red.max_series_per_instrument = 1;
  MetricsStage stage(o);
  for (int i = 0; i < 3; i++) {
    stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 3, 10 + i, 0, "/a"), 0);
    stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 3, 20 + i, 0, "/b"), 0);
  }
  const MetricsSnapshot s = stage.Snapshot();
  const MetricFamily* f = FamilyOf(s, "orders", "http.server.request.duration");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->points.size(), 2u);
  EXPECT_EQ(StringAttr(f->points[0], "http.route"), "/a");
  EXPECT_EQ(f->points[0].histogram.count, 3u);
  EXPECT_EQ(f->points[1].histogram.count, 3u);  // the overflow series
  EXPECT_EQ(s.stats.series_overflow, 3u);
}

TEST(SpanShapeTest, OneClientShapeCallingTwoServicesNamesEachInItsSeriesAndEdge) {
  MetricsStage stage;
  const char* servers[] = {"orders", "billing", "orders", "orders", "billing"};
  uint64_t id = 1;
  for (const char* server : servers) {
    stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 10, id), 0);
    stage.OnSpan(HttpSpan(server, SpanKind::kServer, 200, 5, 1000 + id, id), 0);
    id++;
  }
  // The same client shape, its server not traced here: to its peer address, twice.
  for (int i = 0; i < 2; i++) stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 10, id++), 0);
  stage.Tick(6 * kSecond);
  const MetricsSnapshot s = stage.Snapshot();
  EXPECT_EQ(EdgeRequests(s, "web", "orders"), 3u);
  EXPECT_EQ(EdgeRequests(s, "web", "billing"), 2u);
  EXPECT_EQ(EdgeRequests(s, "web", "127.0.0.1:8080"), 2u);
  EXPECT_EQ(ClientCount(s, "web", "orders"), 3u);
  EXPECT_EQ(ClientCount(s, "web", "billing"), 2u);
  EXPECT_EQ(ClientCount(s, "web", "<none>"), 2u);
  EXPECT_EQ(s.stats.edges_paired, 5u);
  EXPECT_EQ(s.stats.edges_to_peer, 2u);
}

TEST(SpanShapeTest, RepeatedRequestsOnAnEdgePastTheLimitAreEachCountedAsOverflow) {
  MetricsStage::Options o;
  o.graph.max_edges = 1;
  MetricsStage stage(o);
  for (uint64_t i = 1; i <= 4; i++) {
    stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 10, i), 0);
    stage.OnSpan(HttpSpan(i == 1 ? "orders" : "billing", SpanKind::kServer, 200, 5, 100 + i, i), 0);
  }
  const MetricsSnapshot s = stage.Snapshot();
  EXPECT_EQ(EdgeRequests(s, "web", "orders"), 1u);
  EXPECT_EQ(s.stats.edge_overflow, 3u);
  EXPECT_EQ(s.stats.edges, 2u);
}

// Values longer than the key keeps are cut in the key: spans that differ only past the cut
// share a series, but not their service or peer.
TEST(SpanShapeTest, ServicesAndPeersThatDifferPastTheKeysCutStayApart) {
  const std::string prefix(kMaxSeriesValueBytes, 's');
  MetricsStage stage;
  stage.OnSpan(HttpSpan(prefix + "-web1", SpanKind::kClient, 200, 10, 1), 0);
  stage.OnSpan(HttpSpan(prefix + "-web2", SpanKind::kClient, 200, 10, 2), 0);
  const std::string host(kMaxSeriesValueBytes, 'h');
  stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 10, 3, 0, "/x", host + ".a"), 0);
  stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 10, 4, 0, "/x", host + ".b"), 0);
  stage.Tick(6 * kSecond);
  const MetricsSnapshot s = stage.Snapshot();
  EXPECT_EQ(EdgeRequests(s, prefix + "-web1", "127.0.0.1:8080"), 1u);
  EXPECT_EQ(EdgeRequests(s, prefix + "-web2", "127.0.0.1:8080"), 1u);
  EXPECT_EQ(EdgeRequests(s, "web", host + ".a:8080"), 1u);
  EXPECT_EQ(EdgeRequests(s, "web", host + ".b:8080"), 1u);
  EXPECT_EQ(s.services.size(), 3u);
}

// More shapes than the cache holds: a client evicted from it while it waits for its server
// still pairs with it, and every series keeps its count.
TEST(SpanShapeTest, ShapesEvictedWhileTheirSpansWaitStillPairAndCount) {
  MetricsStage::Options o;
  o.red.max_series_per_instrument = 10'000;
  MetricsStage stage(o);
  constexpr int kShapes = 3000;
  for (int i = 0; i < kShapes; i++) {
    stage.OnSpan(
        HttpSpan("web", SpanKind::kClient, 200, 10, i + 1, 0, "/x", "host" + std::to_string(i)), 0);
  }
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < kShapes; i++) {
      stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 5, 100'000 + i, 0,
                            "/r" + std::to_string(i % 1500)),
                   0);
    }
  }
  for (int i = 0; i < kShapes; i++) {
    stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 5, 200'000 + i, i + 1), 0);
  }
  const MetricsSnapshot s = stage.Snapshot();
  EXPECT_EQ(EdgeRequests(s, "web", "orders"), static_cast<uint64_t>(kShapes));
  EXPECT_EQ(ClientCount(s, "web", "orders"), static_cast<uint64_t>(kShapes));
  const MetricFamily* f = FamilyOf(s, "orders", "http.server.request.duration");
  ASSERT_NE(f, nullptr);
  uint64_t total = 0;
  for (const Point& p : f->points) {
    total += p.histogram.count;
    if (StringAttr(p, "http.route") != "/users/{id}") {
      EXPECT_EQ(p.histogram.count, 4u);
    }
  }
  EXPECT_EQ(f->points.size(), 1501u);
  EXPECT_EQ(total, 3u * kShapes);
  EXPECT_EQ(s.stats.series_overflow, 0u);
}

TEST(SpanShapeTest, WithoutSummariesTheSeriesAndEdgesAreTheSameAndNoSketchIsKept) {
  MetricsStage::Options o;
  o.summaries = false;
  MetricsStage stage(o);
  for (uint64_t i = 1; i <= 3; i++) {
    stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 10, i), 0);
    stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 5, 100 + i, i), 0);
  }
  const MetricsSnapshot s = stage.Snapshot();
  EXPECT_EQ(EdgeRequests(s, "web", "orders"), 3u);
  EXPECT_EQ(ClientCount(s, "web", "orders"), 3u);
  EXPECT_TRUE(s.services.empty());
  ASSERT_EQ(s.edges.size(), 1u);
  EXPECT_EQ(s.edges[0].client_side.count, 0u);
  EXPECT_EQ(s.stats.spans_recorded, 6u);
}

}  // namespace
}  // namespace zerotrace::metrics
