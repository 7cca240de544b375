// An agent started in the middle of a connection's life (an upgrade, a restart): a keep-alive
// connection whose response was half sent, and a server thread blocked in read(). The
// connection must not go dark: both ends resynchronise at the next request (issue 18, items
// 1 and 16), and no exchange is ever paired wrongly.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "e2e_fixture.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::FreePort;
using zerotrace::testing::kServerStartDeadline;

class MidStreamTest : public AgentTest {
 protected:
  void SetUp() override {}  // each test starts the agent itself, in the middle of things
  void StartAgent() { AgentTest::SetUp(); }

  zerotrace::testing::Subprocess& StartServer(int port, const std::string& mode) {
    auto& s =
        Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/stepped_server.py",
               std::to_string(port), mode});
    EXPECT_TRUE(s.WaitForLine("listening", kServerStartDeadline));
    return s;
  }
  zerotrace::testing::Subprocess& StartClient(int port) {
    return Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/clients/stepped_client.py",
                  std::to_string(port)});
  }

  // Every span of `pid` answers the request it names (/r/N got 10 + N body bytes), is of
  // `kind`, and together they are requests `first`..`last` in order.
  void ExpectExchanges(pid_t pid, int kind, int first, int last) {
    const std::vector<Span> spans = SpansOf(pid);
    std::vector<int> got;
    for (const Span& s : spans) {
      EXPECT_EQ(s.kind, kind) << s.Describe();
      const std::string path = s.Str("url.path").value_or("?");
      ASSERT_EQ(path.rfind("/r/", 0), 0u) << s.Describe();
      const int n = std::stoi(path.substr(3));
      EXPECT_EQ(s.Int("http.response.body.size"), 10 + n) << "mispaired: " << s.Describe();
      EXPECT_EQ(s.Int("http.response.status_code"), 200) << s.Describe();
      got.push_back(n);
    }
    std::vector<int> want;
    for (int n = first; n <= last; n++) want.push_back(n);
    EXPECT_EQ(got, want) << Describe(pid);
  }
};

// Item 1: the server has sent the response head and half the body when the agent starts; the
// rest follows, then five more requests on the same connection. Both sides report all five.
TEST_F(MidStreamTest, StartedMidResponseTracesTheNextRequestsOnBothSides) {
  const int port = FreePort();
  auto& server = StartServer(port, "split");
  auto& client = StartClient(port);
  ASSERT_TRUE(client.WaitForLine("sent 1", 10s));
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  server.WriteStdin("go\n");
  ASSERT_TRUE(client.WaitForLine("response 1", 10s));
  client.WriteStdin("5\n");
  ASSERT_TRUE(client.WaitForLine("response 6", 20s));
  ASSERT_TRUE(AwaitSpans({{client.pid(), 5}, {server.pid(), 5}}));
  ExpectExchanges(client.pid(), kClient, 2, 6);
  ExpectExchanges(server.pid(), kServer, 2, 6);
}

// Item 16: the server's thread is blocked in recv() when the agent starts, so the read that
// returns the next request was entered before the probes. A receive needs no sys_enter program
// (its exit reads the arguments from the saved registers): that request is seen too, and every
// later one, on both sides.
TEST_F(MidStreamTest, ServerBlockedInReadAtStartTracesTheFollowingRequests) {
  const int port = FreePort();
  auto& server = StartServer(port, "whole");
  auto& client = StartClient(port);
  ASSERT_TRUE(client.WaitForLine("response 1", 10s));
  ASSERT_TRUE(server.WaitForLine("served 1", 10s));  // its thread goes back into recv()
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  client.WriteStdin("5\n");
  ASSERT_TRUE(client.WaitForLine("response 6", 20s));
  ASSERT_TRUE(AwaitSpans({{client.pid(), 5}, {server.pid(), 5}}));
  ExpectExchanges(client.pid(), kClient, 2, 6);
  ExpectExchanges(server.pid(), kServer, 2, 6);  // /r/2: read by the recv() in progress at start
}

}  // namespace
}  // namespace zerotrace::e2e
