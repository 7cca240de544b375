// RespParser: framing of RESP2/RESP3 values by position, through chunks and gaps.
#include "protocols/redis/resp_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace zerotrace::protocols::redis {
namespace {

using R = RespParser::Result;

// Feeds `chunks` one by one (an empty chunk stands for a 10-byte gap) and returns the types of
// the values parsed, with 'L' for a loss.
std::string Parse(const std::vector<std::string>& chunks, bool requests = false) {
  conn::ByteStream s;
  RespParser p(requests);
  std::string out;
  uint64_t pos = 0, ts = 1;
  for (const std::string& c : chunks) {
    if (c.empty()) {
      s.AddGap(pos, 10, ts++);
      pos += 10;
    } else {
      s.AddData(pos, c, ts++);
      pos += c.size();
    }
    for (;;) {
      const R r = p.Next(s);
      if (r == R::kNeedMore) break;
      if (r == R::kLost) {
        out += 'L';
        p.Reset();
        if (!RespParser::SkipToAfterGap(s)) break;
        continue;
      }
      out += p.value().type;
    }
  }
  return out;
}

TEST(RespParser, FramesEveryType) {
  struct Case {
    std::vector<std::string> chunks;
    std::string types;
  } cases[] = {
      {{"+OK\r\n-ERR x\r\n:12\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n"}, "+-:$$*"},
      {{"_\r\n,1.5\r\n#t\r\n(123\r\n!5\r\nERR x\r\n=7\r\ntxt:abc\r\n"}, "_,#(!="},
      {{"*2\r\n*1\r\n:1\r\n%1\r\n$1\r\nk\r\n~0\r\n"}, "*"},
      {{">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"}, ">"},
      {{"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n"}, "$"},        // an attribute, then the value
      {{"*2\r\n|1\r\n+a\r\n:1\r\n:2\r\n:3\r\n"}, "*"},   // attributes are not elements
      {{"*2\r\n$3\r\nf", "oo\r", "\n:1", "\r\n"}, "*"},  // split anywhere
      {{"$12\r\nab", "", "\r\n+OK\r\n"}, "$+"},          // a bulk payload in a gap
      {{"*3\r\n$1\r\na\r\n", "", "$1\r\nb\r\n"}, "L$"},  // a header in a gap; restarts after
      {{"$3\r\nabcd\r\n"}, "L"},                         // bad CRLF after a payload
      {{"?x\r\n"}, "L"},
      {{"$?\r\n;4\r\nabcd\r\n;0\r\n"}, "L"},  // streamed strings: not framed
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Parse(c.chunks), c.types) << c.chunks[0];
  }
}

TEST(RespParser, CommandsAreArraysOfBulkStringsOrInlineLines) {
  EXPECT_EQ(Parse({"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "PING\r\n", "set a b\n"}, true), "*ii");
  EXPECT_EQ(Parse({"*1\r\n:1\r\n"}, true), "L");
}

TEST(RespParser, KeepsTheFirstBytesOfElementsAndTimesTheValue) {
  conn::ByteStream s;
  s.AddData(0, "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n", 10, 1);
  s.AddData(22, "$200\r\n" + std::string(200, 'v') + "\r\n", 20, 2);
  RespParser p(true);
  ASSERT_EQ(p.Next(s), R::kValue);
  const RespValue& v = p.value();
  ASSERT_EQ(v.elements.size(), 3u);
  EXPECT_EQ(v.content(v.elements[0]), "SET");
  EXPECT_EQ(v.content(v.elements[1]), "key");
  EXPECT_EQ(v.content(v.elements[2]).size(), RespParser::kKeepElementBytes);
  EXPECT_TRUE(v.elements[2].clipped);
  EXPECT_EQ(v.start_ns, 10u);
  EXPECT_EQ(v.end_ns, 20u);
  EXPECT_EQ(v.end_tid, 2u);
  EXPECT_EQ(v.end_pos, s.front_pos());
}

TEST(RespParser, NeedsMoreUntilTheValueEnds) {
  conn::ByteStream s;
  RespParser p(false);
  s.AddData(0, "*2\r\n:1\r\n", 1);
  EXPECT_EQ(p.Next(s), R::kNeedMore);
  EXPECT_FALSE(p.idle());
  s.AddData(8, ":2\r\n", 2);
  EXPECT_EQ(p.Next(s), R::kValue);
  EXPECT_TRUE(p.idle());
}

}  // namespace
}  // namespace zerotrace::protocols::redis
