// PromTextWriter: the Prometheus 0.0.4 text format, byte for byte.
#include "agent/prom_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace zerotrace::agent {
namespace {

TEST(PromTextWriter, FamilyHasHelpTypeThenSamples) {
  PromTextWriter w;
  ASSERT_TRUE(w.Add("zerotrace_spans_total", "spans made", PromType::kCounter, uint64_t{42}).ok());
  ASSERT_TRUE(w.Add("zerotrace_queue_depth", "spans waiting", PromType::kGauge, uint64_t{3}).ok());
  EXPECT_EQ(w.Render(),
            "# HELP zerotrace_spans_total spans made\n"
            "# TYPE zerotrace_spans_total counter\n"
            "zerotrace_spans_total 42\n"
            "# HELP zerotrace_queue_depth spans waiting\n"
            "# TYPE zerotrace_queue_depth gauge\n"
            "zerotrace_queue_depth 3\n");
}

TEST(PromTextWriter, SamplesOfOneFamilyStayTogetherInOrder) {
  PromTextWriter w;
  ASSERT_TRUE(w.Add("a_total", "a", PromType::kCounter, uint64_t{1}, {{"stage", "x"}}).ok());
  ASSERT_TRUE(w.Add("b", "b", PromType::kGauge, uint64_t{2}).ok());
  ASSERT_TRUE(w.Add("a_total", "a", PromType::kCounter, uint64_t{3}, {{"stage", "y"}}).ok());
  EXPECT_EQ(w.Render(),
            "# HELP a_total a\n# TYPE a_total counter\n"
            "a_total{stage=\"x\"} 1\na_total{stage=\"y\"} 3\n"
            "# HELP b b\n# TYPE b gauge\nb 2\n");
}

TEST(PromTextWriter, EscapesHelpAndLabelValues) {
  PromTextWriter w;
  ASSERT_TRUE(w.Add("m", "back\\slash\nnew \"quote\"", PromType::kGauge, uint64_t{0},
                    {{"path", "a\\b\"c\nd"}, {"k2", ""}})
                  .ok());
  EXPECT_EQ(w.Render(),
            "# HELP m back\\\\slash\\nnew \"quote\"\n"  // quotes stay in HELP
            "# TYPE m gauge\n"
            "m{path=\"a\\\\b\\\"c\\nd\",k2=\"\"} 0\n");
}

TEST(PromTextWriter, RefusesWhatTheFormatForbids) {
  struct Case {
    const char* what;
    const char* name;
    PromType type;
    PromLabels labels;
  } cases[] = {
      {"empty name", "", PromType::kGauge, {}},
      {"leading digit", "1abc", PromType::kGauge, {}},
      {"dash", "zero-trace", PromType::kGauge, {}},
      {"counter without _total", "zerotrace_spans", PromType::kCounter, {}},
      {"label with colon", "m", PromType::kGauge, {{"a:b", "v"}}},
      {"reserved label", "m", PromType::kGauge, {{"__name", "v"}}},
      {"empty label name", "m", PromType::kGauge, {{"", "v"}}},
  };
  for (const auto& c : cases) {
    PromTextWriter w;
    EXPECT_FALSE(w.Add(c.name, "h", c.type, uint64_t{1}, c.labels).ok()) << c.what;
    EXPECT_EQ(w.Render(), "") << c.what;
  }
  PromTextWriter w;
  ASSERT_TRUE(w.Add("m_total", "h", PromType::kCounter, uint64_t{1}).ok());
  EXPECT_FALSE(w.Add("m_total", "h", PromType::kGauge, uint64_t{1}).ok()) << "two types";
}

TEST(PromTextWriter, NamesThatAreValid) {
  for (const char* n : {"a", "_a", ":a", "a:b_c9", "process_cpu_seconds_total"}) {
    EXPECT_TRUE(IsValidMetricName(n)) << n;
  }
  for (const char* n : {"stage", "_x", "program9"}) EXPECT_TRUE(IsValidLabelName(n)) << n;
}

TEST(PromTextWriter, ValuesAsTheFormatSpellsThem) {
  struct Case {
    double v;
    const char* want;
  } cases[] = {
      {0, "0"},
      {42, "42"},
      {-3, "-3"},
      {0.25, "0.25"},
      {1.5e-9, "1.5e-09"},
      {0.1, "0.1"},
      {std::numeric_limits<double>::infinity(), "+Inf"},
      {-std::numeric_limits<double>::infinity(), "-Inf"},
      {std::nan(""), "NaN"},
  };
  for (const auto& c : cases) EXPECT_EQ(FormatPromValue(c.v), c.want) << c.v;
  PromTextWriter w;
  ASSERT_TRUE(w.Add("big_total", "h", PromType::kCounter, uint64_t{18446744073709551615u}).ok());
  EXPECT_NE(w.Render().find("big_total 18446744073709551615\n"), std::string::npos);
}

}  // namespace
}  // namespace zerotrace::agent
