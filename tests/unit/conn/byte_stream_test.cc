// Specification of ByteStream: placement by position, gaps, holes, cap and timestamps.
#include "conn/byte_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace zerotrace::conn {
namespace {

// One AddData (len == 0 means data) or AddGap (gap > 0) call.
struct Op {
  uint64_t pos;
  std::string data;
  uint64_t gap = 0;
  uint64_t ts = 0;
};

void Apply(ByteStream& stream, const std::vector<Op>& ops) {
  for (const Op& op : ops) {
    if (op.gap > 0) {
      stream.AddGap(op.pos, op.gap, op.ts);
    } else {
      stream.AddData(op.pos, op.data, op.ts);
    }
  }
}

std::string Letters(uint64_t from, uint64_t len) {
  std::string s;
  for (uint64_t i = from; i < from + len; ++i) s.push_back(static_cast<char>('a' + i % 26));
  return s;
}

static_assert(!std::is_copy_constructible_v<ByteStream>);
static_assert(std::is_nothrow_move_constructible_v<ByteStream>);

TEST(ByteStreamTest, NewStreamIsEmptyHoleAtZero) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  ByteStream::Front front = stream.Peek();
  EXPECT_EQ(front.pos, 0u);
  EXPECT_TRUE(front.data.empty());
  EXPECT_EQ(front.gap, 0u);
  EXPECT_TRUE(stream.empty());
  EXPECT_EQ(stream.end_pos(), 0u);
}

TEST(ByteStreamTest, InOrderChunksMergeIntoOneView) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(0, "GET / HT", 1);
  stream.AddData(8, "TP/1.1\r\n", 2);
  stream.AddData(16, "\r\n", 3);
  ByteStream::Front front = stream.Peek();
  EXPECT_EQ(front.pos, 0u);
  EXPECT_EQ(front.data, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(front.gap, 0u);
  EXPECT_EQ(stream.buffered_bytes(), 18u);
  EXPECT_EQ(stream.end_pos(), 18u);
  EXPECT_EQ(stream.stats().bytes_added, 18u);
}

TEST(ByteStreamTest, OutOfOrderChunkFillsHole) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(5, "fghij", 2);
  EXPECT_TRUE(stream.Peek().data.empty()) << "a hole at the front makes the parser wait";
  EXPECT_EQ(stream.Peek().gap, 0u);
  stream.AddData(0, "abcde", 1);
  EXPECT_EQ(stream.Peek().data, "abcdefghij");
}

// Every arrival order of the same chunks yields the same stream.
TEST(ByteStreamTest, AnyArrivalOrderYieldsTheSameView) {
  std::vector<Op> chunks = {{0, "abc"}, {3, "defg"}, {7, "h"}, {8, "ijklmn"}, {14, "op"}};
  std::vector<size_t> order = {0, 1, 2, 3, 4};
  do {
    ByteStreamStats counters;
    ByteStream stream(1 << 20, &counters);
    for (size_t i : order) stream.AddData(chunks[i].pos, chunks[i].data, i + 1);
    EXPECT_EQ(stream.Peek().data, "abcdefghijklmnop");
    EXPECT_EQ(stream.stats().bytes_duplicate, 0u);
  } while (std::next_permutation(order.begin(), order.end()));
}

TEST(ByteStreamTest, OverlapIsTrimmed) {
  struct Case {
    const char* name;
    std::vector<Op> ops;
    std::string want_front;
    uint64_t want_duplicate;
  };
  const Case cases[] = {
      {"exact duplicate", {{0, "abcd"}, {0, "abcd"}}, "abcd", 4},
      {"overlaps the tail", {{0, "abcd"}, {2, "cdef"}}, "abcdef", 2},
      {"overlaps the head", {{2, "cdef"}, {0, "abcd"}}, "abcdef", 2},
      {"spans two ranges and fills between",
       {{0, "ab"}, {4, "ef"}, {0, "abcdefgh"}},
       "abcdefgh",
       4},
      {"inside a range", {{0, "abcdef"}, {2, "cd"}}, "abcdef", 2},
      {"first writer wins", {{0, "abcd"}, {2, "XYZW"}}, "abcdZW", 2},
      {"data over a known gap stays a gap", {{0, "ab"}, {2, "", 2}, {2, "cdef"}}, "ab", 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ByteStreamStats counters;
    ByteStream stream(1 << 20, &counters);
    Apply(stream, c.ops);
    EXPECT_EQ(stream.Peek().data, c.want_front);
    EXPECT_EQ(stream.stats().bytes_duplicate, c.want_duplicate);
  }
}

TEST(ByteStreamTest, GapFromCaptureLimitIsSkippable) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(0, "POST", 1);  // the syscall moved 104 bytes; 4 were captured
  stream.AddGap(4, 100, 1);
  stream.AddData(104, "HTTP", 2);
  EXPECT_EQ(stream.Peek().data, "POST");
  stream.Consume(4);
  ByteStream::Front front = stream.Peek();
  EXPECT_EQ(front.pos, 4u);
  EXPECT_TRUE(front.data.empty());
  EXPECT_EQ(front.gap, 100u);
  stream.Consume(front.gap);
  EXPECT_EQ(stream.Peek().data, "HTTP");
  EXPECT_EQ(stream.stats().gaps, 1u);
  EXPECT_EQ(stream.stats().gap_bytes, 100u);
  EXPECT_EQ(stream.buffered_bytes(), 4u);
}

TEST(ByteStreamTest, GapAfterFrontDataTellsPartialMessageCannotComplete) {
  struct Case {
    const char* name;
    std::vector<Op> ops;
    bool want;
  };
  const Case cases[] = {
      {"data then gap", {{0, "GET /"}, {5, "", 10}}, true},
      {"data then hole", {{0, "GET /"}, {7, "", 10}}, false},
      {"data at the end", {{0, "GET /"}}, false},
      {"gap at the front", {{0, "", 5}, {5, "GET /"}}, false},
      {"hole at the front", {{3, "GET /"}, {8, "", 2}}, false},
      {"empty stream", {}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ByteStreamStats counters;
    ByteStream stream(1 << 20, &counters);
    Apply(stream, c.ops);
    EXPECT_EQ(stream.GapAfterFrontData(), c.want);
  }
}

TEST(ByteStreamTest, AdjacentGapsMergeIntoOne) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddGap(5, 5, 2);
  stream.AddGap(0, 5, 1);
  stream.AddGap(10, 5, 3);
  EXPECT_EQ(stream.Peek().gap, 15u);
}

TEST(ByteStreamTest, GapDoesNotOverwriteCapturedBytes) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(4, "data", 1);
  stream.AddGap(0, 12, 2);
  EXPECT_EQ(stream.Peek().gap, 4u);
  stream.Consume(4);
  EXPECT_EQ(stream.Peek().data, "data");
  stream.Consume(4);
  EXPECT_EQ(stream.Peek().gap, 4u);
}

TEST(ByteStreamTest, HoleBecomesGapWhenDeclared) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(10, "abc", 1);
  stream.AddData(20, "xyz", 2);
  EXPECT_EQ(stream.Peek().gap, 0u) << "an unknown hole is not a gap yet";
  stream.DeclareHolesAsGaps();
  EXPECT_EQ(stream.end_pos(), 23u);
  EXPECT_EQ(stream.Peek().gap, 10u);
  stream.Consume(10);
  EXPECT_EQ(stream.Peek().data, "abc");
  stream.Consume(3);
  EXPECT_EQ(stream.Peek().gap, 7u);
  stream.Consume(7);
  EXPECT_EQ(stream.Peek().data, "xyz");
  stream.Consume(3);
  EXPECT_TRUE(stream.empty());
}

TEST(ByteStreamTest, DeclaredGapMergesWithNeighbouringGaps) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddGap(0, 4, 1);
  stream.AddGap(8, 4, 2);
  stream.DeclareHolesAsGaps();
  EXPECT_EQ(stream.Peek().gap, 12u);
}

TEST(ByteStreamTest, CapTurnsOldestDataIntoGap) {
  ByteStreamStats counters;
  ByteStream stream(/*byte_cap=*/10, &counters);
  stream.AddData(0, "abcdef", 1);
  stream.AddData(6, "ghijkl", 2);
  EXPECT_EQ(stream.buffered_bytes(), 10u);
  EXPECT_EQ(stream.stats().bytes_dropped_cap, 2u);
  EXPECT_EQ(stream.Peek().gap, 2u);
  stream.Consume(2);
  EXPECT_EQ(stream.Peek().data, "cdefghijkl");
}

TEST(ByteStreamTest, CapSwallowsHoleBeforeOldestData) {
  ByteStreamStats counters;
  ByteStream stream(/*byte_cap=*/8, &counters);
  stream.AddData(4, "abcdef", 1);  // [0, 4) is an unknown hole the parser waits on
  stream.AddData(10, "ghij", 2);
  EXPECT_EQ(stream.Peek().gap, 6u) << "hole and the two oldest bytes become one gap";
  stream.Consume(6);
  EXPECT_EQ(stream.Peek().data, "cdefghij");
}

TEST(ByteStreamTest, StreamNeverGrowsBeyondCap) {
  constexpr size_t kCap = 1000;
  ByteStream stream(kCap);
  uint64_t pos = 0;
  for (int i = 0; i < 100; ++i) {
    std::string chunk = Letters(pos, 37 + i % 50);
    stream.AddData(pos, chunk, i);
    pos += chunk.size();
    ASSERT_LE(stream.buffered_bytes(), kCap);
  }
  EXPECT_EQ(stream.buffered_bytes(), kCap);
  EXPECT_EQ(stream.stats().bytes_dropped_cap, pos - kCap);
  stream.Consume(stream.Peek().gap);
  EXPECT_EQ(stream.Peek().data, Letters(pos - kCap, kCap)) << "the newest bytes survive";
}

TEST(ByteStreamTest, ConsumeAcrossDataAndGap) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(0, "abcd", 1);
  stream.AddGap(4, 6, 1);
  stream.AddData(10, "wxyz", 2);
  stream.Consume(7);  // all data and half the gap
  ByteStream::Front front = stream.Peek();
  EXPECT_EQ(front.pos, 7u);
  EXPECT_EQ(front.gap, 3u);
  stream.Consume(5);  // rest of the gap and two data bytes
  EXPECT_EQ(stream.Peek().pos, 12u);
  EXPECT_EQ(stream.Peek().data, "yz");
  EXPECT_EQ(stream.buffered_bytes(), 2u);
  EXPECT_EQ(stream.stats().gaps, 1u);
  EXPECT_EQ(stream.stats().gap_bytes, 6u);
}

TEST(ByteStreamTest, ConsumeThroughUnknownHoleIsAllowed) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(10, "abc", 1);
  stream.Consume(12);
  EXPECT_EQ(stream.Peek().data, "c");
  stream.Consume(100);
  EXPECT_EQ(stream.front_pos(), 112u);
  EXPECT_EQ(stream.end_pos(), 112u);
  EXPECT_TRUE(stream.empty());
}

TEST(ByteStreamTest, ConsumeToSkipsToPosition) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(0, "abcdef", 1);
  stream.ConsumeTo(4);
  EXPECT_EQ(stream.Peek().data, "ef");
  stream.ConsumeTo(2);  // behind the front: no-op
  EXPECT_EQ(stream.front_pos(), 4u);
}

TEST(ByteStreamTest, StreamMayStartMidway) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.ConsumeTo(1000);  // a connection first seen after 1000 bytes
  stream.AddData(1000, "abc", 1);
  EXPECT_EQ(stream.Peek().data, "abc");
}

TEST(ByteStreamTest, StaleBytesBehindFrontIgnored) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(0, "abcdef", 1);
  stream.Consume(4);
  stream.AddData(0, "abc", 2);  // wholly behind
  EXPECT_EQ(stream.stats().bytes_stale, 3u);
  stream.AddData(2, "cdefgh", 3);  // straddles the front
  EXPECT_EQ(stream.stats().bytes_stale, 5u);
  EXPECT_EQ(stream.stats().bytes_duplicate, 2u);
  EXPECT_EQ(stream.Peek().data, "efgh");
  stream.AddGap(0, 3, 4);
  EXPECT_EQ(stream.Peek().data, "efgh");
}

TEST(ByteStreamTest, EmptyDataAndZeroGapAreIgnored) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(5, "", 1);
  stream.AddGap(5, 0, 1);
  EXPECT_TRUE(stream.empty());
  EXPECT_EQ(stream.end_pos(), 0u);
}

TEST(ByteStreamTest, LateChunkJoinsFrontWhenFrontReachesIt) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(0, "ab", 1);
  stream.AddData(4, "ef", 2);
  stream.AddData(6, "gh", 3);
  stream.AddGap(8, 2, 4);
  stream.AddData(2, "cd", 5);
  EXPECT_EQ(stream.Peek().data, "abcdefgh");
  stream.Consume(8);
  EXPECT_EQ(stream.Peek().gap, 2u);
}

TEST(ByteStreamTest, LongStreamWithPartialConsumesStaysCorrect) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  uint64_t pos = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string chunk = Letters(pos, 300);
    stream.AddData(pos, chunk, i);
    pos += chunk.size();
    ByteStream::Front front = stream.Peek();
    ASSERT_EQ(front.data, Letters(front.pos, pos - front.pos));
    stream.Consume(front.data.size() - front.data.size() % 1000);  // whole "messages" only
  }
  EXPECT_LT(stream.buffered_bytes(), 1000u);
}

TEST(ByteStreamTest, TimestampAtReturnsChunkTime) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  stream.AddData(0, "abcd", 100);
  stream.AddData(4, "efgh", 200);
  stream.AddGap(8, 4, 200);
  stream.AddData(20, "late", 300);
  stream.AddData(16, "mnop", 400);
  stream.AddData(2, "XXXXXX", 999);  // duplicate: the first writer's time stands
  struct Case {
    uint64_t pos;
    uint64_t want;
  };
  const Case cases[] = {{0, 100}, {3, 100},  {4, 200},  {7, 200},  {8, 200},  {11, 200}, {12, 0},
                        {15, 0},  {16, 400}, {19, 400}, {20, 300}, {23, 300}, {24, 0},   {1000, 0}};
  for (const Case& c : cases) EXPECT_EQ(stream.TimestampAt(c.pos), c.want) << "pos " << c.pos;
  stream.Consume(5);
  EXPECT_EQ(stream.TimestampAt(4), 0u) << "consumed";
  EXPECT_EQ(stream.TimestampAt(5), 200u);
}

TEST(ByteStreamTest, TimestampSurvivesCapDrop) {
  ByteStreamStats counters;
  ByteStream stream(/*byte_cap=*/4, &counters);
  stream.AddData(0, "abcd", 10);
  stream.AddData(4, "efgh", 20);
  EXPECT_EQ(stream.Peek().gap, 4u);
  EXPECT_EQ(stream.TimestampAt(0), 10u);
  EXPECT_EQ(stream.TimestampAt(4), 20u);
}

TEST(ByteStreamTest, TimestampMarksArePrunedAsConsumed) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  uint64_t pos = 0;
  for (uint64_t ts = 1; ts <= 100000; ++ts) {
    stream.AddData(pos, "0123456789", ts);
    pos += 10;
    ASSERT_EQ(stream.TimestampAt(pos - 1), ts);
    stream.Consume(10);
  }
  EXPECT_TRUE(stream.empty());
  EXPECT_EQ(stream.TimestampAt(pos - 1), 0u);
}

TEST(ByteStreamTest, ManyOutOfOrderRangesStayBounded) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  // Every other byte arrives: holes the parser would wait on forever without a bound.
  for (uint64_t pos = 200000; pos > 0; pos -= 2) stream.AddData(pos, "x", pos);
  EXPECT_GT(stream.stats().bytes_dropped_cap, 0u);
  EXPECT_GT(stream.Peek().gap, 0u);
}

// AddDataLent: a record's bytes read where they lie while the stream is drained; what the
// parser leaves is copied by Settle(), so the caller's buffer may go after it.
TEST(ByteStreamTest, LentBytesAreReadInPlaceAndKeptWhenLeft) {
  ByteStreamStats counters;
  ByteStream stream(1 << 20, &counters);
  std::string record = "GET / HTTP/1.1\r\n\r\nGET /b";
  stream.AddDataLent(0, record, 5, 7);
  EXPECT_EQ(stream.Peek().data.data(), record.data());  // no copy
  EXPECT_EQ(stream.StampAt(0).ts_ns, 5u);
  EXPECT_EQ(stream.StampAt(0).tid, 7u);
  EXPECT_EQ(stream.end_pos(), record.size());
  EXPECT_EQ(stream.buffered_bytes(), record.size());
  stream.Consume(18);
  EXPECT_EQ(stream.Peek().pos, 18u);
  EXPECT_EQ(stream.Peek().data, "GET /b");
  stream.Settle();
  std::fill(record.begin(), record.end(), 'z');  // the ring buffer's slot is reused
  EXPECT_EQ(stream.Peek().data, "GET /b");
  EXPECT_EQ(stream.buffered_bytes(), 6u);
  stream.AddData(24, "c", 8);
  EXPECT_EQ(stream.Peek().data, "GET /bc");
  EXPECT_EQ(stream.StampAt(23).ts_ns, 5u);
  EXPECT_EQ(stream.StampAt(24).ts_ns, 8u);
  EXPECT_EQ(counters.bytes_added, 25u);
}

TEST(ByteStreamTest, LentBytesFullyConsumedLeaveNothing) {
  ByteStream stream;
  std::string record = "whole message";
  stream.AddDataLent(0, record, 1);
  stream.Consume(record.size());
  stream.Settle();
  EXPECT_TRUE(stream.empty());
  EXPECT_EQ(stream.buffered_bytes(), 0u);
  EXPECT_EQ(stream.front_pos(), record.size());
  stream.AddDataLent(record.size(), "next", 2);  // lent again at the new front
  EXPECT_EQ(stream.Peek().data, "next");
}

// The common path (a whole message per record, read in place, then the stream idles) keeps
// the record's syscall inline: no time-mark storage is allocated, per message, to be freed at
// the idle point, and the stream stays the 160 bytes the 10 k idle connections' bound assumes.
TEST(ByteStreamTest, LentMessageAllocatesNoTimeMark) {
  static_assert(sizeof(void*) != 8 || sizeof(ByteStream) <= 160);
  ByteStream stream;
  const std::string request = "GET / HTTP/1.1\r\n\r\n";
  uint64_t pos = 0;
  for (uint32_t i = 1; i <= 3; i++) {
    stream.AddDataLent(pos, request, 100 * i, i);
    EXPECT_EQ(stream.reserved_bytes(), 0u);
    EXPECT_EQ(stream.StampAt(pos).ts_ns, 100u * i);
    EXPECT_EQ(stream.StampAt(pos + request.size() - 1).tid, i);
    EXPECT_EQ(stream.StampAt(pos + request.size()).ts_ns, 0u);  // past the lent bytes
    stream.Consume(request.size());
    stream.Settle();
    EXPECT_EQ(stream.StampAt(pos).ts_ns, 0u);  // consumed
    stream.ReleaseIdle();
    EXPECT_EQ(stream.reserved_bytes(), 0u);
    pos += request.size();
  }
  // Half a message is kept by Settle() with its syscall's time.
  stream.AddDataLent(pos, request, 900, 9);
  stream.Consume(4);
  stream.Settle();
  EXPECT_EQ(stream.StampAt(pos + 4).ts_ns, 900u);
  EXPECT_EQ(stream.StampAt(pos + request.size() - 1).tid, 9u);
  EXPECT_EQ(stream.Peek().data, request.substr(4));
}

// Where the stream is not drained, or the bytes are not at its front, they are copied as
// AddData copies them; a gap or data added while bytes are lent keeps the lent bytes.
TEST(ByteStreamTest, LentBytesAreCopiedWhenTheyCannotBeLent) {
  struct Case {
    const char* name;
    std::vector<Op> before;  // AddData/AddGap before the lent bytes
    uint64_t lent_pos;
    std::vector<Op> after;  // while the bytes are lent
    std::string front;      // Peek().data once the lent buffer is overwritten
    uint64_t gap_after = 0;
  };
  const std::vector<Case> cases = {
      {"behind buffered data", {{0, "ab"}}, 2, {}, "abcd"},
      {"past a hole", {}, 3, {{0, "xyz"}}, "xyzcd"},
      {"gap added while lent", {}, 0, {{2, "", 3}}, "cd", 3},
      {"data added while lent", {}, 0, {{2, "ef"}}, "cdef"},
      {"data before it added while lent", {}, 2, {{0, "ab"}}, "abcd"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ByteStream stream;
    Apply(stream, c.before);
    std::string record = "cd";
    stream.AddDataLent(c.lent_pos, record, 1);
    Apply(stream, c.after);
    stream.Settle();
    std::fill(record.begin(), record.end(), 'z');
    EXPECT_EQ(stream.Peek().data, c.front);
    EXPECT_EQ(stream.GapAfterFrontData(), c.gap_after > 0);
  }
}

// A lent record whose syscall's rest is a gap (ZT_DATA_REST_GAP: a body the kernel skipped)
// keeps that gap inline too: no range, no time mark. Whatever the parser consumes before
// Settle(), the stream then reads, stamps and counts exactly as if both had been copied.
TEST(ByteStreamTest, GapAfterLentBytesIsInlineAndSettlesAsACopiedOne) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
  const uint64_t h = head.size(), end = h + 100;
  for (const GapKind kind : {GapKind::kLost, GapKind::kSkipped})
    for (const uint64_t consumed : {uint64_t{0}, uint64_t{4}, h, h + 30, end}) {
      SCOPED_TRACE(testing::Message() << consumed << (kind == GapKind::kSkipped ? " skipped" : ""));
      ByteStreamStats lent_counters, copied_counters;
      ByteStream lent(1 << 20, &lent_counters), copied(1 << 20, &copied_counters);
      lent.AddData(0, "x", 1);  // a message before, consumed: positions need not start at 0
      lent.Consume(1);
      lent.ReleaseIdle();
      copied.AddData(0, "x", 1);
      copied.Consume(1);
      std::string record = head;
      lent.AddDataLent(1, record, 5, 7);
      lent.AddGap(1 + h, 100, 5, 7, kind);
      copied.AddData(1, head, 5, 7);
      copied.AddGap(1 + h, 100, 5, 7, kind);
      EXPECT_EQ(lent.Peek().data.data(), record.data());  // read in place
      EXPECT_EQ(lent.end_pos(), 1 + end);
      EXPECT_TRUE(lent.GapAfterFrontData());
      EXPECT_EQ(lent.StampAt(1 + h + 50).ts_ns, 5u);
      EXPECT_EQ(lent.StampAt(1 + end - 1).tid, 7u);
      EXPECT_EQ(lent.StampAt(1 + end).ts_ns, 0u);
      EXPECT_EQ(lent.reserved_bytes(), 0u);
      lent.Consume(consumed);
      copied.Consume(consumed);
      if (consumed == h) {  // at the gap: not counted until its first byte is consumed
        EXPECT_EQ(lent.Peek().gap, 100u);
        EXPECT_EQ(lent_counters.gaps + lent_counters.skips, 0u);
      }
      lent.Settle();
      std::fill(record.begin(), record.end(), 'z');  // the ring buffer's slot is reused
      // Then read to the end in steps of up to 7 bytes: both show and count the same.
      while (true) {
        const ByteStream::Front a = lent.Peek(), b = copied.Peek();
        EXPECT_EQ(a.pos, b.pos);
        EXPECT_EQ(a.data, b.data);
        EXPECT_EQ(a.gap, b.gap);
        EXPECT_EQ(lent.GapAfterFrontData(), copied.GapAfterFrontData());
        EXPECT_EQ(lent.StampAt(a.pos).ts_ns, copied.StampAt(b.pos).ts_ns);
        EXPECT_EQ(lent.end_pos(), copied.end_pos());
        EXPECT_EQ(lent.buffered_bytes(), copied.buffered_bytes());
        if (a.data.empty() && a.gap == 0) break;
        const uint64_t step = std::min<uint64_t>(7, a.data.empty() ? a.gap : a.data.size());
        lent.Consume(step);
        copied.Consume(step);
      }
      EXPECT_EQ(lent.front_pos(), 1 + end);
      EXPECT_TRUE(lent.empty());
      // Counted once, as its kind: a skipped body is not a loss.
      const bool skipped = kind == GapKind::kSkipped;
      EXPECT_EQ(lent_counters.gaps, skipped ? 0u : 1u);
      EXPECT_EQ(lent_counters.skips, skipped ? 1u : 0u);
      EXPECT_EQ(copied_counters.gaps, lent_counters.gaps);
      EXPECT_EQ(copied_counters.skips, lent_counters.skips);
      EXPECT_EQ(lent_counters.gap_bytes, copied_counters.gap_bytes);
      EXPECT_EQ(lent_counters.skipped_bytes, copied_counters.skipped_bytes);
      EXPECT_EQ(lent_counters.gap_bytes + lent_counters.skipped_bytes, 100u);
      EXPECT_EQ(lent_counters.bytes_added, copied_counters.bytes_added);
      lent.ReleaseIdle();
      if (consumed == end) {
        EXPECT_EQ(lent.reserved_bytes(), 0u);  // nothing was ever kept
      }
    }
}

// Table: deliberately skipped bytes are counted apart from lost ones; a gap that merges the
// two kinds counts as lost (a loss is never hidden), as do holes and bytes dropped at the cap.
TEST(ByteStreamTest, SkippedGapsAreCountedApartAndAMixedGapCountsAsLost) {
  constexpr GapKind kLost = GapKind::kLost, kSkip = GapKind::kSkipped;
  struct GapOp {
    uint64_t pos, len;
    GapKind kind;
  };
  struct Case {
    const char* name;
    bool lent;  // "ab" lent at 0 (the gaps of the same syscall stay inline), else copied
    std::vector<GapOp> gaps;
    uint64_t gaps_n, gap_bytes, skips, skipped_bytes;
  };
  const std::vector<Case> cases = {
      {"skipped body", false, {{2, 8, kSkip}}, 0, 0, 1, 8},
      {"skipped body, lent", true, {{2, 8, kSkip}}, 0, 0, 1, 8},
      {"lost tail", false, {{2, 8, kLost}}, 1, 8, 0, 0},
      {"lost tail, lent", true, {{2, 8, kLost}}, 1, 8, 0, 0},
      {"two skips merge", false, {{2, 8, kSkip}, {10, 2, kSkip}}, 0, 0, 1, 10},
      {"two skips merge, lent", true, {{2, 8, kSkip}, {10, 2, kSkip}}, 0, 0, 1, 10},
      {"skip then loss", false, {{2, 8, kSkip}, {10, 2, kLost}}, 1, 10, 0, 0},
      {"skip then loss, lent", true, {{2, 8, kSkip}, {10, 2, kLost}}, 1, 10, 0, 0},
      {"loss then skip", false, {{2, 8, kLost}, {10, 2, kSkip}}, 1, 10, 0, 0},
      {"loss then skip, lent", true, {{2, 8, kLost}, {10, 2, kSkip}}, 1, 10, 0, 0},
      {"skip placed after a loss before it", false, {{10, 2, kSkip}, {2, 8, kLost}}, 1, 10, 0, 0},
      {"apart: data between", false, {{2, 3, kSkip}, {6, 2, kLost}}, 1, 2, 1, 3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ByteStreamStats counters;
    ByteStream stream(1 << 20, &counters);
    std::string record = "ab";
    if (c.lent) {
      stream.AddDataLent(0, record, 5, 7);
    } else {
      stream.AddData(0, record, 5, 7);
    }
    for (const GapOp& g : c.gaps) stream.AddGap(g.pos, g.len, 5, 7, g.kind);
    if (c.gaps.back().pos == 6) stream.AddData(5, "c", 5, 7);  // "apart": one byte between
    stream.Settle();
    while (true) {
      const ByteStream::Front f = stream.Peek();
      if (f.data.empty() && f.gap == 0) break;
      stream.Consume(f.data.empty() ? f.gap : f.data.size());
    }
    uint64_t end = 0;
    for (const GapOp& g : c.gaps) end = std::max(end, g.pos + g.len);
    EXPECT_EQ(stream.front_pos(), end);
    EXPECT_EQ(counters.gaps, c.gaps_n);
    EXPECT_EQ(counters.gap_bytes, c.gap_bytes);
    EXPECT_EQ(counters.skips, c.skips);
    EXPECT_EQ(counters.skipped_bytes, c.skipped_bytes);
  }
  // Holes declared gaps and data dropped at the cap are lost, even next to a skip.
  ByteStreamStats counters;
  ByteStream stream(4, &counters);
  stream.AddData(0, "ab", 1);
  stream.AddGap(2, 3, 1, 0, kSkip);
  stream.AddData(8, "cd", 2);     // [5, 8) is a hole
  stream.DeclareHolesAsGaps();    // [2, 5) skipped, [5, 8) lost: one gap, lost
  stream.AddData(10, "efgh", 3);  // past the 4-byte cap: "ab" and "cd" are dropped as gaps
  while (true) {
    const ByteStream::Front f = stream.Peek();
    if (f.data.empty() && f.gap == 0) break;
    stream.Consume(f.data.empty() ? f.gap : f.data.size());
  }
  EXPECT_EQ(stream.front_pos(), 14u);
  EXPECT_EQ(counters.skips, 0u);
  EXPECT_EQ(counters.skipped_bytes, 0u);
  EXPECT_EQ(counters.gap_bytes, 10u);  // [0, 8) ... [8, 10): all but "efgh"
}

// A gap of another syscall (another time or thread), or not right after the lent bytes, is a
// range as before: the lent bytes are copied first.
TEST(ByteStreamTest, OtherGapsWhileLentAreRanges) {
  ByteStream stream;
  std::string record = "abcd";
  stream.AddDataLent(0, record, 5, 7);
  stream.AddGap(4, 10, 6, 7);  // a later syscall's
  std::fill(record.begin(), record.end(), 'z');
  EXPECT_EQ(stream.Peek().data, "abcd");
  EXPECT_EQ(stream.StampAt(4).ts_ns, 6u);
  EXPECT_EQ(stream.StampAt(3).ts_ns, 5u);
  record = "efgh";
  stream.Consume(14);
  stream.Settle();
  stream.AddDataLent(14, record, 8, 1);
  stream.AddGap(20, 2, 8, 1);  // past a hole
  std::fill(record.begin(), record.end(), 'z');
  EXPECT_EQ(stream.Peek().data, "efgh");
  EXPECT_FALSE(stream.GapAfterFrontData());
  EXPECT_EQ(stream.end_pos(), 22u);
}

}  // namespace
}  // namespace zerotrace::conn
