// Specification of a process's resource: identity fields and the redacted command line.
#include "protocols/resource.h"

#include <gtest/gtest.h>

namespace zerotrace::protocols {
namespace {

using conn::ProcessInfo;
using conn::ServiceNameMap;

TEST(RedactCommandArgsTest, Table) {
  struct Case {
    std::vector<std::string> in, want;
  };
  const Case cases[] = {
      {{"python3", "app.py", "--port", "8080"}, {"python3", "app.py", "--port", "8080"}},
      {{"app", "--password=hunter2", "--db-token=x", "--user=bob"},
       {"app", "--password=REDACTED", "--db-token=REDACTED", "--user=bob"}},
      {{"app", "--api-key", "k3y", "--verbose"}, {"app", "--api-key", "REDACTED", "--verbose"}},
      {{"app", "--secret", "--verbose"}, {"app", "--secret", "--verbose"}},
      {{"curl", "https://api.example.com/v1/items?id=42&sig=abc#top"},
       {"curl", "https://api.example.com/v1/items?id=REDACTED&sig=REDACTED#top"}},
      {{"app", "--db=postgres://shop:pa55@db:5432/orders?sslmode=require"},
       {"app", "--db=postgres://shop:REDACTED@db:5432/orders?sslmode=REDACTED"}},
      {{"git", "clone", "https://ghp_token123@github.com/x/y"},
       {"git", "REDACTED", "https://REDACTED@github.com/x/y"}},
      // Bare words may be values: only paths, program files and small numbers are shown.
      {{"redis-cli", "-p", "6379", "SET", "k", "v4lue"},
       {"redis-cli", "-p", "6379", "REDACTED", "REDACTED", "REDACTED"}},
      {{"mysql", "-pHunter2", "-u", "bob", "/tmp/q.sql"},
       {"mysql", "-pREDACTED", "-u", "REDACTED", "/tmp/q.sql"}},
      {{"env", "AWS_SECRET_ACCESS_KEY=abc", "LANG=C"},
       {"env", "AWS_SECRET_ACCESS_KEY=REDACTED", "LANG=C"}},
      {{"node", "-e", "a=1"}, {"node", "-e", "a=1"}},
      {{"x", "redis://h:6379"}, {"x", "redis://h:6379"}},
      // A Python module run with -m is the program; an IPv4 address is no credential.
      {{"/usr/bin/python3", "-m", "http.server", "47555", "--bind", "127.0.0.1"},
       {"/usr/bin/python3", "-m", "http.server", "47555", "--bind", "127.0.0.1"}},
      {{"python3.11", "-m", "uvicorn", "app.main:app", "--host", "10.0.0.25"},
       {"python3.11", "-m", "uvicorn", "REDACTED", "--host", "10.0.0.25"}},
      {{"python3", "-c", "import os"}, {"python3", "-c", "REDACTED"}},
      {{"redis-cli", "-m", "s3cret"}, {"redis-cli", "-m", "REDACTED"}},
      {{"python3", "-m", "http.server;rm"}, {"python3", "-m", "REDACTED"}},
      {{"app", "999.1.1.1", "1.2.3", "1.2.3.4.5", "1..2.3"},
       {"app", "REDACTED", "REDACTED", "REDACTED", "REDACTED"}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RedactCommandArgs(c.in), c.want) << c.in[1];
  }
}

TEST(MakeResourceTest, CarriesTheIdentityAndAppliesPortRules) {
  ProcessInfo info;
  info.pid = 7;
  info.comm = "python3";
  info.exe_name = "python3.11";
  info.exe_path = "/usr/bin/python3.11";
  info.service_name = "orders";
  info.instance_id = "iid";
  info.args = {"python3", "orders.py", "--token=t"};
  info.runtime_name = "cpython";
  info.container_id = "c";
  info.cgroup.k8s_pod_uid = "pod";
  info.container.k8s_pod_name = "orders-1";
  auto map = std::make_shared<ServiceNameMap>();
  ASSERT_TRUE(map->Add("port:9000=admin").ok());
  info.name_map = map;
  const auto r = MakeResource(info, 0, "node-1", {{"deployment.environment", std::string("dev")}});
  EXPECT_EQ(r->service_name, "orders");
  EXPECT_EQ(r->service_instance_id, "iid");
  EXPECT_EQ(r->pid, 7u);
  EXPECT_EQ(r->command_args,
            (std::vector<std::string>{"python3", "orders.py", "--token=REDACTED"}));
  EXPECT_EQ(r->runtime_name, "cpython");
  EXPECT_EQ(r->container_id, "c");
  EXPECT_EQ(r->k8s_pod_uid, "pod");
  EXPECT_EQ(r->k8s_pod_name, "orders-1");
  EXPECT_EQ(r->host_name, "node-1");
  ASSERT_EQ(r->extra.size(), 1u);
  EXPECT_EQ(MakeResource(info, 9000, "h", {})->service_name, "admin");
  EXPECT_EQ(MakeResource(info, 9001, "h", {})->service_name, "orders");
}

}  // namespace
}  // namespace zerotrace::protocols
