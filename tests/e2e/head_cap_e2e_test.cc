// Response bodies the kernel does not copy (issue 17): once an HTTP/1 connection has shown
// responses framed by Content-Length with heads of a steady size, the agent caps what the
// kernel copies of each syscall that carries them (the client's receives, the server's sends),
// and the bodies past the cap reach the parser as gaps of known length. Every exchange must
// still be paired and sized exactly at both ends; a head that outgrows the cap lifts it, and
// costs at most that response's body size, never a pairing.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "e2e_fixture.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::FreePort;
using zerotrace::testing::kServerStartDeadline;

constexpr int kBodyBase = 2000;  // /r/N is answered with kBodyBase + N body bytes

class HeadCapTest : public AgentTest {
 protected:
  // A one-connection keep-alive server; from request `pad_from` on its heads carry 1000 more
  // bytes (0: never). HTTPS after UseTls().
  zerotrace::testing::Subprocess& StartServer(int port, int pad_from) {
    std::vector<std::string> argv = {"/usr/bin/python3", "-B",
                                     std::string(ZT_E2E_DIR) + "/servers/stepped_server.py"};
    if (!cert_.empty()) argv.insert(argv.end(), {"--tls", cert_, key_});
    argv.insert(argv.end(), {std::to_string(port), "whole", std::to_string(kBodyBase),
                             std::to_string(pad_from)});
    auto& s = Spawn(argv);
    EXPECT_TRUE(s.WaitForLine("listening", kServerStartDeadline));
    return s;
  }
  zerotrace::testing::Subprocess& StartClient(int port) {
    std::vector<std::string> argv = {"/usr/bin/python3", "-B",
                                     std::string(ZT_E2E_DIR) + "/clients/stepped_client.py"};
    if (!cert_.empty()) argv.insert(argv.end(), {"--tls", cert_});
    argv.push_back(std::to_string(port));
    return Spawn(argv);
  }
  void UseTls() { MakeCertificate(&cert_, &key_); }
  // Sends `n` more requests (in one write when `pipelined`) and waits until the client has
  // read response `last`.
  void Step(zerotrace::testing::Subprocess& client, int n, int last, bool pipelined = false) {
    client.WriteStdin((pipelined ? "P " : "") + std::to_string(n) + "\n");
    ASSERT_TRUE(client.WaitForLine("response " + std::to_string(last), 20s));
  }

  // The spans of `pid` are requests 1..last in order, each of `kind` and answered 200 with the
  // body /r/N gets; `unsized` lists requests whose head the cap cut: their body size is
  // unknown, so absent (never wrong).
  void ExpectExchanges(pid_t pid, int kind, int last, const std::vector<int>& unsized = {}) {
    std::vector<int> got;
    for (const Span& s : SpansOf(pid)) {
      EXPECT_EQ(s.kind, kind) << s.Describe();
      const std::string path = s.Str("url.path").value_or("?");
      ASSERT_EQ(path.rfind("/r/", 0), 0u) << s.Describe();
      const int n = std::stoi(path.substr(3));
      EXPECT_EQ(s.Int("http.response.status_code"), 200) << s.Describe();
      const auto size = s.Int("http.response.body.size");
      if (std::find(unsized.begin(), unsized.end(), n) != unsized.end()) {
        EXPECT_FALSE(size.has_value()) << "a cut head's body size: " << s.Describe();
      } else {
        EXPECT_EQ(size, kBodyBase + n) << "mispaired or missized: " << s.Describe();
      }
      got.push_back(n);
    }
    std::vector<int> want;
    for (int n = 1; n <= last; n++) want.push_back(n);
    EXPECT_EQ(got, want) << Describe(pid);
  }

  // Starts the server (heads padded from request `pad_from`) and the client, and runs requests
  // 1..5. The agent has handled the fourth exchanges (the caps are set) once it made the fifth
  // spans, which this waits for.
  void StartAndLearn(int pad_from) {
    const int port = FreePort();
    server_ = &StartServer(port, pad_from);
    client_ = &StartClient(port);
    ASSERT_TRUE(client_->WaitForLine("response 1", 10s));
    ASSERT_NO_FATAL_FAILURE(Step(*client_, 4, 5));
    ASSERT_TRUE(WaitForSpans({{client_->pid(), 5}, {server_->pid(), 5}}));
  }

  // Four exchanges teach the head size, six more are capped; all eleven stay exact.
  void CapsSixOfEleven() {
    ASSERT_NO_FATAL_FAILURE(StartAndLearn(0));
    auto& server = *server_;
    auto& client = *client_;
    ASSERT_NO_FATAL_FAILURE(Step(client, 6, 11));
    ASSERT_TRUE(AwaitSpans({{client.pid(), 11}, {server.pid(), 11}}));
    ExpectExchanges(client.pid(), kClient, 11);
    ExpectExchanges(server.pid(), kServer, 11);
    EXPECT_EQ(StatsCounter("head_caps_set", 0), 2u);  // the client's and the server's
    EXPECT_EQ(StatsCounter("head_caps_lifted", 0), 0u);
    // Responses 6..11 were capped at both ends: each ~2 KB send and read copied 256 bytes.
    const auto capped = StatsCounter("head_cap_bytes_skipped", 0);
    ASSERT_TRUE(capped.has_value());
    EXPECT_GE(*capped, 2u * 6u * (kBodyBase - 256));
  }

  std::string cert_, key_;                            // HTTPS when set
  zerotrace::testing::Subprocess* server_ = nullptr;  // StartAndLearn's
  zerotrace::testing::Subprocess* client_ = nullptr;
};

// Four clean exchanges teach the head size; the six after it are capped in the kernel, and
// every one of the eleven is paired and sized at both ends.
TEST_F(HeadCapTest, BodiesPastTheLearntHeadSizeAreNotCopiedAndEveryExchangeStaysExact) {
  CapsSixOfEleven();
}

// The same over HTTPS: the TLS plaintext of the client's reads and the server's writes
// (OpenSSL's uprobes) is capped.
TEST_F(HeadCapTest, TlsPlaintextIsCappedAlike) {
  ASSERT_NO_FATAL_FAILURE(UseTls());
  CapsSixOfEleven();
}

// Response 8's head is 1000 bytes longer than the learnt ones, so the caps cut it at both
// ends: that response keeps its status and loses its body size, the caps are lifted, and the
// requests after it are paired and sized as before.
TEST_F(HeadCapTest, AHeadLargerThanTheCapLiftsItAndCostsOnlyThatBodySize) {
  ASSERT_NO_FATAL_FAILURE(StartAndLearn(8));
  auto& server = *server_;
  auto& client = *client_;
  ASSERT_NO_FATAL_FAILURE(Step(client, 3, 8));
  // The cut heads were handled: caps lifted.
  ASSERT_TRUE(WaitForSpans({{client.pid(), 8}, {server.pid(), 8}}));
  ASSERT_NO_FATAL_FAILURE(Step(client, 3, 11));
  ASSERT_TRUE(AwaitSpans({{client.pid(), 11}, {server.pid(), 11}}));
  ExpectExchanges(client.pid(), kClient, 11, {8});
  ExpectExchanges(server.pid(), kServer, 11, {8});
  EXPECT_EQ(StatsCounter("head_caps_set", 0), 2u);
  EXPECT_EQ(StatsCounter("head_caps_lifted", 0), 2u);
}

// A client that pipelines, two requests per write: two responses can share one of its
// receives (and, at the server, one read holds two requests). A cap would hide the second
// response in the gap after the first's head, so neither end is ever capped, and all eleven
// exchanges are exact at both ends.
TEST_F(HeadCapTest, APipeliningClientIsNeverCapped) {
  const int port = FreePort();
  auto& server = StartServer(port, 0);
  auto& client = StartClient(port);
  ASSERT_TRUE(client.WaitForLine("response 1", 10s));
  for (int last = 3; last <= 11; last += 2) {
    ASSERT_NO_FATAL_FAILURE(Step(client, 2, last, /*pipelined=*/true));
  }
  ASSERT_TRUE(AwaitSpans({{client.pid(), 11}, {server.pid(), 11}}));
  ExpectExchanges(client.pid(), kClient, 11);
  ExpectExchanges(server.pid(), kServer, 11);
  EXPECT_EQ(StatsCounter("head_caps_set", 0), 0u);
}

}  // namespace
}  // namespace zerotrace::e2e
