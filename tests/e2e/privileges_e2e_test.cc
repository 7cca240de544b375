// Least privilege (docs/SECURITY.md): the agent runs as an unprivileged user with only
// CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH, and says which capability is missing when
// one is.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "subprocess.h"

namespace zerotrace::e2e {
namespace {

using namespace std::chrono_literals;
using zerotrace::testing::Subprocess;

// A copy of the agent that user nobody can execute wherever the build tree is.
class PrivilegesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Without CAP_SYS_ADMIN the agent cannot mount tracefs; where the boot did not, whoever
    // deploys it does (the package's unit wants systemd's sys-kernel-tracing.mount). As root here.
    if (access("/sys/kernel/tracing/events", F_OK) != 0) {
      ASSERT_EQ(mount("tracefs", "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      nullptr),
                0)
          << "mounting tracefs: " << strerror(errno);
    }
    ASSERT_EQ(chmod(dir_.path().c_str(), 0777), 0);
    agent_ = dir_.path() + "/zerotrace";
    std::filesystem::copy_file(ZT_AGENT, agent_);
    ASSERT_EQ(chmod(agent_.c_str(), 0755), 0);
  }

  // argv running the agent as nobody with exactly `caps` (setpriv syntax, e.g. "+bpf,+perfmon").
  std::vector<std::string> AsNobody(const std::string& caps, std::vector<std::string> args) {
    std::vector<std::string> argv = {"setpriv",
                                     "--reuid=65534",
                                     "--regid=65534",
                                     "--clear-groups",
                                     "--inh-caps=-all," + caps,
                                     "--ambient-caps=-all," + caps,
                                     "--bounding-set=-all," + caps,
                                     "/bin/sh",
                                     "-c",
                                     "exec \"$0\" \"$@\" 2>&1",
                                     agent_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // Runs to exit; returns its exit status and output.
  std::pair<int, std::string> RunToExit(std::vector<std::string> argv) {
    Subprocess p(std::move(argv));
    std::string out;
    while (auto line = p.ReadLine(20s)) out += *line + "\n";
    return {p.Wait(20s), out};
  }

  zerotrace::testing::TempDir dir_;
  std::string agent_;
};

TEST_F(PrivilegesTest, TracesWithBpfPerfmonAndDacReadSearchAsNobody) {
  const int port = zerotrace::testing::FreePort();
  Subprocess server({"/usr/bin/python3", "-B", std::string(ZT_E2E_DIR) + "/servers/http_server.py",
                     std::to_string(port)});
  ASSERT_TRUE(server.WaitForLine("ready", zerotrace::testing::kServerStartDeadline))
      << zerotrace::testing::DescribeProcess(server.pid());
  const std::string spans = dir_.path() + "/spans.jsonl";
  Subprocess agent(AsNobody("+bpf,+perfmon,+dac_read_search",
                            {"--jsonl", spans, "--duration", "30", "--stats-interval", "0"}));
  std::string out;
  bool attached = false;
  while (auto line = agent.ReadLine(30s)) {
    out += *line + "\n";
    if (line->find("tracing every process") != std::string::npos) {
      attached = true;
      break;
    }
  }
  ASSERT_TRUE(attached) << out;
  Subprocess curl({"curl", "-sS", "-o", "/dev/null", "--max-time", "10",
                   "http://127.0.0.1:" + std::to_string(port) + "/hello"});
  ASSERT_EQ(curl.Wait(15s), 0);
  // Both ends of the request become spans (the JSON lines file is flushed within a second).
  const std::string curl_pid = "\"intValue\":\"" + std::to_string(curl.pid()) + "\"";
  const std::string server_pid = "\"intValue\":\"" + std::to_string(server.pid()) + "\"";
  std::string contents;
  for (auto deadline = std::chrono::steady_clock::now() + 15s;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(100ms)) {
    std::ifstream in(spans);
    std::stringstream ss;
    ss << in.rdbuf();
    contents = ss.str();
    if (contents.find(curl_pid) != std::string::npos &&
        contents.find(server_pid) != std::string::npos) {
      break;
    }
  }
  EXPECT_NE(contents.find(curl_pid), std::string::npos) << out;
  EXPECT_NE(contents.find(server_pid), std::string::npos) << out;
  EXPECT_NE(contents.find("\"/hello\""), std::string::npos);
  kill(agent.pid(), SIGTERM);
  EXPECT_EQ(agent.Wait(15s), 0);
}

TEST_F(PrivilegesTest, AMissingCapabilityIsNamed) {
  struct stat st;
  ASSERT_EQ(stat("/sys/kernel/btf/vmlinux", &st), 0);
  struct Case {
    const char* caps;
    const char* want;  // in the error
  } cases[] = {
      {"+dac_read_search", "CAP_BPF and CAP_PERFMON"},
      {"+bpf,+dac_read_search", "CAP_BPF and CAP_PERFMON"},
  };
  for (const auto& c : cases) {
    auto [status, out] = RunToExit(AsNobody(c.caps, {"--duration", "1"}));
    EXPECT_EQ(status, 1) << c.caps << "\n" << out;
    EXPECT_NE(out.find(c.want), std::string::npos) << c.caps << "\n" << out;
  }
  // tracefs is usually mode 0700: without CAP_DAC_READ_SEARCH the agent cannot read it.
  const bool tracefs_private = stat("/sys/kernel/tracing", &st) == 0 && !(st.st_mode & S_IXOTH);
  if (tracefs_private) {
    auto [status, out] = RunToExit(AsNobody("+bpf,+perfmon", {"--duration", "1"}));
    EXPECT_EQ(status, 1) << out;
    EXPECT_NE(out.find("CAP_DAC_READ_SEARCH"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace zerotrace::e2e
