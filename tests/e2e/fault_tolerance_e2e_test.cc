// Fault tolerance: the real agent keeps tracing correctly when a traced server dies mid-request
// and its pid goes to another program, when a traced server runs out of file descriptors, and
// it stops within 2 s, flushed, on SIGTERM under full load. (Killed clients, resets and a
// vanishing collector are covered in http1_e2e_test and otlp_e2e_test.)
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "agent_metrics.h"
#include "e2e_fixture.h"

#ifndef ZT_CONN_LOAD
#error "ZT_CONN_LOAD must name the conn_load helper"
#endif

namespace zerotrace::e2e {
namespace {

using zerotrace::testing::Subprocess;
using Clock = std::chrono::steady_clock;

void Measured(const std::string& what) { std::printf("[ measured ] %s\n", what.c_str()); }

// A process started with exactly pid `pid` (clone3 with set_tid; needs CAP_SYS_ADMIN), its
// stdout and stderr sent to /dev/null; killed with its process group when this goes away.
class ProcessWithPid {
 public:
  ProcessWithPid(pid_t pid, std::vector<std::string> argv, std::vector<std::string> env) {
    std::vector<char*> args, envp;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    clone_args ca = {};
    ca.exit_signal = SIGCHLD;
    ca.set_tid = reinterpret_cast<uint64_t>(&pid);
    ca.set_tid_size = 1;
    const long r = syscall(SYS_clone3, &ca, sizeof(ca));
    if (r == 0) {  // the child: async-signal-safe calls only until exec
      setpgid(0, 0);
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
    if (r < 0) error_ = std::strerror(errno);
    pid_ = static_cast<pid_t>(r);
  }
  ~ProcessWithPid() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  const std::string& error() const { return error_; }

 private:
  pid_t pid_ = -1;
  std::string error_;
};

int ConnectTo(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

size_t OpenFds(pid_t pid) {
  size_t n = 0;
  if (DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// key=value pairs of the agent's last stats line.
std::map<std::string, uint64_t> LastStats(const std::vector<std::string>& output) {
  std::map<std::string, uint64_t> out;
  for (auto it = output.rbegin(); it != output.rend(); ++it) {
    if (it->find("zerotrace: stats") == std::string::npos) continue;
    std::istringstream in(*it);
    for (std::string kv; in >> kv;) {
      const size_t eq = kv.find('=');
      if (eq != std::string::npos) out[kv.substr(0, eq)] = std::stoull(kv.substr(eq + 1));
    }
    break;
  }
  return out;
}

class FaultTest : public AgentTest {
 protected:
  // -v: the agent reports how long each detach took, which a slow exit is made of.
  std::vector<std::string> AgentFlags() const override { return {"-v"}; }
};

TEST_F(FaultTest, ServerDyingMidRequestAndItsPidReusedByAnotherProgram) {
  auto& a = StartPythonServer();
  const pid_t pid = a.pid();
  // One exchange on a keep-alive connection, then a request A never answers: A dies with it.
  const int fd = ConnectTo(a.port);
  ASSERT_GE(fd, 0);
  const std::string hello = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(write(fd, hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
  char buf[4096];
  std::string got;
  while (got.find("hello, world\n") == std::string::npos) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<size_t>(n));
  }
  const std::string slow = "GET /slow?ms=20000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(write(fd, slow.data(), slow.size()), static_cast<ssize_t>(slow.size()));
  ASSERT_TRUE(WaitForSpans({{pid, 1}}));
  a.proc->Kill();  // SIGKILL mid-request, reaped: the pid is free
  EXPECT_LE(read(fd, buf, sizeof(buf)), 0) << "the dead server answered";
  close(fd);

  // Program B gets A's pid, the same fd numbers for its sockets, and a new port.
  const int port_b = zerotrace::testing::FreePort();
  ProcessWithPid b(pid,
                   {"/usr/bin/node", std::string(ZT_E2E_DIR) + "/servers/http_server.js",
                    std::to_string(port_b)},
                   {"OTEL_SERVICE_NAME=reused-pid", "PATH=/usr/bin:/bin"});
  ASSERT_EQ(b.pid(), pid) << "clone3(set_tid=" << pid << "): " << b.error();
  ASSERT_TRUE(zerotrace::testing::WaitForListen(port_b, 10s));
  const auto curl = Curl({Url(port_b, "/hello"), Url(port_b, "/items/5")});
  ASSERT_EQ(curl.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{curl.pid, 2}, {pid, 3}}));

  // A's spans keep A's identity, B's spans B's; nothing of A's connection reaches B.
  std::vector<Span> a_spans, b_spans;
  for (const auto& s : SpansOf(pid)) {
    (s.Int("server.port") == a.port ? a_spans : b_spans).push_back(s);
  }
  std::string all;
  for (const auto& s : SpansOf(pid)) all += "  " + s.Describe() + "\n";
  ASSERT_GE(a_spans.size(), 1u) << all;
  EXPECT_LE(a_spans.size(), 2u) << all;  // /hello, and /slow as an error span if reported
  for (const auto& s : a_spans) {
    EXPECT_NE(s.service_name, "reused-pid") << s.Describe();
    EXPECT_EQ(s.kind, kServer) << s.Describe();
  }
  EXPECT_EQ(a_spans[0].Str("url.path"), "/hello") << all;
  EXPECT_EQ(a_spans[0].Int("http.response.status_code"), 200) << all;
  if (a_spans.size() == 2) {
    EXPECT_EQ(a_spans[1].Str("url.path"), "/slow") << all;
    EXPECT_FALSE(a_spans[1].Has("http.response.status_code")) << all;
  }
  ASSERT_EQ(b_spans.size(), 2u) << all;
  for (size_t i = 0; i < 2; i++) {
    EXPECT_EQ(b_spans[i].service_name, "reused-pid") << b_spans[i].Describe();
    EXPECT_EQ(b_spans[i].Int("network.peer.port"), curl.local_ports[i]) << b_spans[i].Describe();
  }
  EXPECT_EQ(b_spans[0].Str("url.path"), "/hello");
  EXPECT_EQ(b_spans[1].Str("url.path"), "/items/5");
  EXPECT_EQ(b_spans[1].Int("http.response.body.size"), 15);
}

TEST_F(FaultTest, ServerOutOfFileDescriptorsServesTheWaitingRequestAfterwards) {
  constexpr int kLimit = 24;
  const int port = zerotrace::testing::FreePort();
  auto& server =
      Spawn({"/bin/sh", "-c",
             "ulimit -n " + std::to_string(kLimit) + " && exec /usr/bin/python3 -B " +
                 std::string(ZT_E2E_DIR) + "/servers/http_server.py " + std::to_string(port)});
  ASSERT_TRUE(server.WaitForLine("ready", 10s));
  // Idle connections until the server's accept4 fails with EMFILE (each is held by a thread).
  auto& idle = Spawn({ZT_CONN_LOAD});
  ASSERT_TRUE(idle.WaitForLine("pids ", 10s));
  idle.WriteStdin("hold " + std::to_string(port) + " " + std::to_string(2 * kLimit) + "\n");
  ASSERT_EQ(idle.ReadLine(10s).value_or(""), "held " + std::to_string(2 * kLimit));
  const auto deadline = Clock::now() + 10s;
  while (OpenFds(server.pid()) < kLimit && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GE(OpenFds(server.pid()), static_cast<size_t>(kLimit)) << "the server never ran out";

  // A request made while the server is out of fds waits in its listen backlog.
  auto& waiting = Spawn({"curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w",
                         "%{local_port} %{http_code}\\n", Url(port, "/items/7")});
  EXPECT_FALSE(waiting.ReadLine(500ms)) << "answered although the server had no fd left";
  idle.WriteStdin("close\n");
  ASSERT_EQ(idle.ReadLine(10s).value_or(""), "closed " + std::to_string(2 * kLimit));
  const std::string answer = waiting.ReadLine(20s).value_or("");
  int local_port = 0, code = 0;
  ASSERT_EQ(std::sscanf(answer.c_str(), "%d %d", &local_port, &code), 2) << answer;
  EXPECT_EQ(code, 200);
  const auto after = Curl({Url(port, "/hello")});
  ASSERT_EQ(after.exit_code, 0);
  ASSERT_TRUE(AwaitSpans({{waiting.pid(), 1}, {after.pid, 1}, {server.pid(), 2}}));

  // The held connections sent nothing: exactly the two requests, each paired right.
  WantSpan w1(kServer, "GET", "/items/7", 200), w2(kServer, "GET", "/hello", 200);
  w1.resp_body = 17;
  w1.server_port = w2.server_port = port;
  w1.peer_port = local_port;
  w2.peer_port = after.local_ports.at(0);
  EXPECT_TRUE(SpansAre(server.pid(), {w1, w2}));
  WantSpan c1(kClient, "GET", "/items/7", 200);
  c1.resp_body = 17;
  c1.server_port = port;
  EXPECT_TRUE(SpansAre(waiting.pid(), {c1}));
}

TEST_F(FaultTest, SigtermUnderFullLoadExitsWithinTwoSecondsFlushed) {
  auto& nginx = StartNginx({{"/a.txt", std::string(100, 'a')},
                            {"/b.txt", std::string(65536, 'b')},
                            {"/c.txt", std::string(262144, 'c')}});
  // Two closed-loop clients on 4 keep-alive connections each keep both cores busy; the large
  // responses load the ring buffer while keeping the span log (read back below) small.
  std::vector<Subprocess*> loads;
  for (int i = 0; i < 2; i++) {
    auto& load = Spawn({ZT_CONN_LOAD});
    ASSERT_TRUE(load.WaitForLine("pids ", 10s));
    load.WriteStdin("http " + std::to_string(nginx.port) +
                    " 4 60 /a.txt=100 /b.txt=65536 /c.txt=262144\n");
    loads.push_back(&load);
  }
  // Tracing is live (an agent built with sanitizers is much slower: fewer spans suffice).
  ASSERT_TRUE(WaitForSpans({{nginx.pid(), kSanitizedBuild ? 30u : 300u}}, 30s));
  StopAgent();  // SIGTERM while the load runs
  const auto exit_ms = agent_exit_time().count();
  const auto stats = LastStats(AgentOutput());
  ASSERT_TRUE(stats.count("spans_exported")) << "no final stats line";
  Measured("SIGTERM under load: exited in " + std::to_string(exit_ms) + " ms; spans " +
           std::to_string(stats.at("spans")) + ", exported " +
           std::to_string(stats.at("spans_exported")) + ", dropped (queue full) " +
           std::to_string(stats.at("spans_dropped_full")) + ", dropped (stopping) " +
           std::to_string(stats.at("spans_dropped_stopping")) + ", in the file " +
           std::to_string(AllSpans().size()));
  std::string detach;
  for (const auto& line : AgentOutput()) {
    if (line.find("zerotrace: detached") != std::string::npos) detach = line;
  }
  // Detaching waits for the kernel's RCU grace periods, which the agent cannot shorten: on a
  // loaded nested VM (CI's background sanitizer build) they once took 2.6 s. What the agent
  // bounds is the rest (drain within 1 s, flush within 1.5 s; README): that is timed here.
  long detach_ms = 0;
  for (const char* what : {"detached socket programs in ", "TLS probes in "}) {
    const size_t at = detach.find(what);
    if (at != std::string::npos) {
      detach_ms = std::max(detach_ms, std::stol(detach.substr(at + std::strlen(what))));
    }
  }
  ASSERT_FALSE(detach.empty()) << "no detach line";
  // With sanitizers every record costs many times more, and LeakSanitizer scans the heap at
  // exit: there the agent must still exit cleanly and flushed (StopAgent allows 15 s).
  if (!kSanitizedBuild) {
    EXPECT_LE(exit_ms - detach_ms, 2000)
        << "the agent took " << exit_ms << " ms to exit; " << detach;
  }
  // Flushed: every span it made was written or counted as dropped, and it wrote what it says.
  EXPECT_EQ(stats.at("spans_dropped_stopping"), 0u);
  EXPECT_EQ(stats.at("spans_exported") + stats.at("spans_dropped_full"), stats.at("spans"));
  EXPECT_EQ(stats.at("spans_exported"), AllSpans().size());
  for (auto* load : loads) load->Kill();
}

}  // namespace
}  // namespace zerotrace::e2e
