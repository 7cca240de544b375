// Tuple address formatting: IPv4, IPv6, v4-mapped IPv6 and endpoints, as users write them.
#include "conn/tuple.h"

#include <gtest/gtest.h>
#include <zerotrace/events.h>

namespace zerotrace::conn {
namespace {

std::array<uint8_t, 16> V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return {a, b, c, d}; }

std::array<uint8_t, 16> Mapped(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

TEST(FormatAddress, EveryFamilyAsUsersWriteIt) {
  std::array<uint8_t, 16> loop6{};
  loop6[15] = 1;
  const std::array<uint8_t, 16> doc6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                        0,    0,    0,    0,    0, 0, 0, 0x2a};
  struct Case {
    uint16_t family;
    std::array<uint8_t, 16> addr;
    const char* want;
  } cases[] = {
      {ZT_AF_INET, V4(127, 0, 0, 1), "127.0.0.1"},
      {ZT_AF_INET, V4(0, 0, 0, 0), "0.0.0.0"},
      {ZT_AF_INET, V4(255, 255, 255, 255), "255.255.255.255"},
      {ZT_AF_INET, V4(10, 20, 100, 9), "10.20.100.9"},
      {ZT_AF_INET6, Mapped(192, 168, 1, 10), "192.168.1.10"},
      {ZT_AF_INET6, loop6, "::1"},
      {ZT_AF_INET6, doc6, "2001:db8::2a"},
      {0, V4(1, 2, 3, 4), "?"},
  };
  for (const auto& c : cases) EXPECT_EQ(FormatAddress(c.family, c.addr), c.want) << c.want;
}

TEST(Tuple, EndpointsBracketIpv6) {
  Tuple t;
  t.family = ZT_AF_INET6;
  t.local_addr[15] = 1;
  t.remote_addr = Mapped(10, 0, 0, 7);
  t.local_port = 8080;
  t.remote_port = 51000;
  EXPECT_EQ(t.LocalEndpoint(), "[::1]:8080");
  EXPECT_EQ(t.RemoteEndpoint(), "10.0.0.7:51000");
  EXPECT_EQ(t.RemoteAddress(), "10.0.0.7");
}

}  // namespace
}  // namespace zerotrace::conn
