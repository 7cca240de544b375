// Specification of Http1Parser: heads, framing, malformed input, resync and detection.
#include "protocols/http1/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace zerotrace::protocols::http1 {
namespace {

using Result = Http1Parser::Result;

// Feeds `bytes` at once and collects results until kNeedMore.
struct Harness {
  explicit Harness(MessageKind kind) : parser(kind, &stats) {}
  std::vector<Result> Feed(std::string_view bytes, std::string_view method = {}) {
    stream.AddData(pos, bytes, ++ts);
    pos += bytes.size();
    return Drain(method);
  }
  std::vector<Result> Gap(uint64_t n) {
    stream.AddGap(pos, n, ++ts);
    pos += n;
    return Drain({});
  }
  std::vector<Result> Drain(std::string_view method) {
    std::vector<Result> rs;
    for (Result r = parser.Next(stream, method); r != Result::kNeedMore;
         r = parser.Next(stream, method)) {
      rs.push_back(r);
      if (r == Result::kDropped && first_drop == DropReason::kNone) {
        first_drop = parser.drop_reason();
      }
      if (rs.size() > 10000) break;  // a parser that never settles is a bug
    }
    return rs;
  }
  Http1Stats stats;
  conn::ByteStream stream;
  Http1Parser parser;
  uint64_t pos = 0;
  uint64_t ts = 100;
  DropReason first_drop = DropReason::kNone;
};

TEST(Http1Parser, ReusedForAnotherStreamParsesAsANewParser) {
  Harness h(MessageKind::kRequest);
  ASSERT_EQ(h.Feed("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"),
            (std::vector<Result>{Result::kHeaders, Result::kComplete}));
  ASSERT_TRUE(h.parser.at_boundary());
  // Given to the response stream of another connection.
  Http1Stats stats;
  h.parser.Reuse(MessageKind::kResponse, &stats);
  conn::ByteStream other;
  other.AddData(0, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nignored", 5);
  other.Consume(other.end_pos());
  const std::string resp = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX-A: b\r\n\r\nno";
  const uint64_t at = other.end_pos();
  other.AddData(at, resp, 6);
  ASSERT_EQ(h.parser.Next(other), Result::kHeaders);
  EXPECT_EQ(h.parser.response().status, 404);
  EXPECT_EQ(h.parser.response().headers.size(), 2u);
  EXPECT_EQ(h.parser.response().headers.Get("x-a"), "b");
  EXPECT_EQ(h.parser.response().start_pos, at);
  ASSERT_EQ(h.parser.Next(other), Result::kComplete);
  EXPECT_EQ(h.parser.body().body_size, 2u);
  EXPECT_EQ(h.parser.body().end_pos, at + resp.size());
  EXPECT_EQ(stats.responses_parsed, 1u);
  EXPECT_EQ(h.stats.responses_parsed, 0u);
}

TEST(Http1Parser, ParsesRequestHead) {
  Harness h(MessageKind::kRequest);
  const auto rs = h.Feed(
      "\r\nDELETE /a/b?c=d HTTP/1.0\r\nHost: example.com\r\nX-Empty:\r\n"
      "X-Folded: first\r\n  second\r\nTraceparent: 00-abc-def-01 \r\n\r\n");
  ASSERT_EQ(rs, (std::vector<Result>{Result::kHeaders, Result::kComplete}));
  const HttpRequest& r = h.parser.request();
  EXPECT_EQ(r.method, "DELETE");
  EXPECT_EQ(r.target, "/a/b?c=d");
  EXPECT_EQ(r.version_minor, 0);
  EXPECT_EQ(r.start_pos, 2u);  // the leading empty line is not part of the message
  EXPECT_EQ(r.headers.size(), 4u);
  EXPECT_EQ(r.headers.Get("host"), "example.com");
  EXPECT_EQ(r.headers.Get("x-empty"), "");
  EXPECT_EQ(r.headers.Get("x-folded"), "first    second");
  EXPECT_EQ(r.headers.Get("TRACEPARENT"), "00-abc-def-01");
  EXPECT_FALSE(r.headers.Get("missing").has_value());
}

TEST(Http1Parser, AcceptsBareLineFeeds) {
  Harness h(MessageKind::kResponse);
  const auto rs = h.Feed("HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", "GET");
  ASSERT_EQ(rs, (std::vector<Result>{Result::kHeaders, Result::kComplete}));
  EXPECT_EQ(h.parser.body().body_size, 2u);
}

// Field values and targets of every length from 0 to 140 bytes (short lines, word-sized steps,
// long lines), with CRLF and bare LF, whole or split just before the field's line end.
TEST(Http1Parser, LinesOfEveryLengthEndWhereTheirLineFeedIs) {
  for (size_t len = 0; len <= 140; ++len) {
    for (const std::string_view eol : {"\r\n", "\n"}) {
      for (const bool split : {false, true}) {
        SCOPED_TRACE(testing::Message()
                     << "len " << len << " eol " << eol.size() << " split " << split);
        std::string value;
        for (size_t i = 0; i < len; ++i) value += static_cast<char>('a' + i % 26);
        const std::string target = "/" + value;
        std::string head = "GET " + target + " HTTP/1.1";
        head.append(eol).append("X-V: ").append(value).append(eol);
        const size_t field_end = head.size();
        head.append("Content-Length: 1").append(eol).append(eol).append("z");
        Harness h(MessageKind::kRequest);
        std::vector<Result> rs;
        if (split) {
          rs = h.Feed(std::string_view(head).substr(0, field_end - 1));
          EXPECT_TRUE(rs.empty());
          rs = h.Feed(std::string_view(head).substr(field_end - 1));
        } else {
          rs = h.Feed(head);
        }
        ASSERT_EQ(rs, (std::vector<Result>{Result::kHeaders, Result::kComplete}));
        EXPECT_EQ(h.parser.request().target, target);
        EXPECT_EQ(h.parser.request().headers.Get("x-v"), value);
        EXPECT_EQ(h.parser.request().headers.Get("content-length"), "1");
        EXPECT_EQ(h.parser.body().body_size, 1u);
      }
    }
  }
}

// The head scan reads 64 bytes at a time: names of every length, at every offset from the
// record's start, end where their first non-name byte is, whatever block it falls in. A name
// that ends in a byte other than ':' (space, tab, NUL, DEL, non-ASCII) is malformed.
TEST(Http1Parser, FieldNamesEndAtTheirFirstNonNameByteAtEveryOffset) {
  const std::string bad_bytes[] = {"", " ", "\t", std::string(1, '\0'), "\x7f", "\x80", "\xff"};
  for (size_t shift = 0; shift <= 64; ++shift) {
    for (size_t len = 2; len <= 68; ++len) {
      for (const std::string& bad : bad_bytes) {
        SCOPED_TRACE(testing::Message() << "shift " << shift << " len " << len << " bad "
                                        << (bad.empty() ? -1 : static_cast<int>(bad[0])));
        std::string name(len, 'N');
        if (!bad.empty()) name.back() = bad[0];
        const std::string head = "GET /" + std::string(shift, 'p') + " HTTP/1.1\r\nA: b\r\n" +
                                 name + ": v\r\nContent-Length: 1\r\n\r\nz";
        Harness h(MessageKind::kRequest);
        const std::vector<Result> rs = h.Feed(head);
        if (bad.empty()) {
          ASSERT_EQ(rs, (std::vector<Result>{Result::kHeaders, Result::kComplete}));
          EXPECT_EQ(h.parser.request().headers.Get(name), "v");
          EXPECT_EQ(h.parser.body().body_size, 1u);
        } else {
          ASSERT_FALSE(rs.empty());
          EXPECT_EQ(rs.front(), Result::kDropped);
          EXPECT_EQ(h.first_drop, DropReason::kMalformed);
          EXPECT_EQ(h.stats.parse_errors, 1u);
        }
      }
    }
  }
}

// A head arriving one byte at a time is scanned on every shorter prefix (under and over 64
// bytes) and gives the fields that it gives whole.
TEST(Http1Parser, HeadFedByteByByteGivesTheFieldsItGivesWhole) {
  const std::string head =
      "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 14 May 2024 10:00:00 GMT\r\n"
      "Content-Type: text/plain\r\nX-Folded: a\r\n\tb\r\nContent-Length: 3\r\n"
      "Connection: keep-alive\r\nETag: \"66420a10-167\"\r\n\r\nabc";
  Harness whole(MessageKind::kResponse);
  ASSERT_EQ(whole.Feed(head, "GET"), (std::vector<Result>{Result::kHeaders, Result::kComplete}));
  Harness bytes(MessageKind::kResponse);
  std::vector<Result> rs;
  for (size_t i = 0; i < head.size(); ++i) {
    const std::vector<Result> r = bytes.Feed(head.substr(i, 1), "GET");
    rs.insert(rs.end(), r.begin(), r.end());
  }
  ASSERT_EQ(rs, (std::vector<Result>{Result::kHeaders, Result::kComplete}));
  const HeaderList& a = whole.parser.response().headers;
  const HeaderList& b = bytes.parser.response().headers;
  ASSERT_EQ(a.size(), 7u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].name, a[i].name);
    EXPECT_EQ(b[i].value, a[i].value);
  }
  EXPECT_EQ(b.Get("x-folded"), "a  \tb");
  EXPECT_EQ(bytes.parser.body().body_size, 3u);
}

TEST(Http1Parser, ResponseFramingTable) {
  struct Case {
    const char* name;
    std::string method;
    std::string head;
    BodyFraming framing;
  };
  const std::vector<Case> cases = {
      {"length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
       BodyFraming::kContentLength},
      {"zero length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", BodyFraming::kNone},
      {"repeated equal length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n",
       BodyFraming::kContentLength},
      {"chunked wins over length", "GET",
       "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       BodyFraming::kChunked},
      {"other coding reads to close", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
       BodyFraming::kUntilClose},
      {"no length reads to close", "GET", "HTTP/1.1 200 OK\r\n\r\n", BodyFraming::kUntilClose},
      {"head", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", BodyFraming::kNone},
      {"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", BodyFraming::kNone},
      {"304", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n", BodyFraming::kNone},
      {"101", "GET", "HTTP/1.1 101 Switching Protocols\r\n\r\n", BodyFraming::kTunnel},
      {"connect 200", "CONNECT", "HTTP/1.1 200 OK\r\n\r\n", BodyFraming::kTunnel},
      {"connect 407", "CONNECT", "HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n",
       BodyFraming::kContentLength},
      {"no reason phrase", "GET", "HTTP/1.1 200\r\nContent-Length: 3\r\n\r\n",
       BodyFraming::kContentLength},
  };
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.name);
    Harness h(MessageKind::kResponse);
    const auto rs = h.Feed(tc.head, tc.method);
    ASSERT_FALSE(rs.empty());
    EXPECT_EQ(rs[0], Result::kHeaders);
    EXPECT_EQ(h.parser.response().framing, tc.framing);
  }
}

TEST(Http1Parser, MalformedHeadsAreDropped) {
  struct Case {
    const char* name;
    MessageKind kind;
    std::string bytes;
  };
  const std::vector<Case> cases = {
      {"space before colon", MessageKind::kRequest, "GET / HTTP/1.1\r\nHost : x\r\n\r\n"},
      {"no colon", MessageKind::kRequest, "GET / HTTP/1.1\r\nHost x\r\n\r\n"},
      {"fold first", MessageKind::kRequest, "GET / HTTP/1.1\r\n Host: x\r\n\r\n"},
      {"bad version", MessageKind::kRequest, "GET / HTTP/1.x\r\n\r\n"},
      {"bad length", MessageKind::kRequest, "GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"},
      {"conflicting lengths", MessageKind::kRequest,
       "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"},
      {"request coding not chunked", MessageKind::kRequest,
       "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"},
      {"bad status", MessageKind::kResponse, "HTTP/1.1 2000 OK\r\n\r\n"},
      {"not a response", MessageKind::kResponse, "HTTP/2 200\r\n\r\n"},
  };
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.name);
    Harness h(tc.kind);
    const auto rs = h.Feed(tc.bytes, "GET");
    ASSERT_FALSE(rs.empty());
    EXPECT_EQ(rs[0], Result::kDropped);
    EXPECT_EQ(h.first_drop, DropReason::kMalformed);
    EXPECT_EQ(h.stats.parse_errors, 1u);
  }
}

TEST(Http1Parser, HeadersOverLimitAreDroppedAndResync) {
  Harness h(MessageKind::kRequest);
  std::string big = "GET / HTTP/1.1\r\n";
  while (big.size() <= kMaxHeaderBytes) big += "X-Filler: " + std::string(100, 'f') + "\r\n";
  auto rs = h.Feed(big);
  ASSERT_FALSE(rs.empty());
  EXPECT_EQ(rs[0], Result::kDropped);
  EXPECT_EQ(h.parser.drop_reason(), DropReason::kHeadersTooLarge);
  rs = h.Feed("\r\nGET /next HTTP/1.1\r\n\r\n");
  ASSERT_FALSE(rs.empty());
  EXPECT_EQ(rs.back(), Result::kComplete);
  EXPECT_EQ(h.parser.request().target, "/next");
  EXPECT_EQ(h.stats.headers_too_large, 1u);
}

TEST(Http1Parser, ResyncFindsRequestAfterBodyTail) {
  Harness h(MessageKind::kRequest);
  h.Gap(10);
  const auto rs = h.Feed("tail of a body}PATCH /x/1 HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_FALSE(rs.empty());
  EXPECT_EQ(rs.back(), Result::kComplete);
  EXPECT_EQ(h.parser.request().method, "PATCH");
  EXPECT_EQ(h.parser.request().target, "/x/1");
  EXPECT_EQ(h.stats.dropped_gap_at_start, 1u);
}

// Resynchronising, a method outside the registered ones is believed only at a line start:
// body text before a known method is a body's tail, but "bodyQUERY" could be either.
TEST(Http1Parser, ResyncTakesOtherMethodsOnlyAtALineStart) {
  struct Case {
    std::string after_gap;
    std::string method;  // empty: no request is found
  };
  const std::vector<Case> cases = {
      {"tail\r\nQUERY /q HTTP/1.1\r\nHost: h\r\n\r\n", "QUERY"},
      {"M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n", "M-SEARCH"},
      {"tail of a bodyQUERY /q HTTP/1.1\r\nHost: h\r\n\r\n", ""},
      {"tail of a bodyPOST /q HTTP/1.1\r\nHost: h\r\n\r\n", "POST"},
  };
  for (const Case& tc : cases) {
    Harness h(MessageKind::kRequest);
    h.Gap(10);
    const auto rs = h.Feed(tc.after_gap);
    const bool complete = !rs.empty() && rs.back() == Result::kComplete;
    EXPECT_EQ(complete, !tc.method.empty()) << tc.after_gap;
    if (complete) {
      EXPECT_EQ(h.parser.request().method, tc.method) << tc.after_gap;
    }
  }
}

TEST(Http1Parser, ResyncFindsResponseSplitAcrossEvents) {
  Harness h(MessageKind::kResponse);
  h.Gap(3);
  EXPECT_EQ(h.Feed("junk junk HTT", "GET"), std::vector<Result>{Result::kDropped});
  const auto rs = h.Feed("P/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET");
  ASSERT_EQ(rs, (std::vector<Result>{Result::kDropped, Result::kHeaders, Result::kComplete}));
  EXPECT_EQ(h.parser.response().status, 200);
}

TEST(Http1Parser, ChunkLineLostInGapLosesFraming) {
  Harness h(MessageKind::kResponse);
  auto rs = h.Feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "GET");
  ASSERT_EQ(rs, (std::vector<Result>{Result::kHeaders}));
  rs = h.Gap(4);
  ASSERT_FALSE(rs.empty());
  EXPECT_EQ(rs[0], Result::kComplete);  // then the gap itself is skipped while resyncing
  EXPECT_TRUE(h.parser.body().framing_lost);
  EXPECT_EQ(h.stats.body_framing_lost, 1u);
}

TEST(Http1Parser, FinishCompletesUntilCloseAndTruncates) {
  Harness h(MessageKind::kResponse);
  h.Feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "GET");
  EXPECT_TRUE(h.parser.in_body());
  EXPECT_EQ(h.parser.Finish(h.stream), Result::kComplete);
  EXPECT_TRUE(h.parser.body().truncated);
  EXPECT_EQ(h.parser.Finish(h.stream), Result::kNeedMore);
}

TEST(Http1Detection, RequestTable) {
  struct Case {
    std::string bytes;
    Detection want;
  };
  const std::vector<Case> cases = {
      {"GET / HTTP/1.1\r\n", Detection::kYes},
      {"POST /api HTTP/1.0\n", Detection::kYes},
      {"CONNECT example.com:443 HTTP/1.1\r\n", Detection::kYes},
      {"GET http://example.com/ HTTP/1.1\r\n", Detection::kYes},
      {"", Detection::kMaybe},
      {"GE", Detection::kMaybe},
      {"GET /partial", Detection::kMaybe},
      {"GET / HTTP/1.", Detection::kMaybe},
      {"GET / HTTP/1.1\r", Detection::kMaybe},
      // Any token is a method when the line is a request line (issue 18, item 18).
      {"get / HTTP/1.1\r\n", Detection::kYes},
      {"FOO / HTTP/1.1\r\n", Detection::kYes},
      {"QUERY /search HTTP/1.1\r\n", Detection::kYes},
      {"M-SEARCH * HTTP/1.1\r\n", Detection::kYes},
      {"GET /caf\xc3\xa9?q=\xff HTTP/1.1\r\n", Detection::kYes},   // raw UTF-8, 0xff
      {"GET /a\x01b HTTP/1.1\r\n", Detection::kNo},                // a control character
      {"G(T / HTTP/1.1\r\n", Detection::kNo},                      // not a token
      {std::string(40, 'A') + " / HTTP/1.1\r\n", Detection::kNo},  // too long for a method
      {"GET / HTTP/2.0\r\n", Detection::kNo},
      {"GET  / HTTP/1.1\r\n", Detection::kNo},
      {"GET / HTTP/1.1 \r\n", Detection::kNo},
      {"\x16\x03\x01", Detection::kNo},
  };
  for (const Case& tc : cases) {
    EXPECT_EQ(DetectHttp1Request(tc.bytes), tc.want) << tc.bytes;
  }
}

TEST(Http1Detection, ResponseTable) {
  struct Case {
    std::string bytes;
    Detection want;
  };
  const std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\n", Detection::kYes},
      {"HTTP/1.0 404\r\n", Detection::kYes},
      {"HTTP/1.1 101 Switching", Detection::kYes},
      {"HTTP/1.1 20", Detection::kMaybe},
      {"HTTP/", Detection::kMaybe},
      {"HTTP/2 200\r\n", Detection::kNo},
      {"HTTP/1.1 600 X\r\n", Detection::kNo},
      {"HTTP/1.1 2000\r\n", Detection::kNo},
      {"http/1.1 200 OK\r\n", Detection::kNo},
  };
  for (const Case& tc : cases) {
    EXPECT_EQ(DetectHttp1Response(tc.bytes), tc.want) << tc.bytes;
  }
}

}  // namespace
}  // namespace zerotrace::protocols::http1
