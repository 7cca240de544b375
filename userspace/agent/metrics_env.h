// The OpenTelemetry variables that configure metrics: OTEL_METRICS_EXPORTER,
// OTEL_METRIC_EXPORT_INTERVAL and OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "export/otlp_config.h"

namespace zerotrace::agent {

struct MetricsEnv {
  // OTLP metrics: kIfEndpointSet when OTEL_METRICS_EXPORTER is unset (metrics go where the
  // spans go), kOn for "otlp", kOff for "none"/"prometheus" or with OTEL_SDK_DISABLED=true.
  exporter::OtlpEnvSelection otlp = exporter::OtlpEnvSelection::kIfEndpointSet;
  bool none = false;  // OTEL_METRICS_EXPORTER=none: no OTLP metrics even with the flags
  bool prometheus = false;
  std::chrono::milliseconds interval{60000};  // OTEL_METRIC_EXPORT_INTERVAL
  bool delta = false;                         // temporality preference delta (or lowmemory)
  std::vector<std::string> warnings;
};

MetricsEnv ReadMetricsEnv(const exporter::GetEnvFn& getenv, bool sdk_disabled);

}  // namespace zerotrace::agent
