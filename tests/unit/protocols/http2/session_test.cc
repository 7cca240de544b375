// Specification of Http2Session: streams become exchanges whatever the interleaving; headers are
// decoded against the table the session followed, never another; losses are counted.
#include "protocols/http2/session.h"

#include <gtest/gtest.h>

#include "h2_test_util.h"

namespace zerotrace::protocols::http2 {
namespace {

using testing::Attr;
using testing::FakeH2Conn;
using testing::Fields;
using testing::FrameWriter;
using testing::GrpcRequest;
using testing::Request;
using testing::Status;

// One HTTP exchange scenario: what the client and server send, in order, and the span wanted.
struct HttpCase {
  std::string name;
  // Appends the scenario's bytes; `c` sends them through the right direction.
  void (*play)(FakeH2Conn& c);
  std::string span_name;
  std::map<std::string, std::string> attrs;  // "<absent>": must not be there
  bool error = false;
};

void PlayGet(FakeH2Conn& c) {
  c.Client(c.client().Headers(
      1, Request("GET", "/users/42?token=abc&x=1", "example.com:8443", {{"user-agent", "curl/8"}}),
      true));
  c.Server(FrameWriter::Settings() + c.server().Headers(1, Status(200), false) +
           FrameWriter::Data(1, "hello", true));
}

void PlayPostWithPaddingAndPriority(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, Request("POST", "/upload"), false, 0, 7, true));
  c.Client(FrameWriter::Data(1, std::string(100, 'a'), false, 20));
  c.Client(FrameWriter::Data(1, std::string(50, 'b'), true));
  c.Server(c.server().Headers(1, Status(201), false, 0, 3) + FrameWriter::Data(1, "ok", false) +
           FrameWriter::Data(1, "", true, 9));
}

void PlayInterimThenFinal(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, Request("PUT", "/big", "h", {{"expect", "100-continue"}}), false));
  c.Server(c.server().Headers(1, Status(100), false));
  c.Client(FrameWriter::Data(1, std::string(10, 'x'), true));
  c.Server(c.server().Headers(1, Status(103, {{"link", "</a.css>"}}), false));
  c.Server(c.server().Headers(1, Status(204), true));
}

void PlayContinuationAndTrailers(FakeH2Conn& c) {
  Fields many = Request("GET", "/c");
  for (int i = 0; i < 20; i++) many.push_back({"x-h" + std::to_string(i), std::string(30, 'v')});
  c.Client(c.client().Headers(1, many, true, 40));
  c.Server(c.server().Headers(1, Status(200), false, 1) + FrameWriter::Data(1, "abc", false) +
           c.server().Headers(1, {{"x-checksum", "1"}}, true, 2));
}

void PlayServerError(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, Request("GET", "/fail"), true));
  c.Server(c.server().Headers(1, Status(503), false) + FrameWriter::Data(1, "down", true));
}

void PlayClientCancels(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, Request("GET", "/slow"), true));
  c.Client(FrameWriter::Rst(1, 0x8));
}

void PlayServerResetsAfterHeaders(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, Request("GET", "/half"), true));
  c.Server(c.server().Headers(1, Status(200), false) + FrameWriter::Data(1, "par", false) +
           FrameWriter::Rst(1, 0x2));
}

// The server answers before the client ended its upload, then resets the rest (NO_ERROR):
// a complete exchange, not an error.
void PlayEarlyResponseThenNoErrorReset(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, Request("POST", "/early"), false));
  c.Client(FrameWriter::Data(1, "part", false));
  c.Server(c.server().Headers(1, Status(413), true) + FrameWriter::Rst(1, 0x0));
}

TEST(Http2Session, HttpExchanges) {
  const std::vector<HttpCase> cases = {
      {"get",
       PlayGet,
       "GET /users/{id}",
       {{"http.request.method", "GET"},
        {"url.path", "/users/42"},
        {"url.query", "token=REDACTED&x=REDACTED"},
        {"url.scheme", "http"},
        {"url.full", "http://example.com:8443/users/42?token=REDACTED&x=REDACTED"},
        {"server.address", "example.com"},
        {"server.port", "8443"},
        {"network.protocol.version", "2"},
        {"user_agent.original", "curl/8"},
        {"http.request.body.size", "0"},
        {"http.response.status_code", "200"},
        {"http.response.body.size", "5"}}},
      {"post with padding and priority",
       PlayPostWithPaddingAndPriority,
       "POST /upload",
       {{"http.request.body.size", "150"},
        {"http.response.status_code", "201"},
        {"http.response.body.size", "2"}}},
      {"1xx before the final response",
       PlayInterimThenFinal,
       "PUT /big",
       {{"http.request.body.size", "10"},
        {"http.response.status_code", "204"},
        {"http.response.body.size", "0"}}},
      {"continuation and trailers",
       PlayContinuationAndTrailers,
       "GET /c",
       {{"http.response.status_code", "200"}, {"http.response.body.size", "3"}}},
      {"server error", PlayServerError, "GET /fail", {{"error.type", "503"}}, true},
      {"client cancels",
       PlayClientCancels,
       "GET /slow",
       {{"error.type", "CANCEL"}, {"http.response.status_code", "<absent>"}},
       true},
      {"server resets mid-body",
       PlayServerResetsAfterHeaders,
       "GET /half",
       {{"error.type", "INTERNAL_ERROR"},
        {"http.response.status_code", "200"},
        {"http.response.body.size", "<absent>"}},
       true},
      {"early response, NO_ERROR reset",
       PlayEarlyResponseThenNoErrorReset,
       "POST /early",
       // A 4xx is an error on the client side (HTTP conventions); the reset is not.
       {{"http.response.status_code", "413"},
        {"http.request.body.size", "4"},
        {"error.type", "413"}},
       true},
  };
  for (const HttpCase& tc : cases) {
    SCOPED_TRACE(tc.name);
    FakeH2Conn c;
    tc.play(c);
    ASSERT_EQ(c.out().starts(), 1u);
    ASSERT_EQ(c.out().exchanges(), 1u);
    const ExchangeDone& x = c.out().exchange(0);
    EXPECT_EQ(x.id, c.out().start(0).id);
    EXPECT_EQ(x.span.name, tc.span_name);
    for (const auto& [k, v] : tc.attrs) EXPECT_EQ(Attr(x.span, k), v) << k;
    EXPECT_EQ(x.span.status == trace::StatusCode::kError, tc.error);
    EXPECT_GE(x.end_ns, x.start_ns);
    EXPECT_EQ(c.session().open_streams(), 0u);
  }
}

TEST(Http2Session, RequestStartCarriesPositionOperationAndContext) {
  FakeH2Conn c;
  const uint64_t pos = c.req_pos();
  c.Client(c.client().Headers(
      3,
      Request("GET", "/a?b=1", "h",
              {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
               {"tracestate", "k=v"},
               {"x-request-id", "req-12345678"}}),
      true));
  ASSERT_EQ(c.out().starts(), 1u);
  const RequestStarted& r = c.out().start(0);
  EXPECT_EQ(r.stream_pos, pos);  // the HEADERS frame's first byte
  EXPECT_EQ(r.operation, "GET /a?b=1");
  EXPECT_EQ(r.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(r.tracestate, "k=v");
  EXPECT_EQ(r.correlation, "req-12345678");
  EXPECT_TRUE(r.multiplexed);
  EXPECT_EQ(r.start_ns, c.now());
  EXPECT_EQ(r.tid, 7 + c.now());
}

// Streams answered out of order pair by stream id, and the dynamic table (indexed fields that
// later blocks refer to) is followed across them.
TEST(Http2Session, MultiplexedStreamsPairByIdAcrossTheDynamicTable) {
  FakeH2Conn c;
  for (uint32_t id = 1; id <= 9; id += 2) {
    c.Client(c.client().Headers(
        id, Request("GET", "/item/" + std::to_string(id), "same.host", {{"user-agent", "agent/1"}}),
        true));
  }
  for (int id = 9; id >= 1; id -= 2) {
    c.Server(c.server().Headers(id, Status(200 + id, {{"server", "s"}}), false) +
             FrameWriter::Data(id, std::string(id, 'z'), true));
  }
  ASSERT_EQ(c.out().exchanges(), 5u);
  for (const auto* x : c.Exchanges()) {
    const std::string path = Attr(x->span, "url.path");
    const int id = std::stoi(path.substr(6));
    EXPECT_EQ(Attr(x->span, "http.response.status_code"), std::to_string(200 + id));
    EXPECT_EQ(Attr(x->span, "http.response.body.size"), std::to_string(id));
    EXPECT_EQ(Attr(x->span, "server.address"), "same.host");
    EXPECT_EQ(Attr(x->span, "user_agent.original"), "agent/1");
  }
}

// A response whose request's record has not arrived yet (its writer was preempted before its
// syscall's exit) waits for it a moment, then pairs; once the wait is over it is unpaired.
TEST(Http2Session, ResponseWaitsForItsRequestStillInFlight) {
  FakeH2Conn c;
  const std::string req = c.client().Headers(1, Request("GET", "/late"), true);
  c.Server(c.server().Headers(1, Status(200), true));
  EXPECT_EQ(c.out().exchanges(), 0u);
  c.Client(req);
  ASSERT_EQ(c.out().exchanges(), 1u);
  EXPECT_EQ(Attr(c.out().exchange(0).span, "url.path"), "/late");
  EXPECT_EQ(c.stats().unpaired_responses, 0u);

  c.Server(c.server().Headers(3, Status(200), true));
  c.Tick(kRequestWaitNs + 1);
  c.Advance();
  EXPECT_EQ(c.stats().unpaired_responses, 1u);
  EXPECT_EQ(c.out().exchanges(), 1u);
}

// DATA payloads the kernel skipped (header captured, payload a gap) keep sizes exact.
TEST(Http2Session, UncapturedDataPayloadsKeepSizesExact) {
  FakeH2Conn c;
  c.Client(c.client().Headers(1, Request("POST", "/blob"), false));
  c.Client(testing::FrameHead(40000, kData, 0, 1));
  c.ClientGap(40000);
  c.Client(testing::FrameHead(3, kData, kEndStream, 1) + "end");
  c.Server(c.server().Headers(1, Status(200), false) + testing::FrameHead(70000, kData, 0, 1));
  c.ServerGap(70000);
  c.Server(c.server().Headers(1, {{"x-t", "1"}}, true));
  ASSERT_EQ(c.out().exchanges(), 1u);
  EXPECT_EQ(Attr(c.out().exchange(0).span, "http.request.body.size"), "40003");
  EXPECT_EQ(Attr(c.out().exchange(0).span, "http.response.body.size"), "70000");
  EXPECT_EQ(c.stats().data_gap_bytes, 110000u);
  EXPECT_EQ(c.stats().hpack_lost + c.stats().frames_lost, 0u);
}

// A lost HEADERS frame: decoding stops in that direction, counted; no later request is shown
// (its fields would be decoded against a table that missed an update).
TEST(Http2Session, LostHeaderBlockStopsDecodingAndIsCounted) {
  FakeH2Conn c;
  c.Client(c.client().Headers(1, Request("GET", "/one"), true));
  c.Server(c.server().Headers(1, Status(200), true));
  const std::string lost = c.client().Headers(3, Request("GET", "/two", "new.host"), true);
  c.Client(lost.substr(0, 9));  // the header arrived, the block did not
  c.ClientGap(lost.size() - 9);
  c.Client(c.client().Headers(5, Request("GET", "/three", "new.host"), true));
  c.Server(c.server().Headers(3, Status(200), true) + c.server().Headers(5, Status(200), true));
  ASSERT_EQ(c.out().exchanges(), 1u);
  EXPECT_EQ(Attr(c.out().exchange(0).span, "url.path"), "/one");
  EXPECT_EQ(c.out().starts(), 1u);
  EXPECT_EQ(c.stats().frames_lost, 1u);
}

// A gap over a frame header in the response direction: nothing pending can be answered any
// more; the streams are dropped and counted, never reported as failures.
TEST(Http2Session, LostResponseFramesDropPendingStreams) {
  FakeH2Conn c;
  c.Client(c.client().Headers(1, Request("GET", "/x"), true));
  c.ServerGap(30);
  c.Close();
  EXPECT_EQ(c.out().exchanges(), 0u);
  EXPECT_EQ(c.stats().streams_dropped, 1u);
  EXPECT_EQ(c.stats().frames_lost, 1u);
}

// Bytes that are not HPACK of this table (an undecodable block) stop decoding too.
TEST(Http2Session, UndecodableBlockIsCountedNotGuessed) {
  FakeH2Conn c;
  const std::string bad = "\xbf\x7f\x7f";  // indexed field 63+: nothing in an empty table
  c.Client(testing::FrameHead(bad.size(), kHeaders, kEndHeaders | kEndStream, 1) + bad);
  c.Server(c.server().Headers(1, Status(200), true));
  EXPECT_EQ(c.out().starts(), 0u);
  EXPECT_EQ(c.out().exchanges(), 0u);
  EXPECT_EQ(c.stats().hpack_lost, 1u);
}

TEST(Http2Session, GoawayFailsTheStreamsTheServerNeverProcessed) {
  FakeH2Conn c;
  c.Client(c.client().Headers(1, Request("GET", "/kept"), true));
  c.Client(c.client().Headers(3, Request("GET", "/refused"), true));
  c.Server(FrameWriter::Goaway(1, 0) + c.server().Headers(1, Status(200), true));
  ASSERT_EQ(c.out().exchanges(), 2u);
  EXPECT_EQ(Attr(c.out().exchange(0).span, "url.path"), "/refused");
  EXPECT_EQ(Attr(c.out().exchange(0).span, "error.type"), "goaway");
  EXPECT_EQ(Attr(c.out().exchange(1).span, "url.path"), "/kept");
  EXPECT_EQ(Attr(c.out().exchange(1).span, "error.type"), "<absent>");
}

TEST(Http2Session, PendingStreamsAtCloseFollowTheReason) {
  struct Case {
    CloseReason reason;
    bool response_started;
    std::string error_type;  // "": no exchange
  };
  const std::vector<Case> cases = {
      {CloseReason::kClosed, false, "response_missing_at_close"},
      {CloseReason::kClosed, true, "response_truncated"},
      {CloseReason::kReset, false, "connection_reset"},
      {CloseReason::kShutdown, false, "agent_shutdown"},
      {CloseReason::kUnobserved, false, ""},
  };
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.error_type);
    FakeH2Conn c;
    c.Client(c.client().Headers(1, Request("GET", "/p"), true));
    if (tc.response_started) c.Server(c.server().Headers(1, Status(200), false));
    c.Close(tc.reason);
    if (tc.error_type.empty()) {
      EXPECT_EQ(c.out().exchanges(), 0u);
      EXPECT_EQ(c.stats().unfinished_unobserved, 1u);
      continue;
    }
    ASSERT_EQ(c.out().exchanges(), 1u);
    EXPECT_EQ(Attr(c.out().exchange(0).span, "error.type"), tc.error_type);
  }
}

TEST(Http2Session, UnansweredStreamTimesOut) {
  FakeH2Conn c;
  c.Client(c.client().Headers(1, Request("GET", "/never"), true));
  c.Expire(c.now() + kResponseTimeoutNs / 2);
  EXPECT_EQ(c.out().exchanges(), 0u);
  c.Expire(c.now() + kResponseTimeoutNs + 1);
  ASSERT_EQ(c.out().exchanges(), 1u);
  EXPECT_EQ(Attr(c.out().exchange(0).span, "error.type"), "timeout");
  EXPECT_EQ(c.stats().timeouts, 1u);
}

// Found mid-life (frames first, no preface): streams are counted, nothing is decoded or shown.
TEST(Http2Session, ConnectionWithUnknownTableReportsNothingAndCounts) {
  FakeH2Conn c(ZT_ROLE_CLIENT, /*with_preface=*/false);
  FrameWriter w;
  c.Client(w.Headers(7, Request("GET", "/a"), true) + w.Headers(9, Request("GET", "/b"), true));
  c.Server(FrameWriter::Data(7, "tail of something", true));
  EXPECT_EQ(c.out().starts(), 0u);
  EXPECT_EQ(c.out().exchanges(), 0u);
  EXPECT_EQ(c.stats().conns_table_unknown, 1u);
  EXPECT_EQ(c.stats().streams_table_unknown, 2u);
  EXPECT_EQ(c.stats().conns, 0u);
}

// --- gRPC -------------------------------------------------------------------------------

struct GrpcCase {
  std::string name;
  void (*play)(FakeH2Conn& c);
  std::map<std::string, std::string> attrs;
  std::string status_message;  // "": status unset
};

void PlayUnary(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, GrpcRequest("/helloworld.Greeter/SayHello"), false) +
           FrameWriter::Data(1, FrameWriter::GrpcMessage("world"), true));
  c.Server(c.server().Headers(1, Status(200, {{"content-type", "application/grpc"}}), false) +
           FrameWriter::Data(1, FrameWriter::GrpcMessage("hello world"), false) +
           c.server().Headers(1, {{"grpc-status", "0"}}, true));
}

void PlayErrorStatus(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, GrpcRequest("/pkg.Store/Get"), false) +
           FrameWriter::Data(1, FrameWriter::GrpcMessage("k"), true));
  c.Server(
      c.server().Headers(1, Status(200), false) +
      c.server().Headers(1, {{"grpc-status", "5"}, {"grpc-message", "no%20such%20key"}}, true));
}

void PlayTrailersOnly(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, GrpcRequest("/pkg.Store/Put"), false) +
           FrameWriter::Data(1, FrameWriter::GrpcMessage("kv"), true));
  c.Server(
      c.server().Headers(1, Status(200, {{"grpc-status", "7"}, {"grpc-message", "denied"}}), true));
}

void PlayServerStreaming(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, GrpcRequest("/pkg.Feed/Watch"), false) +
           FrameWriter::Data(1, FrameWriter::GrpcMessage("q"), true));
  c.Server(c.server().Headers(1, Status(200), false));
  // Messages split across frames, two in one frame, one whose payload was not captured.
  const std::string m1 = FrameWriter::GrpcMessage("first message");
  c.Server(FrameWriter::Data(1, m1.substr(0, 3), false) +
           FrameWriter::Data(1, m1.substr(3), false));
  c.Server(FrameWriter::Data(1, FrameWriter::GrpcMessage("two") + FrameWriter::GrpcMessage("three"),
                             false));
  c.Server(testing::FrameHead(5 + 20000, kData, 0, 1) + FrameWriter::GrpcMessage("").substr(0, 1) +
           testing::Be32(20000));
  c.ServerGap(20000);
  c.Server(c.server().Headers(1, {{"grpc-status", "0"}}, true));
}

void PlayClientStreaming(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, GrpcRequest("/pkg.Up/Load"), false));
  for (int i = 0; i < 4; i++) {
    c.Client(FrameWriter::Data(1, FrameWriter::GrpcMessage("chunk"), false));
  }
  c.Client(FrameWriter::Data(1, "", true));
  c.Server(c.server().Headers(1, Status(200), false) +
           FrameWriter::Data(1, FrameWriter::GrpcMessage("done"), false) +
           c.server().Headers(1, {{"grpc-status", "0"}}, true));
}

void PlayDeadlineExceeded(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, GrpcRequest("/pkg.Slow/Wait", {{"grpc-timeout", "100m"}}), false) +
           FrameWriter::Data(1, FrameWriter::GrpcMessage("x"), true));
  c.Tick(100'000'000);
  c.Client(FrameWriter::Rst(1, 0x8));
}

void PlayCancelledEarly(FakeH2Conn& c) {
  c.Client(c.client().Headers(1, GrpcRequest("/pkg.Slow/Wait", {{"grpc-timeout", "5S"}}), false) +
           FrameWriter::Data(1, FrameWriter::GrpcMessage("x"), true));
  c.Tick(1'000'000);
  c.Client(FrameWriter::Rst(1, 0x8));
}

TEST(Http2Session, GrpcCalls) {
  const std::vector<GrpcCase> cases = {
      {"unary ok",
       PlayUnary,
       {{"rpc.system", "grpc"},
        {"rpc.service", "helloworld.Greeter"},
        {"rpc.method", "SayHello"},
        {"rpc.grpc.status_code", "0"},
        {"server.address", "grpc.local"},
        {"server.port", "50051"},
        {"network.protocol.version", "2"},
        {"zerotrace.grpc.request_messages", "1"},
        {"zerotrace.grpc.response_messages", "1"},
        {"error.type", "<absent>"},
        {"http.request.method", "<absent>"}},
       ""},
      {"error status",
       PlayErrorStatus,
       {{"rpc.grpc.status_code", "5"},
        {"error.type", "NOT_FOUND"},
        {"zerotrace.grpc.response_messages", "0"}},
       "no such key"},
      {"trailers-only",
       PlayTrailersOnly,
       {{"rpc.grpc.status_code", "7"}, {"error.type", "PERMISSION_DENIED"}},
       "denied"},
      {"server streaming",
       PlayServerStreaming,
       {{"rpc.grpc.status_code", "0"},
        {"zerotrace.grpc.request_messages", "1"},
        {"zerotrace.grpc.response_messages", "4"}},
       ""},
      {"client streaming",
       PlayClientStreaming,
       {{"zerotrace.grpc.request_messages", "4"}, {"zerotrace.grpc.response_messages", "1"}},
       ""},
      {"deadline exceeded",
       PlayDeadlineExceeded,
       {{"rpc.grpc.status_code", "4"},
        {"error.type", "DEADLINE_EXCEEDED"},
        {"zerotrace.grpc.timeout_ms", "100.000000"}},
       "stream reset by client: CANCEL"},
      {"cancelled before the deadline",
       PlayCancelledEarly,
       {{"rpc.grpc.status_code", "1"}, {"error.type", "CANCELLED"}},
       "stream reset by client: CANCEL"},
  };
  for (const GrpcCase& tc : cases) {
    SCOPED_TRACE(tc.name);
    FakeH2Conn c;
    tc.play(c);
    ASSERT_EQ(c.out().exchanges(), 1u);
    const trace::Span& s = c.out().exchange(0).span;
    for (const auto& [k, v] : tc.attrs) EXPECT_EQ(Attr(s, k), v) << k;
    EXPECT_EQ(s.status_message, tc.status_message);
    EXPECT_EQ(s.status == trace::StatusCode::kError, !tc.status_message.empty());
    EXPECT_EQ(c.stats().grpc_calls, 1u);
  }
}

TEST(Http2Session, GrpcSpanNameIsServiceSlashMethod) {
  FakeH2Conn c;
  PlayUnary(c);
  ASSERT_EQ(c.out().exchanges(), 1u);
  EXPECT_EQ(c.out().exchange(0).span.name, "helloworld.Greeter/SayHello");
  EXPECT_EQ(c.out().start(0).operation, "POST /helloworld.Greeter/SayHello");
}

// A message prefix inside a gap makes the count unknown: it is left out, and counted.
TEST(Http2Session, GrpcMessageCountLeftOutWhenAPrefixWasNotCaptured) {
  FakeH2Conn c;
  c.Client(c.client().Headers(1, GrpcRequest("/pkg.S/M"), false) +
           FrameWriter::Data(1, FrameWriter::GrpcMessage("a"), true));
  c.Server(c.server().Headers(1, Status(200), false) + testing::FrameHead(40, kData, 0, 1));
  c.ServerGap(40);
  c.Server(c.server().Headers(1, {{"grpc-status", "0"}}, true));
  ASSERT_EQ(c.out().exchanges(), 1u);
  EXPECT_EQ(Attr(c.out().exchange(0).span, "zerotrace.grpc.response_messages"), "<absent>");
  EXPECT_EQ(Attr(c.out().exchange(0).span, "zerotrace.grpc.request_messages"), "1");
  EXPECT_EQ(c.stats().grpc_counts_uncertain, 1u);
}

// OpenTelemetry's gRPC conventions: any code but OK fails a client's call; a server's span is
// an error only for the codes that blame the server (UNKNOWN, DEADLINE_EXCEEDED,
// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS).
TEST(Http2Session, GrpcErrorStatusDependsOnTheSide) {
  struct Case {
    uint8_t role;
    int code;
    bool error;
  };
  const std::vector<Case> cases = {
      {ZT_ROLE_CLIENT, 0, false},  {ZT_ROLE_CLIENT, 5, true},  {ZT_ROLE_CLIENT, 3, true},
      {ZT_ROLE_SERVER, 0, false},  {ZT_ROLE_SERVER, 5, false}, {ZT_ROLE_SERVER, 3, false},
      {ZT_ROLE_SERVER, 16, false}, {ZT_ROLE_SERVER, 2, true},  {ZT_ROLE_SERVER, 4, true},
      {ZT_ROLE_SERVER, 12, true},  {ZT_ROLE_SERVER, 13, true}, {ZT_ROLE_SERVER, 14, true},
      {ZT_ROLE_SERVER, 15, true},
  };
  for (const Case& tc : cases) {
    SCOPED_TRACE(std::to_string(tc.role) + "/" + std::to_string(tc.code));
    FakeH2Conn c(tc.role);
    c.Client(c.client().Headers(1, GrpcRequest("/pkg.S/M"), false) +
             FrameWriter::Data(1, FrameWriter::GrpcMessage("q"), true));
    c.Server(c.server().Headers(1, Status(200, {{"content-type", "application/grpc"}}), false));
    c.Server(c.server().Headers(1, {{"grpc-status", std::to_string(tc.code)}}, true));
    ASSERT_EQ(c.out().exchanges(), 1u);
    const trace::Span& s = c.out().exchange(0).span;
    EXPECT_EQ(Attr(s, "rpc.grpc.status_code"), std::to_string(tc.code));
    EXPECT_EQ(s.status == trace::StatusCode::kError, tc.error);
    EXPECT_EQ(Attr(s, "error.type") != "<absent>", tc.error);
  }
}

// A header block still open (CONTINUATION to come) when the connection closes: no request was
// reported, none is, and no stream stays open (found by the fuzzer).
TEST(Http2Session, HeaderBlockOpenAtCloseLeavesNothingOpen) {
  FakeH2Conn c;
  const std::string headers = c.client().Headers(1, Request("GET", "/never"), true, 3);
  c.Client(headers.substr(0, 9 + 3));  // HEADERS without END_HEADERS, no CONTINUATION
  c.Close();
  EXPECT_EQ(c.out().starts(), 0u);
  EXPECT_EQ(c.out().exchanges(), 0u);
  EXPECT_EQ(c.session().open_streams(), 0u);
}

}  // namespace
}  // namespace zerotrace::protocols::http2
