// PendingTable and DeadlineQueue: the same answers as the standard containers under random use.
#include "metrics/pending_spans.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>
#include <unordered_map>

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

}  // namespace
}  // namespace zerotrace::metrics
