// Prometheus text exposition format 0.0.4: metric families with # HELP, # TYPE and samples.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace zerotrace::agent {

inline constexpr char kPromContentType[] = "text/plain; version=0.0.4; charset=utf-8";

enum class PromType { kCounter, kGauge };

using PromLabels = std::vector<std::pair<std::string, std::string>>;

// Collects samples by family and renders them; a family's samples stay together, in the order
// they were added, and families appear in the order of their first sample.
class PromTextWriter {
 public:
  // Adds one sample. Errors (a bad metric or label name, a counter not named *_total, a family
  // added again with another type) leave the writer unchanged.
  Status Add(std::string_view name, std::string_view help, PromType type, double value,
             const PromLabels& labels = {});
  // Integers are printed exactly (doubles lose precision above 2^53).
  Status Add(std::string_view name, std::string_view help, PromType type, uint64_t value,
             const PromLabels& labels = {});

  std::string Render() const;

 private:
  struct Family {
    std::string name, help;
    PromType type;
    std::vector<std::string> samples;  // rendered lines without the trailing newline
  };
  Status AddLine(std::string_view name, std::string_view help, PromType type,
                 const PromLabels& labels, const std::string& value);

  std::vector<Family> families_;
};

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved).
bool IsValidLabelName(std::string_view name);
// A sample value as the format spells it: "NaN", "+Inf", "-Inf", integers without exponent.
std::string FormatPromValue(double value);

}  // namespace zerotrace::agent
