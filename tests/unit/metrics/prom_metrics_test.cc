// The metrics stage as Prometheus text: names, labels, cumulative buckets.
#include "metrics/prom_metrics.h"

#include <gtest/gtest.h>

#include "metrics/metrics_stage.h"
#include "metrics_testing.h"

namespace zerotrace::metrics {
namespace {

using testing::HttpSpan;
using trace::SpanKind;

TEST(PromMetricsTest, NamesFollowTheOpenTelemetryToPrometheusRules) {
  EXPECT_EQ(PrometheusName("http.server.request.duration", "s"),
            "http_server_request_duration_seconds");
  EXPECT_EQ(PrometheusName("traces_service_graph_request_server_seconds", "s"),
            "traces_service_graph_request_server_seconds");
  EXPECT_EQ(PrometheusName("traces_service_graph_request_total", ""),
            "traces_service_graph_request_total");
  EXPECT_EQ(PrometheusLabel("http.response.status_code"), "http_response_status_code");
  EXPECT_EQ(PrometheusLabel("9x-y"), "_9x_y");
}

TEST(PromMetricsTest, HistogramsHaveCumulativeBucketsSumAndCountPerService) {
  MetricsStage stage;
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 3, 1), 0);
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 30, 2), 0);
  stage.OnSpan(HttpSpan("pay\"ments", SpanKind::kServer, 200, 30, 3), 0);
  std::string text;
  AppendPrometheusText(stage.Snapshot(), &text);
  const std::string labels =
      "service_name=\"orders\",http_request_method=\"GET\",http_route=\"/users/{id}\","
      "http_response_status_code=\"200\",url_scheme=\"http\"";
  EXPECT_NE(text.find("# TYPE http_server_request_duration_seconds histogram\n"),
            std::string::npos);
  EXPECT_NE(
      text.find("http_server_request_duration_seconds_bucket{" + labels + ",le=\"0.005\"} 1\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("http_server_request_duration_seconds_bucket{" + labels + ",le=\"0.025\"} 1\n"),
      std::string::npos);
  EXPECT_NE(
      text.find("http_server_request_duration_seconds_bucket{" + labels + ",le=\"0.05\"} 2\n"),
      std::string::npos);
  EXPECT_NE(
      text.find("http_server_request_duration_seconds_bucket{" + labels + ",le=\"+Inf\"} 2\n"),
      std::string::npos);
  EXPECT_NE(text.find("http_server_request_duration_seconds_count{" + labels + "} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("http_server_request_duration_seconds_sum{" + labels + "} 0.033\n"),
            std::string::npos);
  EXPECT_NE(text.find("service_name=\"pay\\\"ments\""), std::string::npos);  // escaped
  // One TYPE line for the family, however many services have it.
  EXPECT_EQ(text.find("# TYPE http_server_request_duration_seconds histogram"),
            text.rfind("# TYPE http_server_request_duration_seconds histogram"));
}

TEST(PromMetricsTest, ServiceGraphCountersCarryClientAndServer) {
  MetricsStage stage;
  stage.OnSpan(HttpSpan("web", SpanKind::kClient, 200, 40, 7), 0);
  stage.OnSpan(HttpSpan("orders", SpanKind::kServer, 200, 30, 8, 7), 0);
  std::string text;
  AppendPrometheusText(stage.Snapshot(), &text);
  EXPECT_NE(text.find("# TYPE traces_service_graph_request_total counter\n"
                      "traces_service_graph_request_total{client=\"web\",server=\"orders\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("traces_service_graph_request_server_seconds_count{client=\"web\","
                      "server=\"orders\"} 1\n"),
            std::string::npos);
}

}  // namespace
}  // namespace zerotrace::metrics
