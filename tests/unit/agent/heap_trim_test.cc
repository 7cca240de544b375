// HeapTrimmer: a burst of freed memory goes back to the kernel, once, and not more often than
// the interval allows.
#include "agent/heap_trim.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "agent/self_metrics.h"

namespace zerotrace::agent {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

// Sanitizers replace malloc: glibc's heap, which the trimmer watches, then holds nothing.
#if defined(__SANITIZE_ADDRESS__)
#define ZT_GLIBC_HEAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZT_GLIBC_HEAP 0
#endif
#endif
#ifndef ZT_GLIBC_HEAP
#define ZT_GLIBC_HEAP 1
#endif

TEST(HeapTrimmer, LooksAtMostOncePerInterval) {
  HeapTrimmer::Options o;
  o.min_free_bytes = 0;  // always worth a trim: only the interval holds it back
  o.interval_ns = 2 * kSecond;
  HeapTrimmer trimmer(o);
  EXPECT_TRUE(trimmer.Tick(10 * kSecond));
  EXPECT_FALSE(trimmer.Tick(11 * kSecond));
  EXPECT_TRUE(trimmer.Tick(12 * kSecond));
  EXPECT_EQ(trimmer.trims(), 2u);
}

TEST(HeapTrimmer, TooLittleFreeMemoryIsLeftAlone) {
  HeapTrimmer::Options o;
  o.min_free_bytes = size_t{1} << 40;
  HeapTrimmer trimmer(o);
  EXPECT_FALSE(trimmer.Tick(10 * kSecond));
  EXPECT_EQ(trimmer.trims(), 0u);
}

#if ZT_GLIBC_HEAP
// 40 MiB in 1 KiB blocks, written to, then freed but for every 64th block: glibc keeps the
// freed memory (the live blocks pin the heap's top) until the trimmer hands it back.
std::vector<std::unique_ptr<char[]>> Allocate() {
  std::vector<std::unique_ptr<char[]>> blocks(40 * 1024);
  for (auto& b : blocks) {
    b.reset(new char[1024]);
    std::memset(b.get(), 0x5a, 1024);
  }
  return blocks;
}
// Frees all of `blocks` but every 64th block.
std::vector<std::unique_ptr<char[]>> FreeMost(std::vector<std::unique_ptr<char[]>> blocks) {
  std::vector<std::unique_ptr<char[]>> kept;
  for (size_t i = 0; i < blocks.size(); i++) {
    if (i % 64 == 63) kept.push_back(std::move(blocks[i]));
  }
  return kept;  // `blocks` frees the rest
}
std::vector<std::unique_ptr<char[]>> Burst() { return FreeMost(Allocate()); }

TEST(HeapTrimmer, ABurstFreedGoesBackToTheKernelOnce) {
  HeapTrimmer::Options o;
  o.interval_ns = 2 * kSecond;
  HeapTrimmer trimmer(o);
  const auto kept = Burst();
  ASSERT_GE(FreeHeapBytes(), size_t{30} << 20);
  const uint64_t before = ReadProcessStats().rss_bytes;
  ASSERT_TRUE(trimmer.Tick(10 * kSecond));
  const uint64_t after = ReadProcessStats().rss_bytes;
  EXPECT_LE(after + (uint64_t{24} << 20), before) << "RSS " << before << " -> " << after;
  // Still free, but already returned: not trimmed again.
  EXPECT_GE(FreeHeapBytes(), size_t{30} << 20);
  EXPECT_FALSE(trimmer.Tick(20 * kSecond));
  // A second burst makes the same pages resident again: trimmed again.
  const auto kept_too = Burst();
  EXPECT_TRUE(trimmer.Tick(30 * kSecond));
  EXPECT_EQ(trimmer.trims(), 2u);
}

// Connections closing after a trim: their memory is freed without RSS growing first (it was
// resident all along). It is trimmed too.
TEST(HeapTrimmer, MemoryFreedAfterATrimIsTrimmedToo) {
  HeapTrimmer::Options o;
  o.interval_ns = 2 * kSecond;
  HeapTrimmer trimmer(o);
  auto held = Allocate();
  const auto kept = Burst();
  ASSERT_TRUE(trimmer.Tick(10 * kSecond));
  const uint64_t before = ReadProcessStats().rss_bytes;
  const auto kept_too = FreeMost(std::move(held));
  ASSERT_TRUE(trimmer.Tick(20 * kSecond));
  const uint64_t after = ReadProcessStats().rss_bytes;
  EXPECT_LE(after + (uint64_t{24} << 20), before) << "RSS " << before << " -> " << after;
}
#endif

}  // namespace
}  // namespace zerotrace::agent
