// Specification of --service-name-map: syntax, errors, order of rules.
#include "conn/service_name_map.h"

#include <gtest/gtest.h>

namespace zerotrace::conn {
namespace {

std::string Name(const ServiceNameMap& m, std::string_view exe, std::string_view cgroup,
                 uint16_t port = 0) {
  const std::string* n = m.Find(exe, cgroup, port);
  return n ? *n : "(none)";
}

TEST(ServiceNameMapTest, MatchesByExecutablePortAndCgroup) {
  ServiceNameMap m;
  ASSERT_TRUE(m.Add("exe:python3.11=orders, port:8080=payments").ok());
  ASSERT_TRUE(m.Add("cgroup:/system.slice/shop/=shop").ok());
  EXPECT_TRUE(m.has_port_rules());
  EXPECT_EQ(Name(m, "python3.11", "/"), "orders");
  EXPECT_EQ(Name(m, "python3", "/"), "(none)") << "exact file name";
  EXPECT_EQ(Name(m, "node", "/", 8080), "payments");
  EXPECT_EQ(Name(m, "node", "/"), "(none)") << "port rules need a served port";
  EXPECT_EQ(Name(m, "node", "/system.slice/shop"), "shop");
  EXPECT_EQ(Name(m, "node", "/system.slice/shop/worker.scope"), "shop") << "below the path";
  EXPECT_EQ(Name(m, "node", "/system.slice/shopping"), "(none)") << "whole components";
}

TEST(ServiceNameMapTest, FirstMatchingRuleWins) {
  ServiceNameMap m;
  ASSERT_TRUE(m.Add("port:80=web,exe:nginx=proxy").ok());
  EXPECT_EQ(Name(m, "nginx", "/", 80), "web");
  EXPECT_EQ(Name(m, "nginx", "/", 81), "proxy");
}

TEST(ServiceNameMapTest, BadRulesAreErrorsAndAddNothing) {
  for (const char* bad : {"exe:x", "x=y", "exe:=y", "exe:x=", "exe:/usr/bin/x=y", "port:0=a",
                          "port:65536=a", "port:8o=a", "cgroup:system.slice=a", "pid:1=a"}) {
    ServiceNameMap m;
    const Status s = m.Add(std::string("exe:ok=fine,") + bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
    EXPECT_TRUE(m.empty()) << bad;
  }
}

}  // namespace
}  // namespace zerotrace::conn
