// Http1Stitcher with an ExchangeSink: the agent's path (exchanges read in place, not moved into
// a vector) hands over exactly what the vector path appends, in the same order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "conn/byte_stream.h"
#include "http1_test_util.h"
#include "protocols/http1/protocol.h"
#include "protocols/http1/stitcher.h"
#include "trace/span_linker.h"

namespace zerotrace::protocols::http1 {
namespace {

using testing::FakeConn;
using testing::Get;
using testing::IdOf;
using testing::Ok;

// Keeps a copy of each exchange it is handed.
class CopyingSink final : public ExchangeSink {
 public:
  void OnExchange(HttpExchange& x) override { got.push_back(x); }
  std::vector<HttpExchange> got;
};

// Pipelining, an interim response, HEAD, chunked trailers, a timeout, and an ending of `reason`
// with a request unanswered and one answered in part: every place an exchange is emitted.
void Script(FakeConn& c, CloseReason reason) {
  c.Request(Get(1) + Get(2) + "HEAD /h HTTP/1.1\r\nHost: x\r\nX-Id: 3\r\n\r\n");
  c.Response(Ok(1, "a"));
  c.Response("HTTP/1.1 100 Continue\r\n\r\n");
  c.Response(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Id: 2\r\n\r\n"
      "3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n");
  c.Response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Id: 3\r\n\r\n");
  c.Request(Get(4));
  c.Expire(c.now() + kDefaultResponseTimeoutNs);
  c.Tick(kDefaultResponseTimeoutNs);
  c.Response(Ok(4));  // the late answer to the timed-out request: dropped
  c.Request(Get(5));
  c.Response(Ok(5, "0123456789"));
  c.Request(Get(6) + Get(7));
  c.Response("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Id: 6\r\n\r\nsome");
  c.Close(reason);
}

void ExpectSame(const HttpExchange& a, const HttpExchange& b) {
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.req.method, b.req.method);
  EXPECT_EQ(a.req.target, b.req.target);
  EXPECT_EQ(IdOf(a.req), IdOf(b.req));
  EXPECT_EQ(a.req.headers.size(), b.req.headers.size());
  EXPECT_EQ(a.req.start_ts_ns, b.req.start_ts_ns);
  EXPECT_EQ(a.req.end_ts_ns, b.req.end_ts_ns);
  EXPECT_EQ(a.req.truncated, b.req.truncated);
  ASSERT_EQ(a.resp.has_value(), b.resp.has_value());
  if (a.resp) {
    EXPECT_EQ(a.resp->status, b.resp->status);
    EXPECT_EQ(IdOf(*a.resp), IdOf(*b.resp));
    EXPECT_EQ(a.resp->body_size, b.resp->body_size);
    EXPECT_EQ(a.resp->interim_responses, b.resp->interim_responses);
    EXPECT_EQ(a.resp->trailers.size(), b.resp->trailers.size());
    EXPECT_EQ(a.resp->end_ts_ns, b.resp->end_ts_ns);
    EXPECT_EQ(a.resp->truncated, b.resp->truncated);
  }
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.error_type, b.error_type);
}

TEST(Http1StitcherSink, TakesWhatTheVectorPathAppendsInOrder) {
  for (const CloseReason reason : {CloseReason::kClosed, CloseReason::kReset,
                                   CloseReason::kUnobserved, CloseReason::kShutdown}) {
    SCOPED_TRACE(static_cast<int>(reason));
    FakeConn plain;
    Script(plain, reason);
    FakeConn sunk;
    CopyingSink sink;
    sunk.stitcher().set_sink(&sink);
    Script(sunk, reason);
    EXPECT_TRUE(sunk.out().empty());
    ASSERT_EQ(sink.got.size(), plain.out().size());
    ASSERT_GE(plain.out().size(), 5u);  // 1, 2, HEAD, the timeout, 5 (and what the close ends)
    for (size_t i = 0; i < plain.out().size(); ++i) {
      SCOPED_TRACE(i);
      ExpectSame(plain.out()[i], sink.got[i]);
    }
    EXPECT_EQ(sink.got[1].resp->interim_responses, 1);
    EXPECT_EQ(sink.got[1].resp->trailers.Get("x-trailer"), "t");
    EXPECT_EQ(sink.got[3].error_type, "timeout");
    EXPECT_EQ(plain.stats().exchanges, sunk.stats().exchanges);
    EXPECT_EQ(plain.stats().unpaired_requests, sunk.stats().unpaired_requests);
  }
}

// Exchanges read in place hand their field buffers on to the next heads parsed, on any
// connection: each exchange still carries its own fields, whatever sizes went before.
TEST(Http1StitcherSink, ReusedFieldBuffersCarryEachExchangesOwnFields) {
  FakeConn a, b;
  CopyingSink sink_a, sink_b;
  a.stitcher().set_sink(&sink_a);
  b.stitcher().set_sink(&sink_b);
  for (int i = 0; i < 200; ++i) {
    // Field blocks from a few bytes to ~1.5 KB, so a reused buffer is sometimes too small.
    const std::string big((i * 37) % 1500, 'v');
    FakeConn& c = i % 2 == 0 ? a : b;
    c.Request(Get(i, "X-Big: " + big + "\r\n"));
    c.Response(Ok(i, "body", i % 3 == 0 ? "X-Big: " + big + "\r\n" : std::string()));
  }
  ASSERT_EQ(sink_a.got.size(), 100u);
  ASSERT_EQ(sink_b.got.size(), 100u);
  for (int i = 0; i < 200; ++i) {
    SCOPED_TRACE(i);
    const HttpExchange& x = (i % 2 == 0 ? sink_a : sink_b).got[static_cast<size_t>(i / 2)];
    const size_t big = static_cast<size_t>((i * 37) % 1500);
    EXPECT_EQ(IdOf(x.req), i);
    EXPECT_EQ(x.req.target, "/items/" + std::to_string(i));
    EXPECT_EQ(x.req.headers.Get("x-big").value_or("?").size(), big);
    EXPECT_EQ(x.req.headers.Get("host"), "api.example");
    ASSERT_TRUE(x.resp.has_value());
    EXPECT_EQ(IdOf(*x.resp), i);
    EXPECT_EQ(x.resp->headers.Has("x-big"), i % 3 == 0);
    if (i % 3 == 0) {
      EXPECT_EQ(x.resp->headers.Get("x-big").value_or("?").size(), big);
    }
  }
}

// The session's request starts name the first request-id header the linker counts as
// evidence, whatever its case; other names of the same lengths are not taken for one (the
// session skips names that cannot be one before lowercasing them).
TEST(Http1Session, RequestStartNamesTheFirstCorrelationHeaderInAnyCase) {
  const std::vector<std::string> correlation = {
      "X-Request-Id",          "x-correlation-id", "Request-ID",   "X-Amzn-Trace-Id",
      "X-Cloud-Trace-Context", "X-B3-TraceId",     "Uber-Trace-Id"};
  const std::vector<std::string> other = {"User-Agent", "X-Forwarded", "Content-Type",
                                          "x-request-ix", "X-Trace-Id-Of-It"};
  std::vector<std::string> names = correlation;
  names.insert(names.end(), other.begin(), other.end());
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    EXPECT_EQ(trace::IsCorrelationHeader([&] {
                std::string lower = name;
                for (char& ch : lower) ch = static_cast<char>(std::tolower(ch));
                return lower;
              }()),
              std::find(correlation.begin(), correlation.end(), name) != correlation.end());
    auto protocol = MakeProtocol(ProtocolOptions{});
    const trace::ConnEndpoints ends{true, true, "127.0.0.1", "127.0.0.1", 8080, 40000};
    auto session = protocol->NewSession(SessionContext{ZT_ROLE_SERVER, false, &ends, false});
    conn::ByteStream requests, responses;
    const std::string request = "GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: u-12345678\r\n" + name +
                                ": value-12345678\r\nX-Request-Id: second-1234\r\n\r\n";
    requests.AddData(0, request, 10);
    SessionOutput out;
    session->Advance(requests, responses, 11, &out);
    ASSERT_EQ(out.starts(), 1u);
    const bool is = std::find(correlation.begin(), correlation.end(), name) != correlation.end();
    EXPECT_EQ(out.start(0).correlation, is ? "value-12345678" : "second-1234");
    EXPECT_EQ(out.start(0).operation, "GET /a");
  }
}

}  // namespace
}  // namespace zerotrace::protocols::http1
