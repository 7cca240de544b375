// DeadlineQueue against std::deque under random use, and the service graph's pending spans
// (U64Table, tested on its own in tests/unit/base) giving a burst's room back with it.
#include "metrics/pending_spans.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>
#include <vector>

namespace zerotrace::metrics {
namespace {

TEST(DeadlineQueueTest, KeepsArrivalOrderAcrossWrapsAndGrowth) {
  DeadlineQueue q;
  std::deque<uint64_t> want;
  std::mt19937_64 rng(7);
  uint64_t next = 0;
  for (int step = 0; step < 100'000; step++) {
    // Mostly balanced, so the ring wraps many times; bursts make it grow.
    if (rng() % 100 < (step % 20'000 < 10'000 ? 51 : 49)) {
      q.push_back(next * 10, next);
      want.push_back(next++);
    } else if (!want.empty()) {
      ASSERT_EQ(q.front().second, want.front());
      EXPECT_EQ(q.front().first, want.front() * 10);
      q.pop_front();
      want.pop_front();
    }
    ASSERT_EQ(q.size(), want.size());
  }
}

TEST(PendingSpansTest, RoomOfABurstIsGivenBackAndWhatStaysIsKept) {
  U64Table<std::shared_ptr<uint64_t>, kMinPendingCapacity> table;
  DeadlineQueue q;
  for (uint64_t id = 1; id <= 50'000; id++) {
    table.InsertIfAbsent(id, std::make_shared<uint64_t>(id));
    q.push_back(id, id);
  }
  const size_t table_peak = table.capacity(), ring_peak = q.capacity();
  ASSERT_GE(table_peak, 100'000u);
  ASSERT_GE(ring_peak, 50'000u);
  table.ShrinkIfSparse();  // full: nothing to give back
  q.ShrinkIfSparse();
  EXPECT_EQ(table.capacity(), table_peak);
  EXPECT_EQ(q.capacity(), ring_peak);
  // The burst drains: the table keeps every 1000th span, the ring its newest 50 deadlines.
  for (uint64_t id = 1; id <= 50'000; id++) {
    if (id % 1000 != 0) table.Erase(table.Find(id));
  }
  for (int i = 0; i < 49'950; i++) q.pop_front();
  table.ShrinkIfSparse();
  q.ShrinkIfSparse();
  EXPECT_LE(table.capacity(), 256u);
  EXPECT_LE(q.capacity(), 128u);
  ASSERT_EQ(table.size(), 50u);
  for (uint64_t id = 1000; id <= 50'000; id += 1000) {
    std::shared_ptr<uint64_t>* v = table.Find(id);
    ASSERT_NE(v, nullptr) << id;
    EXPECT_EQ(**v, id);
  }
  EXPECT_EQ(table.Find(999), nullptr);
  // The ring keeps its order across the shrink and grows again.
  for (uint64_t id = 50'001; id <= 50'100; id++) q.push_back(id, id);
  std::vector<uint64_t> order;
  while (!q.empty()) {
    order.push_back(q.front().second);
    q.pop_front();
  }
  ASSERT_EQ(order.size(), 150u);
  for (size_t i = 0; i < order.size(); i++) EXPECT_EQ(order[i], 49'951u + i);
}

}  // namespace
}  // namespace zerotrace::metrics
