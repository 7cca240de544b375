// OTLP metrics configured only by the standard environment variables, into real otlp-sink
// receivers: gRPC through OTEL_EXPORTER_OTLP_METRICS_* (which win over the shared variables),
// cumulative by default; HTTP/protobuf through the shared OTEL_EXPORTER_OTLP_* variables, delta
// on request. A real node server is hit by a real curl in two batches; the points of its
// http.server.request.duration series are checked export by export.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "e2e_fixture.h"
#include "otlp_sink_process.h"

namespace zerotrace::e2e {
namespace {

using Clock = std::chrono::steady_clock;

// One exported point of the series under test, in the order the sink received them.
struct Point {
  int temporality = 0;
  uint64_t count = 0, start_ns = 0, time_ns = 0;
};

// The http.server.request.duration points of `service`'s route `route` in a metrics JSON-lines
// file (one ExportMetricsServiceRequest per line); `exports` counts the requests read.
std::vector<Point> SeriesPoints(const std::string& path, const std::string& service,
                                const std::string& route, size_t* exports) {
  std::vector<Point> out;
  *exports = 0;
  std::ifstream in(path);
  constexpr size_t kMaxLines = 10000;  // bounded: the test runs for seconds, not hours
  std::string line;
  for (size_t n = 0; n < kMaxLines && std::getline(in, line); n++) {
    const auto doc = nlohmann::json::parse(line, nullptr, false);
    if (!doc.is_object()) continue;
    ++*exports;
    for (const auto& rm : doc.value("resourceMetrics", nlohmann::json::array())) {
      bool ours = false;
      for (const auto& a : rm["resource"].value("attributes", nlohmann::json::array())) {
        ours = ours || (a["key"] == "service.name" && a["value"]["stringValue"] == service);
      }
      if (!ours) continue;
      for (const auto& sm : rm.value("scopeMetrics", nlohmann::json::array())) {
        for (const auto& m : sm.value("metrics", nlohmann::json::array())) {
          if (m["name"] != "http.server.request.duration") continue;
          const auto& h = m["histogram"];
          for (const auto& p : h.value("dataPoints", nlohmann::json::array())) {
            bool match = false;
            for (const auto& a : p.value("attributes", nlohmann::json::array())) {
              match = match || (a["key"] == "http.route" && a["value"]["stringValue"] == route);
            }
            if (!match) continue;
            // proto3 JSON: 64-bit integers are strings, an absent field is zero.
            auto u64 = [&](const char* key) {
              return p.contains(key) ? std::stoull(p[key].get<std::string>()) : 0ULL;
            };
            out.push_back(Point{h.value("aggregationTemporality", 0), u64("count"),
                                u64("startTimeUnixNano"), u64("timeUnixNano")});
          }
        }
      }
    }
  }
  return out;
}

std::string Show(const std::vector<Point>& points) {
  std::ostringstream s;
  for (const auto& p : points) {
    s << "{t=" << p.temporality << " count=" << p.count << " start=" << p.start_ns
      << " time=" << p.time_ns << "} ";
  }
  return s.str();
}

uint64_t SumOfCounts(const std::vector<Point>& points) {
  uint64_t sum = 0;
  for (const auto& p : points) sum += p.count;
  return sum;
}

struct Case {
  const char* name;
  bool delta;  // OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta
  bool grpc;   // metrics over gRPC by the METRICS_ variables, else HTTP by the shared ones
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class OtlpMetricsEnvTest : public AgentTest, public ::testing::WithParamInterface<Case> {
 protected:
  void SetUp() override {
    const std::vector<std::string> flags = {"--metrics-jsonl", dir() + "/metrics.jsonl"};
    sink_ = std::make_unique<SinkProcess>(dir(), flags, 0, 0, "sink");
    ASSERT_NE(sink_->http_port(), 0) << "otlp-sink did not start";
    if (GetParam().grpc) {  // the shared variables name a second sink, which gets no metrics
      const std::vector<std::string> other = {"--metrics-jsonl", dir() + "/shared-metrics.jsonl"};
      shared_sink_ = std::make_unique<SinkProcess>(dir(), other, 0, 0, "shared");
      ASSERT_NE(shared_sink_->http_port(), 0) << "otlp-sink did not start";
    }
    AgentTest::SetUp();
  }
  std::vector<std::string> AgentEnv() const override {
    std::vector<std::string> env = {"OTEL_METRIC_EXPORT_INTERVAL=300"};
    if (GetParam().grpc) {
      env.push_back("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:" +
                    std::to_string(shared_sink_->http_port()));
      env.push_back("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf");
      env.push_back("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://127.0.0.1:" +
                    std::to_string(sink_->grpc_port()));
      env.push_back("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc");
    } else {
      env.push_back("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:" +
                    std::to_string(sink_->http_port()));
      env.push_back("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf");
    }
    if (GetParam().delta) env.push_back("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta");
    return env;
  }

  // Polls the sink's metrics file until `done` holds for the series' points (or 20 s pass).
  std::vector<Point> AwaitPoints(const std::string& service,
                                 const std::function<bool(const std::vector<Point>&)>& done,
                                 size_t* exports) {
    std::vector<Point> points;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    for (;;) {
      points = SeriesPoints(dir() + "/metrics.jsonl", service, "/hello", exports);
      if (done(points) || Clock::now() >= deadline) return points;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  std::unique_ptr<SinkProcess> sink_, shared_sink_;
};

TEST_P(OtlpMetricsEnvTest, TemporalityFollowsThePreferenceExportByExport) {
  const bool delta = GetParam().delta;
  const std::string service =
      std::string("zt-otlpm-") + GetParam().name + "-" + std::to_string(getpid());
  auto& srv = StartNodeServer({"OTEL_SERVICE_NAME=" + service});
  const std::string url = Url(srv.port, "/hello");
  // What the sink has received of the series so far: requests counted, as cumulative
  // totals (the newest point) or as delta increments (their sum).
  auto total = [&](const std::vector<Point>& p) {
    return delta ? SumOfCounts(p) : (p.empty() ? 0 : p.back().count);
  };
  size_t exports = 0;

  ASSERT_EQ(Curl({url, url, url}).exit_code, 0);
  auto points = AwaitPoints(
      service, [&](const auto& p) { return total(p) == 3; }, &exports);
  ASSERT_EQ(total(points), 3u) << Show(points);

  ASSERT_EQ(Curl({url, url}).exit_code, 0);
  points = AwaitPoints(
      service, [&](const auto& p) { return total(p) == 5; }, &exports);
  ASSERT_EQ(total(points), 5u) << Show(points);
  // Two more exports with no traffic: cumulative points repeat the total, delta points are 0.
  const size_t seen = points.size();
  points = AwaitPoints(
      service, [&](const auto& p) { return p.size() >= seen + 2; }, &exports);
  ASSERT_GE(points.size(), seen + 2) << Show(points);

  const int want = delta ? 1 : 2;  // AGGREGATION_TEMPORALITY_DELTA / _CUMULATIVE
  for (size_t i = 0; i < points.size(); i++) {
    const Point& p = points[i];
    EXPECT_EQ(p.temporality, want) << i << ": " << Show(points);
    EXPECT_LT(p.start_ns, p.time_ns) << i;
    if (i == 0) continue;
    const Point& prev = points[i - 1];
    EXPECT_GT(p.time_ns, prev.time_ns) << i;
    if (delta) {
      // Each point covers the time since the previous export, and only the requests in it.
      EXPECT_EQ(p.start_ns, prev.time_ns) << i << ": " << Show(points);
      EXPECT_LE(p.count, 3u) << "a delta point accumulated: " << Show(points);
    } else {
      EXPECT_EQ(p.start_ns, points[0].start_ns) << i << ": " << Show(points);
      EXPECT_GE(p.count, prev.count) << i << ": " << Show(points);
    }
  }
  if (delta) {
    EXPECT_EQ(SumOfCounts(points), 5u) << Show(points);
    EXPECT_EQ(points.back().count, 0u) << Show(points);
  } else {
    EXPECT_EQ(points.back().count, 5u) << Show(points);
    EXPECT_TRUE(
        std::any_of(points.begin(), points.end(), [](const Point& p) { return p.count == 3; }))
        << "the first batch's total was exported on its own: " << Show(points);
  }
  if (shared_sink_) {  // OTEL_EXPORTER_OTLP_METRICS_* won over the shared variables
    size_t shared_exports = 0;
    EXPECT_TRUE(
        SeriesPoints(dir() + "/shared-metrics.jsonl", service, "/hello", &shared_exports).empty());
    EXPECT_EQ(shared_exports, 0u);
    EXPECT_GT(exports, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Env, OtlpMetricsEnvTest,
                         ::testing::Values(Case{"grpc_cumulative", false, true},
                                           Case{"http_delta", true, false}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace zerotrace::e2e
