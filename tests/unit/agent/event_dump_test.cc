// Escaping for --dump-events: control bytes are visible, output is bounded.
#include "agent/event_dump.h"

#include <gtest/gtest.h>

namespace zerotrace::agent {
namespace {

TEST(EscapeBytes, Table) {
  struct Case {
    std::string in;
    size_t max;
    std::string want;
  } cases[] = {
      {"GET / HTTP/1.1\r\n", 64, "GET / HTTP/1.1\\r\\n"},
      {std::string("a\0b", 3), 64, "a\\x00b"},
      {"tab\there \"q\" \\", 64, "tab\\there \\\"q\\\" \\\\"},
      {"abcdef", 3, "abc..."},
      {"\xff\x80", 64, "\\xff\\x80"},
  };
  for (const auto& c : cases) EXPECT_EQ(EscapeBytes(c.in, c.max), c.want) << c.in;
}

}  // namespace
}  // namespace zerotrace::agent
