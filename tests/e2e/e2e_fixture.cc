// AgentTest: starts the agent, servers and clients; collects the spans the agent wrote.
#include "e2e_fixture.h"

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#ifndef ZT_AGENT
#error "ZT_AGENT must name the agent binary"
#endif
#ifndef ZT_E2E_DIR
#error "ZT_E2E_DIR must name tests/e2e"
#endif

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::DescribeProcess;
using zerotrace::testing::kServerStartDeadline;
using zerotrace::testing::Subprocess;
using Clock = std::chrono::steady_clock;

constexpr size_t kKeptOutputLines = 200;
constexpr size_t kMaxReportedProblems = 40;

std::string Join(const std::vector<std::string>& v, size_t max) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += "  " + v[i] + "\n";
  if (v.size() > max) out += "  ... and " + std::to_string(v.size() - max) + " more\n";
  return out;
}

int ParseLocalPort(const std::vector<std::string>& lines) {
  for (const auto& l : lines) {
    if (l.rfind("local_port ", 0) == 0) return std::stoi(l.substr(11));
  }
  return 0;
}

}  // namespace

void AgentTest::SetUp() {
  log_ = std::make_unique<SpanLog>(dir() + "/spans.jsonl");
  std::string cmd = std::string("exec ") + ZT_AGENT + " --jsonl " + dir() + "/spans.jsonl";
  for (const auto& f : AgentFlags()) cmd += " " + f;
  cmd += " 2>&1";
  std::vector<std::string> argv = AgentLauncher();
  argv.insert(argv.end(), {"/bin/sh", "-c", cmd});
  agent_ = std::make_unique<Subprocess>(std::move(argv), AgentEnv());
  std::vector<std::string> early;
  std::optional<std::string> attached;
  const auto deadline = Clock::now() + 30s;
  while (!attached && Clock::now() < deadline) {
    auto line = agent_->ReadLine(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!line) break;  // exited or timed out
    // "tracing every process", or "tracing selected processes" with --pid.
    if (line->find("zerotrace: tracing ") != std::string::npos) attached = line;
    early.push_back(*line);
  }
  for (auto& l : early) output_.push_back(std::move(l));
  ASSERT_TRUE(attached) << "the agent did not attach (no \"zerotrace: tracing\" line within 30 s); "
                           "its output:\n"
                        << Join(std::vector<std::string>(output_.begin(), output_.end()), 100);
  drain_ = std::thread([this] {
    for (;;) {
      // Checked before the read: once the agent has exited (stop_drain_ is set after that),
      // what it printed last, such as the final stats line, is still read up to EOF.
      const bool stopping = stop_drain_;
      auto line = agent_->ReadLine(100ms);
      if (!line) {
        if (stopping) break;
        std::this_thread::sleep_for(20ms);  // EOF returns at once: do not spin
        continue;
      }
      std::lock_guard<std::mutex> lock(output_mu_);
      output_.push_back(std::move(*line));
      if (output_.size() > kKeptOutputLines) output_.pop_front();
    }
  });
}

std::vector<std::string> AgentTest::AgentOutput() const {
  std::lock_guard<std::mutex> lock(output_mu_);
  return std::vector<std::string>(output_.begin(), output_.end());
}

void AgentTest::StopAgent() {
  if (agent_stopped_ || agent_ == nullptr) return;
  agent_stopped_ = true;
  const auto signalled = Clock::now();
  kill(agent_->pid(), SIGTERM);
  const int rc = agent_->Wait(15s);
  agent_exit_time_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - signalled);
  if (drain_.joinable()) {
    stop_drain_ = true;
    drain_.join();
  }
  EXPECT_EQ(rc, 0) << "the agent did not exit cleanly on SIGTERM (-1: still running after 15 s)";
  if (auto err = log_->Poll()) ADD_FAILURE() << *err;
}

void AgentTest::TearDown() {
  StopAgent();
  if (drain_.joinable()) {  // SetUp failed after starting the thread
    stop_drain_ = true;
    drain_.join();
  }
  spawned_.clear();
  servers_.clear();
  if (HasFailure()) {
    std::lock_guard<std::mutex> lock(output_mu_);
    std::cerr << "--- agent output (last " << output_.size() << " lines) ---\n";
    for (const auto& l : output_) std::cerr << l << "\n";
    std::cerr << "--- " << (log_ ? log_->lines() : 0) << " JSONL lines, "
              << (log_ ? log_->spans().size() : 0) << " spans in total ---\n";
  }
}

AgentTest::Server& AgentTest::StartPythonServer() {
  auto s = std::make_unique<Server>();
  s->port = zerotrace::testing::FreePort();
  s->proc = std::make_unique<Subprocess>(std::vector<std::string>{
      "/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/http_server.py",
      std::to_string(s->port)});
  EXPECT_TRUE(s->proc->WaitForLine("ready", kServerStartDeadline))
      << "python server did not start: " << DescribeProcess(s->proc->pid());
  servers_.push_back(std::move(s));
  return *servers_.back();
}

AgentTest::Server& AgentTest::StartNodeServer(std::vector<std::string> env) {
  auto s = std::make_unique<Server>();
  s->port = zerotrace::testing::FreePort();
  s->proc = std::make_unique<Subprocess>(
      std::vector<std::string>{"node", std::string(ZT_E2E_DIR) + "/servers/http_server.js",
                               std::to_string(s->port)},
      std::move(env));
  EXPECT_TRUE(s->proc->WaitForLine("ready", kServerStartDeadline))
      << "node server did not start: " << DescribeProcess(s->proc->pid());
  servers_.push_back(std::move(s));
  return *servers_.back();
}

AgentTest::Server& AgentTest::StartNginx(
    const std::vector<std::pair<std::string, std::string>>& files) {
  namespace fs = std::filesystem;
  const std::string root = dir() + "/nginx";
  fs::create_directories(root + "/www");
  for (const auto& [path, contents] : files) {
    fs::create_directories(fs::path(root + "/www" + path).parent_path());
    std::ofstream(root + "/www" + path, std::ios::binary) << contents;
  }
  auto s = std::make_unique<Server>();
  s->port = zerotrace::testing::FreePort();
  std::ofstream conf(root + "/nginx.conf");
  conf << "daemon off; master_process off; worker_processes 1;\n"
       << "pid " << root << "/nginx.pid; error_log " << root << "/error.log;\n"
       << "events {}\n"
       << "http {\n  access_log off;\n"
       << "  client_body_temp_path " << root << "/body; proxy_temp_path " << root << "/proxy;\n"
       << "  fastcgi_temp_path " << root << "/fastcgi; uwsgi_temp_path " << root << "/uwsgi;\n"
       << "  scgi_temp_path " << root << "/scgi;\n"
       << "  server { listen 127.0.0.1:" << s->port << "; root " << root << "/www; }\n}\n";
  conf.close();
  s->proc = std::make_unique<Subprocess>(std::vector<std::string>{
      "nginx", "-p", root, "-e", root + "/error.log", "-c", root + "/nginx.conf"});
  // nginx writes its pid file after it opened its listening socket: no probe connection.
  const auto deadline = Clock::now() + kServerStartDeadline;
  while (!fs::exists(root + "/nginx.pid") && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(fs::exists(root + "/nginx.pid"))
      << "nginx did not start; see " << root << ": " << DescribeProcess(s->proc->pid());
  servers_.push_back(std::move(s));
  return *servers_.back();
}

void AgentTest::MakeCertificate(std::string* cert, std::string* key) {
  *cert = dir() + "/cert.pem";
  *key = dir() + "/key.pem";
  const auto r = Run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", *key,
                      "-out", *cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                      "subjectAltName=IP:127.0.0.1,DNS:localhost"});
  ASSERT_EQ(r.exit_code, 0) << "openssl req failed";
}

AgentTest::ClientRun AgentTest::Run(std::vector<std::string> argv,
                                    std::chrono::milliseconds timeout) {
  Subprocess p(std::move(argv));
  ClientRun r;
  r.pid = p.pid();
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto line =
        p.ReadLine(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!line) break;
    r.lines.push_back(std::move(*line));
  }
  const auto left =
      std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
               std::chrono::milliseconds(100));
  r.exit_code = p.Wait(left);
  r.local_port = ParseLocalPort(r.lines);
  return r;
}

AgentTest::ClientRun AgentTest::RunPythonClient(const std::string& script,
                                                std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/python3", "-B",
                                   std::string(ZT_E2E_DIR) + "/clients/" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(std::move(argv));
}

AgentTest::CurlRun AgentTest::Curl(const std::vector<std::string>& urls,
                                   const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", "15"};
  argv.insert(argv.end(), args.begin(), args.end());
  for (const auto& u : urls) {
    argv.insert(argv.end(),
                {"-o", "/dev/null", "-w", "%{local_port} %{http_code} %{size_download}\\n", u});
  }
  ClientRun run = Run(std::move(argv));
  CurlRun r;
  r.pid = run.pid;
  r.exit_code = run.exit_code;
  for (const auto& l : run.lines) {
    std::istringstream in(l);
    int port = 0, code = 0;
    int64_t size = 0;
    if (in >> port >> code >> size) {
      r.local_ports.push_back(port);
      r.codes.push_back(code);
      r.sizes.push_back(size);
    }
  }
  return r;
}

std::string AgentTest::CurlUserAgent() {
  static const std::string ua = [] {
    Subprocess p({"curl", "--version"});
    auto line = p.ReadLine(10s);
    p.Wait(10s);
    std::istringstream in(line.value_or(""));
    std::string name, version;
    in >> name >> version;  // "curl 7.88.1 (x86_64-pc-linux-gnu) ..."
    return "curl/" + version;
  }();
  return ua;
}

std::string AgentTest::Url(int port, const std::string& target) {
  return "http://127.0.0.1:" + std::to_string(port) + target;
}

zerotrace::testing::Subprocess& AgentTest::Spawn(std::vector<std::string> argv) {
  spawned_.push_back(std::make_unique<Subprocess>(std::move(argv)));
  return *spawned_.back();
}

::testing::AssertionResult AgentTest::AwaitSpans(
    const std::vector<std::pair<pid_t, size_t>>& at_least, std::chrono::milliseconds timeout) {
  auto r = WaitForSpans(at_least, timeout);
  StopAgent();
  return r;
}

std::optional<uint64_t> AgentTest::StatsCounter(const std::string& name, size_t after_lines,
                                                std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  const std::string key = " " + name + "=";
  for (;;) {
    const auto lines = AgentOutput();
    for (size_t i = lines.size(); i > after_lines; i--) {
      const std::string& l = lines[i - 1];
      const size_t at = l.find(key);
      if (l.find("zerotrace: stats") == std::string::npos || at == std::string::npos) continue;
      return std::stoull(l.substr(at + key.size()));
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(50ms);
  }
}

::testing::AssertionResult AgentTest::WaitForSpans(
    const std::vector<std::pair<pid_t, size_t>>& at_least, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto satisfied = [&] {
    for (const auto& [pid, n] : at_least) {
      if (log_->CountForPid(pid) < n) return false;
    }
    return true;
  };
  for (;;) {
    if (auto err = log_->Poll()) return ::testing::AssertionFailure() << *err;
    if (satisfied() || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(50ms);  // the agent flushes at least once a second
  }
  if (satisfied()) return ::testing::AssertionSuccess();
  auto fail = ::testing::AssertionFailure();
  fail << "spans did not arrive within " << timeout.count() << " ms (" << log_->spans().size()
       << " spans in the log):\n";
  for (const auto& [pid, n] : at_least) {
    fail << "pid " << pid << ": want at least " << n << ", got " << log_->CountForPid(pid) << "\n"
         << Describe(pid);
  }
  return fail;
}

::testing::AssertionResult AgentTest::SpansAre(pid_t pid,
                                               const std::vector<WantSpan>& wants) const {
  const auto problems = CheckSpans(SpansOf(pid), wants);
  if (std::getenv("ZT_E2E_DUMP") != nullptr)
    std::cerr << "spans of pid " << pid << ":\n" << Describe(pid);
  if (problems.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "spans of pid " << pid << " differ:\n"
                                       << Join(problems, kMaxReportedProblems) << "their spans:\n"
                                       << Describe(pid);
}

std::string AgentTest::Describe(pid_t pid) const {
  std::vector<std::string> lines;
  for (const auto& s : SpansOf(pid)) lines.push_back(s.Describe());
  return Join(lines, kMaxReportedProblems);
}

}  // namespace zerotrace::e2e
