// WallClock: monotonic -> Unix time, and what happens when the real-time clock steps.
#include "base/clock.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>

namespace zerotrace {
namespace {

constexpr uint64_t kSecond = 1'000'000'000ULL;

// Two clocks under the test's control: each read advances time by 10 ns; real time is
// monotonic time plus `offset`, which the test steps as NTP or a suspend would.
struct FakeClocks {
  uint64_t mono = 1000 * kSecond;
  uint64_t offset = 1'700'000'000 * kSecond;
  uint64_t Read(clockid_t id) {
    mono += 10;
    return id == CLOCK_REALTIME ? mono + offset : mono;
  }
};

TEST(WallClock, ConvertsWithTheOffsetSampledAtStart) {
  FakeClocks clocks;
  WallClock clock([&clocks](clockid_t id) { return clocks.Read(id); });
  EXPECT_EQ(clock.offset_ns(), clocks.offset);
  EXPECT_EQ(clock.ToUnixNs(2000 * kSecond), 2000 * kSecond + clocks.offset);
}

TEST(WallClock, ResampleFollowsAClockStepInEitherDirection) {
  FakeClocks clocks;
  WallClock clock([&clocks](clockid_t id) { return clocks.Read(id); });
  const uint64_t ts = clocks.mono + 5 * kSecond;  // a kernel timestamp after the step
  // NTP steps the real-time clock 3 s ahead: until the next sample, times are 3 s behind.
  clocks.offset += 3 * kSecond;
  const uint64_t before = clock.ToUnixNs(ts);
  clock.Resample();
  EXPECT_EQ(clock.ToUnixNs(ts), ts + clocks.offset);
  EXPECT_EQ(clock.ToUnixNs(ts) - before, 3 * kSecond);
  // A step back (the clock had run fast) is followed as well.
  clocks.offset -= 7 * kSecond;
  clock.Resample();
  EXPECT_EQ(clock.ToUnixNs(ts), ts + clocks.offset);
}

TEST(WallClock, SamplesTheNarrowestWindow) {
  // In every other sample the real-time read is delayed (a preemption): that sample's
  // estimate is 495 ns off. The offset comes from the sample whose two monotonic reads are
  // closest together.
  uint64_t mono = 50 * kSecond;
  int reads = 0;
  const uint64_t offset = 123 * kSecond;
  WallClock clock([&](clockid_t id) {
    const bool slow_sample = (reads / 3) % 2 == 0;
    reads++;
    mono += (slow_sample && id == CLOCK_REALTIME) ? 1000 : 10;
    return id == CLOCK_REALTIME ? mono + offset : mono;
  });
  const int64_t error = static_cast<int64_t>(clock.offset_ns() - offset);
  EXPECT_LE(std::abs(error), 10);
}

TEST(WallClock, RealClocksAgreeWithClockGettime) {
  WallClock clock;
  timespec rt;
  const uint64_t mono = WallClock::MonotonicNow();
  clock_gettime(CLOCK_REALTIME, &rt);
  const uint64_t real = static_cast<uint64_t>(rt.tv_sec) * kSecond + rt.tv_nsec;
  const int64_t diff = static_cast<int64_t>(clock.ToUnixNs(mono) - real);
  EXPECT_LT(std::abs(diff), static_cast<int64_t>(kSecond / 10));
}

}  // namespace
}  // namespace zerotrace
