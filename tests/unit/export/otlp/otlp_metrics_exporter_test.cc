// OtlpMetricsExporter against an in-process HTTP receiver: delta points never lose the counts
// of an export the collector refused.
#include "export/otlp_metrics_exporter.h"

#include <gtest/gtest.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "otlp_test_support.h"

namespace zerotrace::exporter {
namespace {

namespace pbm = opentelemetry::proto::collector::metrics::v1;

// One service with one histogram series that has seen `count` requests of 0.1 s.
metrics::MetricsSnapshot Snapshot(uint64_t count, uint64_t time_ns) {
  metrics::MetricFamily f;
  f.name = "http.server.request.duration";
  f.unit = "s";
  f.bounds = {0.05, 0.5};
  metrics::Point p;
  p.id = 7;
  p.start_unix_ns = 1000;
  for (uint64_t i = 0; i < count; i++) p.histogram.Record(0.1, f.bounds);
  f.points.push_back(p);
  metrics::MetricsSnapshot s;
  s.time_unix_ns = time_ns;
  s.resources.push_back({"svc", {f}});
  return s;
}

struct DeltaPoint {
  uint64_t count = 0, start = 0, time = 0;
};

DeltaPoint OnlyPoint(const testing::Received& r) {
  pbm::ExportMetricsServiceRequest req;
  EXPECT_TRUE(req.ParseFromString(r.body));
  const auto& d = req.resource_metrics(0).scope_metrics(0).metrics(0).histogram().data_points(0);
  return {d.count(), d.start_time_unix_nano(), d.time_unix_nano()};
}

TEST(OtlpMetricsExporterTest, DeltaAfterARefusedExportCarriesItsCounts) {
  testing::HttpReceiver receiver;
  // The first export is refused (400: not retried), the next two are accepted.
  testing::Reply refused;
  refused.http_status = 400;
  receiver.script().Set({refused}, testing::Reply{});
  OtlpConfig config;
  config.protocol = OtlpConfig::Protocol::kHttpProtobuf;
  config.endpoint = receiver.endpoint();
  OtlpMetricsOptions options;
  options.delta = true;
  auto e = OtlpMetricsExporter::Create(config, options);
  ASSERT_TRUE(e.ok()) << e.status().message();

  EXPECT_FALSE(e.value()->Export(Snapshot(3, 2000)).ok());
  EXPECT_TRUE(e.value()->Export(Snapshot(5, 3000)).ok());
  EXPECT_TRUE(e.value()->Export(Snapshot(6, 4000)).ok());
  const auto got = receiver.script().received();
  ASSERT_EQ(got.size(), 3u);
  // The refused request's 3 are in the next accepted one, which starts at the series' start.
  const DeltaPoint second = OnlyPoint(got[1]);
  EXPECT_EQ(second.count, 5u);
  EXPECT_EQ(second.start, 1000u);
  EXPECT_EQ(second.time, 3000u);
  // After an accepted export, deltas start from it.
  const DeltaPoint third = OnlyPoint(got[2]);
  EXPECT_EQ(third.count, 1u);
  EXPECT_EQ(third.start, 3000u);
  EXPECT_EQ(e.value()->counters().exports_failed.load(), 1u);
}

}  // namespace
}  // namespace zerotrace::exporter
