// End-to-end HTTP/1.x: the real agent traces real servers and clients; every span is checked.
//
// Each test starts one agent (--jsonl into its temp dir), runs servers and clients, waits for
// the spans of the processes it started (selected by process.pid: other processes on the
// machine produce spans too), stops the agent so the log is final, and then asserts the exact
// list of spans of each of those processes: count, order, kind, name and attributes.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "http_expect.h"
#include "span_log.h"

namespace zerotrace::e2e {
namespace {

// Bodies of tests/e2e/servers/http_server.py and http_server.js beyond http_expect.h's.
constexpr int64_t kPyChunkedBody = 25;    // "first\n" "second chunk\n" "third\n"
constexpr int64_t kNodeChunkedBody = 23;  // "node first\n" "node second\n"
constexpr int64_t kCloseBody = 50;        // read-until-close body of /close

// Every request curl made went over one connection (same local port).
::testing::AssertionResult OneConnection(const std::vector<int>& local_ports, size_t want) {
  if (local_ports.size() != want) {
    return ::testing::AssertionFailure()
           << "want " << want << " transfers, got " << local_ports.size();
  }
  for (int p : local_ports) {
    if (p != local_ports[0])
      return ::testing::AssertionFailure() << "curl opened more than one connection";
  }
  return ::testing::AssertionSuccess();
}

using Http1E2eTest = AgentTest;

// --capture-bytes 4096, so that 40 KiB bodies are mostly gaps.
class Http1E2eSmallCaptureTest : public AgentTest {
 protected:
  std::vector<std::string> AgentFlags() const override { return {"--capture-bytes", "4096"}; }
};

TEST_F(Http1E2eTest, PythonServerAndCurlBothReportEachExchange) {
  auto& srv = StartPythonServer();
  const std::vector<Exchange> xs = {{"GET", "/hello", 200, kHelloBody},
                                    {"GET", "/items/42?a=1&b=2", 200, ItemBody(42)},
                                    {"GET", "/error", 500, kErrorBody},
                                    {"GET", "/missing", 404, kNotFoundBody}};
  std::vector<std::string> urls;
  for (const auto& x : xs) urls.push_back(Url(srv.port, x.target));
  const auto curl = Curl(urls);
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.codes, (std::vector<int>{200, 200, 500, 404}));
  ASSERT_EQ(curl.sizes,
            (std::vector<int64_t>{kHelloBody, ItemBody(42), kErrorBody, kNotFoundBody}));
  ASSERT_TRUE(OneConnection(curl.local_ports, xs.size()));

  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}, {curl.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, xs, srv.port, curl.local_ports[0], CurlUserAgent(),
                                        PythonService())));
  EXPECT_TRUE(SpansAre(curl.pid, Spans(kClient, xs, srv.port, 0, CurlUserAgent(), {"curl"})));
}

TEST_F(Http1E2eTest, NginxStaticFilesAndCurl) {
  auto& srv =
      StartNginx({{"/index.html", std::string(1000, 'n')}, {"/items/42", std::string(420, 'i')}});
  const std::vector<std::string> targets = {"/index.html", "/items/42", "/missing.html"};
  std::vector<std::string> urls;
  for (const auto& t : targets) urls.push_back(Url(srv.port, t));
  const auto curl = Curl(urls);
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.codes, (std::vector<int>{200, 200, 404}));
  ASSERT_TRUE(OneConnection(curl.local_ports, targets.size()));
  const std::vector<Exchange> xs = {{"GET", "/index.html", 200, 1000},
                                    {"GET", "/items/42", 200, 420},
                                    {"GET", "/missing.html", 404, curl.sizes[2]}};  // nginx's page

  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}, {curl.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(
      srv.pid(), Spans(kServer, xs, srv.port, curl.local_ports[0], CurlUserAgent(), {"nginx"})));
  EXPECT_TRUE(SpansAre(curl.pid, Spans(kClient, xs, srv.port, 0, CurlUserAgent(), {"curl"})));
}

// nginx answers a static file with one writev [head, body]: the kernel copies the head and
// not the body (a gap of known length, counted), and the spans keep their body sizes. HEAD
// answers (a head, no body, maybe in the same writev as the next) pipelined between GETs
// pair in order: a head is never taken for a body.
TEST_F(Http1E2eTest, NginxBodiesAreNotCopiedAndPipelinedHeadsPairInOrder) {
  std::vector<std::pair<std::string, std::string>> files;
  std::vector<std::string> args;
  std::vector<Exchange> xs;
  uint64_t bodies = 0;
  for (int i = 0; i < 6; i++) {
    const std::string path = "/f" + std::to_string(i) + ".txt";
    const int size = 200 + 100 * i;
    const bool head = i % 2 == 1;
    files.push_back({path, std::string(size, static_cast<char>('a' + i))});
    args.push_back(std::string(head ? "HEAD" : "GET") + ":" + path);
    xs.push_back({head ? "HEAD" : "GET", path, 200, head ? 0 : size});
    if (!head) bodies += size;
  }
  auto& srv = StartNginx(files);
  args.insert(args.begin(), std::to_string(srv.port));
  const auto client = RunPythonClient("mixed_pipeline_client.py", args);
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.back(), "done");

  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}, {client.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(
      srv.pid(), Spans(kServer, xs, srv.port, client.local_port, "zt-pipeline/1.0", {"nginx"})));
  EXPECT_TRUE(SpansAre(client.pid, Spans(kClient, xs, srv.port, 0, "zt-pipeline/1.0",
                                         PythonClientService("mixed_pipeline_client"))));
  const auto skipped = StatsCounter("body_bytes_skipped", 0, 5s);
  ASSERT_TRUE(skipped.has_value()) << "no body_bytes_skipped in the agent's stats line";
  EXPECT_GE(*skipped, bodies);
}

// Only nginx is traced, so that the stream counters are nginx's connections' alone.
class Http1E2eNginxOnlyTest : public AgentTest {
 protected:
  std::vector<std::string> AgentFlags() const override { return {"--include-comm", "nginx"}; }
};

// nginx answers each static file with one writev [head, body]; the kernel copies the head and
// skips the body on purpose (ZT_DATA_REST_GAP). That is a skip, counted as one, not a gap:
// stream_gaps counts only bytes lost or not captured, and here none are.
TEST_F(Http1E2eNginxOnlyTest, SkippedBodiesAreCountedAsSkipsNotAsGaps) {
  auto& srv = StartNginx({{"/a.txt", std::string(3000, 'a')},
                          {"/b.txt", std::string(700, 'b')},
                          {"/c.txt", std::string(64, 'c')}});
  const std::vector<Exchange> xs = {
      {"GET", "/a.txt", 200, 3000}, {"GET", "/b.txt", 200, 700}, {"GET", "/c.txt", 200, 64}};
  std::vector<std::string> urls;
  for (const auto& x : xs) urls.push_back(Url(srv.port, x.target));
  const auto curl = Curl(urls);
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_TRUE(OneConnection(curl.local_ports, xs.size()));

  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}}));  // stops the agent: its last stats line
  EXPECT_TRUE(SpansAre(
      srv.pid(), Spans(kServer, xs, srv.port, curl.local_ports[0], CurlUserAgent(), {"nginx"})));
  const auto skips = StatsCounter("stream_skips", 0, 5s);
  const auto gaps = StatsCounter("stream_gaps", 0, 5s);
  const auto body_bytes = StatsCounter("body_bytes_skipped", 0, 5s);
  ASSERT_TRUE(skips.has_value()) << "no stream_skips in the agent's stats line";
  ASSERT_TRUE(gaps.has_value()) << "no stream_gaps in the agent's stats line";
  ASSERT_TRUE(body_bytes.has_value());
  EXPECT_GE(*body_bytes, 3000u + 700u + 64u);  // the kernel skipped every body...
  EXPECT_EQ(*skips, xs.size());                // ...and each reached the parser as a skip
  EXPECT_EQ(*gaps, 0u);
}

TEST_F(Http1E2eTest, NodeServerNamedByOtelServiceNameAndCurl) {
  auto& srv = StartNodeServer({"OTEL_SERVICE_NAME=zt-node-e2e"});
  const std::vector<Exchange> xs = {{"GET", "/hello", 200, kHelloBody},
                                    {"GET", "/items/7", 200, ItemBody(7)},
                                    {"GET", "/chunked", 200, kNodeChunkedBody}};
  std::vector<std::string> urls;
  for (const auto& x : xs) urls.push_back(Url(srv.port, x.target));
  const auto curl = Curl(urls);
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.sizes, (std::vector<int64_t>{kHelloBody, ItemBody(7), kNodeChunkedBody}));
  ASSERT_TRUE(OneConnection(curl.local_ports, xs.size()));

  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}, {curl.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, xs, srv.port, curl.local_ports[0], CurlUserAgent(),
                                        {"zt-node-e2e"})));
  EXPECT_TRUE(SpansAre(curl.pid, Spans(kClient, xs, srv.port, 0, CurlUserAgent(), {"curl"})));
}

TEST_F(Http1E2eTest, KeepAliveThousandRequestsOnOneConnectionPairEachResponse) {
  constexpr int kRequests = 1000;
  auto& srv = StartPythonServer();
  const auto client = RunPythonClient(
      "keepalive_client.py", {std::to_string(srv.port), "--items", std::to_string(kRequests)});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.back(), "done");

  ASSERT_TRUE(AwaitSpans({{srv.pid(), kRequests}, {client.pid, kRequests}}, 25s));
  const auto xs = Items(kRequests);
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, xs, srv.port, client.local_port,
                                        "zt-keepalive/1.0", PythonService())));
  EXPECT_TRUE(SpansAre(client.pid, Spans(kClient, xs, srv.port, 0, "zt-keepalive/1.0",
                                         PythonClientService("keepalive_client"))));
}

TEST_F(Http1E2eTest, HundredPipelinedRequestsPairInOrder) {
  constexpr int kRequests = 100;
  auto& srv = StartPythonServer();
  const auto client =
      RunPythonClient("pipeline_client.py", {std::to_string(srv.port), std::to_string(kRequests)});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.back(), "done");

  ASSERT_TRUE(AwaitSpans({{srv.pid(), kRequests}, {client.pid, kRequests}}));
  const auto xs = Items(kRequests);
  // All requests arrive in one read, so their starts may tie: order by the item number, then
  // check that the times never run backwards.
  for (const pid_t pid : {srv.pid(), client.pid}) {
    auto spans = SpansOf(pid);
    std::stable_sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      auto item = [](const Span& s) {
        return std::stoi(s.Str("url.path").value_or("/items/-1").substr(7));
      };
      return item(a) < item(b);
    });
    const int kind = pid == srv.pid() ? kServer : kClient;
    const auto problems = CheckSpans(
        spans, Spans(kind, xs, srv.port, kind == kServer ? client.local_port : 0, "zt-pipeline/1.0",
                     kind == kServer ? PythonService() : PythonClientService("pipeline_client")));
    EXPECT_TRUE(problems.empty()) << "pid " << pid << ": " << problems.size()
                                  << " problems, first: " << (problems.empty() ? "" : problems[0])
                                  << "\n"
                                  << Describe(pid);
    for (size_t i = 1; i < spans.size(); ++i) {
      EXPECT_LE(spans[i - 1].start_ns, spans[i].start_ns)
          << "request " << i << " started before request " << i - 1;
      EXPECT_LE(spans[i - 1].end_ns, spans[i].end_ns)
          << "response " << i << " ended before response " << i - 1;
    }
  }
}

TEST_F(Http1E2eTest, ChunkedResponseBodySizeIsDecodedAndPairingContinues) {
  auto& srv = StartPythonServer();
  const std::vector<Exchange> xs = {{"GET", "/chunked", 200, kPyChunkedBody},
                                    {"GET", "/items/4", 200, ItemBody(4)}};
  const auto curl = Curl({Url(srv.port, "/chunked"), Url(srv.port, "/items/4")});
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.sizes, (std::vector<int64_t>{kPyChunkedBody, ItemBody(4)}));
  ASSERT_TRUE(OneConnection(curl.local_ports, xs.size()));

  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}, {curl.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, xs, srv.port, curl.local_ports[0], CurlUserAgent(),
                                        PythonService())));
  EXPECT_TRUE(SpansAre(curl.pid, Spans(kClient, xs, srv.port, 0, CurlUserAgent(), {"curl"})));
}

TEST_F(Http1E2eTest, HeadResponsesHaveNoBodyAndPairingContinues) {
  auto& srv = StartPythonServer();
  const auto client = RunPythonClient(
      "keepalive_client.py",
      {std::to_string(srv.port), "HEAD:/hello", "GET:/hello", "HEAD:/chunked", "GET:/items/5"});
  ASSERT_EQ(client.exit_code, 0);
  const std::vector<Exchange> xs = {{"HEAD", "/hello", 200, 0},
                                    {"GET", "/hello", 200, kHelloBody},
                                    {"HEAD", "/chunked", 200, 0},
                                    {"GET", "/items/5", 200, ItemBody(5)}};
  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}, {client.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, xs, srv.port, client.local_port,
                                        "zt-keepalive/1.0", PythonService())));
  EXPECT_TRUE(SpansAre(client.pid, Spans(kClient, xs, srv.port, 0, "zt-keepalive/1.0",
                                         PythonClientService("keepalive_client"))));
}

TEST_F(Http1E2eTest, NoContentAndNotModifiedHaveNoBodyAndPairingContinues) {
  auto& srv = StartPythonServer();
  const auto client =
      RunPythonClient("keepalive_client.py", {std::to_string(srv.port), "GET:/nocontent",
                                              "GET:/items/1", "GET:/notmodified", "GET:/items/2"});
  ASSERT_EQ(client.exit_code, 0);
  // The 304 carries "Content-Length: 13" for the body it does not send.
  const std::vector<Exchange> xs = {{"GET", "/nocontent", 204, 0},
                                    {"GET", "/items/1", 200, ItemBody(1)},
                                    {"GET", "/notmodified", 304, 0},
                                    {"GET", "/items/2", 200, ItemBody(2)}};
  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}, {client.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, xs, srv.port, client.local_port,
                                        "zt-keepalive/1.0", PythonService())));
  EXPECT_TRUE(SpansAre(client.pid, Spans(kClient, xs, srv.port, 0, "zt-keepalive/1.0",
                                         PythonClientService("keepalive_client"))));
}

TEST_F(Http1E2eTest, ExpectContinueUploadFromCurlIsOneExchange) {
  auto& srv = StartPythonServer();
  const std::string body_file = dir() + "/upload.bin";
  std::ofstream(body_file, std::ios::binary) << std::string(5000, 'u');
  // curl waits for the 100 Continue before it sends the body.
  const auto curl = Curl({Url(srv.port, "/upload")},
                         {"-H", "Expect: 100-continue", "--data-binary", "@" + body_file});
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.codes, std::vector<int>{200});
  const std::vector<Exchange> xs = {{"POST", "/upload", 200, 5 /* "5000\n" */, 5000}};

  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}, {curl.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, xs, srv.port, curl.local_ports[0], CurlUserAgent(),
                                        PythonService())));
  EXPECT_TRUE(SpansAre(curl.pid, Spans(kClient, xs, srv.port, 0, CurlUserAgent(), {"curl"})));
}

TEST_F(Http1E2eTest, ExpectContinueUploadThenAnotherRequestOnTheConnection) {
  auto& srv = StartPythonServer();
  // http.client sends the body without waiting; the server's 100 still precedes its 200.
  const auto client =
      RunPythonClient("keepalive_client.py", {std::to_string(srv.port), "--expect-continue",
                                              "POST:/upload:3000", "GET:/items/3?status=200"});
  ASSERT_EQ(client.exit_code, 0);
  const std::vector<Exchange> xs = {{"POST", "/upload", 200, 5 /* "3000\n" */, 3000},
                                    {"GET", "/items/3?status=200", 200, ItemBody(3)}};
  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}, {client.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, xs, srv.port, client.local_port,
                                        "zt-keepalive/1.0", PythonService())));
  EXPECT_TRUE(SpansAre(client.pid, Spans(kClient, xs, srv.port, 0, "zt-keepalive/1.0",
                                         PythonClientService("keepalive_client"))));
}

TEST_F(Http1E2eSmallCaptureTest, BodiesTenTimesTheCaptureLimitPairThroughTheGap) {
  auto& srv = StartPythonServer();
  const auto client = RunPythonClient(
      "keepalive_client.py", {std::to_string(srv.port), "GET:/big?n=40960",
                              "GET:/items/7?status=200", "POST:/upload:40960", "GET:/hello"});
  ASSERT_EQ(client.exit_code, 0);
  const std::vector<Exchange> xs = {{"GET", "/big?n=40960", 200, 40960},
                                    {"GET", "/items/7?status=200", 200, ItemBody(7)},
                                    {"POST", "/upload", 200, 6 /* "40960\n" */, 40960},
                                    {"GET", "/hello", 200, kHelloBody}};
  ASSERT_TRUE(AwaitSpans({{srv.pid(), xs.size()}, {client.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, xs, srv.port, client.local_port,
                                        "zt-keepalive/1.0", PythonService())));
  EXPECT_TRUE(SpansAre(client.pid, Spans(kClient, xs, srv.port, 0, "zt-keepalive/1.0",
                                         PythonClientService("keepalive_client"))));
}

TEST_F(Http1E2eTest, ConnectionCloseBodyEndsAtCloseAndHttp10IsReported) {
  auto& srv = StartPythonServer();
  const auto curl = Curl({Url(srv.port, "/close")});
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.sizes, std::vector<int64_t>{kCloseBody});
  // An HTTP/1.0 request (python then closes after its answer).
  const auto curl10 = Curl({Url(srv.port, "/hello")}, {"--http1.0"});
  ASSERT_EQ(curl10.exit_code, 0);

  ASSERT_TRUE(AwaitSpans({{srv.pid(), 2}, {curl.pid, 1}, {curl10.pid, 1}}));
  auto server = Spans(kServer, {{"GET", "/close", 200, kCloseBody}}, srv.port, curl.local_ports[0],
                      CurlUserAgent(), PythonService());
  auto hello10 = Spans(kServer, {{"GET", "/hello", 200, kHelloBody}}, srv.port,
                       curl10.local_ports[0], CurlUserAgent(), PythonService());
  hello10[0].version = "1.0";
  server.push_back(hello10[0]);
  EXPECT_TRUE(SpansAre(srv.pid(), server));
  EXPECT_TRUE(SpansAre(curl.pid, Spans(kClient, {{"GET", "/close", 200, kCloseBody}}, srv.port, 0,
                                       CurlUserAgent(), {"curl"})));
  auto client10 =
      Spans(kClient, {{"GET", "/hello", 200, kHelloBody}}, srv.port, 0, CurlUserAgent(), {"curl"});
  client10[0].version = "1.0";
  EXPECT_TRUE(SpansAre(curl10.pid, client10));
}

TEST_F(Http1E2eTest, WebsocketUpgradeIsOneSpanAndTunnelBytesAreNotHttp) {
  auto& srv = StartPythonServer();
  const auto ws = RunPythonClient("websocket_client.py", {std::to_string(srv.port), "/ws"});
  ASSERT_EQ(ws.exit_code, 0);
  ASSERT_EQ(ws.lines.back(), "done");
  // A later request on a new connection: once its span is in, the tunnel's bytes were seen.
  const auto curl = Curl({Url(srv.port, "/hello")});
  ASSERT_EQ(curl.exit_code, 0);

  ASSERT_TRUE(AwaitSpans({{srv.pid(), 2}, {ws.pid, 1}, {curl.pid, 1}}));
  auto server_wants = Spans(kServer, {{"GET", "/ws", 101, std::nullopt}}, srv.port, ws.local_port,
                            "zt-websocket/1.0", PythonService());
  const auto hello = Spans(kServer, {{"GET", "/hello", 200, kHelloBody}}, srv.port,
                           curl.local_ports[0], CurlUserAgent(), PythonService());
  server_wants.push_back(hello[0]);
  EXPECT_TRUE(SpansAre(srv.pid(), server_wants));
  EXPECT_TRUE(SpansAre(ws.pid, Spans(kClient, {{"GET", "/ws", 101, std::nullopt}}, srv.port, 0,
                                     "zt-websocket/1.0", PythonClientService("websocket_client"))));
}

TEST_F(Http1E2eTest, GarbageBytesMakeNoSpanAndTheNextRequestIsTraced) {
  auto& srv = StartPythonServer();
  const auto raw = RunPythonClient("raw_client.py", {std::to_string(srv.port), "garbage"});
  ASSERT_EQ(raw.exit_code, 0);
  const auto curl = Curl({Url(srv.port, "/hello")});
  ASSERT_EQ(curl.exit_code, 0);

  ASSERT_TRUE(AwaitSpans({{srv.pid(), 1}, {curl.pid, 1}}));
  // python answers the garbage with a 400: a response to no request, so no span either.
  EXPECT_TRUE(SpansAre(raw.pid, {}));
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, {{"GET", "/hello", 200, kHelloBody}}, srv.port,
                                        curl.local_ports[0], CurlUserAgent(), PythonService())));
  EXPECT_TRUE(SpansAre(curl.pid, Spans(kClient, {{"GET", "/hello", 200, kHelloBody}}, srv.port, 0,
                                       CurlUserAgent(), {"curl"})));
}

TEST_F(Http1E2eTest, HalfARequestLineMakesNoSpan) {
  auto& srv = StartPythonServer();
  // "GET /items/1" and end of stream. python takes it for an HTTP/0.9 request and answers
  // with a full response, but the request line never ended: no request, no span.
  const auto raw = RunPythonClient("raw_client.py", {std::to_string(srv.port), "truncated-line"});
  ASSERT_EQ(raw.exit_code, 0);
  const auto curl = Curl({Url(srv.port, "/hello")});
  ASSERT_EQ(curl.exit_code, 0);

  ASSERT_TRUE(AwaitSpans({{srv.pid(), 1}, {curl.pid, 1}}));
  EXPECT_TRUE(SpansAre(raw.pid, {}));
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, {{"GET", "/hello", 200, kHelloBody}}, srv.port,
                                        curl.local_ports[0], CurlUserAgent(), PythonService())));
}

TEST_F(Http1E2eTest, RequestCutInsideItsHeadersIsAnErrorSpan) {
  auto& srv = StartPythonServer();
  // "GET /items/2 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag" and end of stream: python ends the
  // head at EOF and answers 200; the request was truncated, which the span must say.
  const auto raw =
      RunPythonClient("raw_client.py", {std::to_string(srv.port), "truncated-headers"});
  ASSERT_EQ(raw.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{srv.pid(), 1}, {raw.pid, 1}}));
  for (const pid_t pid : {srv.pid(), raw.pid}) {
    const int kind = pid == srv.pid() ? kServer : kClient;
    WantSpan w(kind, "GET", "/items/2", 200);
    w.resp_body = ItemBody(2);
    w.server_port = srv.port;
    if (kind == kServer) w.peer_port = raw.local_port;
    w.transport_error = true;
    EXPECT_TRUE(SpansAre(pid, {w}));
  }
}

TEST_F(Http1E2eTest, ClientKilledMidResponseLeavesBothSpansWithErrors) {
  constexpr int64_t kDeclared = 8'000'000;
  constexpr int64_t kClientRead = 200'000;  // response bytes killed_client.py reads, head included
  // "HTTP/1.1 200 OK\r\n" "Server: ztest/1.0\r\n" "Content-Length: 8000000\r\n" "\r\n"
  constexpr int64_t kHead = 17 + 19 + 25 + 2;
  auto& srv = StartPythonServer();
  auto& client =
      Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/clients/killed_client.py",
             std::to_string(srv.port), "/big?n=8000000", std::to_string(kClientRead)});
  ASSERT_TRUE(client.WaitForLine("half", 10s));
  const pid_t client_pid = client.pid();
  client.Kill();  // SIGKILL: the kernel closes the socket, no close() call

  ASSERT_TRUE(AwaitSpans({{srv.pid(), 1}, {client_pid, 1}}));
  for (const pid_t pid : {srv.pid(), client_pid}) {
    WantSpan w(pid == srv.pid() ? kServer : kClient, "GET", "/big?n=8000000", 200);
    w.server_port = srv.port;
    w.user_agent = "zt-killed/1.0";
    w.transport_error = true;  // the response never ended
    w.service_names = pid == srv.pid() ? PythonService() : PythonClientService("killed_client");
    EXPECT_TRUE(SpansAre(pid, {w}));
  }
  // The body size is what moved, not what Content-Length promised: the client read exactly
  // kClientRead bytes; the server wrote at least that much and less than all of it.
  const auto client_spans = SpansOf(client_pid), server_spans = SpansOf(srv.pid());
  ASSERT_EQ(client_spans.size(), 1u);
  ASSERT_EQ(server_spans.size(), 1u);
  EXPECT_EQ(client_spans[0].Int("http.response.body.size"), kClientRead - kHead);
  const int64_t written = server_spans[0].Int("http.response.body.size").value_or(-1);
  EXPECT_GE(written, kClientRead - kHead);
  EXPECT_LT(written, kDeclared);
}

TEST_F(Http1E2eTest, ClientKilledBeforeTheResponseLeavesAnErrorClientSpan) {
  auto& srv = StartPythonServer();
  auto& client =
      Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/clients/killed_client.py",
             std::to_string(srv.port), "/slow?ms=1500", "0"});
  ASSERT_TRUE(client.WaitForLine("half", 10s));  // the request is sent
  const pid_t client_pid = client.pid();
  client.Kill();

  ASSERT_TRUE(AwaitSpans({{srv.pid(), 1}, {client_pid, 1}}));
  // The server answers 1.5 s later into a socket whose peer is gone: its write still succeeds.
  EXPECT_TRUE(SpansAre(srv.pid(), Spans(kServer, {{"GET", "/slow?ms=1500", 200, kHelloBody}},
                                        srv.port, 0, "zt-killed/1.0", PythonService())));
  const auto server_spans = SpansOf(srv.pid());
  if (!server_spans.empty()) {
    EXPECT_GE(server_spans[0].end_ns - server_spans[0].start_ns, 1'500'000'000u);
  }
  WantSpan w(kClient, "GET", "/slow?ms=1500", 0);
  w.server_port = srv.port;
  w.user_agent = "zt-killed/1.0";
  w.transport_error = true;
  EXPECT_TRUE(SpansAre(client_pid, {w}));
}

TEST_F(Http1E2eTest, ServerResetGivesErrorSpansWithoutStatus) {
  auto& srv = StartPythonServer();
  const auto curl = Curl({Url(srv.port, "/reset")});
  ASSERT_EQ(curl.exit_code, 56) << "curl should report the reset (CURLE_RECV_ERROR)";

  ASSERT_TRUE(AwaitSpans({{srv.pid(), 1}, {curl.pid, 1}}));
  for (const pid_t pid : {srv.pid(), curl.pid}) {
    WantSpan w(pid == srv.pid() ? kServer : kClient, "GET", "/reset", 0);
    w.server_port = srv.port;
    w.user_agent = CurlUserAgent();
    w.transport_error = true;
    // curl read ECONNRESET; the server closed without answering.
    w.error_type = pid == srv.pid() ? "response_missing_at_close" : "connection_reset";
    EXPECT_TRUE(SpansAre(pid, {w}));
  }
}

}  // namespace
}  // namespace zerotrace::e2e
