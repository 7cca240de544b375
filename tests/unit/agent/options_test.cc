// OTEL_RESOURCE_ATTRIBUTES parsing.
#include "agent/options.h"

#include <gtest/gtest.h>

namespace zerotrace::agent {
namespace {

TEST(ResourceAttributes, ParsesPairsAndPercentDecodes) {
  using KV = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(ParseResourceAttributes("k8s.node.name=node-1, team = pay%2Cments,bad,=x"),
            (KV{{"k8s.node.name", "node-1"}, {"team", "pay,ments"}}));
  EXPECT_TRUE(ParseResourceAttributes("").empty());
}

}  // namespace
}  // namespace zerotrace::agent
