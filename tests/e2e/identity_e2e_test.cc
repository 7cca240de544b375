// Service identity: real servers with distinct identities (environment, script, systemd-style
// and container-style cgroups the test creates, the operator's name map), each checked.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "e2e_fixture.h"

namespace zerotrace::e2e {
namespace {

namespace fs = std::filesystem;
using zerotrace::testing::DescribeProcess;
using zerotrace::testing::FreePort;
using zerotrace::testing::kServerStartDeadline;
using zerotrace::testing::Subprocess;

constexpr char kContainerId[] = "5e1f00d2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e";
constexpr char kPodUid[] = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

// Where cgroup2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts.
std::string Cgroup2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    // "... mount-point options ... - fstype source super-options"
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line);
    std::string skip, mount_point;
    fields >> skip >> skip >> skip >> skip >> mount_point;
    return mount_point;
  }
  return "";
}

// A cgroup2 directory this test creates; removed (with the parents it created) at the end,
// once the processes moved into it are gone.
class TestCgroup {
 public:
  TestCgroup(const std::string& mount, const std::string& path) : path_(path) {
    fs::path at = mount;
    for (const auto& part : fs::path(path).relative_path()) {
      at /= part;
      if (fs::create_directory(at)) created_.push_back(at);
    }
    dir_ = at.string();
  }
  ~TestCgroup() {
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      // A killed process leaves its cgroup once reaped; wait for that, bounded.
      const auto deadline = std::chrono::steady_clock::now() + 5s;
      while (rmdir(it->c_str()) != 0 && errno == EBUSY &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
      }
    }
  }
  const std::string& path() const { return path_; }  // as /proc/PID/cgroup shows it
  // A shell line that moves the shell into this cgroup, then runs `command` in its place.
  std::string RunInside(const std::string& command) const {
    return "echo $$ > " + dir_ + "/cgroup.procs && exec " + command;
  }

 private:
  std::string path_, dir_;
  std::vector<fs::path> created_;
};

class IdentityE2eTest : public AgentTest {
 protected:
  std::vector<std::string> AgentFlags() const override {
    return {"--service-name-map", "port:" + std::to_string(mapped_port_) + "=ledger"};
  }

  // Starts `command` (a shell line) that prints "ready" once it listens.
  Subprocess& StartServer(const std::string& command) {
    auto& p = Spawn({"/bin/sh", "-c", command});
    EXPECT_TRUE(p.WaitForLine("ready", kServerStartDeadline))
        << command << ": " << DescribeProcess(p.pid());
    return p;
  }

  static std::string Python(int port) {
    return "/usr/bin/python3 -B " + std::string(ZT_E2E_DIR) + "/servers/http_server.py " +
           std::to_string(port);
  }
  static std::string Node(int port, const std::string& extra = "") {
    return "node " + std::string(ZT_E2E_DIR) + "/servers/http_server.js " + std::to_string(port) +
           extra;
  }

  // The resource of the one server span `pid` reported.
  std::map<std::string, nlohmann::json, std::less<>> ResourceOf(pid_t pid) {
    const auto spans = SpansOf(pid);
    EXPECT_EQ(spans.size(), 1u) << Describe(pid);
    return spans.empty() ? std::map<std::string, nlohmann::json, std::less<>>{} : spans[0].resource;
  }
  static std::string Str(const std::map<std::string, nlohmann::json, std::less<>>& r,
                         const std::string& key) {
    const auto it = r.find(key);
    return it == r.end() ? "(absent)" : it->second.value("stringValue", "(not a string)");
  }

  // Created by the test; destroyed after TearDown has killed the servers inside.
  const TestCgroup& MakeCgroup(const std::string& mount, const std::string& path) {
    cgroups_.push_back(std::make_unique<TestCgroup>(mount, path));
    return *cgroups_.back();
  }

  ~IdentityE2eTest() override {
    while (!cgroups_.empty()) cgroups_.pop_back();  // inner ones first: they share parents
  }

  const int mapped_port_ = FreePort();
  std::vector<std::unique_ptr<TestCgroup>> cgroups_;
};

TEST_F(IdentityE2eTest, EachProcessIsNamedByTheFirstSourceThatApplies) {
  const std::string mount = Cgroup2Mount();
  ASSERT_FALSE(mount.empty()) << "no cgroup2 mount in /proc/self/mountinfo";
  const std::string tag = "zt-e2e-" + std::to_string(getpid());
  const TestCgroup& unit = MakeCgroup(mount, "/system.slice/" + tag + "-billing.service");
  const TestCgroup& docker =
      MakeCgroup(mount, "/" + tag + "/docker-" + std::string(kContainerId) + ".scope");
  std::string pod_slice = kPodUid;
  std::replace(pod_slice.begin(), pod_slice.end(), '-', '_');
  const TestCgroup& pod = MakeCgroup(
      mount, "/" + tag + "/kubepods.slice/kubepods-besteffort.slice/" + "kubepods-besteffort-pod" +
                 pod_slice + ".slice/cri-containerd-" + kContainerId + ".scope");

  const int env_port = FreePort(), script_port = FreePort(), unit_port = FreePort(),
            docker_port = FreePort(), pod_port = FreePort();
  auto& env_srv = StartServer("OTEL_SERVICE_NAME=checkout-api exec " +
                              Node(env_port, " --api-key=s3cret https://u:pw@example.com/?q=1"));
  auto& script_srv = StartServer("exec " + Python(script_port));
  auto& unit_srv = StartServer(unit.RunInside(Python(unit_port)));
  auto& docker_srv = StartServer(docker.RunInside(Python(docker_port)));
  auto& pod_srv = StartServer(pod.RunInside(Python(pod_port)));
  auto& mapped_srv = StartServer("OTEL_SERVICE_NAME=not-this exec " + Node(mapped_port_));

  const std::vector<std::pair<Subprocess*, int>> servers = {
      {&env_srv, env_port},       {&script_srv, script_port}, {&unit_srv, unit_port},
      {&docker_srv, docker_port}, {&pod_srv, pod_port},       {&mapped_srv, mapped_port_}};
  std::vector<std::pair<pid_t, size_t>> want;
  for (const auto& [srv, port] : servers) {
    ASSERT_EQ(Curl({Url(port, "/hello")}).exit_code, 0);
    want.emplace_back(srv->pid(), 1);
  }
  ASSERT_TRUE(AwaitSpans(want));

  const auto env = ResourceOf(env_srv.pid());
  EXPECT_EQ(Str(env, "service.name"), "checkout-api");
  EXPECT_EQ(Str(env, "process.runtime.name"), "nodejs");
  EXPECT_EQ(Str(env, "container.id"), "(absent)");
  const nlohmann::json args = env.count("process.command_args")
                                  ? env.at("process.command_args")["arrayValue"]["values"]
                                  : nlohmann::json::array();
  ASSERT_EQ(args.size(), 5u) << args.dump();
  EXPECT_EQ(args[3]["stringValue"], "--api-key=REDACTED");
  EXPECT_EQ(args[4]["stringValue"], "https://u:REDACTED@example.com/?q=REDACTED");

  const auto script = ResourceOf(script_srv.pid());
  EXPECT_EQ(Str(script, "service.name"), "http_server");
  EXPECT_EQ(Str(script, "process.runtime.name"), "cpython");
  const std::string instance = Str(script, "service.instance.id");
  EXPECT_EQ(instance.size(), 36u) << instance;
  EXPECT_NE(instance, Str(env, "service.instance.id"));

  const auto systemd = ResourceOf(unit_srv.pid());
  EXPECT_EQ(Str(systemd, "service.name"), tag + "-billing");

  // No runtime state names this container (no docker here): the entry point names it.
  const auto container = ResourceOf(docker_srv.pid());
  EXPECT_EQ(Str(container, "container.id"), kContainerId);
  EXPECT_EQ(Str(container, "service.name"), "http_server");
  EXPECT_EQ(Str(container, "k8s.pod.uid"), "(absent)");

  const auto in_pod = ResourceOf(pod_srv.pid());
  EXPECT_EQ(Str(in_pod, "container.id"), kContainerId);
  EXPECT_EQ(Str(in_pod, "k8s.pod.uid"), kPodUid);

  EXPECT_EQ(Str(ResourceOf(mapped_srv.pid()), "service.name"), "ledger")
      << "--service-name-map wins over OTEL_SERVICE_NAME";
}

// Clients that live a few milliseconds (a curl, a python script) are read at exec, while they
// run: each is named by the OTEL_SERVICE_NAME in its own environment, not by its comm.
TEST_F(IdentityE2eTest, ShortLivedClientsAreNamedByTheirOwnEnvironment) {
  const int port = FreePort();
  auto& srv = StartServer("exec " + Python(port));
  const std::string suffix = std::to_string(getpid());
  const std::string url = Url(port, "/hello");
  // Each client is one process from exec to exit: its pid is the span's pid.
  auto run = [&](std::vector<std::string> argv, const std::string& name) {
    Subprocess client(std::move(argv), {"OTEL_SERVICE_NAME=" + name});
    const pid_t pid = client.pid();
    EXPECT_EQ(client.Wait(30s), 0) << name;
    return pid;
  };
  const pid_t curl = run({"curl", "-s", "-o", "/dev/null", url}, "zt-short-curl-" + suffix);
  const pid_t py =
      run({"/usr/bin/python3", "-B", "-c",
           "import sys, urllib.request; urllib.request.urlopen(sys.argv[1]).read()", url},
          "zt-short-py-" + suffix);
  ASSERT_TRUE(AwaitSpans({{srv.pid(), 2}, {curl, 1}, {py, 1}}));
  const auto resource = [&](pid_t pid) {
    const auto spans = SpansOf(pid);
    EXPECT_EQ(spans.size(), 1u) << Describe(pid);
    return spans.empty() ? std::map<std::string, nlohmann::json, std::less<>>{} : spans[0].resource;
  };
  const auto curl_resource = resource(curl), py_resource = resource(py);
  EXPECT_EQ(Str(curl_resource, "service.name"), "zt-short-curl-" + suffix);
  EXPECT_EQ(Str(curl_resource, "process.executable.name"), "curl");
  EXPECT_EQ(Str(py_resource, "service.name"), "zt-short-py-" + suffix);
  EXPECT_EQ(Str(py_resource, "process.runtime.name"), "cpython");
}

}  // namespace
}  // namespace zerotrace::e2e
