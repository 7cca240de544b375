// Prometheus text for RED histograms and service-graph counters.
#include "metrics/prom_metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

namespace zerotrace::metrics {
namespace {

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[40];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest exact form
  return std::string(buf, r.ptr);
}

void AppendEscaped(std::string_view s, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

std::string ValueText(const trace::AttributeValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  return Number(std::get<double>(v));
}

// "{service_name="a",k="v"" without the closing brace (le may follow).
std::string Labels(const std::string& service, const Attributes& attrs) {
  std::string out = "{";
  bool first = true;
  auto add = [&](std::string_view key, std::string_view value) {
    if (!first) out.push_back(',');
    first = false;
    out.append(PrometheusLabel(key)).append("=\"");
    AppendEscaped(value, &out);
    out.push_back('"');
  };
  if (!service.empty()) add("service_name", service);
  for (const auto& a : attrs) add(a.key, ValueText(a.value));
  return out;
}

std::string Close(std::string labels) {
  if (labels == "{") return "";
  return labels + "}";
}

}  // namespace

std::string PrometheusName(std::string_view name, std::string_view unit) {
  std::string out = PrometheusLabel(name);
  if (unit == "s" && !(out.size() >= 8 && out.ends_with("_seconds"))) out += "_seconds";
  return out;
}

std::string PrometheusLabel(std::string_view key) {
  std::string out(key);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) c = '_';
  }
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') out = std::string("_").append(out);
  return out;
}

void AppendPrometheusText(const MetricsSnapshot& snapshot, std::string* out) {
  // Families by name across services: a family's samples must stay together.
  std::map<std::string, std::vector<std::pair<const ResourceMetrics*, const MetricFamily*>>>
      families;
  std::vector<std::string> order;
  for (const ResourceMetrics& r : snapshot.resources) {
    for (const MetricFamily& f : r.families) {
      const std::string name = PrometheusName(f.name, f.unit);
      auto& list = families[name];
      if (list.empty()) order.push_back(name);
      list.emplace_back(&r, &f);
    }
  }
  for (const std::string& name : order) {
    const auto& list = families[name];
    const MetricFamily& first = *list.front().second;
    const bool histogram = first.kind == MetricFamily::Kind::kHistogram;
    out->append("# HELP ").append(name).append(" ").append(first.description).append("\n");
    out->append("# TYPE ").append(name).append(histogram ? " histogram\n" : " counter\n");
    for (const auto& [r, f] : list) {
      for (const Point& p : f->points) {
        const std::string labels = Labels(r->service_name, p.attributes);
        if (!histogram) {
          out->append(name).append(Close(labels)).append(" ");
          out->append(std::to_string(p.value)).append("\n");
          continue;
        }
        const std::string sep = labels == "{" ? "" : ",";
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= f->bounds.size(); i++) {
          cumulative += p.histogram.buckets[i];
          const std::string le = i < f->bounds.size() ? Number(f->bounds[i]) : "+Inf";
          out->append(name).append("_bucket").append(labels).append(sep);
          out->append("le=\"").append(le).append("\"} ");
          out->append(std::to_string(cumulative)).append("\n");
        }
        out->append(name).append("_sum").append(Close(labels)).append(" ");
        out->append(Number(p.histogram.sum)).append("\n");
        out->append(name).append("_count").append(Close(labels)).append(" ");
        out->append(std::to_string(p.histogram.count)).append("\n");
      }
    }
  }
}

}  // namespace zerotrace::metrics
