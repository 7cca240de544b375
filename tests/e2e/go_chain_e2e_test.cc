// End-to-end goroutine causality: curl -> Go front -> Go back (tests/e2e/go/gochain.go, built
// here with Debian's golang-go), 8 requests at a time, over plain HTTP and over HTTPS. The front
// propagates nothing and calls a path unlike the incoming one, from the handler's goroutine or
// from a child goroutine it starts, so only the goroutine evidence can parent each call: every
// span must be there and every edge right (none missing, none wrong).
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "go_build.h"
#include "span_log.h"

#ifndef ZT_GO_CHAIN_SOURCE
#error "ZT_GO_CHAIN_SOURCE must name tests/e2e/go/gochain.go"
#endif

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::FreePort;
using zerotrace::testing::Subprocess;
using zerotrace::testing::SuiteGoBuild;

constexpr int kRequests = 24;  // half /up/N (call from the handler), half /spawn/N (child)
constexpr int kParallel = 8;

// The front's call for an incoming path, as gochain.go makes it.
std::string CallFor(const std::string& path) {
  const size_t slash = path.rfind('/');
  const int n = std::stoi(path.substr(slash + 1));
  const std::string kind = path.substr(0, slash) == "/up" ? "/down/q" : "/spawned/q";
  return kind + std::to_string(n + 500);
}

class GoChainE2eTest : public AgentTest {
 protected:
  static void SetUpTestSuite() {
    go_ = new SuiteGoBuild(
        {{ZT_GO_CHAIN_SOURCE, "gochain", ""}, {ZT_GO_CHAIN_SOURCE, "gochain-stripped", "-s -w"}});
  }
  static void TearDownTestSuite() { delete go_; }
  static const std::string& Full() { return go_->binaries[0]; }
  static const std::string& Stripped() { return go_->binaries[1]; }

  std::vector<std::string> AgentFlags() const override { return {"--stats-interval", "1"}; }

  void SetUp() override {
    ASSERT_TRUE(go_->ok()) << go_->error;
    AgentTest::SetUp();
    ASSERT_NO_FATAL_FAILURE(MakeCertificate(&cert_, &key_));
  }

  std::optional<uint64_t> Counter(const std::string& name) {
    return StatsCounter(name, AgentOutput().size(), 5s);
  }

  // gochain back|front on a free port, once it says it listens.
  std::pair<pid_t, int> StartGo(const std::string& binary, const std::string& scheme,
                                int back_port = 0) {
    const int port = FreePort();
    std::vector<std::string> argv = {
        binary, back_port ? "front" : "back", std::to_string(port), scheme, cert_, key_};
    if (back_port) argv.push_back(std::to_string(back_port));
    Subprocess& p = Spawn(argv);
    EXPECT_TRUE(p.WaitForLine("ready", zerotrace::testing::kServerStartDeadline))
        << binary << " did not start";
    return {p.pid(), port};
  }

  void RunChain(const std::string& scheme, const std::string& front_binary) {
    const auto attached = Counter("tls_files_attached");
    ASSERT_TRUE(attached.has_value());
    // The back is the other build: each file is probed once, so two files say both are.
    const auto [back, back_port] = StartGo(front_binary == Full() ? Stripped() : Full(), scheme);
    const auto [front, front_port] = StartGo(front_binary, scheme, back_port);
    std::optional<uint64_t> now;
    for (int i = 0; i < 20 && !(now && *now >= *attached + 2); i++)
      now = Counter("tls_files_attached");
    ASSERT_TRUE(now && *now >= *attached + 2) << "the Go binaries were not probed";

    std::vector<std::string> argv = {
        "curl",      "-sS",        "--max-time",     "30",
        "--http1.1", "--parallel", "--parallel-max", std::to_string(kParallel)};
    if (scheme == "https") argv.insert(argv.end(), {"--cacert", cert_});
    for (int n = 0; n < kRequests; n++) {
      const std::string path = (n % 2 ? "/spawn/" : "/up/") + std::to_string(n);
      argv.insert(argv.end(), {"-o", "/dev/null", "-w", "%{http_code}\\n",
                               scheme + "://127.0.0.1:" + std::to_string(front_port) + path});
    }
    const ClientRun curl = Run(argv, 60s);
    ASSERT_EQ(curl.exit_code, 0);
    ASSERT_EQ(curl.lines, std::vector<std::string>(kRequests, "200"));
    ASSERT_TRUE(
        AwaitSpans({{curl.pid, kRequests}, {front, 2 * kRequests}, {back, kRequests}}, 30s));

    // Every span, by process, kind and path: exactly one each.
    std::map<std::string, const Span*> curl_of, front_server_of, front_client_of, back_of;
    auto index = [](pid_t pid, int kind, const std::vector<Span>& spans,
                    std::map<std::string, const Span*>* out) {
      for (const Span& s : spans) {
        if (s.kind != kind) continue;
        const std::string path = s.Str("url.path").value_or("");
        EXPECT_TRUE(out->emplace(path, &s).second) << "two spans for " << path << " in " << pid;
      }
    };
    const auto curl_spans = SpansOf(curl.pid), front_spans = SpansOf(front),
               back_spans = SpansOf(back);
    index(curl.pid, kClient, curl_spans, &curl_of);
    index(front, kServer, front_spans, &front_server_of);
    index(front, kClient, front_spans, &front_client_of);
    index(back, kServer, back_spans, &back_of);
    ASSERT_EQ(curl_of.size(), size_t{kRequests});
    ASSERT_EQ(front_server_of.size(), size_t{kRequests});
    ASSERT_EQ(front_client_of.size(), size_t{kRequests});
    ASSERT_EQ(back_of.size(), size_t{kRequests});

    int right = 0, wrong = 0, missing = 0;
    for (const auto& [path, server] : front_server_of) {
      const std::string call = CallFor(path);
      const Span* curl_span = curl_of[path];
      const Span* client = front_client_of[call];
      const Span* backend = back_of[call];
      ASSERT_TRUE(curl_span && client && backend) << path;
      EXPECT_EQ(server->parent_span_id, curl_span->span_id) << server->Describe();
      EXPECT_EQ(backend->parent_span_id, client->span_id) << backend->Describe();
      EXPECT_EQ(backend->trace_id, curl_span->trace_id) << backend->Describe();
      // The goroutine edge: the front's call under the request its handler served.
      if (client->parent_span_id.empty()) {
        missing++;
      } else if (client->parent_span_id == server->span_id) {
        right++;
      } else {
        wrong++;
      }
      EXPECT_EQ(client->parent_span_id, server->span_id)
          << "call " << call << " of " << path << ": " << client->Describe();
    }
    std::cout << "go chain over " << scheme << ": front SERVER -> CLIENT edges " << right
              << " right, " << missing << " missing, " << wrong << " wrong of " << kRequests
              << "\n";
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(right, kRequests);
  }

  static SuiteGoBuild* go_;
  std::string cert_, key_;
};
SuiteGoBuild* GoChainE2eTest::go_ = nullptr;

// Plain HTTP: the front's field offsets from DWARF.
TEST_F(GoChainE2eTest, PlainHttpChainUnderConcurrencyHasEveryEdge) { RunChain("http", Full()); }

// HTTPS: the front stripped, its field offsets from the per-release table.
TEST_F(GoChainE2eTest, TlsChainUnderConcurrencyHasEveryEdge) { RunChain("https", Stripped()); }

}  // namespace
}  // namespace zerotrace::e2e
