// End-to-end HTTP/2 and gRPC: the real agent traces real peers (python grpcio, nginx with
// http2 in h2c and over TLS, nghttp and curl clients) and an agent started in the middle of a
// gRPC connection's life.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "e2e_fixture.h"
#include "span_log.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::FreePort;
using zerotrace::testing::kServerStartDeadline;
using zerotrace::testing::Subprocess;

class Http2E2eTest : public AgentTest {
 protected:
  static constexpr int kNginxBig = 300000;  // a file far above the capture of a call

  // A write bigger than the capture loses the frame headers behind its first bytes (see the
  // README): the big-message test stays within 64 KiB per syscall.
  std::vector<std::string> AgentFlags() const override {
    return {"--stats-interval", "1", "--capture-bytes", "65536"};
  }

  Subprocess& StartGrpcServer(int port) {
    auto& s = Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/grpc_server.py",
                     std::to_string(port)});
    EXPECT_TRUE(s.WaitForLine("ready", kServerStartDeadline)) << "grpc server did not start";
    return s;
  }

  // The spans of `pid` by name, in start order.
  std::map<std::string, std::vector<Span>> ByName(pid_t pid) const {
    std::map<std::string, std::vector<Span>> m;
    for (const Span& s : SpansOf(pid)) m[s.name].push_back(s);
    return m;
  }

  // Every server span of `server` is the child of exactly one client span of `client`, in the
  // same trace, with the same name.
  void ExpectLinked(pid_t client, pid_t server) {
    std::map<std::string, Span> clients;
    for (const Span& c : SpansOf(client)) clients[c.span_id] = c;
    for (const Span& s : SpansOf(server)) {
      auto it = clients.find(s.parent_span_id);
      ASSERT_NE(it, clients.end()) << "unlinked: " << s.Describe() << "\n" << Describe(client);
      EXPECT_EQ(it->second.trace_id, s.trace_id);
      EXPECT_EQ(it->second.name, s.name);
      EXPECT_EQ(it->second.Str("url.path"), s.Str("url.path"));
      clients.erase(it);  // one server span per client span
    }
  }

  // nginx with http2 on a cleartext listener (prior knowledge) and on a TLS one.
  Subprocess& StartNginxH2(int h2c_port, int tls_port) {
    namespace fs = std::filesystem;
    const std::string root = dir() + "/nginx";
    fs::create_directories(root + "/www/items");
    for (int i = 0; i < 4; i++) {
      std::ofstream(root + "/www/items/" + std::to_string(i)) << std::string(10 + i, 'x');
    }
    std::ofstream(root + "/www/big") << std::string(kNginxBig, 'b');
    std::ofstream conf(root + "/nginx.conf");
    conf << "daemon off; master_process off; worker_processes 1;\n"
         << "pid " << root << "/nginx.pid; error_log " << root << "/error.log;\n"
         << "events {}\nhttp {\n  access_log off;\n"
         << "  client_body_temp_path " << root << "/body; proxy_temp_path " << root << "/proxy;\n"
         << "  fastcgi_temp_path " << root << "/fastcgi; uwsgi_temp_path " << root << "/uwsgi;\n"
         << "  scgi_temp_path " << root << "/scgi;\n"
         << "  server { listen 127.0.0.1:" << h2c_port << " http2; root " << root << "/www; }\n"
         << "  server { listen 127.0.0.1:" << tls_port << " ssl http2; root " << root << "/www;\n"
         << "    ssl_certificate " << cert_ << "; ssl_certificate_key " << key_ << "; }\n}\n";
    conf.close();
    auto& s = Spawn({"nginx", "-p", root, "-e", root + "/error.log", "-c", root + "/nginx.conf"});
    const auto deadline = std::chrono::steady_clock::now() + kServerStartDeadline;
    while (!fs::exists(root + "/nginx.pid") && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(fs::exists(root + "/nginx.pid")) << "nginx did not start; see " << root;
    return s;
  }

  std::string cert_, key_;
};

// Unary OK, an error status, server and client streaming and a 40 KB answer (several DATA
// frames) over one python grpcio channel: one span per call at each end, by the OpenTelemetry
// RPC conventions (semconv 1.37), the server's spans children of the client's.
TEST_F(Http2E2eTest, GrpcCallsAtBothEndsAreSpansAndLinked) {
  const int port = FreePort();
  auto& server = StartGrpcServer(port);
  const auto client = RunPythonClient(
      "grpc_client.py", {std::to_string(port), "echo", "fail", "count:3", "sum:4", "big:40000"});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.size(), 5u);
  EXPECT_EQ(client.lines[1], "done fail NOT_FOUND");
  ASSERT_TRUE(AwaitSpans({{client.pid, 5}, {server.pid(), 5}}, 30s));

  for (pid_t pid : {client.pid, server.pid()}) {
    const bool is_server = pid == server.pid();
    SCOPED_TRACE(is_server ? "server" : "client");
    ASSERT_EQ(SpansOf(pid).size(), 5u) << Describe(pid);
    auto spans = ByName(pid);
    ASSERT_EQ(spans["zt.test.Echo/Echo"].size(), 2u) << Describe(pid);
    for (const Span& s : SpansOf(pid)) {
      EXPECT_EQ(s.kind, is_server ? kServer : kClient);
      EXPECT_EQ(s.Str("rpc.system"), "grpc") << s.Describe();
      EXPECT_EQ(s.Str("rpc.service"), "zt.test.Echo") << s.Describe();
      EXPECT_EQ(s.Str("network.protocol.version"), "2") << s.Describe();
      EXPECT_EQ("zt.test.Echo/" + s.Str("rpc.method").value_or("?"), s.name);
      EXPECT_FALSE(s.Has("http.request.method")) << s.Describe();
    }
    const Span& ok = spans["zt.test.Echo/Echo"][0];
    const Span& fail = spans["zt.test.Echo/Echo"][1];
    EXPECT_EQ(ok.Int("rpc.grpc.status_code"), 0);
    EXPECT_EQ(ok.status_code, kStatusUnset);
    EXPECT_EQ(fail.Int("rpc.grpc.status_code"), 5) << fail.Describe();
    // NOT_FOUND fails the client's call; it does not make the server's span an error.
    EXPECT_EQ(fail.status_code, is_server ? kStatusUnset : kStatusError) << fail.Describe();
    const Span& count = spans["zt.test.Echo/Count"].at(0);
    EXPECT_EQ(count.Int("zerotrace.grpc.request_messages"), 1);
    EXPECT_EQ(count.Int("zerotrace.grpc.response_messages"), 3);
    const Span& sum = spans["zt.test.Echo/Sum"].at(0);
    EXPECT_EQ(sum.Int("zerotrace.grpc.request_messages"), 4);
    EXPECT_EQ(sum.Int("zerotrace.grpc.response_messages"), 1);
    const Span& big = spans["zt.test.Echo/Big"].at(0);
    EXPECT_EQ(big.Int("rpc.grpc.status_code"), 0) << big.Describe();
    EXPECT_EQ(big.Int("zerotrace.grpc.response_messages"), 1);
  }
  ExpectLinked(client.pid, server.pid());
}

// The default capture (16 KiB a syscall): the kernel walks HTTP/2 frame headers, so a
// HEADERS frame behind large DATA in one syscall is still captured whole.
class Http2CaptureTest : public Http2E2eTest {
 protected:
  std::vector<std::string> AgentFlags() const override { return {"--stats-interval", "1"}; }
};

// nginx with http2: nghttp (h2c prior knowledge, several streams on one connection), curl
// --http2-prior-knowledge, and curl --http2 over TLS (ALPN h2, plaintext through the OpenSSL
// probes), a 300 KB file then a small one on one connection at the default capture. Each
// request is one span at each end with the HTTP conventions and version 2.
TEST_F(Http2CaptureTest, NginxH2cAndTlsWithNghttpAndCurl) {
  ASSERT_NO_FATAL_FAILURE(MakeCertificate(&cert_, &key_));
  const int h2c = FreePort(), tls = FreePort();
  auto& nginx = StartNginxH2(h2c, tls);
  const std::string base = "http://127.0.0.1:" + std::to_string(h2c);
  const auto nghttp = Run(
      {"nghttp", "-n", base + "/items/0", base + "/items/1", base + "/items/2", base + "/missing"});
  ASSERT_EQ(nghttp.exit_code, 0);
  const auto curl_h2c = Run({"curl", "-sS", "-o", "/dev/null", "--http2-prior-knowledge",
                             base + "/items/3?token=SECRET"});
  ASSERT_EQ(curl_h2c.exit_code, 0);
  const std::string tls_base = "https://127.0.0.1:" + std::to_string(tls);
  const auto curl_tls = Run({"curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "--http2",
                             "--cacert", cert_, tls_base + "/big", tls_base + "/items/1"});
  ASSERT_EQ(curl_tls.exit_code, 0);
  ASSERT_TRUE(
      AwaitSpans({{nghttp.pid, 4}, {curl_h2c.pid, 1}, {curl_tls.pid, 2}, {nginx.pid(), 7}}, 30s));

  std::map<std::string, int> statuses;
  for (const Span& s : SpansOf(nghttp.pid)) {
    EXPECT_EQ(s.kind, kClient);
    EXPECT_EQ(s.Str("network.protocol.version"), "2") << s.Describe();
    EXPECT_EQ(s.Str("http.request.method"), "GET");
    EXPECT_EQ(s.Str("url.scheme"), "http");
    statuses[s.Str("url.path").value_or("?")] =
        static_cast<int>(s.Int("http.response.status_code").value_or(0));
    if (s.Str("url.path") == "/items/2") {
      EXPECT_EQ(s.Int("http.response.body.size"), 12);
    }
  }
  const std::map<std::string, int> want = {
      {"/items/0", 200}, {"/items/1", 200}, {"/items/2", 200}, {"/missing", 404}};
  EXPECT_EQ(statuses, want) << Describe(nghttp.pid);

  const auto h2c_curl = SpansOf(curl_h2c.pid);
  ASSERT_EQ(h2c_curl.size(), 1u);
  EXPECT_EQ(h2c_curl[0].name, "GET /items/{id}");
  EXPECT_EQ(h2c_curl[0].Str("url.query"), "token=REDACTED");
  EXPECT_EQ(h2c_curl[0].Str("url.full"),
            "http://127.0.0.1:" + std::to_string(h2c) + "/items/3?token=REDACTED");
  const auto tls_curl = SpansOf(curl_tls.pid);
  ASSERT_EQ(tls_curl.size(), 2u) << Describe(curl_tls.pid);
  for (const Span& s : tls_curl) {
    EXPECT_EQ(s.Str("url.scheme"), "https");
    EXPECT_EQ(s.Str("network.protocol.version"), "2");
    EXPECT_EQ(s.Int("http.response.status_code"), 200);
  }
  EXPECT_EQ(tls_curl[0].Int("http.response.body.size"), kNginxBig) << tls_curl[0].Describe();
  EXPECT_EQ(tls_curl[1].Str("url.path"), "/items/1") << tls_curl[1].Describe();

  const auto served = SpansOf(nginx.pid());
  ASSERT_EQ(served.size(), 7u) << Describe(nginx.pid());
  std::map<std::string, Span> clients;
  for (pid_t p : {nghttp.pid, curl_h2c.pid, curl_tls.pid}) {
    for (const Span& c : SpansOf(p)) clients[c.span_id] = c;
  }
  for (const Span& s : served) {
    EXPECT_EQ(s.kind, kServer);
    EXPECT_EQ(s.Str("network.protocol.version"), "2") << s.Describe();
    auto it = clients.find(s.parent_span_id);
    ASSERT_NE(it, clients.end()) << "unlinked: " << s.Describe();
    EXPECT_EQ(it->second.Str("url.path"), s.Str("url.path"));
    EXPECT_EQ(it->second.Int("http.response.status_code"), s.Int("http.response.status_code"));
  }
  // The final stats line: the TLS connection walked at both ends, nothing lost anywhere.
  EXPECT_EQ(StatsCounter("tls_h2_walks", 0, 5s), 4u);
  for (const char* lost : {"tls_h2_walk_lost", "h2_walk_lost", "h2_frames_lost", "h2_hpack_lost"}) {
    EXPECT_EQ(StatsCounter(lost, 0, 5s), 0u) << lost;
  }
}

// A 300 KB answer (many DATA frames, read and written in syscalls far larger than the capture)
// ends with its trailers behind the DATA: the status still comes from them, and the HPACK
// state survives, so later calls on the same connection decode too.
TEST_F(Http2CaptureTest, TrailersBehindLargeDataAreCaptured) {
  const int port = FreePort();
  auto& server = StartGrpcServer(port);
  const auto client = RunPythonClient(
      "grpc_client.py", {std::to_string(port), "big:300000", "fail", "big:200000", "echo"});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.size(), 4u);
  ASSERT_TRUE(AwaitSpans({{client.pid, 4}, {server.pid(), 4}}, 30s));
  for (pid_t pid : {client.pid, server.pid()}) {
    SCOPED_TRACE(pid == server.pid() ? "server" : "client");
    const auto spans = SpansOf(pid);
    ASSERT_EQ(spans.size(), 4u) << Describe(pid);
    const std::vector<std::string> names = {"zt.test.Echo/Big", "zt.test.Echo/Echo",
                                            "zt.test.Echo/Big", "zt.test.Echo/Echo"};
    const std::vector<int> codes = {0, 5, 0, 0};
    for (size_t i = 0; i < spans.size(); i++) {
      EXPECT_EQ(spans[i].name, names[i]) << spans[i].Describe();
      EXPECT_EQ(spans[i].Int("rpc.grpc.status_code"), codes[i]) << spans[i].Describe();
    }
    EXPECT_EQ(spans[0].Int("zerotrace.grpc.response_messages"), 1) << spans[0].Describe();
  }
  ExpectLinked(client.pid, server.pid());
}

// Node's built-in http2 module at both ends, h2c and TLS (ALPN h2, node's own OpenSSL): one
// span per stream at each end, linked; a 200 KB answer (h2c) and a 100 KB one (TLS: one
// SSL_write far above the capture) with a trailer after their DATA end their streams, and the
// request after each on the same connection still decodes: the kernel walks the frames of the
// socket bytes and of the TLS plaintext alike, and no header block is lost.
TEST_F(Http2CaptureTest, NodeHttp2H2cAndTlsBothEnds) {
  ASSERT_NO_FATAL_FAILURE(MakeCertificate(&cert_, &key_));
  const int h2c = FreePort(), tls = FreePort();
  auto& server = Spawn({"node", std::string(ZT_E2E_DIR) + "/servers/h2_server.js",
                        std::to_string(h2c), std::to_string(tls), cert_, key_});
  ASSERT_TRUE(server.WaitForLine("ready", kServerStartDeadline)) << "node h2 server did not start";
  const std::string client_js = std::string(ZT_E2E_DIR) + "/clients/h2_client.js";
  const auto plain = Run({"node", client_js, "http://127.0.0.1:" + std::to_string(h2c), "-",
                          "/items/1", "/missing", "/big/200000", "/items/3"});
  ASSERT_EQ(plain.exit_code, 0);
  const auto secure = Run({"node", client_js, "https://127.0.0.1:" + std::to_string(tls), cert_,
                           "/big/100000", "/items/2"});
  ASSERT_EQ(secure.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{plain.pid, 4}, {secure.pid, 2}, {server.pid(), 6}}, 30s));

  const std::vector<std::tuple<pid_t, std::string, std::vector<std::pair<std::string, int>>>> want =
      {{plain.pid,
        "http",
        {{"/items/1", 200}, {"/missing", 404}, {"/big/200000", 200}, {"/items/3", 200}}},
       {secure.pid, "https", {{"/big/100000", 200}, {"/items/2", 200}}}};
  std::map<std::string, Span> clients;
  for (const auto& [pid, scheme, paths] : want) {
    const auto spans = SpansOf(pid);
    ASSERT_EQ(spans.size(), paths.size()) << Describe(pid);
    for (size_t i = 0; i < spans.size(); i++) {
      const Span& s = spans[i];
      EXPECT_EQ(s.kind, kClient);
      EXPECT_EQ(s.Str("url.scheme"), scheme) << s.Describe();
      EXPECT_EQ(s.Str("network.protocol.version"), "2") << s.Describe();
      EXPECT_EQ(s.Str("url.path"), paths[i].first) << s.Describe();
      EXPECT_EQ(s.Int("http.response.status_code"), paths[i].second) << s.Describe();
      if (paths[i].first.rfind("/big/", 0) == 0) {
        EXPECT_EQ(s.Int("http.response.body.size"), std::stoi(paths[i].first.substr(5)))
            << s.Describe();
      }
      clients[s.span_id] = s;
    }
  }
  const auto served = SpansOf(server.pid());
  ASSERT_EQ(served.size(), 6u) << Describe(server.pid());
  for (const Span& s : served) {
    EXPECT_EQ(s.kind, kServer);
    auto it = clients.find(s.parent_span_id);
    ASSERT_NE(it, clients.end()) << "unlinked: " << s.Describe();
    EXPECT_EQ(it->second.Str("url.path"), s.Str("url.path"));
    EXPECT_EQ(it->second.Int("http.response.status_code"), s.Int("http.response.status_code"));
    clients.erase(it);
  }
  // The final stats line: both ends of the TLS connection walked in both directions, nothing
  // lost on either connection.
  EXPECT_EQ(StatsCounter("tls_h2_walks", 0, 5s), 4u);
  for (const char* lost : {"tls_h2_walk_lost", "h2_walk_lost", "h2_frames_lost", "h2_hpack_lost"}) {
    EXPECT_EQ(StatsCounter(lost, 0, 5s), 0u) << lost;
  }
}

// The C++ gRPC library the agent links against (grpc_peer: generic ByteBuffer calls, a
// callback server) at both ends: OK and NOT_FOUND, one span per call at each end, linked.
TEST_F(Http2E2eTest, CppGrpcLibraryBothEnds) {
  const int port = FreePort();
  auto& server = Spawn({ZT_GRPC_PEER, "server", std::to_string(port)});
  ASSERT_TRUE(server.WaitForLine("ready", kServerStartDeadline)) << "grpc_peer did not start";
  const auto client = Run({ZT_GRPC_PEER, "client", std::to_string(port), "echo", "fail", "echo"});
  ASSERT_EQ(client.exit_code, 0);
  const std::vector<std::string> want_lines = {"done echo 0", "done fail 5", "done echo 0"};
  EXPECT_EQ(client.lines, want_lines);
  ASSERT_TRUE(AwaitSpans({{client.pid, 3}, {server.pid(), 3}}, 30s));
  for (pid_t pid : {client.pid, server.pid()}) {
    const bool is_server = pid == server.pid();
    SCOPED_TRACE(is_server ? "server" : "client");
    const auto spans = SpansOf(pid);
    ASSERT_EQ(spans.size(), 3u) << Describe(pid);
    const std::vector<int> codes = {0, 5, 0};
    for (size_t i = 0; i < spans.size(); i++) {
      EXPECT_EQ(spans[i].name, "zt.test.Echo/Echo") << spans[i].Describe();
      EXPECT_EQ(spans[i].kind, is_server ? kServer : kClient);
      EXPECT_EQ(spans[i].Str("rpc.system"), "grpc") << spans[i].Describe();
      EXPECT_EQ(spans[i].Int("rpc.grpc.status_code"), codes[i]) << spans[i].Describe();
    }
  }
  ExpectLinked(client.pid, server.pid());
}

// nginx grpc_pass in front of the python grpcio server: python client -> nginx -> server.
// Each hop's ends link by their tuples; nginx's own outgoing call is linked to the call it
// serves only where the evidence allows, and never to a wrong one.
TEST_F(Http2E2eTest, NginxGrpcPassLinksBothHopsNeverWrong) {
  namespace fs = std::filesystem;
  const int backend = FreePort(), front = FreePort();
  auto& server = StartGrpcServer(backend);
  const std::string root = dir() + "/nginx-grpc";
  fs::create_directories(root);
  std::ofstream(root + "/nginx.conf")
      << "daemon off; master_process off; worker_processes 1;\n"
      << "pid " << root << "/nginx.pid; error_log " << root << "/error.log;\n"
      << "events {}\nhttp {\n  access_log off;\n"
      << "  client_body_temp_path " << root << "/body; proxy_temp_path " << root << "/proxy;\n"
      << "  fastcgi_temp_path " << root << "/fastcgi; uwsgi_temp_path " << root << "/uwsgi;\n"
      << "  scgi_temp_path " << root << "/scgi;\n"
      << "  server { listen 127.0.0.1:" << front << " http2;\n"
      << "    location / { grpc_pass grpc://127.0.0.1:" << backend << "; } }\n}\n";
  auto& nginx = Spawn({"nginx", "-p", root, "-e", root + "/error.log", "-c", root + "/nginx.conf"});
  const auto deadline = std::chrono::steady_clock::now() + kServerStartDeadline;
  while (!fs::exists(root + "/nginx.pid") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(fs::exists(root + "/nginx.pid")) << "nginx did not start; see " << root;
  const auto client =
      RunPythonClient("grpc_client.py", {std::to_string(front), "echo", "fail", "count:2"});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.size(), 3u);
  EXPECT_EQ(client.lines[1], "done fail NOT_FOUND");
  ASSERT_TRUE(AwaitSpans({{client.pid, 3}, {nginx.pid(), 6}, {server.pid(), 3}}, 30s));

  std::map<std::string, Span> by_id;
  for (pid_t p : {client.pid, nginx.pid(), server.pid()}) {
    ASSERT_EQ(SpansOf(p).size(), p == nginx.pid() ? 6u : 3u) << Describe(p);
    for (const Span& s : SpansOf(p)) by_id[s.span_id] = s;
  }
  std::set<std::string> client_ids;
  for (const Span& s : SpansOf(client.pid)) client_ids.insert(s.span_id);
  int nginx_linked = 0;
  for (const Span& s : SpansOf(nginx.pid())) {
    EXPECT_EQ(s.Str("rpc.system"), "grpc") << s.Describe();
    auto parent = by_id.find(s.parent_span_id);
    if (s.kind == kServer) {  // the python client's call
      ASSERT_NE(parent, by_id.end()) << "unlinked: " << s.Describe();
      EXPECT_EQ(parent->second.kind, kClient);
      EXPECT_EQ(client_ids.count(s.parent_span_id), 1u) << s.Describe();
      EXPECT_EQ(parent->second.name, s.name) << s.Describe();
    } else if (parent != by_id.end()) {  // nginx's call upstream: linked only when certain
      nginx_linked++;
      EXPECT_EQ(parent->second.kind, kServer) << s.Describe();
      EXPECT_EQ(parent->second.name, s.name) << s.Describe();
      EXPECT_EQ(parent->second.trace_id, s.trace_id);
    }
    EXPECT_EQ(by_id.count(s.parent_span_id) + s.parent_span_id.empty(), 1u) << s.Describe();
  }
  for (const Span& s : SpansOf(server.pid())) {  // every backend span has an nginx parent
    auto parent = by_id.find(s.parent_span_id);
    ASSERT_NE(parent, by_id.end()) << "unlinked: " << s.Describe();
    EXPECT_EQ(parent->second.kind, kClient) << s.Describe();
    EXPECT_EQ(client_ids.count(s.parent_span_id), 0u) << "linked past nginx: " << s.Describe();
    EXPECT_EQ(parent->second.name, s.name) << s.Describe();
    EXPECT_EQ(parent->second.Int("rpc.grpc.status_code"), s.Int("rpc.grpc.status_code"));
  }
  RecordProperty("nginx_upstream_calls_linked", nginx_linked);
}

// A python grpcio thread-pool server that calls out from its handler: client -> front
// (Relay) -> back (Echo). Each connection's ends link; the front's outgoing call is linked to
// the call it serves only on certain evidence (grpc-core does its I/O on its own threads and
// shares one connection among the handlers' calls, so no thread is evidence; see
// docs/LINKING_GRPC.md): never to anything else. Then 8 relays at once, held in flight together
// by the back (a gather of 8), in four rounds: each front call RelayN calls GatherN, so a link is
// right only from GatherN to RelayN.
//  - correlation: each call carries its own x-request-id, which the front passes on: all 8
//    outgoing calls are linked (link_correlation for those made while others were in flight);
//  - plain: nothing passed on: whatever is linked is linked right;
//  - forwarded: 7 relays, then (once those wait at the back) one Forward27 that the front
//    forwards as Forward27: that call is linked (link_forwarded), the 7 never wrong;
//  - traceparent: each call carries its own W3C context, which the front passes on: each
//    outgoing call joins its trace, as the child of the front's call that carried it.
// The number a method name ends with ("zt.test.Echo/Relay12": 12), or -1.
int NumberOf(const std::string& name) {
  const size_t digits = name.find_last_not_of("0123456789") + 1;
  return digits < name.size() ? std::stoi(name.substr(digits)) : -1;
}

TEST_F(Http2E2eTest, GrpcServerCallingOutLinkedOnEvidenceNeverWrong) {
  const int back_port = FreePort(), front_port = FreePort();
  auto& back = StartGrpcServer(back_port);
  auto& front = StartGrpcServer(front_port);
  const auto client = RunPythonClient(
      "grpc_client.py", {std::to_string(front_port), "relay:" + std::to_string(back_port), "echo"});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.size(), 2u);
  const std::string back_s = std::to_string(back_port);
  // A round of concurrent relays RelayN -> GatherN for N in [first, first + n).
  auto round = [&](int first, int n, auto&& extra) {
    std::vector<std::string> args = {std::to_string(front_port), "--parallel"};
    for (int i = first; i < first + n; i++) {
      args.push_back("call:Relay" + std::to_string(i) + ":" + back_s + "/Gather" +
                     std::to_string(i) + "/gather:8" + extra(i));
    }
    return args;
  };
  auto none = [](int) { return std::string(); };
  auto rid = [](int i) { return "+rid=req-" + std::to_string(i) + "-5f0c9a"; };
  auto trace_of = [](int i) { return "4bf92f3577b34da6a3ce929d0e0e47" + std::to_string(i); };
  auto tp = [&](int i) { return "+tp=00-" + trace_of(i) + "-00f067aa0ba902b7-01"; };
  std::vector<ClientRun> rounds;
  rounds.push_back(RunPythonClient("grpc_client.py", round(0, 8, rid)));
  rounds.push_back(RunPythonClient("grpc_client.py", round(10, 8, none)));
  auto forwarded = round(20, 7, none);
  forwarded.push_back("sync:" + back_s + ":8:7");
  forwarded.push_back("call:Forward27:" + back_s + "/gather:8");
  rounds.push_back(RunPythonClient("grpc_client.py", forwarded));
  rounds.push_back(RunPythonClient("grpc_client.py", round(30, 8, tp)));
  std::vector<std::pair<pid_t, size_t>> want = {
      {client.pid, 2}, {front.pid(), 3 + 4 * 16}, {back.pid(), 1 + 4 * 8}};
  for (const ClientRun& r : rounds) {
    ASSERT_EQ(r.exit_code, 0);
    for (const std::string& line : r.lines) EXPECT_TRUE(line.ends_with(" OK")) << line;
    want.emplace_back(r.pid, 8);
  }
  ASSERT_TRUE(AwaitSpans(want, 30s));

  std::map<std::string, Span> by_id;  // every span of the four processes' rounds
  for (const auto& [pid, n] : want) {
    for (const Span& s : SpansOf(pid)) by_id[s.span_id] = s;
  }
  auto fronts = ByName(front.pid());
  ASSERT_EQ(fronts["zt.test.Echo/Relay"].size(), 1u) << Describe(front.pid());
  ASSERT_EQ(fronts["zt.test.Echo/Echo"].size(), 2u) << Describe(front.pid());
  const Span& relay = fronts["zt.test.Echo/Relay"][0];
  EXPECT_EQ(relay.kind, kServer);
  std::vector<Span> out;  // the front's outgoing Echo
  for (const Span& s : fronts["zt.test.Echo/Echo"]) {
    if (s.kind == kClient) out.push_back(s);
  }
  ASSERT_EQ(out.size(), 1u) << Describe(front.pid());
  if (!out[0].parent_span_id.empty()) {
    EXPECT_EQ(out[0].parent_span_id, relay.span_id) << out[0].Describe();
    EXPECT_EQ(out[0].trace_id, relay.trace_id);
  }
  // Every span of the back is the child of the front's call that reached it; every server span
  // of the front the child of its client's call (or of the W3C context that call carried).
  for (pid_t p : {back.pid(), front.pid()}) {
    for (const Span& s : SpansOf(p)) {
      if (s.kind != kServer) continue;
      auto parent = by_id.find(s.parent_span_id);
      if (const int n = NumberOf(s.name); n >= 30) {  // the W3C context wins (rule 1)
        EXPECT_EQ(s.trace_id, trace_of(n)) << s.Describe();
        continue;
      }
      ASSERT_NE(parent, by_id.end()) << "unlinked: " << s.Describe();
      EXPECT_EQ(parent->second.kind, kClient) << s.Describe();
      EXPECT_EQ(parent->second.name, s.name) << s.Describe();
      EXPECT_EQ(parent->second.trace_id, s.trace_id) << s.Describe();
    }
  }
  // The front's outgoing GatherN (or Forward27): linked only to its RelayN (Forward27).
  std::map<int, int> linked;  // by round (N / 10)
  int calls = 0;
  for (const Span& s : SpansOf(front.pid())) {
    if (s.kind != kClient || s.name == "zt.test.Echo/Echo") continue;
    calls++;
    const bool fwd = s.name.starts_with("zt.test.Echo/Forward");
    ASSERT_TRUE(fwd || s.name.starts_with("zt.test.Echo/Gather")) << s.Describe();
    const std::string n = std::to_string(NumberOf(s.name));
    const int r = std::stoi(n) / 10;
    auto parent = by_id.find(s.parent_span_id);
    if (r == 3) {
      EXPECT_EQ(s.trace_id, trace_of(std::stoi(n))) << "not joined: " << s.Describe();
    }
    if (parent == by_id.end()) continue;
    linked[r]++;
    EXPECT_EQ(parent->second.pid, front.pid()) << s.Describe();
    EXPECT_EQ(parent->second.kind, kServer) << s.Describe();
    EXPECT_EQ(parent->second.name, fwd ? s.name : "zt.test.Echo/Relay" + n) << s.Describe();
    EXPECT_EQ(parent->second.trace_id, s.trace_id) << s.Describe();
  }
  EXPECT_EQ(calls, 32);
  EXPECT_EQ(linked[0], 8) << "correlation: " << Describe(front.pid());
  EXPECT_EQ(linked[3], 8) << "traceparent: " << Describe(front.pid());
  EXPECT_GE(linked[2], 1) << "forwarded: " << Describe(front.pid());
  for (const Span& s : fronts["zt.test.Echo/Forward27"]) {
    if (s.kind == kClient) {
      EXPECT_FALSE(s.parent_span_id.empty()) << s.Describe();
    }
  }
  EXPECT_GE(StatsCounter("link_correlation", 0).value_or(0), 7u);
  EXPECT_GE(StatsCounter("link_forwarded", 0).value_or(0), 1u);
  RecordProperty("plain_relays_linked", linked[1]);
}

// A real deadline: the client gives the call 200 ms, the server sleeps 600 ms. The client
// cancels the stream at its deadline: its span is an error with DEADLINE_EXCEEDED; the call
// after it on the same connection is fine.
TEST_F(Http2E2eTest, GrpcDeadlineExceededIsClientError) {
  const int port = FreePort();
  auto& server = StartGrpcServer(port);
  const auto client = RunPythonClient("grpc_client.py", {std::to_string(port), "slow:600", "echo"});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.size(), 2u);
  EXPECT_EQ(client.lines[0], "done slow:600 DEADLINE_EXCEEDED");
  ASSERT_TRUE(AwaitSpans({{client.pid, 2}, {server.pid(), 1}}, 30s));
  const auto spans = SpansOf(client.pid);
  ASSERT_EQ(spans.size(), 2u) << Describe(client.pid);
  EXPECT_EQ(spans[0].name, "zt.test.Echo/Slow");
  EXPECT_EQ(spans[0].Int("rpc.grpc.status_code"), 4) << spans[0].Describe();
  EXPECT_EQ(spans[0].status_code, kStatusError) << spans[0].Describe();
  EXPECT_EQ(spans[0].Str("error.type"), "DEADLINE_EXCEEDED") << spans[0].Describe();
  EXPECT_EQ(spans[1].name, "zt.test.Echo/Echo");
  EXPECT_EQ(spans[1].Int("rpc.grpc.status_code"), 0) << spans[1].Describe();
}

class Http2MidStreamTest : public Http2E2eTest {
 protected:
  void SetUp() override {}  // the test starts the agent itself, in the middle of things
  void StartAgent() { AgentTest::SetUp(); }
};

// The agent starts while a gRPC connection is open: its HPACK tables are unknown, so no span
// comes from it (none is decoded against a table the agent does not have) and its streams are
// counted. A connection opened after the start is fully decoded.
TEST_F(Http2MidStreamTest, StartedMidConnectionShowsNoWrongSpanAndCounts) {
  const int port = FreePort();
  auto& server = StartGrpcServer(port);
  auto& old_client =
      Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/clients/grpc_client.py",
             std::to_string(port)});
  old_client.WriteStdin("echo\n");
  ASSERT_TRUE(old_client.WaitForLine("done echo OK", 20s));
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  const size_t lines = AgentOutput().size();
  for (int i = 0; i < 3; i++) old_client.WriteStdin("count:2\n");
  ASSERT_TRUE(old_client.WaitForLine("done count:2 OK", 20s));
  ASSERT_TRUE(old_client.WaitForLine("done count:2 OK", 20s));
  ASSERT_TRUE(old_client.WaitForLine("done count:2 OK", 20s));
  // The counter moves once the agent has seen the old connection's streams.
  bool counted = false;
  for (int i = 0; i < 20 && !counted; i++) {  // a stats line a second: each try waits for one
    counted = StatsCounter("h2_table_unknown_streams", std::max(lines, AgentOutput().size()), 3s)
                  .value_or(0) >= 3;
  }
  EXPECT_TRUE(counted) << "h2_table_unknown_streams did not reach 3";
  const auto fresh = RunPythonClient("grpc_client.py", {std::to_string(port), "echo"});
  ASSERT_EQ(fresh.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{fresh.pid, 1}, {server.pid(), 1}}, 30s));
  EXPECT_TRUE(SpansOf(old_client.pid()).empty()) << Describe(old_client.pid());
  const auto served = SpansOf(server.pid());
  ASSERT_EQ(served.size(), 1u) << Describe(server.pid());
  EXPECT_EQ(served[0].name, "zt.test.Echo/Echo");
  ASSERT_EQ(SpansOf(fresh.pid).size(), 1u);
  EXPECT_EQ(served[0].parent_span_id, SpansOf(fresh.pid)[0].span_id);
}

}  // namespace
}  // namespace zerotrace::e2e
