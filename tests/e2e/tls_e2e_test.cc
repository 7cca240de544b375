// End-to-end HTTPS: the real agent reads the plaintext of OpenSSL and GnuTLS through uprobes.
//
// Each test makes a CA-less self-signed certificate for 127.0.0.1 with the openssl CLI in its
// temp dir, runs TLS servers and clients (python ssl, curl, wget/GnuTLS, nginx, a client with
// OpenSSL linked statically), and asserts the exact spans of each process: the same spans as
// plain HTTP, with url.scheme=https, and none made of ciphertext.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "http_expect.h"
#include "span_log.h"

#ifndef ZT_TLS_STATIC_CLIENT
#error "ZT_TLS_STATIC_CLIENT must name tests/e2e/clients/tls_static_client"
#endif

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::FreePort;
using zerotrace::testing::Subprocess;

// The HTTPS suite's expectations: url.scheme is https.
std::vector<WantSpan> HttpsSpans(int kind, const std::vector<Exchange>& exchanges, int server_port,
                                 int client_port, const std::string& user_agent,
                                 const std::vector<std::string>& service) {
  return Spans(kind, exchanges, server_port, client_port, user_agent, service, "https");
}

// GET /items/0 .. /items/n-1 without status queries (tls_static_client, nonblocking client).
std::vector<Exchange> PlainItems(int n) {
  std::vector<Exchange> out;
  for (int i = 0; i < n; ++i)
    out.push_back({"GET", "/items/" + std::to_string(i), 200, ItemBody(i)});
  return out;
}

class TlsE2eTest : public AgentTest {
 protected:
  std::vector<std::string> AgentFlags() const override { return {"--stats-interval", "1"}; }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeCertificate(&cert_, &key_));
    AgentTest::SetUp();
  }

  struct Proc {
    pid_t pid = 0;
    int port = 0;
  };
  // tests/e2e/servers/http_server.py speaking HTTPS (python's ssl module: dynamic libssl).
  Proc StartHttpsPython() {
    Proc p;
    p.port = FreePort();
    Subprocess& s =
        Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/http_server.py",
               std::to_string(p.port), "--tls", cert_, key_});
    EXPECT_TRUE(s.WaitForLine("ready", 10s)) << "python https server did not start";
    p.pid = s.pid();
    return p;
  }
  // The same server speaking plain HTTP.
  Proc StartHttpPython() {
    Proc p;
    p.port = FreePort();
    Subprocess& s =
        Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/http_server.py",
               std::to_string(p.port)});
    EXPECT_TRUE(s.WaitForLine("ready", 10s)) << "python server did not start";
    p.pid = s.pid();
    return p;
  }

  // tests/e2e/servers/https_server.js (OpenSSL linked into node, over memory buffers).
  Proc StartHttpsNode() {
    Proc p;
    p.port = FreePort();
    Subprocess& s = Spawn({"node", std::string(ZT_E2E_DIR) + "/servers/https_server.js",
                           std::to_string(p.port), cert_, key_});
    EXPECT_TRUE(s.WaitForLine("ready", 60s)) << "node https server did not start";
    p.pid = s.pid();
    return p;
  }
  // tests/e2e/clients/https_client.js: GET /items/0 .. n-1 on one keep-alive connection.
  ClientRun RunNodeClient(int port, int n) {
    return Run({"node", std::string(ZT_E2E_DIR) + "/clients/https_client.js", std::to_string(port),
                cert_, std::to_string(n)},
               60s);
  }
  // The node client's n requests to srv are one span each at both ends, the first included.
  void ExpectNodeClientKeepAlive(const Proc& srv, int n,
                                 const std::vector<std::string>& server_service) {
    const auto client = RunNodeClient(srv.port, n);
    ASSERT_EQ(client.exit_code, 0);
    ASSERT_FALSE(client.lines.empty());
    ASSERT_EQ(client.lines.back(), "done");
    ASSERT_TRUE(AwaitSpans({{srv.pid, n}, {client.pid, n}}, 30s));
    const auto xs = Items(n);
    EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, client.local_port,
                                             "zt-node-https/1.0", server_service)));
    EXPECT_TRUE(SpansAre(client.pid, HttpsSpans(kClient, xs, srv.port, 0, "zt-node-https/1.0",
                                                {"https_client", "node"})));
  }

  // nginx (one process) with TLS on its port; `location` is the body of "location / {}".
  Proc StartNginxTls(const std::string& location,
                     const std::vector<std::pair<std::string, std::string>>& files = {}) {
    namespace fs = std::filesystem;
    const std::string root = dir() + "/nginx-tls";
    fs::create_directories(root + "/www");
    for (const auto& [path, contents] : files) {
      fs::create_directories(fs::path(root + "/www" + path).parent_path());
      std::ofstream(root + "/www" + path, std::ios::binary) << contents;
    }
    Proc p;
    p.port = FreePort();
    std::ofstream conf(root + "/nginx.conf");
    conf << "daemon off; master_process off; worker_processes 1;\n"
         << "pid " << root << "/nginx.pid; error_log " << root << "/error.log;\n"
         << "events {}\nhttp {\n  access_log off;\n"
         << "  client_body_temp_path " << root << "/body; proxy_temp_path " << root << "/proxy;\n"
         << "  fastcgi_temp_path " << root << "/fastcgi; uwsgi_temp_path " << root << "/uwsgi;\n"
         << "  scgi_temp_path " << root << "/scgi;\n"
         << "  server {\n    listen 127.0.0.1:" << p.port << " ssl;\n"
         << "    ssl_certificate " << cert_ << "; ssl_certificate_key " << key_ << ";\n"
         << "    root " << root << "/www;\n    location / { " << location << " }\n  }\n}\n";
    conf.close();
    Subprocess& s =
        Spawn({"nginx", "-p", root, "-e", root + "/error.log", "-c", root + "/nginx.conf"});
    EXPECT_TRUE(zerotrace::testing::WaitForListen(p.port, 10s)) << "nginx did not start";
    p.pid = s.pid();
    return p;
  }

  CurlRun CurlHttps(int port, const std::vector<std::string>& targets,
                    std::vector<std::string> args = {}) {
    std::vector<std::string> urls;
    for (const auto& t : targets) urls.push_back(HttpsUrl(port, t));
    args.insert(args.begin(), {"--cacert", cert_});
    return Curl(urls, args);
  }
  static std::string HttpsUrl(int port, const std::string& target) {
    return "https://127.0.0.1:" + std::to_string(port) + target;
  }

  // The newest value of a stats counter printed after now (the agent keeps running).
  std::optional<uint64_t> FreshCounter(const std::string& name) {
    return StatsCounter(name, AgentOutput().size(), 5s);
  }

  std::string cert_, key_;
};

// The per-function uprobe links of kernels before 6.6 (no multi-uprobe links).
class TlsPerFunctionProbesTest : public TlsE2eTest {
 protected:
  std::vector<std::string> AgentFlags() const override {
    return {"--stats-interval", "1", "--tls-per-function-probes"};
  }
};

// The server runs before the agent starts: the agent finds its libssl in /proc/PID/maps.
class TlsServerBeforeAgentTest : public TlsE2eTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeCertificate(&cert_, &key_));
    server_ = StartHttpsPython();
    AgentTest::SetUp();
  }
  Proc server_;
};

// The OpenSSL-static client runs (and has connected) before the agent starts.
class TlsStaticClientBeforeAgentTest : public TlsE2eTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MakeCertificate(&cert_, &key_));
    server_ = StartHttpsPython();
    client_ = &Spawn({ZT_TLS_STATIC_CLIENT, std::to_string(server_.port), cert_, "5", "--wait-go"});
    const auto line = client_->WaitForLine("local_port", 10s);
    ASSERT_TRUE(line) << "the static client did not connect";
    client_port_ = std::stoi(line->substr(11));
    AgentTest::SetUp();
  }
  Proc server_;
  Subprocess* client_ = nullptr;
  int client_port_ = 0;
};

::testing::AssertionResult SameConnection(const std::vector<int>& local_ports, size_t want) {
  if (local_ports.size() != want)
    return ::testing::AssertionFailure()
           << "want " << want << " transfers, got " << local_ports.size();
  for (int p : local_ports) {
    if (p != local_ports[0])
      return ::testing::AssertionFailure() << "curl opened more than one connection";
  }
  return ::testing::AssertionSuccess();
}

TEST_F(TlsE2eTest, CurlAndPythonHttpsServerReportEachExchangeAsHttps) {
  const Proc srv = StartHttpsPython();
  const std::vector<Exchange> xs = {{"GET", "/hello", 200, kHelloBody},
                                    {"GET", "/items/42?a=1&b=2", 200, ItemBody(42)},
                                    {"GET", "/error", 500, kErrorBody},
                                    {"GET", "/missing", 404, kNotFoundBody}};
  std::vector<std::string> targets;
  for (const auto& x : xs) targets.push_back(x.target);
  const auto curl = CurlHttps(srv.port, targets);
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.codes, (std::vector<int>{200, 200, 500, 404}));
  ASSERT_TRUE(SameConnection(curl.local_ports, xs.size()));

  ASSERT_TRUE(WaitForSpans({{srv.pid, xs.size()}, {curl.pid, xs.size()}}));
  const auto tls_conns = FreshCounter("tls_conns");
  ASSERT_TRUE(tls_conns.has_value());
  EXPECT_GE(*tls_conns, 2u) << "both ends of the connection carry plaintext";
  StopAgent();
  // Exactly these spans: nothing was parsed from the ciphertext of the same connection.
  EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, curl.local_ports[0],
                                           CurlUserAgent(), PythonService())));
  EXPECT_TRUE(SpansAre(curl.pid, HttpsSpans(kClient, xs, srv.port, 0, CurlUserAgent(), {"curl"})));
}

TEST_F(TlsE2eTest, KeepAliveFiveHundredRequestsOverOneTlsConnection) {
  constexpr int kRequests = 500;  // issue #6
  const Proc srv = StartHttpsPython();
  const auto client = RunPythonClient(
      "keepalive_client.py",
      {std::to_string(srv.port), "--tls", cert_, "--items", std::to_string(kRequests)});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.back(), "done");

  ASSERT_TRUE(AwaitSpans({{srv.pid, kRequests}, {client.pid, kRequests}}, 30s));
  const auto xs = Items(kRequests);
  EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, client.local_port,
                                           "zt-keepalive/1.0", PythonService())));
  EXPECT_TRUE(SpansAre(client.pid, HttpsSpans(kClient, xs, srv.port, 0, "zt-keepalive/1.0",
                                              PythonClientService("keepalive_client"))));
}

// 200 KB down and 100 KB up, above the 16 KiB captured per TLS call: the bodies become gaps
// and pairing continues with the next request on the connection.
TEST_F(TlsE2eTest, BodiesLargerThanTheCaptureLimitPairThroughTheGap) {
  const Proc srv = StartHttpsPython();
  const auto client = RunPythonClient(
      "keepalive_client.py", {std::to_string(srv.port), "--tls", cert_, "GET:/big?n=200000",
                              "POST:/upload:100000", "GET:/hello"});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.back(), "done");
  const std::vector<Exchange> xs = {{"GET", "/big?n=200000", 200, 200000},
                                    {"POST", "/upload", 200, 7, 100000},  // "100000\n"
                                    {"GET", "/hello", 200, kHelloBody}};

  ASSERT_TRUE(AwaitSpans({{srv.pid, xs.size()}, {client.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, client.local_port,
                                           "zt-keepalive/1.0", PythonService())));
  EXPECT_TRUE(SpansAre(client.pid, HttpsSpans(kClient, xs, srv.port, 0, "zt-keepalive/1.0",
                                              PythonClientService("keepalive_client"))));
}

// The server starts after the agent and loads libssl with dlopen (python's `import ssl`): its
// very first request is traced, because the host's libssl was probed when the agent started.
TEST_F(TlsE2eTest, ServerStartedAfterTheAgentHasItsFirstRequestTraced) {
  const Proc srv = StartHttpsPython();
  const auto curl = CurlHttps(srv.port, {"/hello"});
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.codes, (std::vector<int>{200}));
  const std::vector<Exchange> xs = {{"GET", "/hello", 200, kHelloBody}};

  ASSERT_TRUE(AwaitSpans({{srv.pid, 1}, {curl.pid, 1}}));
  EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, curl.local_ports[0],
                                           CurlUserAgent(), PythonService())));
  EXPECT_TRUE(SpansAre(curl.pid, HttpsSpans(kClient, xs, srv.port, 0, CurlUserAgent(), {"curl"})));
}

TEST_F(TlsServerBeforeAgentTest, ServerRunningBeforeTheAgentIsTraced) {
  const auto curl = CurlHttps(server_.port, {"/hello", "/items/5"});
  ASSERT_EQ(curl.exit_code, 0);
  const std::vector<Exchange> xs = {{"GET", "/hello", 200, kHelloBody},
                                    {"GET", "/items/5", 200, ItemBody(5)}};

  ASSERT_TRUE(AwaitSpans({{server_.pid, xs.size()}, {curl.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(server_.pid, HttpsSpans(kServer, xs, server_.port, curl.local_ports[0],
                                               CurlUserAgent(), PythonService())));
  EXPECT_TRUE(
      SpansAre(curl.pid, HttpsSpans(kClient, xs, server_.port, 0, CurlUserAgent(), {"curl"})));
}

// SSL_write/SSL_read live in the executable itself (OpenSSL linked statically). The client
// connected and did its handshake before the agent started; its requests come after.
// The server's thread was already blocked inside SSL_read when the agent started: that call
// (the first request) is invisible, and the connection's plaintext starts with its response.
// That is no reason to give the server side up: it resynchronises at the next request, and
// the other four are traced (as for plain sockets, issue 18 item 16).
TEST_F(TlsStaticClientBeforeAgentTest, StaticallyLinkedOpenSslClientIsTraced) {
  client_->WriteStdin("go\n");
  ASSERT_TRUE(client_->WaitForLine("done", 20s)) << "the static client did not finish";
  const auto xs = PlainItems(5);

  ASSERT_TRUE(AwaitSpans({{client_->pid(), xs.size()}}));
  // Its comm (15 characters) when the process metadata came from a connection found mid-life.
  EXPECT_TRUE(SpansAre(client_->pid(), HttpsSpans(kClient, xs, server_.port, 0, "zt-static-tls/1.0",
                                                  {"tls_static_client", "tls_static_clie"})));
  const std::vector<Exchange> after_the_first(xs.begin() + 1, xs.end());
  EXPECT_TRUE(SpansAre(server_.pid, HttpsSpans(kServer, after_the_first, server_.port, client_port_,
                                               "zt-static-tls/1.0", PythonService())));
}

// A static binary started after the agent is probed when its exec is seen; the client waits
// until the agent reports one more probed file before its first request.
TEST_F(TlsE2eTest, StaticallyLinkedOpenSslClientStartedAfterTheAgentIsTraced) {
  const Proc srv = StartHttpsPython();
  const auto before = FreshCounter("tls_files_attached");
  ASSERT_TRUE(before.has_value());
  Subprocess& client =
      Spawn({ZT_TLS_STATIC_CLIENT, std::to_string(srv.port), cert_, "5", "--wait-go"});
  const auto line = client.WaitForLine("local_port", 10s);
  ASSERT_TRUE(line) << "the static client did not connect";
  const int client_port = std::stoi(line->substr(11));
  std::optional<uint64_t> probed;
  for (int i = 0; i < 20 && !(probed && *probed > *before); i++)
    probed = FreshCounter("tls_files_attached");
  ASSERT_TRUE(probed && *probed > *before) << "the static client's executable was not probed";
  const auto detached_before = FreshCounter("tls_files_detached");  // while it still runs
  ASSERT_TRUE(detached_before.has_value());
  client.WriteStdin("go\n");
  ASSERT_TRUE(client.WaitForLine("done", 20s)) << "the static client did not finish";
  const auto xs = PlainItems(5);
  ASSERT_TRUE(WaitForSpans({{srv.pid, xs.size()}, {client.pid(), xs.size()}}));

  // No process maps the executable any more: its probes go.
  ASSERT_EQ(client.Wait(10s), 0);
  std::optional<uint64_t> detached;
  for (int i = 0; i < 20 && !(detached && *detached > *detached_before); i++)
    detached = FreshCounter("tls_files_detached");
  EXPECT_TRUE(detached && *detached > *detached_before)
      << "the probes of the exited static client were not removed";
  StopAgent();
  EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, client_port, "zt-static-tls/1.0",
                                           PythonService())));
  EXPECT_TRUE(SpansAre(client.pid(), HttpsSpans(kClient, xs, srv.port, 0, "zt-static-tls/1.0",
                                                {"tls_static_client"})));
}

// SSL_read on a non-blocking socket fails with WANT_READ (no bytes: nothing emitted) and is
// retried after select(); every response still pairs with its request.
TEST_F(TlsE2eTest, NonBlockingTlsClientPairsEveryResponse) {
  constexpr int kRequests = 50;
  const Proc srv = StartHttpsPython();
  const auto client = RunPythonClient("nonblocking_tls_client.py",
                                      {std::to_string(srv.port), cert_, std::to_string(kRequests)});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.back(), "done");

  ASSERT_TRUE(AwaitSpans({{srv.pid, kRequests}, {client.pid, kRequests}}));
  const auto xs = PlainItems(kRequests);
  EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, client.local_port,
                                           "zt-nonblocking/1.0", PythonService())));
  EXPECT_TRUE(SpansAre(client.pid, HttpsSpans(kClient, xs, srv.port, 0, "zt-nonblocking/1.0",
                                              PythonClientService("nonblocking_tls_client"))));
}

// node's TLS runs OpenSSL (linked into the executable) over memory buffers: SSL_read and
// SSL_write make no socket syscall. A session is bound to the socket its thread read a TLS
// record from just before the call (the ClientHello, for a server), counted as
// tls_bound_by_read; from then on the socket's bytes are ciphertext and make no span.
TEST_F(TlsE2eTest, NodeHttpsServerAndCurlReportEachExchangeAsHttps) {
  const Proc srv = StartHttpsNode();
  const auto before = FreshCounter("tls_bound_by_read");
  ASSERT_TRUE(before.has_value());
  const std::vector<Exchange> xs = {{"GET", "/hello", 200, kHelloBody},
                                    {"GET", "/items/42", 200, ItemBody(42)},
                                    {"GET", "/items/5?status=503", 503, ItemBody(5)},
                                    {"GET", "/missing", 404, kNotFoundBody}};
  std::vector<std::string> targets;
  for (const auto& x : xs) targets.push_back(x.target);
  const auto curl = CurlHttps(srv.port, targets);
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.codes, (std::vector<int>{200, 200, 503, 404}));
  ASSERT_TRUE(SameConnection(curl.local_ports, xs.size()));

  ASSERT_TRUE(WaitForSpans({{srv.pid, xs.size()}, {curl.pid, xs.size()}}));
  std::optional<uint64_t> bound;
  for (int i = 0; i < 20 && !(bound && *bound > *before); i++)
    bound = FreshCounter("tls_bound_by_read");
  EXPECT_TRUE(bound && *bound > *before) << "node's session was not bound by its read";
  StopAgent();
  EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, curl.local_ports[0],
                                           CurlUserAgent(), {"https_server"})));
  EXPECT_TRUE(SpansAre(curl.pid, HttpsSpans(kClient, xs, srv.port, 0, CurlUserAgent(), {"curl"})));
}

// While serving curl's request, node calls a python HTTPS server on a new connection: the
// last read of its thread is then curl's TLS record, whose socket another session owns, so the
// outgoing session waits for the python server's first flight. Each client span names the
// python server's port, never curl's connection.
TEST_F(TlsE2eTest, NodeOutgoingHttpsCallWhileServingIsBoundToItsOwnSocket) {
  constexpr int kCalls = 3;
  const Proc upstream = StartHttpsPython();
  const Proc srv = StartHttpsNode();
  const std::string target = "/fetch?port=" + std::to_string(upstream.port);
  const auto curl = CurlHttps(srv.port, std::vector<std::string>(kCalls, target));
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.codes, std::vector<int>(kCalls, 200));
  ASSERT_TRUE(SameConnection(curl.local_ports, kCalls));

  ASSERT_TRUE(AwaitSpans({{srv.pid, 2 * kCalls}, {upstream.pid, kCalls}, {curl.pid, kCalls}}));
  std::vector<WantSpan> node_spans;
  for (int i = 0; i < kCalls; i++) {
    const auto in = HttpsSpans(kServer, {{"GET", target, 200, kHelloBody}}, srv.port,
                               curl.local_ports[0], CurlUserAgent(), {"https_server"});
    const auto out = HttpsSpans(kClient, {{"GET", "/hello", 200, kHelloBody}}, upstream.port, 0,
                                "zt-node-fetch/1.0", {"https_server"});
    node_spans.push_back(in[0]);
    node_spans.push_back(out[0]);
  }
  EXPECT_TRUE(SpansAre(srv.pid, node_spans));
  const std::vector<Exchange> hellos(kCalls, {"GET", "/hello", 200, kHelloBody});
  EXPECT_TRUE(SpansAre(upstream.pid, HttpsSpans(kServer, hellos, upstream.port, 0,
                                                "zt-node-fetch/1.0", PythonService())));
  const std::vector<Exchange> fetches(kCalls, {"GET", target, 200, kHelloBody});
  EXPECT_TRUE(
      SpansAre(curl.pid, HttpsSpans(kClient, fetches, srv.port, 0, CurlUserAgent(), {"curl"})));
}

// A node client's session has no read before its handshake starts (it sends the ClientHello);
// the server's answer binds it, so its first SSL_write, after the handshake, is already
// attributed: every request of a keep-alive connection pairs, the first included.
TEST_F(TlsE2eTest, NodeHttpsClientKeepAliveToPythonServerPairsEveryRequest) {
  const Proc srv = StartHttpsPython();
  ExpectNodeClientKeepAlive(srv, 100, PythonService());
}

// Both ends over memory buffers, on one node: 300 requests on one keep-alive connection.
TEST_F(TlsE2eTest, NodeHttpsClientToNodeHttpsServerKeepAliveThreeHundredRequests) {
  const Proc srv = StartHttpsNode();
  ExpectNodeClientKeepAlive(srv, 300, {"https_server"});
}

// python's asyncio streams run OpenSSL (the shared libssl) over memory BIOs too: its
// SSL_read_ex/SSL_write_ex are bound by the event loop's recv of the record before them.
TEST_F(TlsE2eTest, PythonAsyncioHttpsClientOverMemoryBiosPairsEveryRequest) {
  constexpr int kRequests = 50;
  const Proc srv = StartHttpsNode();
  const auto client = RunPythonClient("asyncio_tls_client.py",
                                      {std::to_string(srv.port), cert_, std::to_string(kRequests)});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_FALSE(client.lines.empty());
  ASSERT_EQ(client.lines.back(), "done");

  ASSERT_TRUE(AwaitSpans({{srv.pid, kRequests}, {client.pid, kRequests}}, 30s));
  const auto xs = Items(kRequests);
  EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, client.local_port,
                                           "zt-asyncio/1.0", {"https_server"})));
  EXPECT_TRUE(SpansAre(client.pid, HttpsSpans(kClient, xs, srv.port, 0, "zt-asyncio/1.0",
                                              PythonClientService("asyncio_tls_client"))));
}

TEST_F(TlsPerFunctionProbesTest, CurlAndPythonHttpsServerAndWgetToNginx) {
  const Proc srv = StartHttpsPython();
  const auto curl = CurlHttps(srv.port, {"/hello", "/items/5"});
  ASSERT_EQ(curl.exit_code, 0);
  const std::vector<Exchange> xs = {{"GET", "/hello", 200, kHelloBody},
                                    {"GET", "/items/5", 200, ItemBody(5)}};
  const Proc nginx = StartNginxTls("", {{"/index.html", std::string(100, 'n')}});
  const auto wget = Run({"wget", "-q", "--ca-certificate=" + cert_, "-O", "/dev/null",
                         "--user-agent=zt-wget/1.0", HttpsUrl(nginx.port, "/index.html")});
  ASSERT_EQ(wget.exit_code, 0);
  const std::vector<Exchange> ws = {{"GET", "/index.html", 200, 100}};

  ASSERT_TRUE(AwaitSpans({{srv.pid, 2}, {curl.pid, 2}, {nginx.pid, 1}, {wget.pid, 1}}));
  EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, curl.local_ports[0],
                                           CurlUserAgent(), PythonService())));
  EXPECT_TRUE(SpansAre(curl.pid, HttpsSpans(kClient, xs, srv.port, 0, CurlUserAgent(), {"curl"})));
  EXPECT_TRUE(
      SpansAre(nginx.pid, HttpsSpans(kServer, ws, nginx.port, 0, "zt-wget/1.0", {"nginx"})));
  EXPECT_TRUE(SpansAre(wget.pid, HttpsSpans(kClient, ws, nginx.port, 0, "zt-wget/1.0", {"wget"})));
}

// wget uses GnuTLS (gnutls_record_send/recv); nginx uses OpenSSL.
TEST_F(TlsE2eTest, WgetWithGnutlsToNginxWithOpenSsl) {
  const Proc srv = StartNginxTls(
      "", {{"/index.html", std::string(1000, 'n')}, {"/items/42", std::string(420, 'i')}});
  const auto wget =
      Run({"wget", "-q", "--ca-certificate=" + cert_, "-O", "/dev/null", "--user-agent=zt-wget/1.0",
           HttpsUrl(srv.port, "/index.html"), HttpsUrl(srv.port, "/items/42")});
  ASSERT_EQ(wget.exit_code, 0);
  const std::vector<Exchange> xs = {{"GET", "/index.html", 200, 1000},
                                    {"GET", "/items/42", 200, 420}};

  ASSERT_TRUE(AwaitSpans({{srv.pid, xs.size()}, {wget.pid, xs.size()}}));
  EXPECT_TRUE(SpansAre(srv.pid, HttpsSpans(kServer, xs, srv.port, 0, "zt-wget/1.0", {"nginx"})));
  EXPECT_TRUE(SpansAre(wget.pid, HttpsSpans(kClient, xs, srv.port, 0, "zt-wget/1.0", {"wget"})));
}

// curl -(TLS)-> nginx -(HTTP)-> python: one trace. curl's plaintext and nginx's plaintext of the
// TLS connection sit at the same positions, so the mirrored tuple links nginx's server span
// to curl's client span, as it does for plain HTTP.
TEST_F(TlsE2eTest, NginxTerminatingTlsLinksOneTraceAcrossTheTlsHop) {
  const Proc backend = StartHttpPython();
  const Proc proxy = StartNginxTls("proxy_pass http://127.0.0.1:" + std::to_string(backend.port) +
                                   "; proxy_http_version 1.1; proxy_set_header Connection \"\";");
  const std::vector<std::string> targets = {"/hello", "/items/7", "/items/12"};
  const auto curl = CurlHttps(proxy.port, targets);
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_EQ(curl.codes, (std::vector<int>{200, 200, 200}));
  const size_t n = targets.size();

  ASSERT_TRUE(AwaitSpans({{curl.pid, n}, {proxy.pid, 2 * n}, {backend.pid, n}}));
  const auto curl_spans = SpansOf(curl.pid), proxy_spans = SpansOf(proxy.pid),
             backend_spans = SpansOf(backend.pid);
  ASSERT_EQ(curl_spans.size(), n) << Describe(curl.pid);
  ASSERT_EQ(proxy_spans.size(), 2 * n) << Describe(proxy.pid);
  ASSERT_EQ(backend_spans.size(), n) << Describe(backend.pid);
  std::map<std::string, const Span*> by_id;
  for (const auto* list : {&curl_spans, &proxy_spans, &backend_spans})
    for (const auto& s : *list) by_id[s.span_id] = &s;
  auto parent = [&](const Span& s) -> const Span* {
    auto it = by_id.find(s.parent_span_id);
    return it == by_id.end() ? nullptr : it->second;
  };
  for (const auto& py : backend_spans) {
    const std::string path = py.Str("url.path").value_or("?");
    EXPECT_EQ(py.Str("url.scheme"), "http") << path;
    const Span* nginx_out = parent(py);
    ASSERT_TRUE(nginx_out && nginx_out->kind == kClient && nginx_out->pid == proxy.pid)
        << "python's span of " << path << " is not nginx's client span's child";
    EXPECT_EQ(nginx_out->Str("url.scheme"), "http");
    const Span* nginx_in = parent(*nginx_out);
    ASSERT_TRUE(nginx_in && nginx_in->kind == kServer && nginx_in->pid == proxy.pid)
        << "nginx's client span of " << path << " is not its server span's child";
    EXPECT_EQ(nginx_in->Str("url.scheme"), "https");
    EXPECT_EQ(nginx_in->Str("url.path"), path);
    const Span* root = parent(*nginx_in);
    ASSERT_TRUE(root && root->kind == kClient && root->pid == curl.pid)
        << "nginx's TLS server span of " << path << " is not curl's client span's child";
    EXPECT_EQ(root->Str("url.scheme"), "https");
    EXPECT_EQ(root->Str("url.path"), path);
    EXPECT_TRUE(root->parent_span_id.empty());
    for (const Span* s : {nginx_out, nginx_in, root}) EXPECT_EQ(s->trace_id, py.trace_id);
  }
}

}  // namespace
}  // namespace zerotrace::e2e
