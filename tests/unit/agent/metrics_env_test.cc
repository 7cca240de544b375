// Metrics configuration: OTEL_METRICS_EXPORTER and friends, the OTLP metrics endpoint, and the
// top view's frames.
#include "agent/metrics_env.h"

#include <gtest/gtest.h>

#include <map>

#include "agent/top_view.h"
#include "export/otlp_config.h"
#include "metrics/metrics_stage.h"

namespace zerotrace::agent {
namespace {

using Env = std::map<std::string, std::string>;
exporter::GetEnvFn Get(const Env& env) {
  return [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
}

TEST(MetricsEnvTest, ExporterListIntervalAndTemporality) {
  const struct {
    Env env;
    exporter::OtlpEnvSelection otlp;
    bool none, delta;
    int64_t interval_ms;
    size_t warnings;
  } cases[] = {
      {{}, exporter::OtlpEnvSelection::kIfEndpointSet, false, false, 60000, 0},
      {{{"OTEL_METRICS_EXPORTER", "otlp"}},
       exporter::OtlpEnvSelection::kOn,
       false,
       false,
       60000,
       0},
      {{{"OTEL_METRICS_EXPORTER", "none"}},
       exporter::OtlpEnvSelection::kOff,
       true,
       false,
       60000,
       0},
      {{{"OTEL_METRICS_EXPORTER", "prometheus"}},
       exporter::OtlpEnvSelection::kOff,
       false,
       false,
       60000,
       0},
      {{{"OTEL_METRICS_EXPORTER", "zipkin"}},
       exporter::OtlpEnvSelection::kIfEndpointSet,
       false,
       false,
       60000,
       1},
      {{{"OTEL_METRIC_EXPORT_INTERVAL", "500"}},
       exporter::OtlpEnvSelection::kIfEndpointSet,
       false,
       false,
       500,
       0},
      {{{"OTEL_METRIC_EXPORT_INTERVAL", "-1"}},
       exporter::OtlpEnvSelection::kIfEndpointSet,
       false,
       false,
       60000,
       1},
      {{{"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"}},
       exporter::OtlpEnvSelection::kIfEndpointSet,
       false,
       true,
       60000,
       0},
  };
  for (const auto& c : cases) {
    const MetricsEnv e = ReadMetricsEnv(Get(c.env), false);
    EXPECT_EQ(e.otlp, c.otlp);
    EXPECT_EQ(e.none, c.none);
    EXPECT_EQ(e.delta, c.delta);
    EXPECT_EQ(e.interval.count(), c.interval_ms);
    EXPECT_EQ(e.warnings.size(), c.warnings);
  }
  EXPECT_EQ(ReadMetricsEnv(Get({{"OTEL_METRICS_EXPORTER", "otlp"}}), true).otlp,
            exporter::OtlpEnvSelection::kOff);  // OTEL_SDK_DISABLED=true
}

TEST(MetricsEnvTest, MetricsEndpointsFollowTheSignalSpecificVariables) {
  const auto url = [](const Env& env, const std::string& flag = "") {
    auto c =
        exporter::OtlpConfigFrom(Get(env), flag, "", exporter::OtlpEnvSelection::kIfEndpointSet,
                                 exporter::OtlpSignal::kMetrics);
    return c.ok() && c.value() ? c.value()->endpoint : std::string("none");
  };
  EXPECT_EQ(url({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"}}), "http://c:4318/v1/metrics");
  EXPECT_EQ(url({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                 {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9/x"}}),
            "http://m:9/x");
  EXPECT_EQ(url({{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4318/v1/traces"}}), "none");
  EXPECT_EQ(url({}, "http://c:4318/v1/traces"), "http://c:4318/v1/metrics");
  auto timeout = exporter::OtlpConfigFrom(Get({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"},
                                               {"OTEL_EXPORTER_OTLP_TIMEOUT", "5000"},
                                               {"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "700"}}),
                                          "", "", exporter::OtlpEnvSelection::kIfEndpointSet,
                                          exporter::OtlpSignal::kMetrics);
  ASSERT_TRUE(timeout.ok());
  EXPECT_EQ((*timeout)->timeout.count(), 700);
}

TEST(TopFrameTest, RatesAndErrorsCoverTheWindowAndTheCostliestServiceComesFirst) {
  metrics::MetricsStage stage;
  const auto before = stage.Snapshot();
  auto span = [](const std::string& service, double ms, int64_t status) {
    trace::Span s;
    s.kind = trace::SpanKind::kServer;
    s.name = "GET /x";
    s.end_unix_ns = static_cast<uint64_t>(ms * 1e6);
    s.attributes = {{"http.request.method", std::string("GET")},
                    {"http.response.status_code", status}};
    if (status >= 500) s.status = trace::StatusCode::kError;
    auto r = std::make_shared<trace::Resource>();
    r->service_name = service;
    s.resource = r;
    return s;
  };
  for (int i = 0; i < 10; i++) stage.OnSpan(span("fast", 1, i < 2 ? 500 : 200), 0);
  for (int i = 0; i < 4; i++) stage.OnSpan(span("slow", 100, 200), 0);
  const std::string frame = RenderTopFrame(stage.Snapshot(), before, 2.0, TopSort::kTime, 10);
  const size_t slow = frame.find("\nslow "), fast = frame.find("\nfast ");
  ASSERT_NE(slow, std::string::npos) << frame;
  ASSERT_NE(fast, std::string::npos) << frame;
  EXPECT_LT(slow, fast) << frame;  // 0.2 s/s spent against 0.005 s/s
  const std::string fast_row = frame.substr(fast + 1, frame.find('\n', fast + 1) - fast - 1);
  EXPECT_NE(fast_row.find(" 5.0 "), std::string::npos) << fast_row;   // 10 in 2 s
  EXPECT_NE(fast_row.find(" 20.0%"), std::string::npos) << fast_row;  // 2 of 10
  const std::string by_rate = RenderTopFrame(stage.Snapshot(), before, 2.0, TopSort::kRate, 10);
  EXPECT_LT(by_rate.find("\nfast "), by_rate.find("\nslow "));
}

}  // namespace
}  // namespace zerotrace::agent
