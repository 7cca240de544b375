// The agent's configuration end to end: bad flags exit 2 with a message that says what is
// wrong, questionable OTEL_* variables are warned about, and no secret from the settings or
// the traffic reaches the terminal (--dump-events included).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
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
using Clock = std::chrono::steady_clock;

struct AgentRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs the agent with `args` (shell words) to its exit.
AgentRun RunAgent(const std::string& args, std::vector<std::string> env = {}) {
  Subprocess p({"/bin/sh", "-c", std::string("exec ") + ZT_AGENT + " " + args + " 2>&1"},
               std::move(env));
  AgentRun r;
  while (auto line = p.ReadLine(30s)) r.output += *line + "\n";
  r.exit_code = p.Wait(30s);
  return r;
}

pid_t GonePid() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return child;
}

TEST(AgentOptions, BadFlagsExitTwoWithAMessageThatSaysWhatIsWrong) {
  struct Case {
    std::string args;
    std::string want;
  } cases[] = {
      {"--duration abc", "--duration: 'abc' is not a number of seconds"},
      {"--stats-interval -5", "out of range: from 0 to 31622400 seconds"},
      {"--pid " + std::to_string(GonePid()), ": no such process"},
      {"--ringbuf-bytes 1000", "--ringbuf-bytes: '1000' must be a power of two"},
      {"--otlp-endpoint ''", "--otlp-endpoint: empty"},
      {"--otlp-endpoint http://bob:hunter2@127.0.0.1:4318",
       "'http://REDACTED@127.0.0.1:4318' is not a valid endpoint: credentials in the URL are not "
       "supported"},
  };
  for (const auto& c : cases) {
    const AgentRun r = RunAgent(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.want), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_LT(r.output.size(), 400u) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("hunter2"), std::string::npos) << r.output;
  }
}

TEST(AgentOptions, QuestionableOtelVariablesAreWarnedAbout) {
  const AgentRun r = RunAgent("--duration 0.2 --stats-interval 0",
                              {"OTEL_TRACES_EXPORTER=zipkin", "OTEL_SDK_DISABLED=true",
                               "OTEL_RESOURCE_ATTRIBUTES=team=pay,broken"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* want :
       {"zerotrace: warning: OTEL_TRACES_EXPORTER: 'zipkin' is not an exporter zerotrace has",
        "zerotrace: warning: OTEL_SDK_DISABLED=true: the OTEL_* variables turn no span exporter "
        "on",
        "zerotrace: warning: OTEL_RESOURCE_ATTRIBUTES: entry 2 is not key=value; the whole "
        "variable is ignored"}) {
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
  }
}

TEST(AgentOptions, DumpEventsShowsNoQuerySecretOrCredential) {
  const int port = FreePort();
  Subprocess server({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/http_server.py",
                     std::to_string(port)});
  ASSERT_TRUE(server.WaitForLine("ready", kServerStartDeadline));
  Subprocess agent({"/bin/sh", "-c",
                    std::string("exec ") + ZT_AGENT + " --dump-events --pid " +
                        std::to_string(server.pid()) + " 2>&1"});
  ASSERT_TRUE(agent.WaitForLine("zerotrace: tracing", 30s));
  Subprocess curl({"curl", "-s", "-o", "/dev/null", "-H", "Authorization: Bearer S3CRET-HDR",
                   "http://127.0.0.1:" + std::to_string(port) + "/hello?token=S3CRET-Q&x=1"});
  ASSERT_EQ(curl.Wait(30s), 0);
  std::string dump;
  std::optional<std::string> request;
  const auto deadline = Clock::now() + 20s;
  while (!request && Clock::now() < deadline) {
    auto line = agent.ReadLine(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!line) break;
    dump += *line + "\n";
    if (line->find("GET /hello?") != std::string::npos) request = *line;
  }
  ASSERT_TRUE(request.has_value()) << "the server's read of the request was not dumped\n" << dump;
  EXPECT_NE(request->find("GET /hello?token=REDACTED&x=REDACTED HTTP/1.1"), std::string::npos)
      << *request;
  kill(agent.pid(), SIGTERM);
  while (auto line = agent.ReadLine(10s)) dump += *line + "\n";
  EXPECT_EQ(agent.Wait(15s), 0);
  EXPECT_EQ(dump.find("S3CRET"), std::string::npos) << dump;
}

}  // namespace
}  // namespace zerotrace::e2e
