// The metrics stage's snapshot in the Prometheus text format (0.0.4), named as the
// OpenTelemetry-to-Prometheus rules name them: http.server.request.duration (unit s) becomes
// http_server_request_duration_seconds_{bucket,sum,count} with a service_name label.
#pragma once

#include <string>
#include <string_view>

#include "metrics/metric_data.h"

namespace zerotrace::metrics {

// "http.server.request.duration" + "s" -> "http_server_request_duration_seconds"; counters
// keep their "_total".
std::string PrometheusName(std::string_view name, std::string_view unit);
// "http.request.method" -> "http_request_method": every character outside [a-zA-Z0-9_] is '_'.
std::string PrometheusLabel(std::string_view key);

// Appends every family of `snapshot` to *out, each family's samples together.
void AppendPrometheusText(const MetricsSnapshot& snapshot, std::string* out);

}  // namespace zerotrace::metrics
