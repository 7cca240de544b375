// LatencySketch: log-spaced buckets for the top view's percentiles.
#include <cmath>

#include "metrics/metric_data.h"

namespace zerotrace::metrics {

void LatencySketch::Record(double seconds, bool error) {
  size_t i = 0;
  if (seconds >= kBase) {
    const double b = std::floor(4 * std::log2(seconds / kBase)) + 1;
    i = b >= kBuckets - 1 ? kBuckets - 1 : static_cast<size_t>(b);
  }
  buckets[i]++;
  count++;
  if (error) errors++;
  sum += seconds;
}

double LatencySketch::QuantileSince(const LatencySketch& earlier, double q) const {
  const uint64_t n = count - earlier.count;
  if (n == 0) return std::nan("");
  // The smallest value with at least q of the values at or below it (nearest rank).
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * n)));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; i++) {
    seen += buckets[i] - earlier.buckets[i];
    if (seen >= rank) {
      if (i == 0) return kBase / 2;
      // The bucket's geometric middle: within ~9% of any value in it.
      return kBase * std::exp2((static_cast<double>(i) - 0.5) / 4);
    }
  }
  return std::nan("");
}

}  // namespace zerotrace::metrics
