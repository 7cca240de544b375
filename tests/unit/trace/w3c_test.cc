// traceparent parsing: the W3C rules, one row per case.
#include "trace/w3c.h"

#include <gtest/gtest.h>

namespace zerotrace::trace {
namespace {

TEST(TraceParent, ValidHeaderParses) {
  auto tp = ParseTraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(tp.has_value());
  EXPECT_EQ(tp->trace_id.Hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(tp->parent_id.Hex(), "00f067aa0ba902b7");
  EXPECT_EQ(tp->flags, 1);
}

TEST(TraceParent, InvalidHeadersAreIgnored) {
  const char* bad[] = {
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",        // no flags
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     // zero parent id
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // version ff
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     // uppercase
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",  // v00 with extra
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // bad separator
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",     // not hex
  };
  for (const char* h : bad) EXPECT_FALSE(ParseTraceParent(h).has_value()) << h;
}

TEST(TraceParent, FutureVersionMayAppendFields) {
  EXPECT_TRUE(ParseTraceParent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
                  .has_value());
}

TEST(Ids, NewIdsAreValidAndDistinct) {
  const TraceId a = NewTraceId(), b = NewTraceId();
  EXPECT_TRUE(a.valid());
  EXPECT_NE(a, b);
  EXPECT_TRUE(NewSpanId().valid());
  EXPECT_EQ(a.Hex().size(), 32u);
}

}  // namespace
}  // namespace zerotrace::trace
