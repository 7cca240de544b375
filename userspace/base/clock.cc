// WallClock: offset sampled between two monotonic reads to bound the error.
#include "base/clock.h"

#include <cstdio>
#include <utility>

namespace zerotrace {
namespace {

uint64_t Read(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + ts.tv_nsec;
}

}  // namespace

WallClock::WallClock(ReadFn read) : read_(read ? std::move(read) : ReadFn(Read)) { Resample(); }

void WallClock::Resample() {
  uint64_t best_window = UINT64_MAX, offset = 0;
  for (int i = 0; i < 5; i++) {
    const uint64_t m1 = read_(CLOCK_MONOTONIC);
    const uint64_t r = read_(CLOCK_REALTIME);
    const uint64_t m2 = read_(CLOCK_MONOTONIC);
    if (m2 - m1 < best_window) {
      best_window = m2 - m1;
      offset = r - (m1 + (m2 - m1) / 2);
    }
  }
  offset_ns_.store(offset, std::memory_order_relaxed);
}

uint64_t WallClock::MonotonicNow() { return Read(CLOCK_MONOTONIC); }

std::string WallClock::FormatTimeOfDay(uint64_t unix_ns) {
  const time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000ULL);
  tm local;
  localtime_r(&secs, &local);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%06llu", local.tm_hour, local.tm_min,
                local.tm_sec, static_cast<unsigned long long>((unix_ns % 1'000'000'000ULL) / 1000));
  return buf;
}

}  // namespace zerotrace
