// End-to-end: what is still in the ring buffer when the agent is told to stop is delivered.
//
// The agent is frozen (SIGSTOP) while a real client makes a burst of requests to a real
// server, so the burst's records wait in the ring buffer, as they do when a stop comes while
// the consumer is behind; then SIGTERM and SIGCONT, with no wait for the agent to catch up.
// Every request must be in the span log, or counted as lost in the exit stats line.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "e2e_fixture.h"

namespace zerotrace::e2e {
namespace {

// Enough records (about five per request: two syscalls per side and the server's reply) for
// several of the consumer's per-poll budgets (4096 records).
constexpr int kRequests = 2500;

class StopDrainE2eTest : public AgentTest {
 protected:
  // Room for the whole burst, so that the kernel drops nothing for want of space.
  std::vector<std::string> AgentFlags() const override {
    return {"--ringbuf-bytes", std::to_string(64u << 20)};
  }
};

// Resumes the frozen agent on every path out of the test.
struct Thaw {
  pid_t pid;
  ~Thaw() { kill(pid, SIGCONT); }
};

TEST_F(StopDrainE2eTest, RecordsWaitingInTheRingBufferAtStopBecomeSpans) {
  auto& srv = StartPythonServer();
  ASSERT_EQ(kill(agent_pid(), SIGSTOP), 0);
  Thaw thaw{agent_pid()};
  const auto client = RunPythonClient(
      "keepalive_client.py", {std::to_string(srv.port), "--items", std::to_string(kRequests)});
  ASSERT_EQ(client.exit_code, 0);
  ASSERT_EQ(client.lines.back(), "done");
  const size_t lines_before = AgentOutput().size();
  // The stop comes first, then the agent runs again: it never sees the burst before the stop.
  ASSERT_EQ(kill(agent_pid(), SIGTERM), 0);
  ASSERT_EQ(kill(agent_pid(), SIGCONT), 0);
  StopAgent();
  const auto kernel_drops = StatsCounter("ringbuf_reserve_failed", lines_before, 0s);
  ASSERT_TRUE(kernel_drops.has_value()) << "no final stats line";
  EXPECT_EQ(*kernel_drops, 0u) << "the ring buffer overflowed: the test proves nothing";
  const auto lost = StatsCounter("ring_lost_at_stop", lines_before, 0s);
  EXPECT_TRUE(lost.has_value()) << "the final stats line has no ring_lost_at_stop";
  const size_t server_spans = SpansOf(srv.pid()).size();
  const size_t client_spans = SpansOf(client.pid).size();
  if (lost.value_or(0) == 0) {
    EXPECT_EQ(server_spans, static_cast<size_t>(kRequests));
    EXPECT_EQ(client_spans, static_cast<size_t>(kRequests));
  } else {
    // A stop cut short by its deadline: the records left behind are counted, not silent.
    EXPECT_LT(server_spans + client_spans, 2u * kRequests);
  }
}

}  // namespace
}  // namespace zerotrace::e2e
