// A test fixture that runs the real agent with --jsonl, real servers and real clients.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "span_log.h"
#include "subprocess.h"

namespace zerotrace::e2e {

using namespace std::chrono_literals;

// One agent per test, started in SetUp (the test fails if it does not attach), stopped with
// SIGTERM before the assertions so that the span log is final, and expected to exit 0.
class AgentTest : public ::testing::Test {
 protected:
  // A server process this test started; killed at the end of the test.
  struct Server {
    std::unique_ptr<zerotrace::testing::Subprocess> proc;
    int port = 0;
    pid_t pid() const { return proc->pid(); }
  };
  // A client process run to completion.
  struct ClientRun {
    pid_t pid = -1;
    int exit_code = -1;
    std::vector<std::string> lines;  // its stdout
    int local_port = 0;              // from a "local_port P" line, when it printed one
  };
  // curl over one connection: per URL, what curl's --write-out reported.
  struct CurlRun {
    pid_t pid = -1;
    int exit_code = -1;
    std::vector<int> local_ports, codes;
    std::vector<int64_t> sizes;
  };

  // Extra agent flags (e.g. --capture-bytes) for fixtures derived from this one.
  virtual std::vector<std::string> AgentFlags() const { return {}; }
  // Extra NAME=value entries for the agent's environment (OTEL_* variables).
  virtual std::vector<std::string> AgentEnv() const { return {}; }
  // A command that runs the agent's command (appended to it) in another setting, such as a
  // mount namespace; it must exec that command, so the agent keeps the launcher's pid.
  virtual std::vector<std::string> AgentLauncher() const { return {}; }
  // What the agent printed so far (stdout and stderr), oldest first.
  std::vector<std::string> AgentOutput() const;

  void SetUp() override;
  void TearDown() override;

  Server& StartPythonServer();
  // `env`: extra NAME=value entries for the server's environment.
  Server& StartNodeServer(std::vector<std::string> env = {});
  // nginx serving `files` (path under the root → contents) as static files.
  Server& StartNginx(const std::vector<std::pair<std::string, std::string>>& files);

  // Runs argv to exit (killed after `timeout`), collecting its stdout.
  ClientRun Run(std::vector<std::string> argv, std::chrono::milliseconds timeout = 30s);
  // A self-signed certificate for 127.0.0.1 and localhost (its own CA: a client trusts exactly
  // this file) in dir()/cert.pem and dir()/key.pem. Fails the test when openssl does.
  void MakeCertificate(std::string* cert, std::string* key);
  // Runs a python helper from tests/e2e/clients.
  ClientRun RunPythonClient(const std::string& script, std::vector<std::string> args);
  // curl with `args` before the URLs; every URL is fetched on one connection (when it can).
  CurlRun Curl(const std::vector<std::string>& urls, const std::vector<std::string>& args = {});
  // "curl/X.Y.Z": the User-Agent this machine's curl sends.
  static std::string CurlUserAgent();
  // "http://127.0.0.1:PORT" + target.
  static std::string Url(int port, const std::string& target);
  // Starts a process the test controls itself; killed at the end of the test at the latest.
  zerotrace::testing::Subprocess& Spawn(std::vector<std::string> argv);

  // Polls the span log until each (pid, n) has at least n spans, then stops the agent so the
  // log is final. Fails (with what did arrive) when the deadline passes first.
  ::testing::AssertionResult AwaitSpans(const std::vector<std::pair<pid_t, size_t>>& at_least,
                                        std::chrono::milliseconds timeout = 20s);
  // Like AwaitSpans, but the agent keeps running.
  ::testing::AssertionResult WaitForSpans(const std::vector<std::pair<pid_t, size_t>>& at_least,
                                          std::chrono::milliseconds timeout = 20s);
  // Every span logged so far (all processes).
  const std::vector<Span>& AllSpans() const { return log_->spans(); }
  // A counter from the agent's newest stats line printed after `after_lines` output lines
  // (see AgentOutput), waiting for such a line up to `timeout`; nullopt if none came.
  std::optional<uint64_t> StatsCounter(const std::string& name, size_t after_lines,
                                       std::chrono::milliseconds timeout = 10s) const;
  // The final spans of a process, ordered by (start, end).
  std::vector<Span> SpansOf(pid_t pid) const { return log_->ForPid(pid); }
  // Succeeds when the spans of `pid`, in order, are exactly `wants`. With ZT_E2E_DUMP set in
  // the environment it also prints them (to see what the agent reports).
  ::testing::AssertionResult SpansAre(pid_t pid, const std::vector<WantSpan>& wants) const;
  // Every span of `pid`, one per line (for failure messages).
  std::string Describe(pid_t pid) const;

  void StopAgent();
  // The agent's process id (valid once SetUp succeeded).
  pid_t agent_pid() const { return agent_ ? agent_->pid() : -1; }
  // How long the agent took to exit after StopAgent's SIGTERM (-1 ms before it was stopped).
  std::chrono::milliseconds agent_exit_time() const { return agent_exit_time_; }
  const std::string& dir() const { return dir_.path(); }

 private:
  zerotrace::testing::TempDir dir_;
  std::unique_ptr<zerotrace::testing::Subprocess> agent_;
  std::unique_ptr<SpanLog> log_;
  std::deque<std::unique_ptr<Server>> servers_;
  std::vector<std::unique_ptr<zerotrace::testing::Subprocess>> spawned_;
  // The agent's output, read by a thread so a chatty agent never blocks on a full pipe.
  std::thread drain_;
  std::atomic<bool> stop_drain_{false};
  mutable std::mutex output_mu_;
  std::deque<std::string> output_;
  bool agent_stopped_ = false;
  std::chrono::milliseconds agent_exit_time_{-1};
};

}  // namespace zerotrace::e2e
