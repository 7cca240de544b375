// PendingTable and DeadlineQueue: the same answers as the standard containers under random use.
#include "metrics/pending_spans.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

namespace zerotrace::metrics {
namespace {

TEST(PendingTableTest, RandomInsertsFindsAndErasesAgreeWithAnUnorderedMap) {
  // Table: few distinct keys (long probe runs, many collisions) and many.
  for (uint64_t keys : {50u, 5000u}) {
    SCOPED_TRACE(keys);
    std::mt19937_64 rng(keys);
    PendingTable<std::shared_ptr<uint64_t>> table;
    std::unordered_map<uint64_t, uint64_t> want;
    for (int step = 0; step < 200'000; step++) {
      // Low bits only or spread over all 64: both hash apart.
      const uint64_t key = step % 2 ? rng() % keys : (rng() % keys) << 40;
      switch (rng() % 3) {
        case 0: {
          const bool stored = table.Insert(key, std::make_shared<uint64_t>(step));
          EXPECT_EQ(stored, want.emplace(key, step).second);
          break;
        }
        case 1: {
          std::shared_ptr<uint64_t>* v = table.Find(key);
          auto it = want.find(key);
          ASSERT_EQ(v != nullptr, it != want.end());
          if (v != nullptr) {
            EXPECT_EQ(**v, it->second);
          }
          break;
        }
        default: {
          std::shared_ptr<uint64_t>* v = table.Find(key);
          if (v == nullptr) break;
          std::weak_ptr<uint64_t> held = *v;
          table.Erase(v);
          EXPECT_TRUE(held.expired());  // what it held is let go at once
          want.erase(key);
        }
      }
      ASSERT_EQ(table.size(), want.size());
    }
    for (const auto& [key, value] : want) {
      std::shared_ptr<uint64_t>* v = table.Find(key);
      ASSERT_NE(v, nullptr);
      EXPECT_EQ(**v, value);
    }
  }
}

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
  PendingTable<std::shared_ptr<uint64_t>> table;
  DeadlineQueue q;
  for (uint64_t id = 1; id <= 50'000; id++) {
    table.Insert(id, std::make_shared<uint64_t>(id));
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
