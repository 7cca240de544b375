// Self-metric rows: each stage reports its own counters into a CounterReport, and the agent
// renders the rows on the stats line and on /metrics.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace zerotrace {

enum class CounterKind : uint8_t { kCounter = 0, kGauge = 1 };

using CounterLabels = std::vector<std::pair<std::string, std::string>>;

// One self-metric at one point in time.
struct CounterRow {
  const char* stats_key;  // its name on the stats line; nullptr: only on /metrics
  std::string name;       // Prometheus name (counters end in _total)
  const char* help;
  CounterKind kind;
  uint64_t value;
  CounterLabels labels;
  uint64_t per_unit = 1;  // /metrics shows value / per_unit (ns -> seconds)
};

// zerotrace_stage_items_total{stage=...}: each stage reports what it handed on.
inline constexpr char kStageItemsHelp[] =
    "items each pipeline stage handed on: ring-buffer records consumed (ringbuf), data events "
    "applied (conn), exchanges (protocols), linked spans released (trace), spans exported "
    "(export)";

class CounterReport {
 public:
  // A counter; `stats_key` also puts it on the stats line.
  void Counter(const char* stats_key, std::string name, const char* help, uint64_t value,
               CounterLabels labels = {}) {
    rows_.push_back(
        {stats_key, std::move(name), help, CounterKind::kCounter, value, std::move(labels), 1});
  }
  void Gauge(const char* stats_key, std::string name, const char* help, uint64_t value,
             CounterLabels labels = {}) {
    rows_.push_back(
        {stats_key, std::move(name), help, CounterKind::kGauge, value, std::move(labels), 1});
  }
  void Add(CounterRow row) { rows_.push_back(std::move(row)); }
  const std::vector<CounterRow>& rows() const { return rows_; }
  std::vector<CounterRow>& rows() { return rows_; }

 private:
  std::vector<CounterRow> rows_;
};

}  // namespace zerotrace
