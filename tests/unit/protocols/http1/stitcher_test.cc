// Specification of Http1Stitcher: framing rules, pipelining, losses, close and timeout.
#include "protocols/http1/stitcher.h"

#include <gtest/gtest.h>

#include <string>

#include "http1_test_util.h"

namespace zerotrace::protocols::http1 {
namespace {

using testing::FakeConn;
using testing::Get;
using testing::IdOf;
using testing::Ok;

// Every paired exchange must carry the same X-Id in its request and its response.
void ExpectPairedById(const std::vector<HttpExchange>& out) {
  for (const HttpExchange& x : out) {
    if (x.resp.has_value()) {
      EXPECT_EQ(IdOf(x.req), IdOf(*x.resp)) << x.req.target;
    }
  }
}

TEST(Http1Stitcher, SingleExchangeHasFieldsAndTimes) {
  FakeConn c;
  c.Request("POST /api/orders?x=1 HTTP/1.1\r\nHost: shop\r\nContent-Length: 4\r\n\r\nabcd");
  const uint64_t req_ts = c.now();
  c.Response(Ok(0, "0123456789"));
  ASSERT_EQ(c.out().size(), 1u);
  const HttpExchange& x = c.out()[0];
  EXPECT_EQ(x.req.method, "POST");
  EXPECT_EQ(x.req.target, "/api/orders?x=1");
  EXPECT_EQ(x.req.version_minor, 1);
  EXPECT_EQ(x.req.headers.Get("HOST"), "shop");
  EXPECT_EQ(x.req.body_size, 4u);
  EXPECT_EQ(x.req.start_ts_ns, req_ts);
  ASSERT_TRUE(x.resp.has_value());
  EXPECT_EQ(x.resp->status, 200);
  EXPECT_EQ(x.resp->reason, "OK");
  EXPECT_EQ(x.resp->body_size, 10u);
  EXPECT_EQ(x.resp->end_ts_ns, c.now());
  EXPECT_TRUE(x.error_type.empty());
  EXPECT_EQ(c.stats().exchanges, 1u);
}

TEST(Http1Stitcher, PipelinedRequestsPairInOrder) {
  FakeConn c;
  std::string all;
  for (int i = 0; i < 100; ++i) all += Get(i);
  c.Request(all);
  for (int i = 0; i < 100; ++i) c.Response(Ok(i, std::string(i, 'x')));
  ASSERT_EQ(c.out().size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(IdOf(c.out()[i].req), i);
    EXPECT_EQ(c.out()[i].resp->body_size, static_cast<uint64_t>(i));
  }
  ExpectPairedById(c.out());
  EXPECT_EQ(c.stitcher().pending(), 0u);
}

// Parsers are pooled per thread and taken only when a stream has bytes: connections taking
// turns, one of them pipelining and one answered while another waits, pair each answer right.
TEST(Http1Stitcher, ConnectionsTakingTurnsPairTheirOwnAnswers) {
  FakeConn a, b, c;
  a.Request(Get(1));
  b.Request(Get(2));
  a.Response(Ok(1, "a"));  // a rests: its parsers go back to the pool
  c.Request(Get(3) + Get(4) + Get(5));
  b.Response(Ok(2, "bb"));
  a.Request(Get(6));
  c.Response(Ok(3, "ccc"));
  c.Response(Ok(4, "cccc") + Ok(5, "ccccc"));
  a.Response(Ok(6, "aaaaaa"));
  for (FakeConn* conn : {&a, &b, &c}) {
    ExpectPairedById(conn->out());
    for (const HttpExchange& x : conn->out()) {
      EXPECT_EQ(x.resp->body_size, static_cast<uint64_t>(IdOf(x.req)));
    }
    EXPECT_EQ(conn->stitcher().pending(), 0u);
  }
  EXPECT_EQ(a.out().size(), 2u);
  EXPECT_EQ(b.out().size(), 1u);
  ASSERT_EQ(c.out().size(), 3u);
  EXPECT_EQ(IdOf(c.out()[2].req), 5);
}

TEST(Http1Stitcher, KeepAliveThousandExchanges) {
  FakeConn c;
  for (int i = 0; i < 1000; ++i) {
    c.Request(Get(i));
    c.Response(Ok(i));
  }
  ASSERT_EQ(c.out().size(), 1000u);
  ExpectPairedById(c.out());
}

TEST(Http1Stitcher, ChunkedResponseWithTrailers) {
  FakeConn c;
  c.Request(Get(1, "TE: trailers\r\n"));
  c.Response(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nX-Id: 1\r\n\r\n"
      "5;name=value\r\nhello\r\n"
      "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
      "0\r\nChecksum: abc\r\nExpires: never\r\n\r\n");
  c.Request(Get(2));
  c.Response(Ok(2));
  ASSERT_EQ(c.out().size(), 2u);
  const HttpResponse& r = *c.out()[0].resp;
  EXPECT_EQ(r.framing, BodyFraming::kChunked);
  EXPECT_EQ(r.body_size, 5u + 26u);
  EXPECT_EQ(r.trailers.Get("checksum"), "abc");
  EXPECT_EQ(r.trailers.size(), 2u);
  ExpectPairedById(c.out());
}

TEST(Http1Stitcher, ChunkedRequestBody) {
  FakeConn c;
  c.Request(
      "POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-Id: 1\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n");
  c.Response(Ok(1));
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(c.out()[0].req.body_size, 3u);
}

TEST(Http1Stitcher, HeadResponseHasNoBody) {
  FakeConn c;
  c.Request("HEAD /big HTTP/1.1\r\nX-Id: 1\r\n\r\n");
  c.Response("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nX-Id: 1\r\n\r\n");
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(c.out()[0].resp->body_size, 0u);
  // The next response is not swallowed as the HEAD response's 5000-byte body.
  c.Request(Get(2));
  c.Response(Ok(2));
  ASSERT_EQ(c.out().size(), 2u);
  ExpectPairedById(c.out());
}

TEST(Http1Stitcher, NoContentAndNotModifiedHaveNoBody) {
  struct Case {
    const char* status_line;
  };
  for (const Case& tc : {Case{"HTTP/1.1 204 No Content"}, Case{"HTTP/1.1 304 Not Modified"}}) {
    SCOPED_TRACE(tc.status_line);
    FakeConn c;
    c.Request(Get(1));
    // 304 may repeat the Content-Length of the cached representation; it frames nothing.
    c.Response(std::string(tc.status_line) + "\r\nContent-Length: 99\r\nX-Id: 1\r\n\r\n");
    c.Request(Get(2));
    c.Response(Ok(2));
    ASSERT_EQ(c.out().size(), 2u);
    EXPECT_EQ(c.out()[0].resp->body_size, 0u);
    EXPECT_EQ(c.out()[0].resp->framing, BodyFraming::kNone);
    ExpectPairedById(c.out());
  }
}

TEST(Http1Stitcher, ContinueInterimIsSkipped) {
  FakeConn c;
  c.Request("PUT /file HTTP/1.1\r\nX-Id: 1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  c.Response("HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_TRUE(c.out().empty());
  c.Request("hello");
  c.Response("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n");
  c.Response(Ok(1, "", "X-Final: yes\r\n"));
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(c.out()[0].resp->status, 200);
  EXPECT_EQ(c.out()[0].resp->interim_responses, 2);
  EXPECT_EQ(c.out()[0].req.body_size, 5u);
  EXPECT_EQ(c.stats().interim_responses, 2u);
}

TEST(Http1Stitcher, ReadUntilCloseBodyEndsAtClose) {
  FakeConn c;
  c.Request(Get(1));
  c.Response("HTTP/1.0 200 OK\r\nX-Id: 1\r\n\r\npart one ");
  c.Response("part two");
  EXPECT_TRUE(c.out().empty());
  c.Close();
  ASSERT_EQ(c.out().size(), 1u);
  const HttpExchange& x = c.out()[0];
  EXPECT_EQ(x.resp->framing, BodyFraming::kUntilClose);
  EXPECT_EQ(x.resp->body_size, 17u);
  EXPECT_EQ(x.resp->end_ts_ns, c.now());
  EXPECT_TRUE(x.error_type.empty());
}

TEST(Http1Stitcher, ConnectionCloseFraming) {
  // With a length the response ends at its length; without one it runs to the close.
  FakeConn c;
  c.Request(Get(1));
  c.Response(Ok(1, "abc", "Connection: close\r\n"));
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(c.out()[0].resp->body_size, 3u);

  FakeConn d;
  d.Request(Get(1, "Connection: close\r\n"));
  d.Response("HTTP/1.1 200 OK\r\nConnection: close\r\nX-Id: 1\r\n\r\nuntil the end");
  EXPECT_TRUE(d.out().empty());
  d.Close();
  ASSERT_EQ(d.out().size(), 1u);
  EXPECT_EQ(d.out()[0].resp->body_size, 13u);
}

TEST(Http1Stitcher, WebsocketUpgradeEndsParsing) {
  FakeConn c;
  const std::string upgrade =
      "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Id: 1\r\n\r\n";
  const std::string switching =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "X-Id: 1\r\n\r\n";
  c.Request(upgrade);
  c.Response(switching);
  c.Request("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");  // a masked frame, not HTTP
  c.Response("\x81\x05hello");
  c.Close();
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(c.out()[0].resp->status, 101);
  EXPECT_TRUE(c.stitcher().tunneled());
  EXPECT_EQ(c.stats().parse_errors, 0u);
  // The bytes after the switch wait at the fronts for the next protocol (h2c, or none).
  EXPECT_EQ(c.requests().front_pos(), upgrade.size());
  EXPECT_EQ(c.responses().front_pos(), switching.size());
}

TEST(Http1Stitcher, RefusedUpgradeContinuesHttp) {
  FakeConn c;
  c.Request(Get(1, "Upgrade: websocket\r\nConnection: Upgrade\r\n"));
  c.Request(Get(2));  // held until the verdict on the upgrade
  c.Response(Ok(1));
  c.Response(Ok(2));
  ASSERT_EQ(c.out().size(), 2u);
  EXPECT_FALSE(c.stitcher().tunneled());
  ExpectPairedById(c.out());
}

TEST(Http1Stitcher, ConnectTunnelEndsParsing) {
  FakeConn c;
  c.Request("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\nX-Id: 7\r\n\r\n");
  c.Response("HTTP/1.1 200 Connection Established\r\nX-Id: 7\r\n\r\n");
  c.Request(std::string("\x16\x03\x01\x02\x00", 5));
  c.Close();
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(c.out()[0].req.method, "CONNECT");
  EXPECT_EQ(c.out()[0].resp->body_size, 0u);
  EXPECT_TRUE(c.stitcher().tunneled());
}

// Issue 18, item 8: a request with both Content-Length and Transfer-Encoding. The server may
// read its body by either: the "request" its Content-Length covers (smuggled) may or may not
// be one. Its answer is then uncertain, so it is never paired: neither it nor the next request
// gets the next response, and the first request is an error exchange, not a success.
TEST(Http1Stitcher, ContentLengthWithTransferEncodingIsFlaggedAndNothingIsMispaired) {
  FakeConn c;
  const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string body = "0\r\n\r\n" + smuggled;
  c.Request("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\nTransfer-Encoding: chunked\r\n\r\n" + body);
  c.Request("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
  c.Response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA");   // the POST's, either way
  c.Response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nBB");  // /next's or /smuggled's
  c.Close();
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(c.out()[0].req.target, "/a");
  EXPECT_TRUE(c.out()[0].req.framing_conflict);
  ASSERT_TRUE(c.out()[0].resp.has_value());
  EXPECT_EQ(c.out()[0].resp->body_size, 1u);
  EXPECT_EQ(c.stats().framing_conflicts, 1u);
  EXPECT_EQ(c.stats().doubtful_requests, 1u);
}

// Issue 18, item 7: bytes on the response stream that cannot hold a response (a body longer
// than its Content-Length said, garbage between responses) lose no answer: the next exchange
// pairs at once. Garbage on the request stream may still draw an answer (a 400), so there the
// next exchange stays unpaired rather than risk a wrong pair.
TEST(Http1Stitcher, GarbageOnTheResponseStreamLosesNoExchange) {
  struct Case {
    std::string extra;  // after the first response
    size_t exchanges;
  };
  const std::vector<Case> cases = {
      {"EXTRA", 3},                        // more body than Content-Length said
      {"\x00\x01\xff garbage\r\n", 3},     // garbage
      {"HTTP/1.1 2OO Broken\r\n\r\n", 2},  // a malformed status line: an answer was lost
  };
  for (const Case& tc : cases) {
    FakeConn c;
    c.Request(Get(1));
    c.Tick(10);
    c.Response(Ok(1) + tc.extra);
    c.Tick(10);
    c.Request(Get(2));
    c.Tick(10);
    c.Response(Ok(2));
    c.Tick(10);
    c.Request(Get(3));
    c.Tick(10);
    c.Response(Ok(3));
    c.Close();
    EXPECT_EQ(c.out().size(), tc.exchanges) << tc.extra;
    ExpectPairedById(c.out());
  }
}

TEST(Http1Stitcher, BodyLargerThanCaptureSkippedThroughGap) {
  FakeConn c;
  const uint64_t big = 10 * 16384;
  c.Request(Get(1));
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big) + "\r\nX-Id: 1\r\n\r\n";
  c.Response(head + std::string(100, 'b'));  // the capture limit cut the write here
  c.ResponseGap(big - 100);
  c.Request(Get(2));
  c.Response(Ok(2));
  ASSERT_EQ(c.out().size(), 2u);
  EXPECT_EQ(c.out()[0].resp->body_size, big);
  EXPECT_EQ(c.stats().body_gap_bytes, big - 100);
  ExpectPairedById(c.out());
  EXPECT_TRUE(c.stitcher().aligned());
}

// Issue 18, item 3: a head longer than its syscall's capture (a big Cookie) keeps its start line
// and the fields that fit, and its exchange pairs; its end, and any body in the gap, is skipped
// by position. The gap may also hide the start of a pipelined message, so after a cut request
// pairing doubts until it is proven again (never a wrong pair); after a cut response with
// nothing else awaited, nothing can be owed and pairing goes on. A cut inside the start line
// still drops the message.
TEST(Http1Stitcher, HeadCutByTheCaptureKeepsWhatFitsAndPairingGoesOn) {
  for (const bool requests : {false, true}) {
    SCOPED_TRACE(requests ? "request heads cut" : "response heads cut");
    FakeConn c;
    const std::string big = "X-Big: " + std::string(300, 'c') + "\r\n";
    const std::string q1 = "GET /1 HTTP/1.1\r\nHost: x\r\nX-Id: 1\r\n" + big + "\r\n";
    const std::string r1 = "HTTP/1.1 200 OK\r\nX-Id: 1\r\nContent-Length: 2\r\n" + big + "\r\nok";
    const std::string& cut = requests ? q1 : r1;
    const size_t keep = cut.find("X-Big") + 10;  // the capture ends inside the big field
    if (requests) {
      c.Request(cut.substr(0, keep));
      c.RequestGap(cut.size() - keep);
      c.Response(Ok(1));
    } else {
      c.Request(Get(1));
      c.Response(cut.substr(0, keep));
      c.ResponseGap(cut.size() - keep);
    }
    c.Request(Get(2));
    c.Response(Ok(2));
    c.Request(Get(3));
    c.Response(Ok(3));
    ASSERT_EQ(c.out().size(), requests ? 1u : 3u);
    ExpectPairedById(c.out());
    EXPECT_EQ(IdOf(c.out()[0].req), 1);
    EXPECT_TRUE(requests ? c.out()[0].req.head_cut : c.out()[0].resp->head_cut);
    EXPECT_EQ(c.stats().heads_cut, 1u);
  }
}

TEST(Http1Stitcher, GapInsideTheStartLineDropsTheExchangeAndResyncs) {
  FakeConn c;
  c.Request(Get(1));
  const std::string r1 = Ok(1);
  c.Response(r1.substr(0, 15));   // "HTTP/1.1 200 OK": the status line without its end
  c.ResponseGap(r1.size() - 15);  // the rest of the head and the body were not captured
  c.Request(Get(2));
  c.Response(Ok(2));
  c.Request(Get(3));
  c.Response(Ok(3));
  ASSERT_EQ(c.out().size(), 2u);
  EXPECT_EQ(IdOf(c.out()[0].req), 2);
  ExpectPairedById(c.out());
  EXPECT_EQ(c.stats().dropped_gap_in_headers, 1u);
  EXPECT_EQ(c.stats().unpaired_requests, 1u);
  EXPECT_GE(c.stats().resyncs, 1u);
}

TEST(Http1Stitcher, HeaderCarriedAcrossLateEvent) {
  // An event delivered out of order leaves a hole that is later filled: nothing is lost.
  FakeConn c;
  c.Request(Get(1));
  const std::string r = Ok(1);
  const auto hole = c.SkipResponse(10);
  c.Response(r.substr(10));
  EXPECT_TRUE(c.out().empty());
  c.ResponseAt(hole, r.substr(0, 10));
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(c.stats().resyncs, 0u);

  FakeConn d;  // same, but the first part of the head arrives before the hole
  d.Request(Get(1));
  d.Response(r.substr(0, 10));
  const auto hole2 = d.SkipResponse(5);
  d.Response(r.substr(15));
  EXPECT_TRUE(d.out().empty());
  d.ResponseAt(hole2, r.substr(10, 5));
  ASSERT_EQ(d.out().size(), 1u);
  EXPECT_EQ(d.out()[0].resp->status, 200);
}

TEST(Http1Stitcher, PipelinedResponseLossNeverMispairs) {
  FakeConn c;
  c.Request(Get(1) + Get(2) + Get(3));
  c.Response(Ok(1));
  const std::string r2 = Ok(2);
  c.ResponseGap(r2.size());  // response 2 lost entirely
  c.Response(Ok(3));
  c.Request(Get(4));
  c.Response(Ok(4));
  ExpectPairedById(c.out());
  ASSERT_GE(c.out().size(), 1u);
  EXPECT_EQ(IdOf(c.out()[0].req), 1);
  EXPECT_GE(c.stats().unpaired_requests, 2u);
}

TEST(Http1Stitcher, RequestLossNeverMispairs) {
  FakeConn c;
  c.Request(Get(1));
  c.Response(Ok(1));
  c.RequestGap(Get(2).size());  // request 2 lost: how many requests that was is unknown
  c.Request(Get(3));
  c.Response(Ok(2));
  c.Response(Ok(3));
  c.Request(Get(4));
  c.Response(Ok(4));
  ASSERT_GE(c.out().size(), 1u);
  ExpectPairedById(c.out());
  EXPECT_FALSE(c.stitcher().aligned());
}

TEST(Http1Stitcher, LossOfUnknownKindAtResponseStartNeverMispairs) {
  // Only "HT" of the next response survived: it may have been a 1xx, so the count of final
  // responses lost is unknown and the next response cannot be trusted to answer request 2.
  FakeConn c;
  c.Request(Get(1));
  c.Response(Ok(1));
  c.Request(Get(2, "Expect: 100-continue\r\n"));
  c.Response("HT");
  c.ResponseGap(23);  // "TP/1.1 100 Continue\r\n\r\n" was not captured
  c.Response(Ok(2));
  c.Request(Get(3));
  c.Response(Ok(3));
  ExpectPairedById(c.out());
  EXPECT_EQ(c.stats().unpaired_requests, 1u);
  // Response 2 started before request 3, so it answered request 2: pairing resumes.
  ASSERT_EQ(c.out().size(), 2u);
  EXPECT_EQ(IdOf(c.out()[1].req), 3);
}

TEST(Http1Stitcher, ResponseWaitsForRequestBytesStillInFlight) {
  FakeConn c;
  c.Request(Get(1));
  c.Response("HT");
  c.ResponseGap(Ok(1).size() - 2);  // response 1 lost: a marker owes it
  const std::string r2 = Get(2);
  const auto hole = c.SkipRequest(5);  // request 2 was sent, its first event arrives late
  c.Request(r2.substr(5));
  c.Response(Ok(2));  // must not be taken for the lost response 1
  c.RequestAt(hole, r2.substr(0, 5));
  c.Request(Get(3));
  c.Response(Ok(3));
  ExpectPairedById(c.out());
  for (const HttpExchange& x : c.out()) EXPECT_NE(IdOf(x.req), 2);
}

TEST(Http1Stitcher, RequestDeliveredLateNeverMispairs) {
  FakeConn c;
  c.Request(Get(1));
  c.Response("HT");
  c.ResponseGap(Ok(1).size() - 2);  // response 1 lost: a marker owes it
  const std::string r2 = Get(2);
  const auto late = c.SkipRequest(r2.size());  // sent now, delivered after its answer
  c.Response(Ok(2));                           // looks like the lost answer to request 1
  c.RequestAt(late, r2);                       // request 2 started first: it may be answered
  c.Request(Get(3));
  c.Response(Ok(3));
  c.Request(Get(4));
  c.Response(Ok(4));
  ExpectPairedById(c.out());
  for (const HttpExchange& x : c.out()) EXPECT_NE(IdOf(x.req), 2);
}

TEST(Http1Stitcher, PendingRequestsAreBounded) {
  FakeConn c;
  std::string burst;
  for (int i = 0; i < 3000; ++i) burst += Get(i);
  c.Request(burst);
  EXPECT_LE(c.stitcher().pending(), kMaxPendingRequests + 1);
  EXPECT_GE(c.stats().unpaired_requests, 3000u - kMaxPendingRequests);
  for (int i = 0; i < 3000; ++i) c.Response(Ok(i));
  ExpectPairedById(c.out());
}

TEST(Http1Stitcher, GarbageIsNotHttp) {
  EXPECT_FALSE(Http1Stitcher::LooksLikeHttp1Request("\x16\x03\x01\x00\xa5\x01\x00"));
  EXPECT_FALSE(Http1Stitcher::LooksLikeHttp1Response("SSH-2.0-OpenSSH_9.2\r\n"));
  FakeConn c;
  c.Request(std::string(5000, '\x07') + "not http at all\r\n\r\n");
  c.Response("+OK redis-like reply\r\n");
  c.Close();
  EXPECT_TRUE(c.out().empty());
  EXPECT_GE(c.stats().parse_errors, 1u);
  EXPECT_EQ(c.stats().requests_parsed, 0u);
}

TEST(Http1Stitcher, TruncatedRequestAtCloseIsErrorExchange) {
  FakeConn c;
  c.Request("GET /slow HTTP/1.1\r\nHost: x\r\nUser-Ag");
  c.Close();
  ASSERT_EQ(c.out().size(), 1u);
  const HttpExchange& x = c.out()[0];
  EXPECT_EQ(x.req.target, "/slow");
  EXPECT_EQ(x.req.headers.Get("host"), "x");
  EXPECT_TRUE(x.req.truncated);
  EXPECT_FALSE(x.resp.has_value());
  EXPECT_EQ(x.error_type, "request_truncated");
}

TEST(Http1Stitcher, UnansweredRequestAtCloseOrReset) {
  struct Case {
    CloseReason reason;
    const char* error_type;
  };
  for (const Case& tc : {Case{CloseReason::kClosed, "response_missing_at_close"},
                         Case{CloseReason::kReset, "connection_reset"}}) {
    FakeConn c;
    c.Request(Get(1));
    c.Close(tc.reason);
    ASSERT_EQ(c.out().size(), 1u);
    EXPECT_EQ(c.out()[0].error_type, tc.error_type);
    EXPECT_FALSE(c.out()[0].resp.has_value());
  }
}

TEST(Http1Stitcher, RequestWhoseResponseWasLostIsNotCalledUnanswered) {
  // The response was sent but none of its bytes arrived: the close reports the lost tail as a
  // gap, and the request is counted unpaired rather than given a false error.
  FakeConn c;
  c.Request(Get(1));
  c.Response(Ok(1));
  c.Request(Get(2));
  c.ResponseGap(Ok(2).size());
  c.Close();
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(IdOf(c.out()[0].req), 1);
  EXPECT_EQ(c.stats().unpaired_requests, 1u);
}

TEST(Http1Stitcher, WhatIsInFlightWhenTheAgentStopsFollowingIsCountedNotFailed) {
  // Agent shutdown or eviction: the connection may still be open, so neither the pending
  // request nor the response in progress has failed.
  for (const bool partial_response : {false, true}) {
    FakeConn c;
    c.Request(Get(1));
    c.Response(Ok(1));
    c.Request(Get(2));
    if (partial_response) c.Response("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nsome");
    c.Close(CloseReason::kUnobserved);
    ASSERT_EQ(c.out().size(), 1u) << partial_response;
    EXPECT_EQ(IdOf(c.out()[0].req), 1);
    EXPECT_TRUE(c.out()[0].error_type.empty());
    EXPECT_EQ(c.stats().unfinished_unobserved, 1u);
    EXPECT_EQ(c.stats().missing_at_close + c.stats().truncated_at_close, 0u);
  }
}

TEST(Http1Stitcher, ClientKilledMidResponseIsTruncated) {
  FakeConn c;
  c.Request(Get(1));
  c.Response("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-Id: 1\r\n\r\nonly some");
  c.Close(CloseReason::kReset);
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(c.out()[0].error_type, "response_truncated");
  EXPECT_TRUE(c.out()[0].resp->truncated);
  EXPECT_EQ(c.out()[0].resp->status, 200);
}

TEST(Http1Stitcher, TimeoutYieldsTimeoutExchange) {
  FakeConn c;
  c.Request(Get(1));
  const uint64_t sent = c.now();
  c.Expire(sent + kDefaultResponseTimeoutNs - 1);
  EXPECT_TRUE(c.out().empty());
  c.Expire(sent + kDefaultResponseTimeoutNs);
  ASSERT_EQ(c.out().size(), 1u);
  EXPECT_EQ(c.out()[0].error_type, "timeout");
  EXPECT_EQ(c.stats().timeouts, 1u);
  // The late answer is recognised as request 1's (it started before request 2) and dropped.
  c.Tick(kDefaultResponseTimeoutNs);
  c.Response(Ok(1));
  c.Request(Get(2));
  c.Response(Ok(2));
  ASSERT_EQ(c.out().size(), 2u);
  EXPECT_EQ(IdOf(*c.out()[1].resp), 2);
  ExpectPairedById(c.out());
}

TEST(Http1Stitcher, ByteAtATimeDelivery) {
  FakeConn c;
  std::string reqs, resps;
  for (int i = 0; i < 5; ++i) reqs += Get(i);
  resps += Ok(0);
  resps += "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Id: 1\r\n\r\n4\r\nabcd\r\n0\r\n\r\n";
  resps += "HTTP/1.1 100 Continue\r\n\r\n" + Ok(2);
  resps += "HTTP/1.1 204 No Content\r\nX-Id: 3\r\n\r\n";
  resps += Ok(4, std::string(300, 'z'));
  for (char ch : reqs) c.Request(std::string_view(&ch, 1));
  for (char ch : resps) c.Response(std::string_view(&ch, 1));
  ASSERT_EQ(c.out().size(), 5u);
  ExpectPairedById(c.out());
  EXPECT_EQ(c.out()[1].resp->body_size, 4u);
  EXPECT_EQ(c.out()[4].resp->body_size, 300u);
  EXPECT_EQ(c.stats().parse_errors, 0u);
  EXPECT_EQ(c.stats().resyncs, 0u);
}

TEST(Http1Stitcher, InterleavedByteAtATimeDelivery) {
  FakeConn c;
  const std::string req = Get(1) + Get(2);
  const std::string resp = Ok(1) + Ok(2);
  for (size_t i = 0; i < std::max(req.size(), resp.size()); ++i) {
    if (i < req.size()) c.Request(req.substr(i, 1));
    if (i < resp.size()) c.Response(resp.substr(i, 1));
  }
  ASSERT_EQ(c.out().size(), 2u);
  ExpectPairedById(c.out());
}

TEST(Http1Stitcher, DetectsHttpFromFirstBytes) {
  EXPECT_TRUE(Http1Stitcher::LooksLikeHttp1Request("GET / HTTP/1.1\r\nHost: a\r\n"));
  EXPECT_TRUE(Http1Stitcher::LooksLikeHttp1Request("OPTIONS * HTTP/1.1\r\n"));
  EXPECT_TRUE(Http1Stitcher::LooksLikeHttp1Response("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_FALSE(Http1Stitcher::LooksLikeHttp1Request("GET / HTTP/2\r\n"));
  EXPECT_FALSE(Http1Stitcher::LooksLikeHttp1Request("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  EXPECT_FALSE(Http1Stitcher::LooksLikeHttp1Response("HTTP/1.1 999 Nope\r\n"));
}

}  // namespace
}  // namespace zerotrace::protocols::http1
