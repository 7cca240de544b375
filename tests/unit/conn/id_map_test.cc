// IdMap against std::map: inserts, erases that shift runs back, growth and shrinking.
#include "conn/id_map.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace zerotrace::conn {
namespace {

struct Object {
  uint64_t id = 0;
};

// Every id the reference holds is found with its own object, and the counts agree.
void ExpectSame(const IdMap<Object>& map, const std::map<uint64_t, Object*>& ref) {
  ASSERT_EQ(map.size(), ref.size());
  for (const auto& [id, object] : ref) {
    ASSERT_EQ(map.Find(id), object) << "id " << id;
  }
  size_t visited = 0;
  map.ForEach([&](uint64_t id, const Object& o) {
    EXPECT_EQ(o.id, id);
    EXPECT_EQ(ref.count(id), 1u);
    visited++;
  });
  EXPECT_EQ(visited, ref.size());
}

TEST(IdMapTest, EmptyMapFindsAndErasesNothing) {
  IdMap<Object> map;
  EXPECT_EQ(map.Find(0), nullptr);
  EXPECT_EQ(map.Find(7), nullptr);
  EXPECT_EQ(map.Erase(7), nullptr);
  EXPECT_EQ(map.size(), 0u);
}

TEST(IdMapTest, IdZeroIsAnIdLikeAnyOther) {
  IdMap<Object> map;
  map.Insert(0, std::make_unique<Object>());
  ASSERT_NE(map.Find(0), nullptr);
  EXPECT_EQ(map.Find(1), nullptr);
  EXPECT_NE(map.Erase(0), nullptr);
  EXPECT_EQ(map.Find(0), nullptr);
}

TEST(IdMapTest, InsertUnderAnIdHeldReplacesItsObject) {
  IdMap<Object> map;
  map.Insert(5, std::make_unique<Object>(Object{5}));
  Object& second = map.Insert(5, std::make_unique<Object>(Object{5}));
  EXPECT_EQ(map.size(), 1u);
  EXPECT_EQ(map.Find(5), &second);
}

// Sequential ids (as the kernel counts connections), others far apart (colliding homes), in
// random order of inserts and erases: every step agrees with std::map; objects never move.
TEST(IdMapTest, AgreesWithAnOrderedMapUnderRandomInsertsAndErases) {
  const struct {
    const char* name;
    uint64_t stride;
  } cases[] = {{"sequential", 1}, {"power of two apart", uint64_t{1} << 32}, {"odd", 977}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    IdMap<Object> map;
    std::map<uint64_t, Object*> ref;
    std::mt19937_64 rng(42);
    for (int step = 0; step < 20000; step++) {
      const uint64_t id = (rng() % 3000) * c.stride;
      if (rng() % 3 != 0 && ref.count(id) == 0) {
        Object& o = map.Insert(id, std::make_unique<Object>(Object{id}));
        ref[id] = &o;
      } else {
        std::unique_ptr<Object> out = map.Erase(id);
        EXPECT_EQ(out.get(), ref.count(id) ? ref[id] : nullptr);
        ref.erase(id);
      }
      if (step % 997 == 0) ExpectSame(map, ref);
    }
    ExpectSame(map, ref);
  }
}

TEST(IdMapTest, ShrinksAfterABurstAndKeepsWhatItHolds) {
  IdMap<Object> map;
  std::map<uint64_t, Object*> ref;
  for (uint64_t id = 1; id <= 10000; id++) {
    ref[id] = &map.Insert(id, std::make_unique<Object>(Object{id}));
  }
  const size_t burst = map.capacity();
  EXPECT_GE(burst, 20000u);  // at most half full
  for (uint64_t id = 1; id <= 10000; id++) {
    if (id % 100 != 0) {
      map.Erase(id);
      ref.erase(id);
    }
  }
  map.ShrinkIfSparse();
  EXPECT_LE(map.capacity(), 512u);  // 100 left: a quarter full at most, rounded up
  ExpectSame(map, ref);
  map.ShrinkIfSparse();  // not sparse now: stays
  EXPECT_LE(map.capacity(), 512u);
  ExpectSame(map, ref);
}

}  // namespace
}  // namespace zerotrace::conn
