// Specification of the service identity sources: cgroup paths, runtime state, entry points.
#include "conn/service_identity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace zerotrace::conn {
namespace {

namespace fs = std::filesystem;
using std::string_literals::operator""s;

constexpr char kId[] = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";
constexpr char kPod[] = "0c1d2e3f-aaaa-bbbb-cccc-0123456789ab";

TEST(ParseCgroupTest, Table) {
  struct Case {
    const char* name;
    std::string cgroup;
    std::string path, container_id, runtime, pod_uid, unit;
  };
  const std::string id = kId, pod = kPod;
  std::string pod_ = pod;
  for (char& c : pod_) c = c == '-' ? '_' : c;
  const Case cases[] = {
      {"systemd service", "0::/system.slice/orders.service\n", "/system.slice/orders.service", "",
       "", "", "orders"},
      {"template instance", "0::/system.slice/worker@3.service\n", "/system.slice/worker@3.service",
       "", "", "", "worker@3"},
      {"nested below the unit", "0::/system.slice/api.service/init.scope\n",
       "/system.slice/api.service/init.scope", "", "", "", "api"},
      {"user service", "0::/user.slice/user-1000.slice/user@1000.service/app.slice/notes.service\n",
       "/user.slice/user-1000.slice/user@1000.service/app.slice/notes.service", "", "", "",
       "notes"},
      {"user manager is no service",
       "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-x.scope\n",
       "/user.slice/user-1000.slice/user@1000.service/app.slice/app-x.scope", "", "", "", ""},
      {"session", "0::/user.slice/user-0.slice/session-3.scope\n",
       "/user.slice/user-0.slice/session-3.scope", "", "", "", ""},
      {"docker", "0::/system.slice/docker-" + id + ".scope\n",
       "/system.slice/docker-" + id + ".scope", id, "docker", "", ""},
      {"docker v1", "12:memory:/docker/" + id + "\n", "", id, "docker", "", ""},
      {"podman", "0::/machine.slice/libpod-" + id + ".scope/container\n",
       "/machine.slice/libpod-" + id + ".scope/container", id, "podman", "", ""},
      {"containerd in a pod (systemd driver)",
       "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + pod_ +
           ".slice/cri-containerd-" + id + ".scope\n",
       "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + pod_ +
           ".slice/cri-containerd-" + id + ".scope",
       id, "containerd", pod, ""},
      {"cri-o in a pod",
       "0::/kubepods.slice/kubepods-pod" + pod_ + ".slice/crio-" + id + ".scope\n",
       "/kubepods.slice/kubepods-pod" + pod_ + ".slice/crio-" + id + ".scope", id, "cri-o", pod,
       ""},
      {"pod (cgroupfs driver)", "0::/kubepods/besteffort/pod" + pod + "/" + id + "\n",
       "/kubepods/besteffort/pod" + pod + "/" + id, id, "", pod, ""},
      {"a container's service unit is not the service",
       "0::/system.slice/docker-" + id + ".scope/sub.service\n",
       "/system.slice/docker-" + id + ".scope/sub.service", id, "docker", "", ""},
      {"hybrid: name=systemd fills in the unit", "1:name=systemd:/system.slice/web.service\n0::/\n",
       "/", "", "", "", "web"},
      {"pod uid outside kubepods is not read", "0::/pod" + pod + "\n", "/pod" + pod, "", "", "",
       ""},
      {"root", "0::/\n", "/", "", "", "", ""},
      {"malformed", "garbage\n", "", "", "", "", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const CgroupIdentity got = ParseCgroup(c.cgroup);
    EXPECT_EQ(got.path, c.path);
    EXPECT_EQ(got.container_id, c.container_id);
    EXPECT_EQ(got.container_runtime, c.runtime);
    EXPECT_EQ(got.k8s_pod_uid, c.pod_uid);
    EXPECT_EQ(got.systemd_unit, c.unit);
  }
}

TEST(InterpreterEntryPointTest, Table) {
  struct Case {
    std::string exe;
    std::vector<std::string> args;
    std::string service, runtime;
  };
  const Case cases[] = {
      {"python3.11", {"python3", "-B", "/srv/order.py", "--port", "80"}, "order", "cpython"},
      {"python3", {"python3", "-u", "-W", "ignore", "-X", "dev", "app.py"}, "app", "cpython"},
      {"python3", {"python3", "-Wignore", "-OO", "run.pyc"}, "run", "cpython"},
      {"python3", {"python3", "-m", "http.server", "8000"}, "http.server", "cpython"},
      {"python3", {"python3", "-mgunicorn", "app:app"}, "gunicorn", "cpython"},
      {"python3", {"python3", "-um", "pkg.__main__"}, "pkg", "cpython"},
      {"python3", {"python3", "/opt/shop/payment/__main__.py"}, "payment", "cpython"},
      {"python3", {"python3", "/usr/bin/gunicorn", "-w", "4"}, "gunicorn", "cpython"},
      {"python3", {"python3", "-c", "print(1)"}, "", "cpython"},
      {"python3", {"python3"}, "", "cpython"},
      {"python3", {"python3", "-"}, "", "cpython"},
      {"pypy3", {"pypy3", "worker.py"}, "worker", "pypy"},
      {"node", {"node", "/srv/goods.js", "--port", "1"}, "goods", "nodejs"},
      {"node", {"node", "--inspect=9229", "-r", "dotenv/config", "server.mjs"}, "server", "nodejs"},
      {"node", {"node", "/srv/user-centre/index.js"}, "user-centre", "nodejs"},
      {"node", {"node", "-e", "require('x')"}, "", "nodejs"},
      {"java", {"java", "-Xmx1g", "-Dx=y", "-jar", "/app/billing-2.3.1.jar"}, "billing", "java"},
      {"java",
       {"java", "-cp", "lib/*:.", "com.example.shop.OrderService", "8080"},
       "OrderService",
       "java"},
      {"java", {"java", "-m", "shop.orders/shop.orders.Main"}, "shop.orders", "java"},
      {"ruby3.1", {"ruby", "-I", "lib", "/srv/app/web.rb"}, "web", "ruby"},
      {"ruby", {"ruby", "-e", "puts 1"}, "", "ruby"},
      {"php8.2", {"php", "-d", "x=1", "/var/www/api.php"}, "api", "php"},
      {"php", {"php", "-S", "0.0.0.0:8000", "-t", "public"}, "", "php"},
      {"php-fpm8.2", {"php-fpm: master process"}, "", ""},
      {"nginx", {"nginx", "-g", "daemon off;"}, "", ""},
      {"pythonista", {"pythonista", "x.py"}, "", ""},
  };
  for (const Case& c : cases) {
    std::string line;
    for (const auto& a : c.args) line += a + " ";
    SCOPED_TRACE(c.exe + ": " + line);
    const EntryPoint e = InterpreterEntryPoint(c.exe, c.args);
    EXPECT_EQ(e.service, c.service);
    EXPECT_EQ(e.runtime, c.runtime);
  }
}

TEST(IdentityFromEnvironTest, ServiceNameAndInstanceId) {
  auto env = [](std::initializer_list<std::string> vars) {
    std::string out;
    for (const auto& v : vars) out += v + '\0';
    return out;
  };
  EXPECT_EQ(IdentityFromEnviron(env({"OTEL_SERVICE_NAME=cart"})).service_name, "cart");
  const EnvIdentity attrs = IdentityFromEnviron(
      env({"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod, service.name = basket%20v2 ,"
           "service.instance.id=abc"}));
  EXPECT_EQ(attrs.service_name, "basket v2");
  EXPECT_EQ(attrs.instance_id, "abc");
  // OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES, in either order.
  EXPECT_EQ(
      IdentityFromEnviron(env({"OTEL_SERVICE_NAME=a", "OTEL_RESOURCE_ATTRIBUTES=service.name=b"}))
          .service_name,
      "a");
  EXPECT_EQ(
      IdentityFromEnviron(env({"OTEL_RESOURCE_ATTRIBUTES=service.name=b", "OTEL_SERVICE_NAME=a"}))
          .service_name,
      "a");
  EXPECT_EQ(IdentityFromEnviron(env({"OTEL_RESOURCE_ATTRIBUTES=x.service.name=b"})).service_name,
            "");
  EXPECT_EQ(IdentityFromEnviron("").service_name, "");
}

TEST(SplitCmdlineTest, BoundsArgumentsAndTheirSize) {
  EXPECT_EQ(SplitCmdline("python3\0-m\0x\0"s), (std::vector<std::string>{"python3", "-m", "x"}));
  EXPECT_EQ(SplitCmdline("nginx: master process"),
            (std::vector<std::string>{"nginx: master process"}));
  std::string many;
  for (int i = 0; i < 100; i++) many += "a"s + '\0';
  EXPECT_EQ(SplitCmdline(many).size(), kMaxArgs);
  EXPECT_EQ(SplitCmdline(std::string(5000, 'x'))[0].size(), kMaxArgBytes);
  EXPECT_TRUE(SplitCmdline("").empty());
}

TEST(InstanceIdTest, StablePerProcessLifetimeAndShapedLikeAUuid) {
  const std::string a = InstanceId("boot-1", 42, 1000);
  EXPECT_EQ(a, InstanceId("boot-1", 42, 1000));
  EXPECT_NE(a, InstanceId("boot-1", 42, 1001)) << "pid reused later";
  EXPECT_NE(a, InstanceId("boot-2", 42, 1000)) << "another boot";
  EXPECT_NE(a, InstanceId("boot-1", 43, 1000));
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '8') << a << ": version 8";
  EXPECT_TRUE(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b') << a;
}

TEST(StartTicksFromStatTest, SkipsACommWithSpacesAndParentheses) {
  EXPECT_EQ(StartTicksFromStat("77 (a (b) c) S 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
                               "123456 1000 10 18446744073709551615"),
            123456u);
  EXPECT_EQ(StartTicksFromStat("1 (x) S 1"), 0u);
  EXPECT_EQ(StartTicksFromStat(""), 0u);
}

class ContainerStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("zt-state-" + std::to_string(getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
  }
  CgroupIdentity Cgroup(const std::string& runtime) {
    CgroupIdentity c;
    c.container_id = kId;
    c.container_runtime = runtime;
    return c;
  }
  fs::path root_;
};

TEST_F(ContainerStateTest, DockerNameAndComposeService) {
  Write("var/lib/docker/containers/"s + kId + "/config.v2.json",
        R"({"Name":"/shop-orders-1","Config":{"Labels":{"com.docker.compose.service":"orders"}}})");
  ContainerNames n = ReadContainerNames(root_.string(), Cgroup("docker"));
  EXPECT_EQ(n.service, "orders");
  EXPECT_EQ(n.container_name, "shop-orders-1");
  Write("var/lib/docker/containers/"s + kId + "/config.v2.json", R"({"Name":"/cache"})");
  n = ReadContainerNames(root_.string(), Cgroup("docker"));
  EXPECT_EQ(n.service, "cache");
}

TEST_F(ContainerStateTest, KubernetesNamesFromCriAnnotations) {
  Write("run/containerd/io.containerd.runtime.v2.task/k8s.io/"s + kId + "/config.json",
        R"({"annotations":{"io.kubernetes.cri.container-name":"payment",
            "io.kubernetes.cri.sandbox-name":"payment-7d4b9-x2x",
            "io.kubernetes.cri.sandbox-namespace":"shop"}})");
  ContainerNames n = ReadContainerNames(root_.string(), Cgroup("containerd"));
  EXPECT_EQ(n.service, "payment");
  EXPECT_EQ(n.k8s_container_name, "payment");
  EXPECT_EQ(n.k8s_pod_name, "payment-7d4b9-x2x");
  EXPECT_EQ(n.k8s_namespace, "shop");
  fs::remove_all(root_);
  Write("run/containers/storage/overlay-containers/"s + kId + "/userdata/config.json",
        R"({"annotations":{"io.kubernetes.container.name":"goods",
            "io.kubernetes.pod.name":"goods-1","io.kubernetes.pod.namespace":"default"}})");
  n = ReadContainerNames(root_.string(), Cgroup("cri-o"));
  EXPECT_EQ(n.service, "goods");
  EXPECT_EQ(n.k8s_namespace, "default");
}

TEST_F(ContainerStateTest, NothingReadableIsNoName) {
  EXPECT_EQ(ReadContainerNames(root_.string(), Cgroup("docker")).service, "");
  Write("var/lib/docker/containers/"s + kId + "/config.v2.json", "{not json");
  EXPECT_EQ(ReadContainerNames(root_.string(), Cgroup("docker")).service, "");
  EXPECT_EQ(ReadContainerNames(root_.string(), CgroupIdentity{}).service, "") << "no container";
}

}  // namespace
}  // namespace zerotrace::conn
