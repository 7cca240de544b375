// The one place where kernel monotonic timestamps become wall-clock time.
#pragma once

#include <time.h>

#include <cstdint>
#include <string>

namespace zerotrace {

class WallClock {
 public:
  // Samples the offset between CLOCK_REALTIME and CLOCK_MONOTONIC (best of a few tries).
  WallClock();
  // Unix time in ns for a bpf_ktime_get_ns() / CLOCK_MONOTONIC timestamp.
  uint64_t ToUnixNs(uint64_t monotonic_ns) const { return monotonic_ns + offset_ns_; }
  static uint64_t MonotonicNow();
  // "15:04:05.123456" in local time.
  static std::string FormatTimeOfDay(uint64_t unix_ns);

 private:
  uint64_t offset_ns_ = 0;
};

}  // namespace zerotrace
