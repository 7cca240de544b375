// End-to-end: servers and clients that move their bytes in unusual ways (MSG_PEEK before each
// read, splice() through a pipe, a dup2()'d fd) still get exactly their spans, paired right,
// and the two ends of a connection on this node still link.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "http_expect.h"
#include "span_log.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::FreePort;
using zerotrace::testing::Subprocess;

class SocketEdgeE2eTest : public AgentTest {
 protected:
  // tests/e2e/servers/edge_server.py in `mode`, ready to serve.
  Server StartEdgeServer(const std::string& mode) {
    Server s;
    s.port = FreePort();
    Subprocess& p =
        Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/edge_server.py",
               std::to_string(s.port), mode});
    EXPECT_TRUE(p.WaitForLine("ready", zerotrace::testing::kServerStartDeadline))
        << "edge server did not start: " << zerotrace::testing::DescribeProcess(p.pid());
    server_pid_ = p.pid();
    return s;
  }
  pid_t server_pid_ = -1;
};

// Envoy's inspectors (every Istio inbound connection) peek before they read: the peeked bytes
// must not enter the stream, or the server reports phantom requests paired with the next
// request's response.
TEST_F(SocketEdgeE2eTest, ServerThatPeeksBeforeEachReadGetsOneSpanPerRequest) {
  constexpr int kRequests = 6;
  const Server srv = StartEdgeServer("peek");
  const auto client = RunPythonClient(
      "keepalive_client.py", {std::to_string(srv.port), "--items", std::to_string(kRequests)});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.back(), "done");

  ASSERT_TRUE(AwaitSpans({{server_pid_, kRequests}, {client.pid, kRequests}}));
  const auto xs = Items(kRequests);
  EXPECT_TRUE(
      SpansAre(server_pid_, Spans(kServer, xs, srv.port, client.local_port, "zt-keepalive/1.0",
                                  std::vector<std::string>{"edge_server"})));
  EXPECT_TRUE(SpansAre(client.pid, Spans(kClient, xs, srv.port, 0, "zt-keepalive/1.0",
                                         PythonClientService("keepalive_client"))));
}

// Proxies (haproxy, Go's io.Copy between sockets) splice bodies through a pipe: the server
// here splices each request body out of the socket and each response body into it. Those
// bytes are counted, so the spliced exchange and every later one on the connection pair with
// their own responses, and none is reported unanswered.
TEST_F(SocketEdgeE2eTest, SplicedBodiesKeepEveryExchangePairedRight) {
  const Server srv = StartEdgeServer("splice");
  std::vector<Exchange> xs = Items(6);
  xs[1] = {"POST", ItemTarget(1), ItemStatus(1), ItemBody(1), 3000};
  xs[4] = {"POST", ItemTarget(4), ItemStatus(4), ItemBody(4), 70000};  // more than a pipe holds
  std::vector<std::string> args = {std::to_string(srv.port)};
  for (const Exchange& x : xs) {
    args.push_back(x.method + ":" + x.target +
                   (x.req_body ? ":" + std::to_string(x.req_body) : ""));
  }
  const auto client = RunPythonClient("keepalive_client.py", args);
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.back(), "done");

  ASSERT_TRUE(AwaitSpans({{server_pid_, xs.size()}, {client.pid, xs.size()}}));
  EXPECT_TRUE(
      SpansAre(server_pid_, Spans(kServer, xs, srv.port, client.local_port, "zt-keepalive/1.0",
                                  std::vector<std::string>{"edge_server"})));
  EXPECT_TRUE(SpansAre(client.pid, Spans(kClient, xs, srv.port, 0, "zt-keepalive/1.0",
                                         PythonClientService("keepalive_client"))));
}

// Both ends move their connection onto another fd with dup2() and close the first: the spans
// are exact, and each server span is the child of its client span (same-node link by the
// mirrored connection and stream position).
TEST_F(SocketEdgeE2eTest, Dup2OnBothEndsKeepsClientAndServerLinked) {
  constexpr int kRequests = 4;
  const Server srv = StartEdgeServer("dup");
  const auto client =
      RunPythonClient("dup_client.py", {std::to_string(srv.port), std::to_string(kRequests)});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.back(), "done");

  ASSERT_TRUE(AwaitSpans({{server_pid_, kRequests}, {client.pid, kRequests}}));
  const auto xs = Items(kRequests);
  EXPECT_TRUE(SpansAre(server_pid_, Spans(kServer, xs, srv.port, client.local_port, "zt-dup/1.0",
                                          std::vector<std::string>{"edge_server"})));
  EXPECT_TRUE(SpansAre(client.pid, Spans(kClient, xs, srv.port, 0, "zt-dup/1.0",
                                         PythonClientService("dup_client"))));
  const std::vector<Span> servers = SpansOf(server_pid_), clients = SpansOf(client.pid);
  ASSERT_EQ(servers.size(), clients.size());
  for (size_t i = 0; i < servers.size(); i++) {
    EXPECT_EQ(servers[i].parent_span_id, clients[i].span_id)
        << "request " << i << ": " << servers[i].Describe();
    EXPECT_EQ(servers[i].trace_id, clients[i].trace_id) << "request " << i;
  }
}

}  // namespace
}  // namespace zerotrace::e2e
