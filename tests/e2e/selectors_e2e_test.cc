// Selectors end to end (a real config file): what is excluded makes no span, a process left
// out is then filtered in the kernel, and the agent's own export traffic is never traced.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "e2e_fixture.h"
#include "otlp_sink_process.h"

namespace zerotrace::e2e {
namespace {

constexpr char kSkippedName[] = "zt-skip-me";

// The agent reads its selectors from a YAML file and exports to a local otlp-sink over HTTP:
// the agent's own exports must not become spans, on either side.
class SelectorsTest : public AgentTest {
 protected:
  void SetUp() override {
    sink_ = std::make_unique<SinkProcess>(dir(), std::vector<std::string>{});
    ASSERT_GT(sink_->http_port(), 0);
    config_ = dir() + "/config.yaml";
    std::ofstream(config_) << "stats-interval: 1\n"
                           << "otlp-endpoint: http://127.0.0.1:" << sink_->http_port() << "\n"
                           << "exclude:\n"
                           << "  exe: ['*/curl']\n"
                           << "  comm: [" << kSkippedName << "]\n";
    AgentTest::SetUp();
  }
  void TearDown() override {
    AgentTest::TearDown();
    sink_.reset();
  }
  std::vector<std::string> AgentFlags() const override { return {"--config", config_}; }

  std::unique_ptr<SinkProcess> sink_;
  std::string config_;
};

TEST_F(SelectorsTest, ExcludedProcessesMakeNoSpansAndAreThenFilteredInTheKernel) {
  auto& srv = StartPythonServer();
  const auto curl = Curl({Url(srv.port, "/from-curl")});
  ASSERT_EQ(curl.exit_code, 0);
  auto& client =
      Spawn({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/clients/new_conn_client.py",
             std::to_string(srv.port), kSkippedName});
  ASSERT_TRUE(client.WaitForLine("response 1", 20s));
  // The first connection of the skipped process has been judged (userspace) ...
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (StatsCounter("conns_deselected", 0, 2s).value_or(0) +
             StatsCounter("conns_undecided", 0, 2s).value_or(0) <
         2) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the selectors judged nothing";
  }
  // ... so its next connections never reach userspace: the kernel skips the process.
  client.WriteStdin("3\n");
  ASSERT_TRUE(client.WaitForLine("response 4", 20s));
  client.WriteStdin("q\n");
  // The server (not excluded) saw all five requests; once its spans are in, so is everything
  // the kernel sent about the client's connections.
  ASSERT_TRUE(AwaitSpans({{srv.pid(), 5}}));
  EXPECT_TRUE(SpansOf(curl.pid).empty()) << Describe(curl.pid);
  EXPECT_TRUE(SpansOf(client.pid()).empty()) << Describe(client.pid());
  // curl's connection and the client's first: judged and left out; the other three never
  // came.
  EXPECT_EQ(StatsCounter("conns_deselected", 0).value_or(99) +
                StatsCounter("conns_undecided", 0).value_or(99),
            2u);
  // The agent exported to the sink on this node all along: neither side became a span.
  ASSERT_FALSE(sink_->Requests().empty());
  EXPECT_TRUE(SpansOf(agent_pid()).empty()) << Describe(agent_pid());
  EXPECT_TRUE(SpansOf(sink_->pid()).empty()) << Describe(sink_->pid());
}

}  // namespace
}  // namespace zerotrace::e2e
