// End-to-end Go HTTPS: the real agent reads crypto/tls plaintext in Go binaries (uprobes on
// (*tls.Conn).Write/Read and their RET instructions) built here from tests/e2e/go/gohttps.go
// with Debian's golang-go (HTTP/1.1 over TLS; HTTP/2 switched off on both ends). Each test
// asserts the exact spans of each process, as for OpenSSL (tls_e2e_test.cc).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "go_build.h"
#include "http_expect.h"
#include "span_log.h"

#ifndef ZT_GO_SOURCE
#error "ZT_GO_SOURCE must name tests/e2e/go/gohttps.go"
#endif

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::FreePort;
using zerotrace::testing::Subprocess;
using zerotrace::testing::SuiteGoBuild;

constexpr const char* kGoUserAgent = "zt-go-https/1.0";

// GET /items/first .. /items/first+n-1 as gohttps's client asks for them (status 200).
std::vector<Exchange> GoItems(int n, int first = 0) {
  std::vector<Exchange> out;
  for (int i = first; i < first + n; ++i)
    out.push_back({"GET", "/items/" + std::to_string(i), 200, ItemBody(i)});
  return out;
}

class GoTlsE2eTest : public AgentTest {
 protected:
  // Both binaries are built once for the whole suite (about a second each).
  static void SetUpTestSuite() {
    go_ = new SuiteGoBuild(
        {{ZT_GO_SOURCE, "gohttps", ""}, {ZT_GO_SOURCE, "gohttps-stripped", "-s -w"}});
  }
  static void TearDownTestSuite() { delete go_; }
  static const std::string& Full() { return go_->binaries[0]; }
  static const std::string& Stripped() { return go_->binaries[1]; }

  std::vector<std::string> AgentFlags() const override { return {"--stats-interval", "1"}; }

  void SetUp() override {
    ASSERT_TRUE(go_->ok()) << go_->error;
    ASSERT_NO_FATAL_FAILURE(MakeCertificate(&cert_, &key_));
    AgentTest::SetUp();
  }

  struct Proc {
    pid_t pid = 0;
    int port = 0;
    Subprocess* proc = nullptr;
  };
  // gohttps server (or front, with `back_port`) on a free port, once it says it listens.
  Proc StartGoServer(const std::string& binary, int back_port = 0) {
    Proc p;
    p.port = FreePort();
    std::vector<std::string> argv = {binary, back_port ? "front" : "server", std::to_string(p.port),
                                     cert_, key_};
    if (back_port) {
      argv.push_back(std::to_string(back_port));
      argv.push_back(cert_);
    }
    p.proc = &Spawn(argv);
    EXPECT_TRUE(p.proc->WaitForLine("ready", zerotrace::testing::kServerStartDeadline))
        << binary << " did not start";
    p.pid = p.proc->pid();
    return p;
  }
  // Waits until the agent has attached probe sets beyond `before` (a Go binary started after
  // the agent is probed when its exec is seen, a few milliseconds later).
  void WaitProbed(uint64_t before, uint64_t more = 1) {
    std::optional<uint64_t> now;
    for (int i = 0; i < 20 && !(now && *now >= before + more); i++)
      now = StatsCounter("tls_files_attached", AgentOutput().size(), 5s);
    ASSERT_TRUE(now && *now >= before + more) << "the Go binary was not probed";
  }
  uint64_t Attached() {
    const auto v = StatsCounter("tls_files_attached", AgentOutput().size(), 5s);
    EXPECT_TRUE(v.has_value());
    return v.value_or(0);
  }

  CurlRun CurlHttps(int port, const std::vector<Exchange>& xs) {
    std::vector<std::string> urls;
    for (const auto& x : xs) urls.push_back("https://127.0.0.1:" + std::to_string(port) + x.target);
    return Curl(urls, {"--cacert", cert_, "--http1.1"});
  }

  // curl's requests to a Go server are one span each at both ends, exactly.
  void ExpectCurlAndGoServer(const Proc& srv, const std::string& service) {
    const std::vector<Exchange> xs = {{"GET", "/hello", 200, kHelloBody},
                                      {"GET", "/items/42?a=1&b=2", 200, ItemBody(42)},
                                      {"GET", "/error", 500, kErrorBody},
                                      {"GET", "/missing", 404, kNotFoundBody}};
    const auto curl = CurlHttps(srv.port, xs);
    ASSERT_EQ(curl.exit_code, 0);
    ASSERT_EQ(curl.codes, (std::vector<int>{200, 200, 500, 404}));
    ASSERT_TRUE(AwaitSpans({{srv.pid, xs.size()}, {curl.pid, xs.size()}}, 30s));
    EXPECT_TRUE(SpansAre(srv.pid, Spans(kServer, xs, srv.port, curl.local_ports[0], CurlUserAgent(),
                                        {service}, "https")));
    EXPECT_TRUE(
        SpansAre(curl.pid, Spans(kClient, xs, srv.port, 0, CurlUserAgent(), {"curl"}, "https")));
  }

  static SuiteGoBuild* go_;
  std::string cert_, key_;
};
SuiteGoBuild* GoTlsE2eTest::go_ = nullptr;

TEST_F(GoTlsE2eTest, GoServerStartedAfterTheAgentServesCurlOverHttps) {
  const uint64_t before = Attached();
  const Proc srv = StartGoServer(Full());
  WaitProbed(before);
  ExpectCurlAndGoServer(srv, "gohttps");
}

// -ldflags=-s -w: no symbol table, no DWARF; functions from .gopclntab, offsets from the table.
TEST_F(GoTlsE2eTest, StrippedGoServerServesCurlOverHttps) {
  const uint64_t before = Attached();
  const Proc srv = StartGoServer(Stripped());
  WaitProbed(before);
  ExpectCurlAndGoServer(srv, "gohttps-stripped");
}

// A Go client (stripped) started after the agent; python's ssl server answers.
TEST_F(GoTlsE2eTest, GoClientKeepAliveRequestsAreClientSpans) {
  constexpr int kRequests = 6;
  const int port = FreePort();
  Subprocess& py =
      Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/http_server.py",
             std::to_string(port), "--tls", cert_, key_});
  ASSERT_TRUE(py.WaitForLine("ready", 10s)) << "python https server did not start";
  const uint64_t before = Attached();
  Subprocess& client = Spawn({Stripped(), "client", std::to_string(port), cert_,
                              std::to_string(kRequests), "--wait-start"});
  ASSERT_TRUE(client.WaitForLine("started", 10s));
  WaitProbed(before);
  client.WriteStdin("go\n");
  const auto line = client.WaitForLine("local_port", 20s);
  ASSERT_TRUE(line);
  const int client_port = std::stoi(line->substr(11));
  ASSERT_TRUE(client.WaitForLine("done", 20s)) << "the Go client did not finish";
  ASSERT_TRUE(AwaitSpans({{py.pid(), kRequests}, {client.pid(), kRequests}}, 30s));
  const auto xs = GoItems(kRequests);
  EXPECT_TRUE(SpansAre(
      py.pid(), Spans(kServer, xs, port, client_port, kGoUserAgent, PythonService(), "https")));
  EXPECT_TRUE(SpansAre(client.pid(),
                       Spans(kClient, xs, port, 0, kGoUserAgent, {"gohttps-stripped"}, "https")));
}

// curl -> Go front -> Go back, all HTTPS: every span is there, each server span is the child
// of the client span on the other end of its connection (stream positions of the plaintext at
// both ends), and each of the front's calls the child of the request it serves (goroutine
// causality; go_chain_e2e_test.cc covers it under concurrency).
TEST_F(GoTlsE2eTest, FrontToBackChainOverTlsHasEverySpanAndPeerLinks) {
  const uint64_t before = Attached();
  const Proc back = StartGoServer(Full());
  const Proc front = StartGoServer(Stripped(), back.port);
  WaitProbed(before, 2);
  std::vector<Exchange> xs = {{"GET", "/hello", 200, kHelloBody}};
  for (int i = 1; i <= 5; i++)
    xs.push_back({"GET", "/items/" + std::to_string(i), 200, ItemBody(i)});
  const auto curl = CurlHttps(front.port, xs);
  ASSERT_EQ(curl.exit_code, 0);
  const size_t n = xs.size();
  ASSERT_TRUE(AwaitSpans({{curl.pid, n}, {front.pid, 2 * n}, {back.pid, n}}, 30s));

  std::vector<WantSpan> front_want;
  for (const auto& x : xs) {
    auto server = Spans(kServer, {x}, front.port, curl.local_ports[0], CurlUserAgent(),
                        {"gohttps-stripped"}, "https");
    auto client = Spans(kClient, {x}, back.port, 0, kGoUserAgent, {"gohttps-stripped"}, "https");
    front_want.push_back(server[0]);
    front_want.push_back(client[0]);
  }
  EXPECT_TRUE(SpansAre(front.pid, front_want));
  EXPECT_TRUE(
      SpansAre(back.pid, Spans(kServer, xs, back.port, 0, kGoUserAgent, {"gohttps"}, "https")));
  EXPECT_TRUE(
      SpansAre(curl.pid, Spans(kClient, xs, front.port, 0, CurlUserAgent(), {"curl"}, "https")));

  const auto curl_spans = SpansOf(curl.pid), front_spans = SpansOf(front.pid),
             back_spans = SpansOf(back.pid);
  ASSERT_EQ(front_spans.size(), 2 * n);
  ASSERT_EQ(back_spans.size(), n);
  ASSERT_EQ(curl_spans.size(), n);
  for (size_t i = 0; i < n; i++) {
    const Span& front_server = front_spans[2 * i];
    const Span& front_client = front_spans[2 * i + 1];
    EXPECT_EQ(front_server.parent_span_id, curl_spans[i].span_id) << front_server.Describe();
    EXPECT_EQ(front_server.trace_id, curl_spans[i].trace_id);
    EXPECT_EQ(back_spans[i].parent_span_id, front_client.span_id) << back_spans[i].Describe();
    EXPECT_EQ(back_spans[i].trace_id, front_client.trace_id);
    EXPECT_EQ(front_client.parent_span_id, front_server.span_id) << front_client.Describe();
    EXPECT_EQ(front_client.trace_id, front_server.trace_id);
  }
}

// The Go server runs before the agent starts: found in /proc/PID/maps by the initial scan.
class GoServerBeforeAgentTest : public GoTlsE2eTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(go_->ok()) << go_->error;
    ASSERT_NO_FATAL_FAILURE(MakeCertificate(&cert_, &key_));
    srv_port_ = FreePort();
    srv_ = std::make_unique<Subprocess>(
        std::vector<std::string>{Full(), "server", std::to_string(srv_port_), cert_, key_});
    ASSERT_TRUE(srv_->WaitForLine("ready", 30s));
    AgentTest::SetUp();
  }
  int srv_port_ = 0;
  std::unique_ptr<Subprocess> srv_;
};

TEST_F(GoServerBeforeAgentTest, ServesCurlOverHttps) {
  ExpectCurlAndGoServer({srv_->pid(), srv_port_, srv_.get()}, "gohttps");
}

// A Go client and a Go server whose connection (and its TLS session) was opened before the
// agent started, both idle in a Read at that moment: the requests made afterwards on it are
// spans at both ends, the first included (its Reads are caught at their RET).
class GoConnectionBeforeAgentTest : public GoServerBeforeAgentTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(go_->ok()) << go_->error;
    ASSERT_NO_FATAL_FAILURE(MakeCertificate(&cert_, &key_));
    srv_port_ = FreePort();
    srv_ = std::make_unique<Subprocess>(
        std::vector<std::string>{Full(), "server", std::to_string(srv_port_), cert_, key_});
    ASSERT_TRUE(srv_->WaitForLine("ready", 30s));
    client_ = std::make_unique<Subprocess>(
        std::vector<std::string>{Stripped(), "client", std::to_string(srv_port_), cert_,
                                 std::to_string(kRequests), "--wait-go"});
    const auto line = client_->WaitForLine("local_port", 20s);
    ASSERT_TRUE(line) << "the Go client did not connect";
    client_port_ = std::stoi(line->substr(11));
    AgentTest::SetUp();
  }
  static constexpr int kRequests = 6;
  int client_port_ = 0;
  std::unique_ptr<Subprocess> client_;
};

TEST_F(GoConnectionBeforeAgentTest, LaterRequestsOnTheConnectionAreSpans) {
  client_->WriteStdin("go\n");
  ASSERT_TRUE(client_->WaitForLine("done", 20s)) << "the Go client did not finish";
  const auto xs = GoItems(kRequests - 1, 1);  // /items/0 went out before the agent
  ASSERT_TRUE(AwaitSpans({{srv_->pid(), xs.size()}, {client_->pid(), xs.size()}}, 30s));
  EXPECT_TRUE(SpansAre(srv_->pid(), Spans(kServer, xs, srv_port_, client_port_, kGoUserAgent,
                                          {"gohttps"}, "https")));
  // Started before the agent and gone: service.name may fall back to the 15-character comm.
  EXPECT_TRUE(SpansAre(client_->pid(), Spans(kClient, xs, srv_port_, 0, kGoUserAgent,
                                             {"gohttps-stripped", "gohttps-strippe"}, "https")));
}

}  // namespace
}  // namespace zerotrace::e2e
