// Export faults end to end: the real agent exporting to a collector that is not there, to a
// full disk and to a pipe whose reader left. The headline counters say what reached its
// destination, the stop does not wait for what cannot come, no secret reaches stderr.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "subprocess.h"

#ifndef ZT_AGENT
#error "ZT_AGENT must name the agent binary"
#endif
#ifndef ZT_E2E_DIR
#error "ZT_E2E_DIR must name tests/e2e"
#endif

namespace zerotrace::e2e {
namespace {

using namespace std::chrono_literals;
using zerotrace::testing::FreePort;
using zerotrace::testing::kServerStartDeadline;
using zerotrace::testing::Subprocess;
using zerotrace::testing::TempDir;
using Clock = std::chrono::steady_clock;
using Stats = std::map<std::string, uint64_t>;

// "key=value" pairs of a "zerotrace: stats ..." line.
Stats ParseStats(const std::string& line) {
  Stats kv;
  std::istringstream words(line);
  for (std::string w; words >> w;) {
    const size_t eq = w.find('=');
    if (eq != std::string::npos)
      kv[w.substr(0, eq)] = std::strtoull(w.c_str() + eq + 1, nullptr, 10);
  }
  return kv;
}

// The agent with stdout and stderr on one pipe; every line it printed is kept.
class Agent {
 public:
  Agent(const std::string& args, std::vector<std::string> env = {})
      : proc_({"/bin/sh", "-c", std::string("exec ") + ZT_AGENT + " " + args + " 2>&1"},
              std::move(env)) {}

  // Reads lines until one contains `needle` (true) or `timeout` passes.
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto line = proc_.ReadLine(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
      if (!line) return false;
      lines_.push_back(*line);
      if (line->find(needle) != std::string::npos) return true;
    }
    return false;
  }
  // Reads stats lines until `key` reaches `at_least`.
  bool WaitForStat(const std::string& key, uint64_t at_least, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (!WaitFor("zerotrace: stats", std::chrono::duration_cast<std::chrono::milliseconds>(
                                           deadline - Clock::now()))) {
        return false;
      }
      if (ParseStats(lines_.back())[key] >= at_least) return true;
    }
    return false;
  }
  // SIGTERM; reads the rest of the output; the exit status (-1: still running after 40 s).
  int Stop() {
    const auto signalled = Clock::now();
    kill(proc_.pid(), SIGTERM);
    return Finish(signalled);
  }
  // Waits for an exit the agent decides itself.
  int WaitExit(std::chrono::milliseconds timeout) { return Finish(Clock::now(), timeout); }

  std::chrono::milliseconds exit_time() const { return exit_time_; }
  const std::vector<std::string>& lines() const { return lines_; }
  std::string Output() const {
    std::string all;
    for (const auto& l : lines_) all += l + "\n";
    return all;
  }
  Stats FinalStats() const {
    for (auto it = lines_.rbegin(); it != lines_.rend(); ++it) {
      if (it->find("zerotrace: stats") != std::string::npos) return ParseStats(*it);
    }
    return {};
  }
  pid_t pid() const { return proc_.pid(); }

 private:
  int Finish(Clock::time_point since, std::chrono::milliseconds timeout = 40s) {
    const auto deadline = Clock::now() + timeout;
    // Lines until EOF: the agent has exited (sh exec'd it, so it holds the pipe's last end).
    while (auto line = proc_.ReadLine(
               std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()))) {
      lines_.push_back(*line);
    }
    exit_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since);
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return proc_.Wait(std::max(left, std::chrono::milliseconds(1000)));
  }
  Subprocess proc_;
  std::vector<std::string> lines_;
  std::chrono::milliseconds exit_time_{-1};
};

struct Server {
  Server() : port(FreePort()) {
    proc = std::make_unique<Subprocess>(std::vector<std::string>{
        "/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/http_server.py",
        std::to_string(port)});
    ready = proc->WaitForLine("ready", kServerStartDeadline).has_value();
  }
  int port;
  bool ready = false;
  std::unique_ptr<Subprocess> proc;
};

// `n` requests with curl, one connection each; true when all succeeded.
bool Requests(int port, int n, const std::string& target = "/hello") {
  for (int i = 0; i < n; i++) {
    Subprocess curl(
        {"curl", "-s", "-o", "/dev/null", "http://127.0.0.1:" + std::to_string(port) + target});
    if (curl.Wait(30s) != 0) return false;
  }
  return true;
}

// The agent exports to a collector that is down for the whole run.
class CollectorDownTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CollectorDownTest, NothingCountsAsExportedAndTheStopDoesNotWaitForIt) {
  Server server;
  ASSERT_TRUE(server.ready);
  // Nothing listens there; the token must never be printed.
  const std::string endpoint =
      "http://127.0.0.1:" + std::to_string(FreePort()) + "/v1/traces?token=S3CRET-TOKEN";
  // A long export timeout: waiting for the collector at the stop would show as 20 s.
  Agent agent("--otlp-endpoint '" + endpoint + "' --otlp-protocol " + GetParam() +
                  " --stats-interval 1 --pid " + std::to_string(server.proc->pid()),
              {"OTEL_EXPORTER_OTLP_TIMEOUT=20000"});
  ASSERT_TRUE(agent.WaitFor("zerotrace: tracing", 30s)) << agent.Output();
  constexpr int kRequests = 5;
  ASSERT_TRUE(Requests(server.port, kRequests));
  ASSERT_TRUE(agent.WaitForStat("spans", kRequests, 20s)) << agent.Output();
  // Let the exporter fail on them at least once, as a collector down for a whole run does.
  ASSERT_TRUE(agent.WaitForStat("otlp_attempts_retryable_failed", 1, 20s)) << agent.Output();
  ASSERT_EQ(agent.Stop(), 0) << agent.Output();
  EXPECT_LT(agent.exit_time(), 6s) << "the stop waited for a collector that is down";

  Stats s = agent.FinalStats();
  ASSERT_FALSE(s.empty()) << agent.Output();
  EXPECT_GE(s["spans"], uint64_t{kRequests});
  EXPECT_EQ(s["spans_exported"], 0u) << agent.Output();
  EXPECT_EQ(s["otlp_spans_ok"], 0u);
  EXPECT_EQ(s["spans_export_failed"] + s["spans_dropped_full"] + s["spans_dropped_stopping"],
            s["spans"])
      << "every span is accounted for as not delivered\n"
      << agent.Output();
  EXPECT_GT(s["spans_export_failed"], 0u);
  // The exporter's last word is the exact count, whatever its rate limit swallowed.
  const std::string total =
      "in total 0 spans delivered and " + std::to_string(s["spans_export_failed"]) + " dropped";
  EXPECT_NE(agent.Output().find(total), std::string::npos) << agent.Output();
  EXPECT_EQ(agent.Output().find("S3CRET-TOKEN"), std::string::npos) << agent.Output();
  EXPECT_NE(agent.Output().find("/v1/traces?REDACTED"), std::string::npos) << agent.Output();
}

INSTANTIATE_TEST_SUITE_P(Transports, CollectorDownTest, ::testing::Values("grpc", "http/protobuf"),
                         [](const auto& info) {
                           return std::string(info.param) == "grpc" ? "grpc" : "http";
                         });

TEST(JsonlFaults, DiskFullCountsEverySpanAsFailed) {
  Server server;
  ASSERT_TRUE(server.ready);
  Agent agent("--jsonl /dev/full --stats-interval 1 --pid " + std::to_string(server.proc->pid()));
  ASSERT_TRUE(agent.WaitFor("zerotrace: tracing", 30s)) << agent.Output();
  constexpr int kRequests = 4;
  ASSERT_TRUE(Requests(server.port, kRequests));
  ASSERT_TRUE(agent.WaitForStat("jsonl_write_failed", 1, 20s)) << agent.Output();
  ASSERT_EQ(agent.Stop(), 0) << agent.Output();
  Stats s = agent.FinalStats();
  EXPECT_GE(s["spans"], uint64_t{kRequests});
  EXPECT_EQ(s["spans_exported"], 0u) << agent.Output();
  EXPECT_EQ(s["spans_export_failed"], s["spans"]) << agent.Output();
  EXPECT_GE(s["jsonl_write_failed"], 1u);
  EXPECT_NE(agent.Output().find("--jsonl /dev/full: write failed: No space left on device"),
            std::string::npos)
      << agent.Output();
}

// `zerotrace | head -2`: head exits after two lines, and so must the agent; with spans on
// stdout (the default console) and with --dump-events.
struct StdoutCase {
  const char* name;
  const char* flags;
  const char* says;  // on stderr when it stops
};
class StdoutFaults : public ::testing::TestWithParam<StdoutCase> {};

TEST_P(StdoutFaults, AgentEndsWhenTheReaderOfItsOutputLeaves) {
  Server server;
  ASSERT_TRUE(server.ready);
  TempDir dir;
  const std::string err = dir.path() + "/agent.err";
  Subprocess pipeline({"/bin/bash", "-c",
                       std::string(ZT_AGENT) + " " + GetParam().flags + " --pid " +
                           std::to_string(server.proc->pid()) + " 2>" + err +
                           " | head -n 2; echo \"pipestatus ${PIPESTATUS[*]}\""});
  const auto stderr_text = [&err] {
    std::ifstream in(err);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const auto started = Clock::now();
  while (stderr_text().find("zerotrace: tracing") == std::string::npos &&
         Clock::now() < started + 30s) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(stderr_text().find("zerotrace: tracing"), std::string::npos) << stderr_text();
  ASSERT_TRUE(Requests(server.port, 3));  // each a trace of one span: head's lines come
  std::vector<std::string> out;
  std::optional<std::string> status;
  const auto deadline = Clock::now() + 30s;
  while (!status && Clock::now() < deadline) {
    auto line = pipeline.ReadLine(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!line) break;
    if (line->rfind("pipestatus ", 0) == 0) {
      status = *line;
    } else {
      out.push_back(*line);
    }
  }
  ASSERT_TRUE(status.has_value()) << "the agent kept running after head exited\n" << stderr_text();
  EXPECT_EQ(*status, "pipestatus 0 0") << stderr_text();
  EXPECT_EQ(out.size(), 2u);
  const std::string text = stderr_text();
  EXPECT_NE(text.find(GetParam().says), std::string::npos) << text;
  std::string stats_line;
  std::istringstream lines(text);
  for (std::string l; std::getline(lines, l);) {
    if (l.find("zerotrace: stats") != std::string::npos) stats_line = l;
  }
  Stats s = ParseStats(stats_line);
  EXPECT_EQ(s["spans_exported"] + s["spans_export_failed"] + s["spans_dropped_full"] +
                s["spans_dropped_stopping"],
            s["spans"])
      << text;
}

INSTANTIATE_TEST_SUITE_P(
    Outputs, StdoutFaults,
    ::testing::Values(
        StdoutCase{"spans", "", "exporter console: its output has gone (EPIPE); stopping"},
        StdoutCase{"dump_events", "--dump-events", "the reader of stdout has gone; stopping"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace zerotrace::e2e
