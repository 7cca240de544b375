// gzip: round trips, concatenated members, and the failures a network body can cause.
#include "gzip.h"

#include <gtest/gtest.h>

#include <string>

namespace zerotrace::otlp_sink {
namespace {

TEST(GzipTest, RoundTripsEmptySmallAndLargeBodies) {
  std::string large;
  for (int i = 0; i < 300000; i++) large += static_cast<char>('a' + i * 7 % 26);
  for (const std::string& data : {std::string(), std::string("x"), large}) {
    const auto back = Gunzip(Gzip(data), 1 << 20);
    ASSERT_TRUE(back.has_value()) << data.size();
    EXPECT_EQ(*back, data);
  }
}

TEST(GzipTest, ConcatenatedMembersInflateToTheirConcatenation) {
  EXPECT_EQ(Gunzip(Gzip("hello ") + Gzip("world"), 1024), "hello world");
}

TEST(GzipTest, RejectsWhatIsNotACompleteGzipStream) {
  const std::string good = Gzip(std::string(1000, 'z'));
  struct Case {
    const char* name;
    std::string data;
  };
  const Case cases[] = {
      {"empty", ""},
      {"plain text", "not gzip at all"},
      {"truncated", good.substr(0, good.size() / 2)},
      {"trailing garbage", good + "xyz"},
      {"corrupt crc", good.substr(0, good.size() - 8) + std::string(8, '\xff')},
  };
  for (const Case& c : cases) EXPECT_FALSE(Gunzip(c.data, 1 << 20).has_value()) << c.name;
}

TEST(GzipTest, StopsAtTheSizeBound) {
  const std::string bomb = Gzip(std::string(1 << 20, '\0'));
  EXPECT_FALSE(Gunzip(bomb, 4096).has_value());
  EXPECT_TRUE(Gunzip(bomb, 2 << 20).has_value());
}

}  // namespace
}  // namespace zerotrace::otlp_sink
