// MetricsStage's memo of span forms: a span like a recent one of the same resource reuses its
// shape with no key, so every value the key is made of must still tell spans apart, and the
// metrics must be exactly those of a stage that never finds a span in the memo.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/instruments.h"
#include "metrics/metrics_stage.h"
#include "metrics_testing.h"

namespace zerotrace::metrics {
namespace {

using testing::HttpSpan;
using trace::SpanKind;

constexpr uint64_t kSecond = 1'000'000'000;

// Every figure of a snapshot but its wall-clock times, one line per point.
std::string Dump(const MetricsSnapshot& s) {
  std::ostringstream o;
  auto value = [&o](const trace::AttributeValue& v) {
    if (const auto* x = std::get_if<std::string>(&v)) o << '"' << *x << '"';
    if (const auto* x = std::get_if<int64_t>(&v)) o << *x;
    if (const auto* x = std::get_if<bool>(&v)) o << (*x ? "true" : "false");
    if (const auto* x = std::get_if<double>(&v)) o << *x;
  };
  for (const ResourceMetrics& r : s.resources) {
    for (const MetricFamily& f : r.families) {
      for (const Point& p : f.points) {
        o << r.service_name << ' ' << f.name << " #" << p.id << " {";
        for (const auto& a : p.attributes) {
          o << a.key << '=';
          value(a.value);
          o << ' ';
        }
        const HistogramData& h = p.histogram;
        o << "} n=" << h.count << " sum=" << h.sum << " value=" << p.value << " buckets=";
        for (uint64_t b : h.buckets) o << b << ',';
        o << '\n';
      }
    }
  }
  for (const ServiceSummary& v : s.services) {
    o << "service " << v.service << ' ' << v.server.count << '/' << v.server.errors << ' '
      << v.client.count << '/' << v.client.errors << '\n';
  }
  for (const EdgeSummary& e : s.edges) {
    o << "edge " << e.client << " -> " << e.server << ' ' << e.client_side.count << '\n';
  }
  const MetricsStageStats& t = s.stats;
  o << "stats " << t.spans_recorded << ' ' << t.spans_ignored << ' ' << t.series << ' '
    << t.series_overflow << ' ' << t.edges << ' ' << t.edges_paired << ' ' << t.edges_to_peer << ' '
    << t.edge_overflow << ' ' << t.unpaired_servers << ' ' << t.pending_dropped << ' '
    << t.services_overflow << '\n';
  return o.str();
}

void SetString(trace::Span* s, std::string_view key, const std::string& v) {
  for (auto& a : s->attributes) {
    if (a.key == key) a.value = v;
  }
}
void SetInt(trace::Span* s, std::string_view key, int64_t v) {
  for (auto& a : s->attributes) {
    if (a.key == key) a.value = v;
  }
}

// The count of the `instrument` series of `service` whose attribute `key` is `value`.
uint64_t CountWhere(const MetricsSnapshot& s, const std::string& service,
                    const std::string& instrument, std::string_view key,
                    const trace::AttributeValue& value) {
  uint64_t n = 0;
  for (const auto& r : s.resources) {
    for (const auto& f : r.families) {
      if (r.service_name != service || f.name != instrument) continue;
      for (const Point& p : f.points) {
        for (const auto& a : p.attributes) {
          if (a.key == key && a.value == value) n += p.histogram.count;
        }
      }
    }
  }
  return n;
}

// One span object of one resource sent again and again, each time with one key value
// changed: each change is a series of its own, and the unchanged span keeps its series.
TEST(ShapeMemoTest, AChangeInAnyKeyValueOfTheSameResourceLandsInItsOwnSeries) {
  struct Case {
    const char* what;
    SpanKind kind;
    const char* key;                // the series attribute that changes
    trace::AttributeValue changed;  // its value in the changed span
    void (*change)(trace::Span*);
  };
  const Case cases[] = {
      {"status", SpanKind::kServer, "http.response.status_code", int64_t{201},
       [](trace::Span* s) { SetInt(s, "http.response.status_code", 201); }},
      {"method", SpanKind::kServer, "http.request.method", std::string("POST"),
       [](trace::Span* s) {
         SetString(s, "http.request.method", "POST");
         s->name = "POST /users/{id}";
       }},
      {"method, name unchanged", SpanKind::kServer, "http.request.method", std::string("PUT"),
       [](trace::Span* s) { SetString(s, "http.request.method", "PUT"); }},
      {"route", SpanKind::kServer, "http.route", std::string("/orders/{id}"),
       [](trace::Span* s) { s->name = "GET /orders/{id}"; }},
      {"scheme", SpanKind::kServer, "url.scheme", std::string("https"),
       [](trace::Span* s) { SetString(s, "url.scheme", "https"); }},
      {"client status", SpanKind::kClient, "http.response.status_code", int64_t{404},
       [](trace::Span* s) { SetInt(s, "http.response.status_code", 404); }},
      {"peer address", SpanKind::kClient, "server.address", std::string("10.0.0.2"),
       [](trace::Span* s) { SetString(s, "server.address", "10.0.0.2"); }},
      {"peer port", SpanKind::kClient, "server.port", int64_t{9090},
       [](trace::Span* s) { SetInt(s, "server.port", 9090); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    MetricsStage stage;
    trace::Span base = HttpSpan("web", c.kind, 200, 3, 1);
    trace::Span changed = base;  // the same resource object
    c.change(&changed);
    const std::string instrument = c.kind == SpanKind::kServer ? "http.server.request.duration"
                                                               : "http.client.request.duration";
    uint64_t id = 1;
    for (const trace::Span* s : {&base, &changed, &base, &changed, &changed}) {
      trace::Span copy = *s;
      copy.span_id = testing::IdFrom(id++);
      stage.OnSpan(copy, 0);
    }
    stage.Flush();
    const MetricsSnapshot snap = stage.Snapshot();
    EXPECT_EQ(CountWhere(snap, "web", instrument, c.key, c.changed), 3u);
    EXPECT_EQ(snap.stats.series, 2u);
    EXPECT_EQ(snap.stats.spans_recorded, 5u);
  }
}

// More routes of one resource than the memo has sets: forms share sets, and a form's name
// tells its route apart from the others' in the set.
TEST(ShapeMemoTest, ManyRoutesOfOneResourceEachKeepTheirSeries) {
  MetricsStage stage;
  trace::Span s = HttpSpan("api", SpanKind::kServer, 200, 3, 1);
  constexpr int kRoutes = 600;
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < kRoutes; i++) {
      s.name = "GET /r" + std::to_string(i);
      stage.OnSpan(s, 0);
    }
  }
  const MetricsSnapshot snap = stage.Snapshot();
  ASSERT_EQ(snap.stats.series, static_cast<uint64_t>(kRoutes));
  for (int i = 0; i < kRoutes; i++) {
    ASSERT_EQ(CountWhere(snap, "api", "http.server.request.duration", "http.route",
                         trace::AttributeValue("/r" + std::to_string(i))),
              2u)
        << i;
  }
}

// A resource freed and another allocated at its address: the memo compares the service, not
// the address. (Modelled by renaming the one resource object between spans.)
TEST(ShapeMemoTest, ANewResourceAtAnOldOnesAddressIsItsOwnService) {
  MetricsStage stage;
  auto resource = std::make_shared<trace::Resource>();
  resource->service_name = "orders";
  trace::Span s = HttpSpan("unused", SpanKind::kServer, 200, 3, 1);
  s.resource = resource;
  stage.OnSpan(s, 0);
  stage.OnSpan(s, 0);
  resource->service_name = "billing";
  stage.OnSpan(s, 0);
  resource->service_name.clear();  // no service name: unknown_service
  stage.OnSpan(s, 0);
  const MetricsSnapshot snap = stage.Snapshot();
  const std::string server = "http.server.request.duration";
  const trace::AttributeValue get = std::string("GET");
  EXPECT_EQ(CountWhere(snap, "orders", server, "http.request.method", get), 2u);
  EXPECT_EQ(CountWhere(snap, "billing", server, "http.request.method", get), 1u);
  EXPECT_EQ(CountWhere(snap, "unknown_service", server, "http.request.method", get), 1u);
}

// The same resource and name with other attributes: another instrument (rpc.system added, or
// in another attribute's place), a second status attribute after the first (the first one
// counts), or a span no instrument measures any more.
TEST(ShapeMemoTest, OtherAttributeNamesAreAnotherForm) {
  MetricsStage stage;
  trace::Span http = HttpSpan("api", SpanKind::kServer, 200, 3, 1);
  trace::Span rpc = http;
  rpc.attributes.push_back({"rpc.system", std::string("grpc")});
  trace::Span twice = http;
  twice.attributes.push_back({"http.response.status_code", int64_t{503}});
  trace::Span renamed = http;  // as many attributes: url.path's place is rpc.system's
  ASSERT_EQ(renamed.attributes[1].key, "url.path");
  renamed.attributes[1] = {"rpc.system", std::string("grpc")};
  trace::Span none = http;
  none.attributes.erase(none.attributes.begin());  // no http.request.method
  for (const trace::Span* s :
       {&http, &rpc, &twice, &renamed, &none, &http, &rpc, &twice, &renamed, &none}) {
    stage.OnSpan(*s, 0);
  }
  const MetricsSnapshot snap = stage.Snapshot();
  const trace::AttributeValue ok = int64_t{200};
  EXPECT_EQ(
      CountWhere(snap, "api", "http.server.request.duration", "http.response.status_code", ok), 4u);
  EXPECT_EQ(CountWhere(snap, "api", "rpc.server.call.duration", "rpc.system",
                       trace::AttributeValue(std::string("grpc"))),
            4u);
  EXPECT_EQ(snap.stats.spans_ignored, 2u);
  EXPECT_EQ(snap.stats.series, 2u);
}

// A random stream of spans from a few resource objects, each key value drawn from a small
// set, paired and unpaired, with ticks: the metrics equal those of a stage that gets every span
// with a resource object of its own (so never finds one in the memo), at every limit.
TEST(ShapeMemoTest, MetricsEqualThoseOfAStageThatNeverFindsASpanInTheMemo) {
  struct Limits {
    size_t series, edges, pending;
    bool summaries;
  };
  for (const Limits& l : {Limits{2000, 1000, 1 << 16, true}, Limits{3, 2, 4, false}}) {
    MetricsStage::Options o;
    o.red.max_series_per_instrument = l.series;
    o.graph.max_edges = l.edges;
    o.graph.max_pending = l.pending;
    o.summaries = l.summaries;
    MetricsStage memo(o), fresh(o);
    std::vector<std::shared_ptr<trace::Resource>> resources;
    for (const char* name : {"web", "orders", "billing"}) {
      resources.push_back(std::make_shared<trace::Resource>());
      resources.back()->service_name = name;
    }
    std::vector<std::shared_ptr<const trace::Resource>> copies;  // alive: distinct addresses
    std::mt19937_64 rng(17);
    auto pick = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };
    const char* methods[] = {"GET", "POST"};
    const char* routes[] = {"/a", "/b/{id}", "/c", "/d", "/e/{id}/f", "/g", "/h", "/i"};
    const int64_t statuses[] = {200, 404, 500};
    const char* hosts[] = {"10.0.0.1", "orders.internal"};
    const int64_t ports[] = {80, 8080};
    uint64_t now = 0, last_client = 0;
    for (uint64_t n = 1; n <= 3000; n++) {
      const size_t r = pick(resources.size());
      if (r == 2 && pick(50) == 0) {  // the same address, another service
        resources[2]->service_name = resources[2]->service_name == "billing" ? "ledger" : "billing";
      }
      const SpanKind kind = pick(2) == 0 ? SpanKind::kClient : SpanKind::kServer;
      const std::string route = routes[pick(std::size(routes))];
      trace::Span s = HttpSpan("unused", kind, statuses[pick(3)], 1 + pick(30), n,
                               kind == SpanKind::kServer && pick(4) != 0 ? last_client : 0, route,
                               hosts[pick(2)], ports[pick(2)]);
      const std::string method = methods[pick(2)];
      SetString(&s, "http.request.method", method);
      s.name = method + " " + route;
      if (pick(10) == 0) SetString(&s, "url.scheme", "https");
      if (pick(20) == 0) s.attributes.push_back({"rpc.system", std::string("grpc")});
      if (kind == SpanKind::kClient) last_client = n;
      s.resource = resources[r];
      memo.OnSpan(s, now);
      copies.push_back(std::make_shared<const trace::Resource>(*resources[r]));
      s.resource = copies.back();
      fresh.OnSpan(s, now);
      now += kSecond / 100;
      if (n % 97 == 0) {
        memo.Tick(now);
        fresh.Tick(now);
      }
    }
    memo.Flush();
    fresh.Flush();
    const std::string want = Dump(fresh.Snapshot());
    EXPECT_EQ(Dump(memo.Snapshot()), want);
    EXPECT_GT(want.size(), 1000u);
  }
}

}  // namespace
}  // namespace zerotrace::metrics
