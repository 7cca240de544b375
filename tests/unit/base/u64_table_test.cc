// U64Table in both of its uses: owned objects that an insert replaces (the connection table)
// and values that keep the first insert (the service graph), against the standard containers.
#include "base/u64_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>
#include <vector>

namespace zerotrace {
namespace {

struct Object {
  uint64_t id = 0;
};
using Owning = U64Table<std::unique_ptr<Object>>;
using Values = U64Table<std::shared_ptr<uint64_t>>;

// Every id the reference holds is found with its own object, and the counts agree.
void ExpectSame(const Owning& table, const std::map<uint64_t, Object*>& ref) {
  ASSERT_EQ(table.size(), ref.size());
  for (const auto& [id, object] : ref) {
    const std::unique_ptr<Object>* found = table.Find(id);
    ASSERT_NE(found, nullptr) << "id " << id;
    ASSERT_EQ(found->get(), object) << "id " << id;
    ASSERT_EQ(table.FindObject(id), object) << "id " << id;
  }
  size_t visited = 0;
  table.ForEach([&](uint64_t id, const std::unique_ptr<Object>& o) {
    EXPECT_EQ(o->id, id);
    EXPECT_EQ(ref.count(id), 1u);
    visited++;
  });
  EXPECT_EQ(visited, ref.size());
}

// The keys in slot order, as ForEach visits them: the table's layout.
template <typename Table>
std::vector<uint64_t> KeysInSlotOrder(const Table& table) {
  std::vector<uint64_t> keys;
  table.ForEach([&](uint64_t key, const auto&) { keys.push_back(key); });
  return keys;
}

// The Fibonacci home of `key` in a table of 64 slots (the minimum capacity).
size_t HomeIn64(uint64_t key) { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 58); }

// The first `n` keys from 1 up whose home in 64 slots is `home`.
std::vector<uint64_t> KeysWithHome(size_t home, size_t n) {
  std::vector<uint64_t> keys;
  for (uint64_t k = 1; keys.size() < n; k++) {
    if (HomeIn64(k) == home) keys.push_back(k);
  }
  return keys;
}

TEST(U64TableTest, EmptyTableFindsAndErasesNothing) {
  Owning owning;
  EXPECT_EQ(owning.Find(0), nullptr);
  EXPECT_EQ(owning.Find(7), nullptr);
  EXPECT_EQ(owning.FindObject(7), nullptr);
  EXPECT_EQ(owning.Take(7), nullptr);
  EXPECT_EQ(owning.size(), 0u);
  EXPECT_EQ(owning.capacity(), 0u);
  Values values;
  EXPECT_EQ(values.Find(7), nullptr);
  EXPECT_EQ(values.Take(7), nullptr);
  EXPECT_EQ(values.size(), 0u);
}

TEST(U64TableTest, KeyZeroIsAKeyLikeAnyOther) {
  Owning owning;
  owning.InsertOrReplace(0, std::make_unique<Object>());
  ASSERT_NE(owning.Find(0), nullptr);
  EXPECT_NE(owning.FindObject(0), nullptr);
  EXPECT_EQ(owning.Find(1), nullptr);
  EXPECT_EQ(owning.FindObject(1), nullptr);
  EXPECT_NE(owning.Take(0), nullptr);
  EXPECT_EQ(owning.Find(0), nullptr);
  EXPECT_EQ(owning.FindObject(0), nullptr);
  Values values;
  EXPECT_TRUE(values.InsertIfAbsent(0, std::make_shared<uint64_t>(0)));
  ASSERT_NE(values.Find(0), nullptr);
  EXPECT_EQ(values.Find(1), nullptr);
  values.Erase(values.Find(0));
  EXPECT_EQ(values.Find(0), nullptr);
  EXPECT_EQ(values.size(), 0u);
}

TEST(U64TableTest, InsertOrReplaceUnderAKeyHeldReplacesItsValue) {
  Owning table;
  table.InsertOrReplace(5, std::make_unique<Object>(Object{5}));
  std::unique_ptr<Object>& second = table.InsertOrReplace(5, std::make_unique<Object>(Object{5}));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.Find(5), &second);
}

TEST(U64TableTest, InsertIfAbsentUnderAKeyHeldKeepsTheFirst) {
  Values table;
  EXPECT_TRUE(table.InsertIfAbsent(5, std::make_shared<uint64_t>(1)));
  EXPECT_FALSE(table.InsertIfAbsent(5, std::make_shared<uint64_t>(2)));
  EXPECT_EQ(table.size(), 1u);
  ASSERT_NE(table.Find(5), nullptr);
  EXPECT_EQ(**table.Find(5), 1u);
}

// Take by key and Erase by the pointer Find returned both let go of the value at once.
TEST(U64TableTest, TakeHandsTheValueOverAndEraseLetsItGo) {
  Values table;
  table.InsertIfAbsent(1, std::make_shared<uint64_t>(10));
  table.InsertIfAbsent(2, std::make_shared<uint64_t>(20));
  std::shared_ptr<uint64_t> taken = table.Take(1);
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 10u);
  EXPECT_EQ(taken.use_count(), 1);  // the table holds no copy
  EXPECT_EQ(table.Take(1), nullptr);
  std::weak_ptr<uint64_t> held = *table.Find(2);
  table.Erase(table.Find(2));
  EXPECT_TRUE(held.expired());
  EXPECT_EQ(table.size(), 0u);
}

// A run that wraps from the last slot to the first: erasing its head shifts each later entry
// back by one, across the wrap, and an entry already at its home stays.
TEST(U64TableTest, EraseShiftsTheRunBackAcrossTheWrap) {
  const std::vector<uint64_t> last = KeysWithHome(63, 3);  // slots 63, 0, 1
  const uint64_t first = KeysWithHome(0, 1)[0];            // home 0: slot 2
  const uint64_t second = KeysWithHome(1, 1)[0];           // home 1: slot 3
  const uint64_t apart = KeysWithHome(5, 1)[0];            // its own run: slot 5
  for (const bool by_key : {true, false}) {
    SCOPED_TRACE(by_key ? "Take" : "Erase");
    Values table;
    for (uint64_t k : {last[0], last[1], last[2], first, second, apart}) {
      ASSERT_TRUE(table.InsertIfAbsent(k, std::make_shared<uint64_t>(k)));
    }
    ASSERT_EQ(table.capacity(), 64u);
    EXPECT_EQ(KeysInSlotOrder(table),
              (std::vector<uint64_t>{last[1], last[2], first, second, apart, last[0]}));
    if (by_key) {
      EXPECT_EQ(*table.Take(last[0]), last[0]);
    } else {
      table.Erase(table.Find(last[0]));
    }
    // last[1] back to 63, last[2] to 0, first to 1, second to 2; apart stays.
    EXPECT_EQ(KeysInSlotOrder(table),
              (std::vector<uint64_t>{last[2], first, second, apart, last[1]}));
    for (uint64_t k : {last[1], last[2], first, second, apart}) {
      ASSERT_NE(table.Find(k), nullptr) << k;
      EXPECT_EQ(**table.Find(k), k);
    }
    EXPECT_EQ(table.Find(last[0]), nullptr);
    // Slot 0 frees: first moves to its home 0, second to its home 1.
    table.Erase(table.Find(last[2]));
    EXPECT_EQ(KeysInSlotOrder(table), (std::vector<uint64_t>{first, second, apart, last[1]}));
    // Slot 63 frees: the entries after it across the wrap sit at their homes and stay.
    EXPECT_EQ(*table.Take(last[1]), last[1]);
    EXPECT_EQ(KeysInSlotOrder(table), (std::vector<uint64_t>{first, second, apart}));
    EXPECT_EQ(table.size(), 3u);
  }
}

TEST(U64TableTest, GrowsAtHalfFullAndOwnedObjectsNeverMove) {
  Owning table;
  std::map<uint64_t, Object*> ref;
  for (uint64_t id = 1; id <= 32; id++) {
    ref[id] = table.InsertOrReplace(id, std::make_unique<Object>(Object{id})).get();
  }
  EXPECT_EQ(table.capacity(), 64u);
  ref[33] = table.InsertOrReplace(33, std::make_unique<Object>(Object{33})).get();
  EXPECT_EQ(table.capacity(), 128u);
  ExpectSame(table, ref);
  Values values;
  for (uint64_t id = 1; id <= 33; id++) values.InsertIfAbsent(id, std::make_shared<uint64_t>(id));
  EXPECT_EQ(values.capacity(), 128u);
  for (uint64_t id = 1; id <= 33; id++) EXPECT_EQ(**values.Find(id), id);
}

// Sequential ids (as the kernel counts connections), others far apart (colliding homes), in
// random order of inserts and erases: every step agrees with std::map; objects never move.
TEST(U64TableTest, OwningAgreesWithAnOrderedMapUnderRandomInsertsAndTakes) {
  const struct {
    const char* name;
    uint64_t stride;
  } cases[] = {{"sequential", 1}, {"power of two apart", uint64_t{1} << 32}, {"odd", 977}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Owning table;
    std::map<uint64_t, Object*> ref;
    std::mt19937_64 rng(42);
    for (int step = 0; step < 20000; step++) {
      const uint64_t id = (rng() % 3000) * c.stride;
      if (rng() % 3 != 0 && ref.count(id) == 0) {
        ref[id] = table.InsertOrReplace(id, std::make_unique<Object>(Object{id})).get();
      } else {
        std::unique_ptr<Object> out = table.Take(id);
        EXPECT_EQ(out.get(), ref.count(id) ? ref[id] : nullptr);
        ref.erase(id);
      }
      if (step % 997 == 0) ExpectSame(table, ref);
    }
    ExpectSame(table, ref);
  }
}

// Few distinct keys (long probe runs, many collisions) and many; keys in the low bits only or
// spread over all 64: inserts that keep the first, finds and erases by pointer agree with
// std::unordered_map at every step.
TEST(U64TableTest, KeepFirstAgreesWithAnUnorderedMapUnderRandomInsertsFindsAndErases) {
  for (uint64_t keys : {50u, 5000u}) {
    SCOPED_TRACE(keys);
    std::mt19937_64 rng(keys);
    Values table;
    std::unordered_map<uint64_t, uint64_t> want;
    for (int step = 0; step < 200'000; step++) {
      const uint64_t key = step % 2 ? rng() % keys : (rng() % keys) << 40;
      switch (rng() % 3) {
        case 0: {
          const bool stored = table.InsertIfAbsent(key, std::make_shared<uint64_t>(step));
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
    size_t visited = 0;
    table.ForEach([&](uint64_t key, const std::shared_ptr<uint64_t>& v) {
      auto it = want.find(key);
      ASSERT_NE(it, want.end()) << key;
      EXPECT_EQ(*v, it->second);
      visited++;
    });
    EXPECT_EQ(visited, want.size());
  }
}

TEST(U64TableTest, OwningShrinksAfterABurstAndKeepsWhatItHolds) {
  Owning table;
  std::map<uint64_t, Object*> ref;
  for (uint64_t id = 1; id <= 10000; id++) {
    ref[id] = table.InsertOrReplace(id, std::make_unique<Object>(Object{id})).get();
  }
  const size_t burst = table.capacity();
  EXPECT_GE(burst, 20000u);  // at most half full
  table.ShrinkIfSparse();    // full: nothing to give back
  EXPECT_EQ(table.capacity(), burst);
  for (uint64_t id = 1; id <= 10000; id++) {
    if (id % 100 != 0) {
      table.Take(id);
      ref.erase(id);
    }
  }
  table.ShrinkIfSparse();
  EXPECT_LE(table.capacity(), 512u);  // 100 left: a quarter full at most, rounded up
  ExpectSame(table, ref);
  table.ShrinkIfSparse();  // not sparse now: stays
  EXPECT_LE(table.capacity(), 512u);
  ExpectSame(table, ref);
}

TEST(U64TableTest, KeepFirstShrinksAfterABurstAndKeepsWhatItHolds) {
  Values table;
  for (uint64_t id = 1; id <= 50'000; id++)
    table.InsertIfAbsent(id, std::make_shared<uint64_t>(id));
  const size_t peak = table.capacity();
  ASSERT_GE(peak, 100'000u);
  table.ShrinkIfSparse();
  EXPECT_EQ(table.capacity(), peak);
  for (uint64_t id = 1; id <= 50'000; id++) {
    if (id % 1000 != 0) table.Erase(table.Find(id));
  }
  table.ShrinkIfSparse();
  EXPECT_EQ(table.capacity(), 256u);  // 50 left: the power of two at least four times that
  ASSERT_EQ(table.size(), 50u);
  for (uint64_t id = 1000; id <= 50'000; id += 1000) {
    ASSERT_NE(table.Find(id), nullptr) << id;
    EXPECT_EQ(**table.Find(id), id);
  }
  EXPECT_EQ(table.Find(999), nullptr);
  // Drained to a few: never below the minimum capacity.
  for (uint64_t id = 1000; id <= 49'000; id += 1000) table.Erase(table.Find(id));
  table.ShrinkIfSparse();
  EXPECT_EQ(table.capacity(), 64u);
  EXPECT_EQ(**table.Find(50'000), 50'000u);
}

TEST(U64TableTest, ForEachVisitsEveryEntryAndMayChangeValues) {
  Values table;
  for (uint64_t id = 1; id <= 100; id++) table.InsertIfAbsent(id, std::make_shared<uint64_t>(id));
  table.ForEach([](uint64_t key, std::shared_ptr<uint64_t>& v) { *v = 2 * key; });
  uint64_t sum = 0;
  const Values& read = table;
  read.ForEach([&](uint64_t key, const std::shared_ptr<uint64_t>& v) {
    EXPECT_EQ(*v, 2 * key);
    sum += key;
  });
  EXPECT_EQ(sum, 5050u);
}

// Each row: capacity, used, spread, minimum capacity -> what it shrinks to (0: keep it).
TEST(SparseShrinkToTest, ShrinksOnlyWhenAnEighthFullAndNeverBelowTheMinimum) {
  const struct {
    size_t capacity, used, spread, min, want;
  } rows[] = {
      {0, 0, 4, 64, 0},         // no storage yet
      {64, 0, 4, 64, 0},        // at the minimum already
      {128, 16, 4, 64, 64},     // an eighth full: 4 x 16 = 64
      {128, 17, 4, 64, 0},      // more than an eighth
      {1024, 100, 4, 64, 512},  // 4 x 100 = 400, rounded up
      {1024, 100, 2, 64, 256},  // a ring: twice what it holds
      {1024, 0, 2, 64, 64},     // empty: the minimum
      {1024, 5, 4, 32, 32},     // another minimum
  };
  for (const auto& r : rows) {
    EXPECT_EQ(SparseShrinkTo(r.capacity, r.used, r.spread, r.min), r.want)
        << r.capacity << " " << r.used << " " << r.spread << " " << r.min;
  }
}

}  // namespace
}  // namespace zerotrace
