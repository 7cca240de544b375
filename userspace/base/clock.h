// The one place where kernel monotonic timestamps become wall-clock time.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace zerotrace {

class WallClock {
 public:
  // Reads a clock (CLOCK_MONOTONIC or CLOCK_REALTIME) in ns; tests inject their own clocks.
  using ReadFn = std::function<uint64_t(clockid_t)>;

  // Samples the offset between CLOCK_REALTIME and CLOCK_MONOTONIC (best of a few tries).
  // `read` null: the real clocks.
  explicit WallClock(ReadFn read = nullptr);
  // Unix time in ns for a bpf_ktime_get_ns() / CLOCK_MONOTONIC timestamp. Any thread.
  uint64_t ToUnixNs(uint64_t monotonic_ns) const {
    return monotonic_ns + offset_ns_.load(std::memory_order_relaxed);
  }
  // Samples the offset again: an NTP step, a settimeofday or a suspend (monotonic time does
  // not count it) moves the real-time clock against the monotonic one, and every span time
  // would stay shifted. The agent calls it on its 1 s tick.
  void Resample();
  uint64_t offset_ns() const { return offset_ns_.load(std::memory_order_relaxed); }

  static uint64_t MonotonicNow();
  // "15:04:05.123456" in local time.
  static std::string FormatTimeOfDay(uint64_t unix_ns);

 private:
  ReadFn read_;
  std::atomic<uint64_t> offset_ns_{0};  // realtime - monotonic, mod 2^64
};

}  // namespace zerotrace
