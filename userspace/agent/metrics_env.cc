// OTEL_METRICS_EXPORTER and friends, per the specification's environment variables.
#include "agent/metrics_env.h"

#include <charconv>
#include <string_view>

namespace zerotrace::agent {
namespace {

std::string Clean(const char* v) {
  std::string out;
  if (v == nullptr) return out;
  for (const char* p = v; *p; p++) {
    const char c = *p;
    if (c == ' ' || c == '\t') continue;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return out;
}

}  // namespace

MetricsEnv ReadMetricsEnv(const exporter::GetEnvFn& getenv, bool sdk_disabled) {
  MetricsEnv env;
  std::string_view list;
  const std::string names = Clean(getenv("OTEL_METRICS_EXPORTER"));
  list = names;
  bool otlp = false, set = false;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (name.empty()) continue;
    if (name == "otlp") {
      otlp = set = true;
    } else if (name == "prometheus") {
      env.prometheus = set = true;
    } else if (name == "none") {
      env.none = set = true;
    } else {
      env.warnings.push_back("OTEL_METRICS_EXPORTER: '" + std::string(name) +
                             "' is not a metrics exporter zerotrace has (otlp, prometheus, "
                             "none); ignored");
    }
  }
  if (env.none) otlp = env.prometheus = false;
  if (sdk_disabled) {
    env.otlp = exporter::OtlpEnvSelection::kOff;
  } else if (set) {
    env.otlp = otlp ? exporter::OtlpEnvSelection::kOn : exporter::OtlpEnvSelection::kOff;
  }
  if (const std::string v = Clean(getenv("OTEL_METRIC_EXPORT_INTERVAL")); !v.empty()) {
    int64_t ms = 0;
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
    if (ec != std::errc() || ptr != v.data() + v.size() || ms <= 0) {
      env.warnings.push_back("OTEL_METRIC_EXPORT_INTERVAL='" + v +
                             "' is not a positive number of milliseconds; using 60000");
    } else {
      env.interval = std::chrono::milliseconds(ms);
    }
  }
  const std::string temporality =
      Clean(getenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"));
  if (temporality == "delta" || temporality == "lowmemory") {
    env.delta = true;  // every instrument here is a histogram or a monotonic counter
  } else if (!temporality.empty() && temporality != "cumulative") {
    env.warnings.push_back("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE='" + temporality +
                           "' is not cumulative, delta or lowmemory; using cumulative");
  }
  return env;
}

}  // namespace zerotrace::agent
