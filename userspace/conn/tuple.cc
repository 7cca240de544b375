// Address formatting; v4-mapped IPv6 is shown the way users write it.
#include "conn/tuple.h"

#include <arpa/inet.h>
#include <zerotrace/events.h>

#include <charconv>
#include <cstring>

namespace zerotrace::conn {
namespace {

bool IsV4Mapped(const std::array<uint8_t, 16>& a) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a.data(), kPrefix, sizeof(kPrefix)) == 0;
}

// Dotted quad without inet_ntop's stdio formatting: this runs for every span.
std::string FormatV4(const uint8_t* a) {
  char buf[16];
  char* p = buf;
  for (int i = 0; i < 4; i++) {
    if (i > 0) *p++ = '.';
    p = std::to_chars(p, buf + sizeof(buf), a[i]).ptr;
  }
  return std::string(buf, p);
}

std::string Endpoint(uint16_t family, const std::array<uint8_t, 16>& addr, uint16_t port) {
  std::string host = FormatAddress(family, addr);
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return host + ":" + std::to_string(port);
}

}  // namespace

std::string FormatAddress(uint16_t family, const std::array<uint8_t, 16>& addr) {
  if (family == ZT_AF_INET) return FormatV4(addr.data());
  if (family != ZT_AF_INET6) return "?";
  if (IsV4Mapped(addr)) return FormatV4(addr.data() + 12);
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, addr.data(), buf, sizeof(buf));
  return buf;
}

std::string Tuple::LocalAddress() const { return FormatAddress(family, local_addr); }
std::string Tuple::RemoteAddress() const { return FormatAddress(family, remote_addr); }
std::string Tuple::LocalEndpoint() const { return Endpoint(family, local_addr, local_port); }
std::string Tuple::RemoteEndpoint() const { return Endpoint(family, remote_addr, remote_port); }

Tuple Tuple::Mirrored() const {
  Tuple t = *this;
  std::swap(t.local_addr, t.remote_addr);
  std::swap(t.local_port, t.remote_port);
  return t;
}

}  // namespace zerotrace::conn
