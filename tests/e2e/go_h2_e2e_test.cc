// Go's HTTP/2 over TLS end to end: net/http servers and clients as they come (h2 by ALPN,
// tests/e2e/go/goh2.go built here with Debian's golang-go), traced through the crypto/tls
// probes into HTTP/2 spans. curl --http2 and a Go client against Go servers, and a Go front
// calling a Go back over HTTP/2, share one agent.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "go_build.h"
#include "http_expect.h"
#include "span_log.h"

#ifndef ZT_GO_H2_SOURCE
#error "ZT_GO_H2_SOURCE must name tests/e2e/go/goh2.go"
#endif
#ifndef ZT_GO_GRPC_SOURCE
#error "ZT_GO_GRPC_SOURCE must name tests/e2e/go/gogrpc/gogrpc.go"
#endif

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::FreePort;
using zerotrace::testing::Subprocess;
using zerotrace::testing::SuiteGoBuild;

constexpr const char* kGoUserAgent = "zt-go-h2/1.0";

class GoH2E2eTest : public AgentTest {
 protected:
  static void SetUpTestSuite() {
    // grpc-go from Debian's golang-google-grpc-dev, as GOPATH source.
    go_ = new SuiteGoBuild({{ZT_GO_H2_SOURCE, "goh2", ""}, {ZT_GO_GRPC_SOURCE, "gogrpc", ""}});
  }
  static void TearDownTestSuite() { delete go_; }
  static const std::string& H2() { return go_->binaries[0]; }
  static const std::string& Grpc() { return go_->binaries[1]; }

  std::vector<std::string> AgentFlags() const override { return {"--stats-interval", "1"}; }

  void SetUp() override {
    ASSERT_TRUE(go_->ok()) << go_->error;
    ASSERT_NO_FATAL_FAILURE(MakeCertificate(&cert_, &key_));
    AgentTest::SetUp();
  }

  struct Proc {
    pid_t pid = 0;
    int port = 0;
  };
  // goh2 server (or front, with `back_port`) on a free port, once it says it listens.
  Proc StartGoServer(int back_port = 0, const std::string& binary = "") {
    Proc p;
    p.port = FreePort();
    std::vector<std::string> argv = {binary.empty() ? H2() : binary, back_port ? "front" : "server",
                                     std::to_string(p.port), cert_, key_};
    if (back_port) {
      argv.push_back(std::to_string(back_port));
      argv.push_back(cert_);
    }
    auto& proc = Spawn(argv);
    EXPECT_TRUE(proc.WaitForLine("ready", zerotrace::testing::kServerStartDeadline))
        << "goh2 did not start";
    p.pid = proc.pid();
    return p;
  }
  // Waits until the agent has attached `n` probe sets (one per executable file; a Go binary
  // started after the agent is probed when its exec is seen).
  void WaitProbed(uint64_t n) {
    std::optional<uint64_t> now;
    for (int i = 0; i < 20 && !(now && *now >= n); i++)
      now = StatsCounter("tls_files_attached", AgentOutput().size(), 5s);
    ASSERT_TRUE(now && *now >= n) << "the Go binaries were not probed";
  }

  static std::vector<WantSpan> H2(std::vector<WantSpan> spans) {
    for (auto& s : spans) s.version = "2";
    return spans;
  }

  static SuiteGoBuild* go_;
  std::string cert_, key_;
};
SuiteGoBuild* GoH2E2eTest::go_ = nullptr;

TEST_F(GoH2E2eTest, CurlAndGoClientsOverH2AreSpansAndFrontLinksToBack) {
  const auto before = StatsCounter("tls_files_attached", AgentOutput().size(), 5s);
  ASSERT_TRUE(before.has_value());
  const Proc back = StartGoServer();
  const Proc front = StartGoServer(back.port);
  ASSERT_NO_FATAL_FAILURE(WaitProbed(*before + 1));  // one executable for both

  // curl --http2 (ALPN h2, OpenSSL probes) against the Go server (crypto/tls probes).
  const std::vector<Exchange> xs = {{"GET", "/hello", 200, kHelloBody},
                                    {"GET", "/items/42?a=1", 200, ItemBody(42)},
                                    {"GET", "/error", 500, kErrorBody},
                                    {"GET", "/missing", 404, kNotFoundBody}};
  std::vector<std::string> urls;
  for (const auto& x : xs)
    urls.push_back("https://127.0.0.1:" + std::to_string(back.port) + x.target);
  const auto curl = Curl(urls, {"--cacert", cert_, "--http2"});
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.codes, (std::vector<int>{200, 200, 500, 404}));
  ASSERT_TRUE(WaitForSpans({{back.pid, xs.size()}, {curl.pid, xs.size()}}, 30s));
  EXPECT_TRUE(SpansAre(back.pid, H2(Spans(kServer, xs, back.port, curl.local_ports[0],
                                          CurlUserAgent(), {"goh2"}, "https"))));
  EXPECT_TRUE(
      SpansAre(curl.pid, H2(Spans(kClient, xs, back.port, 0, CurlUserAgent(), {"curl"}, "https"))));

  // A Go client -> the Go front -> the Go back, all HTTP/2 over TLS.
  constexpr int kN = 4;
  const auto client = Run({H2(), "client", std::to_string(front.port), cert_, std::to_string(kN)});
  ASSERT_EQ(client.exit_code, 0);
  std::vector<Exchange> items;
  for (int i = 0; i < kN; i++)
    items.push_back({"GET", "/items/" + std::to_string(i), 200, ItemBody(i)});
  ASSERT_TRUE(AwaitSpans({{client.pid, kN}, {front.pid, 2 * kN}, {back.pid, xs.size() + kN}}, 30s));
  EXPECT_TRUE(SpansAre(client.pid,
                       H2(Spans(kClient, items, front.port, 0, kGoUserAgent, {"goh2"}, "https"))));
  std::vector<WantSpan> front_want;
  for (const auto& x : items) {
    front_want.push_back(
        H2(Spans(kServer, {x}, front.port, 0, kGoUserAgent, {"goh2"}, "https"))[0]);
    front_want.push_back(H2(Spans(kClient, {x}, back.port, 0, kGoUserAgent, {"goh2"}, "https"))[0]);
  }
  EXPECT_TRUE(SpansAre(front.pid, front_want));

  const auto client_spans = SpansOf(client.pid), front_spans = SpansOf(front.pid);
  auto back_spans = SpansOf(back.pid);
  ASSERT_EQ(client_spans.size(), size_t{kN});
  ASSERT_EQ(front_spans.size(), size_t{2 * kN});
  ASSERT_EQ(back_spans.size(), xs.size() + kN);
  back_spans.erase(back_spans.begin(), back_spans.begin() + xs.size());  // curl's
  for (size_t i = 0; i < kN; i++) {
    const Span& front_server = front_spans[2 * i];
    const Span& front_client = front_spans[2 * i + 1];
    EXPECT_EQ(front_server.parent_span_id, client_spans[i].span_id) << front_server.Describe();
    EXPECT_EQ(back_spans[i].parent_span_id, front_client.span_id) << back_spans[i].Describe();
    EXPECT_EQ(front_client.parent_span_id, front_server.span_id) << front_client.Describe();
    EXPECT_EQ(front_client.trace_id, client_spans[i].trace_id);
    EXPECT_EQ(back_spans[i].trace_id, client_spans[i].trace_id);
  }
}

// grpc-go over TLS: unary calls, one of them failing with NOT_FOUND, are one RPC span at each
// end, by the OpenTelemetry RPC conventions, the server's the children of the client's.
TEST_F(GoH2E2eTest, GrpcGoCallsOverTlsAreRpcSpansAtBothEndsAndLinked) {
  const auto before = StatsCounter("tls_files_attached", AgentOutput().size(), 5s);
  ASSERT_TRUE(before.has_value());
  const Proc srv = StartGoServer(0, Grpc());
  ASSERT_NO_FATAL_FAILURE(WaitProbed(*before + 1));
  constexpr size_t kN = 3;  // and one call that fails
  const auto client = Run({Grpc(), "client", std::to_string(srv.port), cert_, std::to_string(kN)});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{client.pid, kN + 1}, {srv.pid, kN + 1}}, 30s));
  const auto client_spans = SpansOf(client.pid), server_spans = SpansOf(srv.pid);
  ASSERT_EQ(client_spans.size(), kN + 1) << Describe(client.pid);
  ASSERT_EQ(server_spans.size(), kN + 1) << Describe(srv.pid);
  for (size_t i = 0; i <= kN; i++) {
    const bool failed = i == kN;
    for (const Span* s : {&client_spans[i], &server_spans[i]}) {
      const bool is_server = s == &server_spans[i];
      SCOPED_TRACE(std::string(is_server ? "server " : "client ") + std::to_string(i));
      EXPECT_EQ(s->kind, is_server ? kServer : kClient);
      EXPECT_EQ(s->name, "zt.test.Echo/Echo");
      EXPECT_EQ(s->Str("rpc.system"), "grpc") << s->Describe();
      EXPECT_EQ(s->Str("rpc.service"), "zt.test.Echo");
      EXPECT_EQ(s->Str("rpc.method"), "Echo");
      EXPECT_EQ(s->Str("network.protocol.version"), "2");
      EXPECT_EQ(s->Int("rpc.grpc.status_code"), failed ? 5 : 0) << s->Describe();
      EXPECT_EQ(s->Int("server.port"), srv.port);
      // NOT_FOUND fails the client's call; it does not make the server's span an error.
      EXPECT_EQ(s->status_code, failed && !is_server ? kStatusError : kStatusUnset);
      EXPECT_EQ(s->service_name, "gogrpc");
    }
    EXPECT_EQ(server_spans[i].parent_span_id, client_spans[i].span_id)
        << server_spans[i].Describe();
    EXPECT_EQ(server_spans[i].trace_id, client_spans[i].trace_id);
  }
}

}  // namespace
}  // namespace zerotrace::e2e
