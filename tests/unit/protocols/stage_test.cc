// ProtocolStage (with the registered protocols) on synthetic kernel records: detection,
// pairing into spans, attributes, redaction and error status, from both sides of a connection.
#include "protocols/stage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>

#include "kernel_records.h"
#include "protocols/registry.h"
#include "stage_fixture.h"

namespace zerotrace::protocols {
namespace {

TEST_F(StageTest, ClientExchangeBecomesClientSpanWithRedactedQuery) {
  Conn c(&table, 1, ZT_ROLE_CLIENT);
  c.Send(ZT_DIR_EGRESS,
         "GET /users/42/orders?token=s3cret&page=2 HTTP/1.1\r\nHost: shop.local:8080\r\n"
         "User-Agent: curl/7.88.1\r\nAuthorization: Bearer abc\r\n\r\n",
         1000);
  c.Send(ZT_DIR_INGRESS, "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!", 5000);
  ASSERT_EQ(sink.spans().size(), 1u);
  const trace::Span& s = sink.spans()[0];
  EXPECT_EQ(s.kind, trace::SpanKind::kClient);
  EXPECT_EQ(s.name, "GET /users/{id}/orders");
  EXPECT_EQ(Str(s, "url.path"), "/users/42/orders");
  EXPECT_EQ(Str(s, "url.query"), "token=REDACTED&page=REDACTED");
  EXPECT_EQ(Str(s, "url.full"),
            "http://shop.local:8080/users/42/orders?token=REDACTED&page=REDACTED");
  EXPECT_EQ(Str(s, "server.address"), "shop.local");
  EXPECT_EQ(Str(s, "server.port"), "8080");
  EXPECT_EQ(Str(s, "network.peer.address"), "10.1.2.3");
  EXPECT_EQ(Str(s, "user_agent.original"), "curl/7.88.1");
  EXPECT_EQ(Str(s, "http.response.status_code"), "404");
  EXPECT_EQ(Str(s, "http.response.body.size"), "5");
  EXPECT_EQ(Str(s, "error.type"), "404");  // 4xx is an error on CLIENT spans
  EXPECT_EQ(s.status, trace::StatusCode::kError);
  EXPECT_EQ(s.end_unix_ns - s.start_unix_ns, 4000u);
  for (const auto& a : s.attributes) {  // no header value other than the user agent leaves
    if (auto* v = std::get_if<std::string>(&a.value)) {
      EXPECT_EQ(v->find("Bearer"), std::string::npos) << a.key;
      EXPECT_EQ(v->find("s3cret"), std::string::npos) << a.key;
    }
  }
  EXPECT_EQ(s.resource->service_name, "svc");
  ASSERT_EQ(s.resource->extra.size(), 1u);
}

// Issue 17, head caps: a response /r/N of `body` bytes, with `pad` bytes of one more field.
std::string CapResponse(size_t body, size_t pad = 0) {
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body) + "\r\n";
  if (pad > 0) head += "X-Pad: " + std::string(pad, 'p') + "\r\n";
  return head + "\r\n" + std::string(body, 'b');
}

// `n` exchanges GET /r/first.. on `c`, answered with bodies of 1000 + N bytes (pad: as above),
// each receive copied up to `capture` bytes.
void CapExchanges(Conn& c, int first, int n, uint64_t* ts, uint32_t capture = UINT32_MAX,
                  size_t pad = 0) {
  for (int i = first; i < first + n; i++) {
    c.Send(ZT_DIR_EGRESS, "GET /r/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n",
           *ts += 10);
    c.SendCapped(ZT_DIR_INGRESS, CapResponse(1000 + i, pad), *ts += 10, capture);
  }
}

// Each span is /r/N, 200, with N's body size, or none where `unsized` says.
void ExpectCapSpans(const std::vector<trace::Span>& spans, int n, std::vector<int> unsized = {}) {
  ASSERT_EQ(spans.size(), static_cast<size_t>(n));
  for (int i = 1; i <= n; i++) {
    const trace::Span& s = spans[i - 1];
    EXPECT_EQ(Str(s, "url.path"), "/r/" + std::to_string(i));
    EXPECT_EQ(Str(s, "http.response.status_code"), "200");
    const bool cut = std::find(unsized.begin(), unsized.end(), i) != unsized.end();
    EXPECT_EQ(Str(s, "http.response.body.size"), cut ? "<absent>" : std::to_string(1000 + i)) << i;
  }
}

// Four clean responses with 42-byte heads: the kernel is asked to copy 256 bytes of each
// receive (42 + 128, rounded to 64, at least 256); the capped bodies are sized exactly.
TEST_F(StageTest, SteadyResponseHeadsCapPayloadAndCappedBodiesStayExact) {
  Conn c(&table, 7, ZT_ROLE_CLIENT);
  uint64_t ts = 0;
  CapExchanges(c, 1, 3, &ts);
  EXPECT_TRUE(kernel.caps.empty());
  CapExchanges(c, 4, 1, &ts);
  ASSERT_EQ(kernel.caps, (std::vector<std::pair<uint64_t, uint32_t>>{{7, 256}}));
  CapExchanges(c, 5, 3, &ts, 256);
  ExpectCapSpans(sink.spans(), 7);
  EXPECT_EQ(kernel.caps.size(), 1u);
  EXPECT_EQ(producer.stats().head_caps_set, 1u);
  EXPECT_EQ(producer.stats().head_caps_lifted, 0u);
}

// A head the cap cuts: its exchange keeps its pairing and status, loses only its body size,
// and the cap is lifted; the next exchange, copied whole, is exact again.
TEST_F(StageTest, AHeadTheCapCutsLiftsTheCapAndOnlyItsBodySizeIsLost) {
  Conn c(&table, 8, ZT_ROLE_CLIENT);
  uint64_t ts = 0;
  CapExchanges(c, 1, 4, &ts);
  ASSERT_EQ(kernel.caps.size(), 1u);
  CapExchanges(c, 5, 1, &ts, 256, /*pad=*/600);
  ASSERT_EQ(kernel.caps, (std::vector<std::pair<uint64_t, uint32_t>>{{8, 256}, {8, 0}}));
  CapExchanges(c, 6, 2, &ts);
  ExpectCapSpans(sink.spans(), 7, {5});
  EXPECT_EQ(producer.stats().head_caps_lifted, 1u);
}

// A client that starts pipelining once its receives are capped: the cap is lifted at the second
// request in flight, but the kernel may cap a receive before the lift arrives. Here two
// responses share one capped receive, the second whole in the gap after the first's head. The
// first stays exact, and no request is paired with a response that is not its own.
TEST_F(StageTest, AResponseHiddenInACappedReceiveIsNeverPairedWithTheNextRequest) {
  Conn c(&table, 11, ZT_ROLE_CLIENT);
  uint64_t ts = 0;
  CapExchanges(c, 1, 4, &ts);
  ASSERT_EQ(kernel.caps.size(), 1u);
  for (int i = 5; i <= 7; i++) {
    c.Send(ZT_DIR_EGRESS, "GET /r/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n", ts += 10);
  }
  c.SendCapped(ZT_DIR_INGRESS, CapResponse(1005) + CapResponse(1006), ts += 10, 256);
  c.SendCapped(ZT_DIR_INGRESS, CapResponse(1007, /*pad=*/40), ts += 10, 256);
  CapExchanges(c, 8, 12, &ts);
  std::vector<trace::Span> spans = sink.spans();
  ASSERT_GE(spans.size(), 5u);
  ExpectCapSpans(std::vector<trace::Span>(spans.begin(), spans.begin() + 5), 5);
  for (size_t i = 5; i < spans.size(); i++) {  // /r/6 and later: their own response or none
    const int n = std::stoi(Str(spans[i], "url.path").substr(3));
    const std::string size = Str(spans[i], "http.response.body.size");
    EXPECT_GE(n, 6);
    EXPECT_TRUE(size == std::to_string(1000 + n) || (n == 6 && size == "<absent>")) << n;
  }
  ASSERT_EQ(kernel.caps, (std::vector<std::pair<uint64_t, uint32_t>>{{11, 256}, {11, 0}}));
  EXPECT_EQ(producer.stats().head_caps_lifted, 1u);
}

// A client that pipelines from the start: two responses may share one receive, so its
// receives are never capped, however steady its heads.
TEST_F(StageTest, APipeliningClientIsNeverCapped) {
  Conn c(&table, 12, ZT_ROLE_CLIENT);
  uint64_t ts = 0;
  for (int i = 1; i <= 12; i += 2) {
    c.Send(ZT_DIR_EGRESS,
           "GET /r/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\nGET /r/" +
               std::to_string(i + 1) + " HTTP/1.1\r\nHost: x\r\n\r\n",
           ts += 10);
    c.Send(ZT_DIR_INGRESS, CapResponse(1000 + i) + CapResponse(1001 + i), ts += 10);
  }
  ExpectCapSpans(sink.spans(), 12);
  EXPECT_TRUE(kernel.caps.empty());
}

// Chunked bodies need their framing bytes: never capped.
TEST_F(StageTest, ChunkedResponsesAreNeverCapped) {
  Conn client(&table, 9, ZT_ROLE_CLIENT);
  uint64_t ts = 0;
  for (int i = 1; i <= 6; i++) {
    client.Send(ZT_DIR_EGRESS, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n", ts += 10);
    client.Send(ZT_DIR_INGRESS,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" +
                    std::string(1024, 'c') + "\r\n0\r\n\r\n",
                ts += 10);
  }
  EXPECT_EQ(sink.spans().size(), 6u);
  EXPECT_TRUE(kernel.caps.empty());
}

// A server's responses are its sends: those are capped, its receives (requests) never.
TEST_F(StageTest, AServerCapsTheSendsOfItsResponses) {
  Conn server(&table, 10, ZT_ROLE_SERVER);
  uint64_t ts = 0;
  for (int i = 1; i <= 7; i++) {
    if (i == 5) {
      ASSERT_EQ(kernel.caps, (std::vector<std::pair<uint64_t, uint32_t>>{{10, 256}}));
      EXPECT_EQ(kernel.cap_egress, std::vector<bool>{true});
    }
    server.Send(ZT_DIR_INGRESS, "GET /r/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n",
                ts += 10);
    server.SendCapped(ZT_DIR_EGRESS, CapResponse(1000 + i), ts += 10, i >= 5 ? 256 : UINT32_MAX);
  }
  std::vector<trace::Span> spans = sink.spans();
  ExpectCapSpans(spans, 7);
  EXPECT_EQ(kernel.caps.size(), 1u);
}

TEST_F(StageTest, ServerSpanJoinsIncomingTraceparent) {
  Conn c(&table, 2, ZT_ROLE_SERVER);
  c.Send(ZT_DIR_INGRESS,
         "POST /pay HTTP/1.1\r\nHost: x\r\ntraceparent: "
         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntracestate: a=b\r\n"
         "Content-Length: 3\r\n\r\nabc",
         10);
  c.Send(ZT_DIR_EGRESS, "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", 20);
  ASSERT_EQ(sink.spans().size(), 1u);
  const trace::Span& s = sink.spans()[0];
  EXPECT_EQ(s.kind, trace::SpanKind::kServer);
  EXPECT_EQ(s.trace_id.Hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s.parent_span_id.Hex(), "00f067aa0ba902b7");
  EXPECT_EQ(s.trace_state, "a=b");
  EXPECT_EQ(Str(s, "client.address"), "10.1.2.3");
  EXPECT_EQ(Str(s, "http.request.body.size"), "3");
  EXPECT_EQ(s.status, trace::StatusCode::kError);
  EXPECT_EQ(Str(s, "url.full"), "<absent>");
}

TEST_F(StageTest, ServerSpan4xxIsNotAnError) {
  Conn c(&table, 3, ZT_ROLE_SERVER);
  c.Send(ZT_DIR_INGRESS, "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n", 10);
  c.Send(ZT_DIR_EGRESS, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 20);
  ASSERT_EQ(sink.spans().size(), 1u);
  EXPECT_EQ(sink.spans()[0].status, trace::StatusCode::kUnset);
  EXPECT_EQ(Str(sink.spans()[0], "error.type"), "<absent>");
}

TEST_F(StageTest, UnansweredRequestAtCloseIsAnErrorSpan) {
  Conn c(&table, 4, ZT_ROLE_CLIENT);
  c.Send(ZT_DIR_EGRESS, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", 10);
  EXPECT_TRUE(sink.spans().empty());
  c.Close();
  ASSERT_EQ(sink.spans().size(), 1u);
  EXPECT_EQ(sink.spans()[0].status, trace::StatusCode::kError);
  EXPECT_NE(Str(sink.spans()[0], "error.type"), "<absent>");
}

TEST_F(StageTest, NonHttpConnectionProducesNothingAndIsDrained) {
  Conn c(&table, 5, ZT_ROLE_CLIENT);
  c.Send(ZT_DIR_INGRESS, "220 smtp.example ESMTP ready\r\n", 10);  // server speaks first
  c.Send(ZT_DIR_EGRESS, "EHLO me\r\n", 20);
  EXPECT_TRUE(sink.spans().empty());
  EXPECT_EQ(producer.stats().conns_unclaimed, 1u);
  EXPECT_EQ(kernel.muted, std::vector<uint64_t>{5});
  EXPECT_EQ(table.Find(5)->sent.buffered_bytes(), 0u);
}

// Issue 17: once muted, the kernel sends a connection's sizes at most once a second (the
// records jump over the syscalls in between) and the close has the totals. None of it is a
// gap or a lost tail, and each record still keeps the connection from idling out.
TEST_F(StageTest, MutedConnectionsPositionJumpsAreNeitherGapsNorLoss) {
  testing::ConnSpec spec;
  spec.conn_id = 9;
  const testing::RecordSink into = testing::Into(&table);
  const std::string banner = "220 smtp.example ESMTP ready\r\n", ehlo = "EHLO me\r\n";
  into(testing::OpenRecord(spec, 1));
  into(testing::DataRecord(spec, ZT_DIR_INGRESS, 0, 0, banner.size(), banner, 10));
  into(testing::DataRecord(spec, ZT_DIR_EGRESS, 0, 0, ehlo.size(), ehlo, 20));
  ASSERT_EQ(kernel.muted, std::vector<uint64_t>{9});
  const conn::ByteStreamStats before = table.stats().streams;
  // Syscalls went unsent in between: each record starts well past the last one's end.
  into(testing::DataRecord(spec, ZT_DIR_EGRESS, 5000, 5100, 100, "", 2'000'000'000));
  into(testing::DataRecord(spec, ZT_DIR_INGRESS, 7000, 7040, 40, "", 3'000'000'000));
  ASSERT_NE(table.Find(9), nullptr);
  EXPECT_EQ(table.Find(9)->last_ts_ns, 3'000'000'000u);
  EXPECT_EQ(table.Find(9)->sent.buffered_bytes(), 0u);
  into(testing::CloseRecord(spec, 9000, 8000, 4'000'000'000));
  EXPECT_EQ(table.Find(9), nullptr);
  EXPECT_EQ(table.stats().streams.gaps, before.gaps);
  EXPECT_EQ(table.stats().streams.gap_bytes, before.gap_bytes);
  EXPECT_EQ(table.stats().tail_lost_at_close, 0u);
  EXPECT_TRUE(sink.spans().empty());
  EXPECT_EQ(producer.stats().conns_unclaimed, 1u);
}

// TLS probes emit at the calls' returns: a Go or OpenSSL reader's return can run before its
// writer's on another CPU, so a response may arrive before the request it answers.
TEST_F(StageTest, ResponseOvertakingItsRequestIsStillAnExchange) {
  Conn c(&table, 11, ZT_ROLE_CLIENT);
  c.Send(ZT_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 3000, true);
  c.Send(ZT_DIR_EGRESS, "GET /items/1 HTTP/1.1\r\nHost: a\r\n\r\n", 1000, true);
  c.Send(ZT_DIR_EGRESS, "GET /items/2 HTTP/1.1\r\nHost: a\r\n\r\n", 4000, true);
  c.Send(ZT_DIR_INGRESS, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 5000, true);
  const auto& spans = sink.spans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(Str(spans[0], "url.path"), "/items/1");
  EXPECT_EQ(Str(spans[0], "http.response.status_code"), "200");
  EXPECT_EQ(spans[0].end_unix_ns - spans[0].start_unix_ns, 2000u);
  EXPECT_EQ(Str(spans[1], "http.response.status_code"), "404");
  EXPECT_TRUE(kernel.muted.empty());
}

TEST_F(StageTest, PreexistingConnectionRoleInferredFromTraffic) {
  Conn c(&table, 6, ZT_ROLE_UNKNOWN);
  c.Send(ZT_DIR_INGRESS, "GET /x HTTP/1.1\r\nHost: y\r\n\r\n", 10);
  c.Send(ZT_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 20);
  ASSERT_EQ(sink.spans().size(), 1u);
  EXPECT_EQ(sink.spans()[0].kind, trace::SpanKind::kServer);
}

// A TLS connection: the handshake's ciphertext arrives first (not HTTP: muted), then the
// plaintext from the TLS probes becomes the streams; the spans say https, and ciphertext that
// arrives later is never parsed.
TEST_F(StageTest, TlsPlaintextReplacesCiphertextAndSpansSayHttps) {
  Conn c(&table, 7, ZT_ROLE_CLIENT);
  const std::string client_hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  c.Send(ZT_DIR_EGRESS, client_hello, 500);
  c.Send(ZT_DIR_INGRESS, std::string("\x16\x03\x03\x00\x7a\x02", 6), 600);
  ASSERT_EQ(kernel.muted, (std::vector<uint64_t>{7}));  // the ciphertext is not HTTP
  c.Send(ZT_DIR_EGRESS, "GET /a?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n\r\n", 1000, true);
  c.Send(ZT_DIR_EGRESS, std::string("\x17\x03\x03\x00\x40", 5), 1001);  // late ciphertext
  c.Send(ZT_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 3000, true);
  c.Send(ZT_DIR_EGRESS, "GET /b HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n", 4000, true);
  c.Send(ZT_DIR_INGRESS, "HTTP/1.1 204 No Content\r\n\r\n", 5000, true);
  const auto& spans = sink.spans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(Str(spans[0], "url.scheme"), "https");
  EXPECT_EQ(Str(spans[0], "url.full"), "https://127.0.0.1:8443/a?x=REDACTED");
  EXPECT_EQ(Str(spans[0], "http.response.status_code"), "200");
  EXPECT_EQ(Str(spans[1], "url.full"), "https://127.0.0.1/b");  // 443 is https's default
  EXPECT_EQ(Str(spans[1], "http.response.status_code"), "204");
  EXPECT_EQ(table.stats().tls_conns, 1u);
  EXPECT_EQ(table.stats().ciphertext_ignored, 1u);
}

// A TLS connection that carries no HTTP mutes its plaintext, not its socket bytes.
TEST_F(StageTest, NonHttpTlsPlaintextIsMutedAsPlaintext) {
  MuteLog tls_kernel;
  ProtocolStage producer2{MakeRegisteredProtocols({}), &sink.linker, &clock, {}, &tls_kernel};
  conn::ConnTable table2{{}, &producer2, nullptr, nullptr};
  Conn c(&table2, 8, ZT_ROLE_CLIENT);
  c.Send(ZT_DIR_EGRESS, "\x16\x03\x01", 100);
  c.Send(ZT_DIR_EGRESS, "PING-PONG-PROTOCOL v1\r\n", 200, true);
  EXPECT_EQ(tls_kernel.plaintext, (std::vector<bool>{false, true}));
}

// What a keep-alive exchange on the wire looks like in these tests: request /N, and a
// response whose body size (10 + N) tells which request it answers.
std::string Req(int n) { return "GET /r/" + std::to_string(n) + " HTTP/1.1\r\nHost: x\r\n\r\n"; }
std::string Resp(int n) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(10 + n) + "\r\n\r\n" +
         std::string(10 + n, 'b');
}
// Each span answers the request it names (body size 10 + N for /r/N).
void ExpectPaired(const std::vector<trace::Span>& spans, std::vector<int> want) {
  std::vector<int> got;
  for (const auto& s : spans) {
    const int n = std::stoi(Str(s, "url.path").substr(3));
    EXPECT_EQ(Str(s, "http.response.body.size"), std::to_string(10 + n)) << s.name;
    got.push_back(n);
  }
  EXPECT_EQ(got, want);
}

// Issue 18, item 1: the agent starts while a response is half sent (its head and 10 of 20
// body bytes went before). The connection is found mid-life with its role unknown; both ends
// resynchronise at the next request instead of going dark.
TEST_F(StageTest, StartedMidResponseBothEndsResyncAtTheNextRequest) {
  Conn client(&table, 20, ZT_ROLE_UNKNOWN, ZT_CONN_F_PREEXISTING),
      server(&table, 21, ZT_ROLE_UNKNOWN, ZT_CONN_F_PREEXISTING);
  server.Send(ZT_DIR_EGRESS, "0123456789", 100);  // the rest of the body
  client.Send(ZT_DIR_INGRESS, "0123456789", 110);
  for (int n = 1; n <= 5; n++) {
    client.Send(ZT_DIR_EGRESS, Req(n), 1000 * n);
    server.Send(ZT_DIR_INGRESS, Req(n), 1000 * n + 10);
    server.Send(ZT_DIR_EGRESS, Resp(n), 1000 * n + 20);
    client.Send(ZT_DIR_INGRESS, Resp(n), 1000 * n + 30);
  }
  const auto& spans = sink.spans();
  std::vector<trace::Span> clients, servers;
  for (const auto& s : spans) (s.kind == trace::SpanKind::kClient ? clients : servers).push_back(s);
  ExpectPaired(clients, {1, 2, 3, 4, 5});
  ExpectPaired(servers, {1, 2, 3, 4, 5});
  EXPECT_EQ(producer.stats().conns_resynced, 2u);
  EXPECT_TRUE(kernel.muted.empty());
}

// Issue 18, item 16: a server thread was blocked in read() when the agent started, so the
// first thing seen of its connection is a response (to a request never seen). That is no
// reason to give the connection up: the next request read starts the exchanges.
TEST_F(StageTest, ResponseFirstOnAConnectionFoundMidLifeWaitsForTheNextRequest) {
  Conn server(&table, 22, ZT_ROLE_UNKNOWN, ZT_CONN_F_PREEXISTING);
  server.Send(ZT_DIR_EGRESS, Resp(1), 100);
  for (int n = 2; n <= 4; n++) {
    server.Send(ZT_DIR_INGRESS, Req(n), 1000 * n);
    server.Send(ZT_DIR_EGRESS, Resp(n), 1000 * n + 10);
  }
  const auto& spans = sink.spans();
  ExpectPaired(spans, {2, 3, 4});
  for (const auto& s : spans) EXPECT_EQ(s.kind, trace::SpanKind::kServer);
}

// A response head split from its request by a lost record: the pairing resumes at the next
// request, and bytes before it (including a response that may answer a lost request) never
// become an exchange.
TEST_F(StageTest, GapAtTheStartOfAKnownConnectionResyncsAtTheNextRequest) {
  Conn client(&table, 23, ZT_ROLE_CLIENT);
  client.Gap(ZT_DIR_EGRESS, Req(1).size(), 100);  // the request's record was lost
  client.Send(ZT_DIR_INGRESS, Resp(1), 200);
  client.Send(ZT_DIR_EGRESS, Req(2), 300);
  client.Send(ZT_DIR_INGRESS, Resp(2), 400);
  ExpectPaired(sink.spans(), {2});
}

// Traffic that no protocol recognises at any syscall start, on a connection found mid-life,
// is given up after a bounded number of tries: muted in the kernel, and counted.
TEST_F(StageTest, MidStreamConnectionWithoutMessageStartsIsGivenUpAndCounted) {
  Conn c(&table, 24, ZT_ROLE_UNKNOWN, ZT_CONN_F_PREEXISTING);
  for (int i = 0; i < 100 && kernel.muted.empty(); i++) {
    const std::string binary = {'\x00', '\x01', 'b', 'i', 'n', '\xff', '\x7f', '\x02'};
    c.Send(i % 2 ? ZT_DIR_EGRESS : ZT_DIR_INGRESS, binary, i);
  }
  EXPECT_EQ(kernel.muted, std::vector<uint64_t>{24});
  EXPECT_EQ(producer.stats().resync_gave_up, 1u);
  EXPECT_TRUE(sink.spans().empty());
}

// Issue 18, item 9: requests still waiting when the agent stops become error spans
// (error.type agent_shutdown); complete exchanges are spans as usual.
TEST_F(StageTest, RequestsInFlightAtShutdownBecomeAgentShutdownErrors) {
  Conn client(&table, 25, ZT_ROLE_CLIENT);
  client.Send(ZT_DIR_EGRESS, Req(1), 100);
  client.Send(ZT_DIR_INGRESS, Resp(1), 200);
  client.Send(ZT_DIR_EGRESS, Req(2), 300);
  table.CloseAll();
  const auto& spans = sink.spans();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(Str(spans[0], "error.type"), "<absent>");
  EXPECT_EQ(Str(spans[1], "url.path"), "/r/2");
  EXPECT_EQ(Str(spans[1], "error.type"), "agent_shutdown");
  EXPECT_EQ(spans[1].status, trace::StatusCode::kError);
}

// A 101 upgrade ends HTTP/1 on the connection: detection runs again on what follows, and
// websocket frames, which no protocol claims, mute it (after the 101 exchange's span).
TEST_F(StageTest, AfterAnUpgradeDetectionRunsAgainOnWhatFollows) {
  Conn client(&table, 26, ZT_ROLE_CLIENT);
  client.Send(ZT_DIR_EGRESS,
              "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
              100);
  client.Send(
      ZT_DIR_INGRESS,
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
      "\x81\x05hello",
      200);
  EXPECT_EQ(kernel.muted, std::vector<uint64_t>{26});
  EXPECT_EQ(producer.stats().protocol_left, 1u);
  ASSERT_EQ(sink.spans().size(), 1u);
  EXPECT_EQ(Str(sink.spans()[0], "http.response.status_code"), "101");
}

// The stage reports its own counters and every protocol's, with stats-line keys.
// Go: two requests in flight in one process, each handler making a call. The goroutine
// evidence (a ZT_EV_GO_CALL naming the call's first byte and the served connection) parents
// each call; evidence for another position (a stale one) is not applied, and a goroutine
// serving nothing replaces an earlier call's evidence at its position.
TEST_F(StageTest, GoroutineEvidenceParentsTheCallStartingAtItsPosition) {
  Conn a(&table, 1, ZT_ROLE_SERVER, 0, 40001), b(&table, 2, ZT_ROLE_SERVER, 0, 40002);
  Conn call_a(&table, 3, ZT_ROLE_CLIENT), call_b(&table, 4, ZT_ROLE_CLIENT),
      call_c(&table, 5, ZT_ROLE_CLIENT);
  a.Send(ZT_DIR_INGRESS, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 100);
  b.Send(ZT_DIR_INGRESS, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 110);
  call_b.GoCall(&table, 0, 2, 115);
  call_b.Send(ZT_DIR_EGRESS, "GET /from-b HTTP/1.1\r\nHost: y\r\n\r\n", 120);
  call_a.GoCall(&table, 999, 1, 125);  // not where the call starts: no evidence
  call_a.Send(ZT_DIR_EGRESS, "GET /from-a HTTP/1.1\r\nHost: y\r\n\r\n", 130);
  // A roundTrip that wrote nothing, then one from a goroutine serving nothing at that position.
  call_c.GoCall(&table, 0, 1, 131);
  call_c.GoCall(&table, 0, 0, 132);
  call_c.Send(ZT_DIR_EGRESS, "GET /from-c HTTP/1.1\r\nHost: y\r\n\r\n", 133);
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  call_b.Send(ZT_DIR_INGRESS, ok, 140);
  call_a.Send(ZT_DIR_INGRESS, ok, 150);
  call_c.Send(ZT_DIR_INGRESS, ok, 155);
  a.Send(ZT_DIR_EGRESS, ok, 160);
  b.Send(ZT_DIR_EGRESS, ok, 170);
  std::map<std::string, const trace::Span*> by_path;
  for (const trace::Span& s : sink.spans()) by_path[Str(s, "url.path")] = &s;
  ASSERT_EQ(by_path.size(), 5u);
  EXPECT_EQ(by_path["/from-b"]->parent_span_id, by_path["/b"]->span_id);
  EXPECT_EQ(by_path["/from-b"]->trace_id, by_path["/b"]->trace_id);
  EXPECT_FALSE(by_path["/from-a"]->parent_span_id.valid());
  EXPECT_FALSE(by_path["/from-c"]->parent_span_id.valid());
  EXPECT_EQ(sink.linker.stats().link_goroutine, 1u);
  EXPECT_EQ(sink.linker.stats().link_ambiguous, 2u);
}

TEST_F(StageTest, ReportsItsCountersAndEachProtocols) {
  Conn c(&table, 27, ZT_ROLE_CLIENT);
  c.Send(ZT_DIR_EGRESS, Req(1), 100);
  c.Send(ZT_DIR_INGRESS, Resp(1), 200);
  CounterReport report;
  producer.ReportCounters(&report);
  std::map<std::string, uint64_t> line;
  for (const auto& r : report.rows()) {
    if (r.stats_key) line[r.stats_key] = r.value;
  }
  EXPECT_EQ(line["http_conns"], 1u);
  EXPECT_EQ(line["http_exchanges"], 1u);
  EXPECT_EQ(line["spans"], 1u);
  EXPECT_EQ(line["not_http_conns"], 0u);
}

// A span unlike any HTTP span: more attributes (strings where HTTP spans have numbers and the
// reverse), ids, trace state, error status and message, another resource.
trace::Span Leftover() {
  trace::Span s;
  s.trace_id = trace::NewTraceId();
  s.span_id = trace::NewSpanId();
  s.parent_span_id = trace::NewSpanId();
  s.trace_state = "old=state";
  s.name = "a name far longer than the small-string buffer of any std::string";
  s.kind = trace::SpanKind::kInternal;
  s.start_unix_ns = 1;
  s.end_unix_ns = 2;
  for (int i = 0; i < 20; i++) {
    if (i % 2 == 0) {
      s.attributes.push_back({"old.text", std::string(40, static_cast<char>('a' + i))});
    } else {
      s.attributes.push_back({"old.number", int64_t{i}});
    }
  }
  s.status = trace::StatusCode::kError;
  s.status_message = "old error";
  auto r = std::make_shared<trace::Resource>();
  r->service_name = "old-service";
  s.resource = r;
  return s;
}

// Several kinds of exchange on both sides; returns the released spans. hand_back: the sink
// answers each span it takes with a Leftover(), as the export queue hands back exported spans,
// so the producer builds the following spans into them.
std::vector<trace::Span> RunExchanges(const WallClock& clock, bool hand_back) {
  std::vector<trace::Span> out;
  trace::SpanLinker linker{[&](trace::Span&& s) {
    out.push_back(std::move(s));
    if (hand_back) s = Leftover();
  }};
  MuteLog kernel;
  ProtocolStage producer{MakeRegisteredProtocols({}), &linker, &clock, {}, &kernel};
  conn::ConnTable table{{}, &producer, nullptr, nullptr};
  Conn client(&table, 1, ZT_ROLE_CLIENT), server(&table, 2, ZT_ROLE_SERVER);
  client.Send(ZT_DIR_EGRESS,
              "GET /users/42/orders?token=s3cret HTTP/1.1\r\nHost: shop.local:8080\r\n"
              "User-Agent: curl/7.88.1\r\n\r\n",
              1000);
  client.Send(ZT_DIR_INGRESS, "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!", 2000);
  server.Send(ZT_DIR_INGRESS,
              "POST /pay HTTP/1.1\r\nHost: x\r\ntraceparent: "
              "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntracestate: a=b\r\n"
              "Content-Length: 3\r\n\r\nabc",
              3000);
  server.Send(ZT_DIR_EGRESS, "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", 4000);
  for (int i = 0; i < 5; i++) {
    server.Send(ZT_DIR_INGRESS, "GET /items/" + std::to_string(i) + " HTTP/1.0\r\n\r\n", 5000 + i);
    server.Send(ZT_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 6000 + i);
  }
  client.Send(ZT_DIR_EGRESS, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", 7000);
  client.Close();
  server.Close();
  linker.Tick(60'000'000'000ULL);
  return out;
}

TEST(StageReuseTest, SpansBuiltIntoHandedBackSpansEqualFreshOnes) {
  const WallClock clock;  // one for both runs: the same monotonic times give the same wall times
  const std::vector<trace::Span> fresh = RunExchanges(clock, false),
                                 reused = RunExchanges(clock, true);
  ASSERT_EQ(fresh.size(), 8u);  // client: 404, unanswered at close; server: 503, 5 x 200
  ASSERT_EQ(reused.size(), fresh.size());
  for (size_t i = 0; i < fresh.size(); i++) {
    const trace::Span &a = fresh[i], &b = reused[i];
    SCOPED_TRACE(a.name);
    // Ids are random unless a traceparent gave them; whether each is set must agree.
    EXPECT_EQ(a.trace_id.valid(), b.trace_id.valid());
    if (a.trace_state == "a=b") {
      EXPECT_EQ(a.trace_id.Hex(), b.trace_id.Hex());
    }
    EXPECT_EQ(a.parent_span_id.valid(), b.parent_span_id.valid());
    EXPECT_EQ(a.trace_state, b.trace_state);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.start_unix_ns, b.start_unix_ns);
    EXPECT_EQ(a.end_unix_ns, b.end_unix_ns);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.status_message, b.status_message);
    ASSERT_TRUE(b.resource);
    EXPECT_EQ(b.resource->service_name, a.resource->service_name);
    ASSERT_EQ(a.attributes.size(), b.attributes.size());
    for (size_t k = 0; k < a.attributes.size(); k++) {
      EXPECT_EQ(a.attributes[k].key, b.attributes[k].key);
      EXPECT_EQ(a.attributes[k].value, b.attributes[k].value) << a.attributes[k].key;
    }
  }
}

}  // namespace
}  // namespace zerotrace::protocols
