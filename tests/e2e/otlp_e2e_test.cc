// OTLP export end to end: the real agent exports to the real tools/otlp-sink over gRPC and
// HTTP; what arrives must equal, field for field, what the agent's JSON lines exporter wrote.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "e2e_fixture.h"
#include "otlp_sink_process.h"
#include "span_log.h"
#include "subprocess.h"

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::FreePort;
using zerotrace::testing::Subprocess;
using Clock = std::chrono::steady_clock;

struct Transport {
  const char* name;
  const char* protocol;  // --otlp-protocol
  bool gzip;
};

// Sink first, then the agent exporting to it (and to its own JSON lines for comparison).
class OtlpExportTest : public AgentTest, public ::testing::WithParamInterface<Transport> {
 protected:
  void SetUp() override {
    sink_ = std::make_unique<SinkProcess>(dir(), std::vector<std::string>{});
    ASSERT_GT(sink_->grpc_port(), 0);
    ASSERT_GT(sink_->http_port(), 0);
    AgentTest::SetUp();
  }
  void TearDown() override {
    AgentTest::TearDown();
    sink_.reset();
  }
  std::vector<std::string> AgentFlags() const override {
    const bool grpc = std::string(GetParam().protocol) == "grpc";
    const int port = grpc ? sink_->grpc_port() : sink_->http_port();
    return {"--otlp-endpoint", "http://127.0.0.1:" + std::to_string(port), "--otlp-protocol",
            GetParam().protocol};
  }
  std::vector<std::string> AgentEnv() const override {
    std::vector<std::string> env = {"OTEL_EXPORTER_OTLP_HEADERS=x-team=checkout,x-env=e2e",
                                    "OTEL_RESOURCE_ATTRIBUTES=k8s.node.name=node-7"};
    if (GetParam().gzip) env.push_back("OTEL_EXPORTER_OTLP_COMPRESSION=gzip");
    return env;
  }
  std::unique_ptr<SinkProcess> sink_;
};

TEST_P(OtlpExportTest, SpansArriveEqualToTheJsonLines) {
  auto& srv = StartPythonServer();
  const auto curl = Curl({Url(srv.port, "/hello"), Url(srv.port, "/items/7?x=1")});
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{srv.pid(), 2}, {curl.pid, 2}}));  // stops the agent: flushed
  for (const pid_t pid : {srv.pid(), curl.pid}) {
    const auto got = AwaitSinkSpans(sink_->spans_path(), pid, 2, std::chrono::seconds(15));
    EXPECT_TRUE(SameSpans(SpansOf(pid), got)) << "pid " << pid;
  }
  // The agent's own exports reach a collector on this node: they never become spans there.
  EXPECT_TRUE(SpansOf(sink_->pid()).empty()) << Describe(sink_->pid());
  const auto requests = sink_->Requests();
  ASSERT_FALSE(requests.empty());
  const bool grpc = std::string(GetParam().protocol) == "grpc";
  for (const auto& r : requests) {
    EXPECT_EQ(r.value("transport", ""), grpc ? "grpc" : "http") << r.dump();
    EXPECT_EQ(r.value("encoding", ""),
              std::string(GetParam().protocol) == "http/json" ? "json" : "protobuf")
        << r.dump();
    EXPECT_EQ(r.value("gzip", false), GetParam().gzip) << r.dump();
    EXPECT_EQ(r["headers"].value("x-team", ""), "checkout") << r.dump();
    EXPECT_EQ(r["headers"].value("x-env", ""), "e2e") << r.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, OtlpExportTest,
                         ::testing::Values(Transport{"grpc", "grpc", false},
                                           Transport{"grpc_gzip", "grpc", true},
                                           Transport{"http_protobuf", "http/protobuf", false},
                                           Transport{"http_protobuf_gzip", "http/protobuf", true},
                                           Transport{"http_json", "http/json", false}),
                         [](const auto& info) { return std::string(info.param.name); });

// The collector is down when the agent starts and comes up 10 s later: nothing is lost.
class CollectorLateTest : public AgentTest {
 protected:
  void SetUp() override {
    port_ = FreePort();
    AgentTest::SetUp();
  }
  std::vector<std::string> AgentFlags() const override {
    return {"--otlp-endpoint", "http://127.0.0.1:" + std::to_string(port_), "--otlp-protocol",
            "grpc"};
  }
  int port_ = 0;
};

TEST_F(CollectorLateTest, CollectorUpTenSecondsLaterLosesNothing) {
  const auto started = Clock::now();
  auto& srv = StartPythonServer();
  constexpr int kRequests = 20;
  const auto client =
      RunPythonClient("keepalive_client.py", {std::to_string(srv.port), "--items", "20"});
  ASSERT_EQ(client.exit_code, 0);
  // The scenario: the collector stays down for 10 s after the agent started.
  while (Clock::now() < started + std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  SinkProcess sink(dir(), {}, port_, 0);
  ASSERT_EQ(sink.grpc_port(), port_);
  const auto got =
      AwaitSinkSpans(sink.spans_path(), srv.pid(), kRequests, std::chrono::seconds(40));
  EXPECT_EQ(got.size(), size_t{kRequests});
  ASSERT_TRUE(AwaitSpans({{srv.pid(), kRequests}}));
  EXPECT_TRUE(SameSpans(SpansOf(srv.pid()), got));
}

// The collector restarts mid-run: spans made while it was down reach the new instance.
class CollectorRestartTest : public AgentTest {
 protected:
  void SetUp() override {
    first_ = std::make_unique<SinkProcess>(dir(), std::vector<std::string>{}, 0, 0, "first");
    AgentTest::SetUp();
  }
  void TearDown() override {
    AgentTest::TearDown();
    first_.reset();
  }
  std::vector<std::string> AgentFlags() const override {
    return {"--otlp-endpoint", "http://127.0.0.1:" + std::to_string(first_->grpc_port()),
            "--otlp-protocol", "grpc"};
  }
  std::unique_ptr<SinkProcess> first_;
};

TEST_F(CollectorRestartTest, SpansMadeWhileItWasDownArriveAfterTheRestart) {
  auto& srv = StartPythonServer();
  const auto before = Curl({Url(srv.port, "/items/1")});
  ASSERT_EQ(before.exit_code, 0);
  ASSERT_EQ(AwaitSinkSpans(first_->spans_path(), before.pid, 1, std::chrono::seconds(15)).size(),
            1u);
  const int port = first_->grpc_port();
  first_.reset();  // SIGTERM: the collector is gone
  const auto during = Curl({Url(srv.port, "/items/2")});
  ASSERT_EQ(during.exit_code, 0);
  SinkProcess second(dir(), {}, port, 0, "second");
  ASSERT_EQ(second.grpc_port(), port);
  const auto got = AwaitSinkSpans(second.spans_path(), during.pid, 1, std::chrono::seconds(40));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].Str("url.path"), "/items/2");
  ASSERT_TRUE(AwaitSpans({{during.pid, 1}}));
  EXPECT_TRUE(SameSpans(SpansOf(during.pid), got));
}

// A collector that answers UNAVAILABLE / 503 with a retry hint, then accepts: nothing lost.
class RetryHintTest : public AgentTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    sink_ = std::make_unique<SinkProcess>(
        dir(), std::vector<std::string>{"--fail", "2", "--retry-after-ms", "300"});
    AgentTest::SetUp();
  }
  void TearDown() override {
    AgentTest::TearDown();
    sink_.reset();
  }
  std::vector<std::string> AgentFlags() const override {
    const bool grpc = std::string(GetParam()) == "grpc";
    return {"--otlp-endpoint",
            "http://127.0.0.1:" + std::to_string(grpc ? sink_->grpc_port() : sink_->http_port()),
            "--otlp-protocol", GetParam()};
  }
  std::unique_ptr<SinkProcess> sink_;
};

TEST_P(RetryHintTest, RetriesUntilAcceptedAndLosesNothing) {
  auto& srv = StartPythonServer();
  const auto curl = Curl({Url(srv.port, "/hello")});
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{srv.pid(), 1}, {curl.pid, 1}}));
  const auto got = AwaitSinkSpans(sink_->spans_path(), srv.pid(), 1, std::chrono::seconds(20));
  EXPECT_TRUE(SameSpans(SpansOf(srv.pid()), got));
  EXPECT_GE(sink_->Requests().size(), 3u);  // two refused, then accepted
}

INSTANTIATE_TEST_SUITE_P(Transports, RetryHintTest, ::testing::Values("grpc", "http/protobuf"),
                         [](const auto& info) {
                           return std::string(info.param) == "grpc" ? "grpc" : "http";
                         });

// A collector slower than the export timeout: the agent keeps consuming (every span is in its
// own JSON lines) and what it could not export is counted, not silently lost.
class SlowCollectorTest : public AgentTest {
 protected:
  void SetUp() override {
    sink_ = std::make_unique<SinkProcess>(dir(), std::vector<std::string>{"--delay-ms", "3000"});
    AgentTest::SetUp();
  }
  void TearDown() override {
    AgentTest::TearDown();
    sink_.reset();
  }
  std::vector<std::string> AgentFlags() const override {
    return {"--otlp-endpoint", "http://127.0.0.1:" + std::to_string(sink_->grpc_port()),
            "--otlp-protocol", "grpc"};
  }
  std::vector<std::string> AgentEnv() const override { return {"OTEL_EXPORTER_OTLP_TIMEOUT=300"}; }
  std::unique_ptr<SinkProcess> sink_;
};

TEST_F(SlowCollectorTest, ConsumerKeepsUpAndDropsAreCounted) {
  auto& srv = StartPythonServer();
  constexpr int kRequests = 200;
  const auto client =
      RunPythonClient("keepalive_client.py", {std::to_string(srv.port), "--items", "200"});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{srv.pid(), kRequests}}));
  EXPECT_EQ(SpansOf(srv.pid()).size(), size_t{kRequests});
  std::string stats;
  for (const auto& line : AgentOutput()) {
    if (line.find("zerotrace: stats") != std::string::npos) stats = line;
  }
  // "key=value" pairs of the agent's final stats line.
  std::map<std::string, uint64_t> kv;
  std::istringstream words(stats);
  for (std::string w; words >> w;) {
    const size_t eq = w.find('=');
    if (eq != std::string::npos)
      kv[w.substr(0, eq)] = std::strtoull(w.c_str() + eq + 1, nullptr, 10);
  }
  // Whether a retry starts before SIGTERM is a matter of timing; a failed attempt is not.
  ASSERT_TRUE(kv.count("otlp_attempts_retryable_failed")) << stats;
  EXPECT_GT(kv["otlp_attempts_retryable_failed"], 0u) << stats;
  // Every span the slow collector did not take is in a drop counter.
  EXPECT_GT(kv["otlp_spans_dropped_retry_exhausted"] + kv["otlp_spans_dropped_shutdown"] +
                kv["spans_dropped_full"],
            0u)
      << stats;
  EXPECT_EQ(kv["otlp_spans_ok"] + kv["otlp_spans_dropped_retry_exhausted"] +
                kv["otlp_spans_dropped_shutdown"] + kv["otlp_spans_dropped_non_retryable"] +
                kv["spans_dropped_full"] + kv["spans_dropped_stopping"],
            kv["spans"])
      << stats;
}

// Misconfiguration is a clear start-up error with a non-zero exit.
TEST(OtlpConfigErrors, BadEndpointOrProtocolExitsNonZero) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  } cases[] = {
      {{"--otlp-endpoint", "ftp://127.0.0.1:4317"}, "ftp://127.0.0.1:4317"},
      {{"--otlp-endpoint", "http://"}, "http://"},
      {{"--otlp-endpoint", "http://127.0.0.1:4317", "--otlp-protocol", "carrier-pigeon"},
       "carrier-pigeon"},
  };
  for (const auto& c : cases) {
    std::string cmd = std::string("exec ") + ZT_AGENT;
    for (const auto& a : c.args) cmd += " '" + a + "'";
    Subprocess p({"/bin/sh", "-c", cmd + " 2>&1"});
    std::string out;
    while (auto line = p.ReadLine(std::chrono::seconds(20))) out += *line + "\n";
    EXPECT_EQ(p.Wait(std::chrono::seconds(20)), 2) << cmd << "\n" << out;
    EXPECT_NE(out.find(c.want), std::string::npos) << cmd << "\n" << out;
  }
}

}  // namespace
}  // namespace zerotrace::e2e
